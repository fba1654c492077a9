"""Asking one recording's questions: fetch it (guarded), cut its audio into windows, ask Hume about each window
and store each window's answers as it comes, so a resumed run skips what is stored.

What ends one source, with the code it is recorded under:
- the fetch (egress codes: blocked_url, fetch_failed, media_too_large, ...);
- the audio (no_audio_stream, media_undecodable, audio_silent, audio_too_short, the media limits' codes): found
  before any window is sent, except damage or a limit met part-way (the windows before it stand);
- Hume refusing this recording (audio_too_long, payload_too_large, audio_format_unsupported, message_invalid,
  any other 4xx about the request): Hume's code; the windows answered before it stand.
What stops every source (`Stop`): Hume refusing the account (401, 402, 403) or the question set
(question_invalid): asking again would be refused the same way. So does the tenant's daily budget of input
tokens, spent before a window is sent (BudgetExhausted, app/decisions/token_spend.py): the windows before it stand.
What pauses the job (HumeTransientError): Hume still busy (429, 5xx, no answer) after the client's own retries.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.decisions import answers, token_spend
from app.deps import Deps
from app.egress.download import FetchLimits, download
from app.egress.errors import EgressError
from app.egress.pinned import PinnedClient
from app.hume import decisions_contract as hume
from app.hume.decisions import DecisionsError
from app.hume.errors import HumeTransientError
from app.media.errors import MediaError
from app.media.limits import MediaLimits
from app.media.off_loop import next_item
from app.media.windows import WindowRules, iter_windows
from app.store import decisions as answer_store
from app.store.tables import QuestionSet

WAV = "audio/wav"


def window_rules(window_s: int) -> WindowRules:
    """Hume's bounds on one request's audio (app.hume.decisions_contract) around the job's window length."""
    return WindowRules(
        window_ms=window_s * 1000, min_ms=hume.MIN_AUDIO_MS, max_ms=hume.MAX_AUDIO_MS,
        merge_below_ms=hume.ADVISED_MIN_AUDIO_MS,
    )  # fmt: skip


def questions_of(question_set: QuestionSet) -> dict[str, dict[str, Any]]:
    """The set's questions by id, in the set's order (Hume's answers depend on it)."""
    return {q["id"]: {k: v for k, v in q.items() if k != "id"} for q in question_set.questions}


def described(question_set: QuestionSet) -> dict[str, Any]:
    """Which version of which set: how a job's details and an estimate name the questions asked."""
    return {"id": str(question_set.id), "family_id": str(question_set.family_id), "version": question_set.version,
            "name": question_set.name}  # fmt: skip


def fetch_limits(deps: Deps) -> FetchLimits:
    return FetchLimits(
        max_bytes=deps.settings.media_max_bytes,
        read_timeout_s=deps.settings.media_fetch_read_timeout_s,
        total_timeout_s=deps.settings.media_fetch_timeout_s,
    )


class Stop(Exception):
    """Hume refused the account or the question set: no source can be answered until someone fixes it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def judged(exc: DecisionsError) -> Exception | None:
    """What a refusal means for the job: Stop, HumeTransientError (pause), or None (this source only)."""
    if exc.retryable:
        return HumeTransientError(str(exc), status=exc.status, retry_after=exc.retry_after)
    if exc.account or exc.code == hume.QUESTION_INVALID:
        return Stop(exc.error_code, str(exc))
    return None


@dataclass
class Progress:
    """One source's progress in this job (kept in the job's details as it goes)."""

    windows: int = 0
    """Windows the audio has (known once it was cut to its end)."""
    answered: int = 0
    input_tokens: int = 0
    audio_ms: int = 0
    """Audio answered, in ms."""
    error_code: str | None = None
    error: str | None = None
    done: bool = False

    def failed(self, code: str, message: str) -> Progress:
        self.error_code, self.error, self.done = code, " ".join(message.split()), True
        return self

    def as_json(self) -> dict[str, Any]:
        error = None if self.error is None else {"code": self.error_code, "message": self.error}
        return {"windows": self.windows, "answered": self.answered, "input_tokens": self.input_tokens,
                "audio_ms": self.audio_ms, "error": error, "done": self.done}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Progress:
        error = data.get("error") or {}
        return cls(windows=data.get("windows", 0), answered=data.get("answered", 0),
                   input_tokens=data.get("input_tokens", 0), audio_ms=data.get("audio_ms", 0),
                   error_code=error.get("code"), error=error.get("message"), done=bool(data.get("done")))  # fmt: skip


@dataclass(frozen=True)
class Asking:
    """What every window of a job is asked with, and where its answers go."""

    job_id: uuid.UUID
    tenant: str
    question_set: QuestionSet
    window_s: int
    token_estimates: dict[int, int] = field(default_factory=dict, compare=False, hash=False)
    """Hume's input-token estimate by window length (ms), asked once a run (app/decisions/token_spend.py)."""

    @property
    def questions(self) -> dict[str, dict[str, Any]]:
        return questions_of(self.question_set)


async def estimated_tokens(deps: Deps, asking: Asking, duration_ms: int) -> int:
    """Hume's estimate of a window's input tokens (its free input_tokens endpoint), asked once per window length
    in a run: tokens depend on the audio's duration and the questions only (D/billing)."""
    known = asking.token_estimates.get(duration_ms)
    if known is None:
        known = await deps.decisions.input_tokens(duration_ms, asking.questions, asking.question_set.context)
        asking.token_estimates[duration_ms] = known
    return known


async def ask_source(
    deps: Deps, client: PinnedClient, asking: Asking, source: int, url: str, answered: set[int], progress: Progress,
    save: Callable[[int, Progress, list[answer_store.AnswerRow]], Any],
) -> Progress:  # fmt: skip
    """Ask every window of `url` not in `answered`; `save(source, progress, rows)` stores a window's answers with
    the progress in one transaction. Returns the source's outcome; raises Stop, BudgetExhausted or
    HumeTransientError."""
    questions = asking.questions
    limits = MediaLimits.from_settings(deps.settings)
    try:
        async with download(client, url, fetch_limits(deps)) as file, deps.decode_slots:
            windows = iter_windows(file.path, window_rules(asking.window_s), limits=limits)
            with contextlib.closing(windows):
                while (window := await next_item(windows)) is not None:
                    progress.windows = max(progress.windows, window.index + 1)
                    if window.index in answered:
                        continue
                    result = await token_spend.metered(
                        deps, asking.job_id, asking.tenant, source, window,
                        functools.partial(estimated_tokens, deps, asking),
                        functools.partial(
                            deps.decisions.decide, window.wav, f"source-{source}-window-{window.index}.wav", WAV,
                            questions, asking.question_set.context,
                        ),
                    )  # fmt: skip
                    rows = answers.window_rows(
                        result.answers, job_id=asking.job_id, tenant=asking.tenant,
                        question_set=asking.question_set, source_index=source, source_url=url,
                        window_index=window.index, window_start_ms=window.start_ms, window_end_ms=window.end_ms,
                        run_id=result.run_id,
                    )  # fmt: skip
                    progress.answered += 1
                    progress.input_tokens += result.input_tokens or 0
                    progress.audio_ms += window.duration_ms
                    await save(source, progress, rows)
    except EgressError as exc:
        return progress.failed(exc.code, exc.message)
    except MediaError as exc:
        return progress.failed(exc.code, exc.message)
    except DecisionsError as exc:
        verdict = judged(exc)
        if verdict is not None:
            raise verdict from None
        return progress.failed(exc.error_code, str(exc))
    progress.done = True
    return progress
