"""`POST /v1/jobs` with `decisions.estimate: true`: what the job would cost in Hume input tokens, answered at once,
with no job created and nothing asked. Each URL is fetched and cut into the windows the job would send (the
same cuts: app.media.windows), and Hume's free input_tokens endpoint (D/billing: estimates are not billed) is
asked per window. Tokens depend on a window's duration and the questions only (D/billing), so windows of the
same length are asked once. A source that cannot be estimated says why, as the job would record it.
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal

import msgspec

from app.decisions.asking import Stop, described, fetch_limits, judged, questions_of, window_rules
from app.deps import Deps
from app.egress.download import download
from app.egress.errors import EgressError
from app.egress.pinned import PinnedClient
from app.egress.url_guard import UrlGuard
from app.hume.decisions import DecisionsError
from app.hume.errors import HumeTransientError
from app.media.errors import MediaError
from app.media.limits import MediaLimits
from app.media.off_loop import next_item
from app.media.windows import iter_windows
from app.store.tables import QuestionSet


class EstimateError(msgspec.Struct):
    code: str
    message: str


class WindowEstimate(msgspec.Struct):
    index: int
    start_ms: int
    end_ms: int
    input_tokens: int


class SourceEstimate(msgspec.Struct):
    source: int
    url: str
    audio_ms: int
    input_tokens: int
    windows: list[WindowEstimate]
    error: EstimateError | None = None


class DecisionEstimate(msgspec.Struct):
    """`decisions.estimate: true` answers this (200) at once: Hume's input-token estimate for every window the
    job would send (Hume's free input_tokens endpoint); no job is created and no question is asked."""

    estimate: Literal[True]
    question_set: dict[str, Any]
    """The version that would be asked: id, family_id, version, name."""
    window_s: int
    input_tokens: int
    """The sum over every window of every source that could be estimated."""
    audio_ms: int
    sources: list[SourceEstimate]


async def _source(
    deps: Deps, client: PinnedClient, question_set: QuestionSet, window_s: int, source: int, url: str,
    known: dict[int, int],
) -> SourceEstimate:  # fmt: skip
    """One URL's windows, each with its estimate (`known`: tokens by window duration, shared by the sources)."""
    questions, context = questions_of(question_set), question_set.context
    estimate = SourceEstimate(source=source, url=url, audio_ms=0, input_tokens=0, windows=[])
    limits = MediaLimits.from_settings(deps.settings)
    try:
        async with download(client, url, fetch_limits(deps)) as file, deps.decode_slots:
            windows = iter_windows(file.path, window_rules(window_s), limits=limits)
            with contextlib.closing(windows):
                while (window := await next_item(windows)) is not None:
                    tokens = known.get(window.duration_ms)
                    if tokens is None:
                        tokens = await deps.decisions.input_tokens(window.duration_ms, questions, context)
                        known[window.duration_ms] = tokens
                    estimate.windows.append(WindowEstimate(window.index, window.start_ms, window.end_ms, tokens))
                    estimate.input_tokens += tokens
                    estimate.audio_ms += window.duration_ms
    except (EgressError, MediaError) as exc:
        estimate.error = EstimateError(exc.code, exc.message)
    except DecisionsError as exc:
        verdict = judged(exc)
        if isinstance(verdict, Stop):
            raise verdict from None
        # Still busy after the client's retries: this source says so, the caller may ask again.
        code = "hume_busy" if isinstance(verdict, HumeTransientError) else exc.error_code
        estimate.error = EstimateError(code, str(exc))
    return estimate


async def estimate(deps: Deps, question_set: QuestionSet, window_s: int, urls: list[str]) -> DecisionEstimate:
    sources: list[SourceEstimate] = []
    known: dict[int, int] = {}
    guard = UrlGuard.from_setting(deps.settings.outbound_allow_list)
    async with PinnedClient(guard, read_timeout_s=deps.settings.media_fetch_read_timeout_s) as client:
        for source, url in enumerate(urls):
            try:
                sources.append(await _source(deps, client, question_set, window_s, source, url, known))
            except Stop as stop:
                # Hume refused the account or the set: every source left would be refused the same way.
                error = EstimateError(stop.code, stop.message)
                sources += [SourceEstimate(source=i, url=u, audio_ms=0, input_tokens=0, windows=[], error=error)
                            for i, u in enumerate(urls) if i >= source]  # fmt: skip
                break
    return DecisionEstimate(
        estimate=True, question_set=described(question_set), window_s=window_s,
        input_tokens=sum(s.input_tokens for s in sources), audio_ms=sum(s.audio_ms for s in sources),
        sources=sources,
    )  # fmt: skip
