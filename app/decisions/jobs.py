"""Decision jobs: `POST /v1/jobs` with `decisions` asks a question set's questions about each URL's audio, window
by window, on the v1 backend. The wiring wraps the v1 backend (`with_decisions`): a job with decisions has its
questions asked first, source by source; then, if it names models, the v1 backend measures them and ends the job
(folding the decisions' per-source errors into its sources, `SOURCE_ERRORS`); without models it ends here.
Either way it ends once, through `outbox.end_job`, so `job.completed` reaches subscribed endpoints as for any job.
Each window's input tokens are reserved against the tenant's daily budget before it is sent
(app/decisions/token_spend.py); a submission is refused 429 when the day has none left.

The question set is pinned when the job is stored: the version's id (versions never change; an edit makes the
next version), its family and number. A run records each source's progress in the job's details
(`details.decisions.sources[i]`: windows, answered, input_tokens, audio_ms, error, done) in the transaction that
stores a window's answers, so a resumed run (a retry, a requeue after a killed worker) skips finished sources
and answered windows. What was stored stays whatever ends the job.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.job_status import FINAL
from app.decisions.asking import Asking, Progress, Stop, ask_source, described
from app.deps import Deps, JobBackend
from app.egress.pinned import PinnedClient
from app.egress.url_guard import UrlGuard
from app.errors import InvalidInput
from app.hume import decisions_contract as hume
from app.hume.errors import HumeTransientError
from app.store import decision_windows, ingest, jobs, question_sets
from app.store import decisions as answer_store
from app.store.ingest import SourceRecord
from app.store.tables import Job, QuestionSet
from app.usage.budget import BudgetExhausted
from app.worker.job_starter import defer_start
from app.worker.outbox import end_job

log = structlog.get_logger(__name__)

DEFAULT_WINDOW_S = 60
MIN_WINDOW_S = hume.ADVISED_MIN_AUDIO_MS // 1000
"""Shorter windows are allowed by Hume (1 s) but answered worse: "at least 5 seconds for most questions"."""
MAX_WINDOW_S = hume.MAX_AUDIO_MS // 1000
MODEL = "decisions"
"""How the decisions' per-source errors are named among a job's file errors (beside prosody, face)."""
SOURCE_ERRORS = "source_errors"
"""The job details' key listing per-source errors of a part of the job that does not end it (the decisions of a
job with models): `[{"source", "model", "code", "error"}]`; whoever ends the job adds them to its sources."""


def _now() -> datetime:
    return datetime.now(UTC)


async def usable_set(session: AsyncSession, tenant: str, set_id: str) -> QuestionSet:
    """The tenant's question set version `set_id`; 422 when the tenant has none such or it is archived."""
    question_set = await question_sets.get(session, uuid.UUID(set_id), tenant=tenant)
    if question_set is None:
        raise InvalidInput("decisions.question_set", f"no question set {set_id} (of this API key's tenant)")
    if question_set.archived_at is not None:
        raise InvalidInput("decisions.question_set", f"question set {set_id} is archived")
    return question_set


async def pin(session: AsyncSession, tenant: str, set_id: str, window_s: int) -> dict[str, Any]:
    """The job's `request.decisions`: the set's version as it is now (see `usable_set`)."""
    question_set = await usable_set(session, tenant, set_id)
    return {"question_set": str(question_set.id), "family_id": str(question_set.family_id),
            "version": question_set.version, "name": question_set.name, "window_s": window_s}  # fmt: skip


class _Run:
    """One run of a job's decisions: its sources' progress, written with each window's answers."""

    def __init__(self, deps: Deps, job: Job, asking: Asking) -> None:
        self.deps = deps
        self.job_id = job.id
        self.asking = asking
        self.urls: list[str] = list(job.request.get("urls") or [])
        saved = (job.details or {}).get(MODEL, {}).get("sources") or []
        self.sources = [Progress.from_json(s) for s in saved] + [Progress() for _ in self.urls[len(saved) :]]
        stopped = (job.details or {}).get(MODEL, {}).get("stopped")
        self.stopped: tuple[str, str] | None = None if not stopped else (stopped["code"], stopped["message"])
        """Why Hume refused every source, once it did (kept, so a run after it ends the job the same way)."""
        self.stored_now = 0

    def details(self, base: dict[str, Any]) -> dict[str, Any]:
        pairs = enumerate(zip(self.urls, self.sources, strict=True))
        sources = [{"source": i, "url": url, **p.as_json()} for i, (url, p) in pairs]
        plan = self.asking
        errors = [{"source": i, "model": MODEL, "code": p.error_code, "error": p.error}
                  for i, p in enumerate(self.sources) if p.error]  # fmt: skip
        return {
            **base,
            MODEL: {
                "question_set": described(plan.question_set),
                "window_s": plan.window_s,
                "answered_windows": sum(p.answered for p in self.sources),
                "input_tokens": sum(p.input_tokens for p in self.sources),
                "sources": sources,
                "stopped": None if self.stopped is None else dict(zip(("code", "message"), self.stopped, strict=True)),
            },
            SOURCE_ERRORS: errors,
        }  # fmt: skip

    async def save(self, source: int, progress: Progress, rows: list[answer_store.AnswerRow]) -> None:
        """A window's answers and the job's progress, in one transaction."""
        async with self.deps.sessionmaker.begin() as session:
            job = await jobs.lock(session, self.job_id)
            if job is None or job.status in FINAL:
                return
            self.sources[source] = progress
            await answer_store.store_answers(session, rows)
            await jobs.touch(session, self.job_id, details=self.details(job.details or {}))
        self.stored_now += 1

    async def record(self) -> None:
        async with self.deps.sessionmaker.begin() as session:
            job = await jobs.lock(session, self.job_id)
            if job is not None and job.status not in FINAL:
                await jobs.touch(session, self.job_id, details=self.details(job.details or {}))

    async def ask_all(self) -> tuple[str, str] | None:
        """Ask every source without an outcome; (code, message) when Hume refused the account or the set, or the
        tenant's daily budget of input tokens was spent (hume_budget_exhausted, as a v1 job stopped by its
        seconds: it ends failed, keeping what was stored)."""
        async with self.deps.sessionmaker() as session:
            answered = await decision_windows.answered(session, self.job_id)
        guard = UrlGuard.from_setting(self.deps.settings.outbound_allow_list)
        async with PinnedClient(guard, read_timeout_s=self.deps.settings.media_fetch_read_timeout_s) as client:
            for source, url in enumerate(self.urls):
                progress = self.sources[source]
                if progress.done:
                    continue
                try:
                    await ask_source(self.deps, client, self.asking, source, url, answered.get(source, set()),
                                     progress, self.save)  # fmt: skip
                except (Stop, BudgetExhausted) as exc:
                    # Every source left would be refused the same way; the windows answered before stand.
                    code, message = (exc.code, exc.message) if isinstance(exc, Stop) else (exc.code, str(exc))
                    for later in self.sources[source:]:
                        if not later.done:
                            later.failed(code, f"not answered: {message}")
                    self.stopped = (code, message)
                    await self.record()
                    break
                await self.record()
        return self.stopped


async def _asking(deps: Deps, job: Job) -> Asking:
    plan = job.request[MODEL]
    async with deps.sessionmaker() as session:
        question_set = await question_sets.get(session, uuid.UUID(plan["question_set"]), tenant=None)
    if question_set is None:  # a set is never deleted; a job outliving it would be a bug worth a loud failure
        raise RuntimeError(f"question set {plan['question_set']} of job {job.id} is gone")
    return Asking(job_id=job.id, tenant=job.tenant, question_set=question_set, window_s=int(plan["window_s"]))


def source_records(urls: list[str], details: dict[str, Any]) -> list[SourceRecord]:
    """The sources of a job that only asked questions: a source nothing was answered for fails with its error;
    one cut short keeps its answers and lists the error as a file error."""
    sources = details.get(MODEL, {}).get("sources") or []
    records = []
    for url, source in zip(urls, sources, strict=True):
        error = source.get("error")
        message = None if error is None else f"{error['code']}: {error['message']}"
        if message is not None and source.get("answered", 0) == 0:
            records.append(SourceRecord(kind="url", url=url, error=message))
        else:
            file_errors = [] if message is None else [{"file": url, "model": MODEL, "error": message}]
            records.append(SourceRecord(kind="url", url=url, file_errors=file_errors))
    return records


async def _complete(deps: Deps, job_id: uuid.UUID, urls: list[str], stopped: tuple[str, str] | None) -> None:
    """End a job that only asked questions: its sources stored, completed (failed when Hume refused the account
    or the question set, what was answered before kept)."""
    async with deps.sessionmaker.begin() as session:
        job = await jobs.lock(session, job_id)
        if job is None or job.status in FINAL:
            return
        details = dict(job.details or {})
        records = source_records(urls, details)
        await ingest.insert_sources(session, job_id, records)
        code, message = stopped or (None, None)
        await end_job(
            session, deps, job_id, "failed" if stopped else "completed", error=message, error_code=code,
            num_errors=ingest.error_count(records), details=details,
        )  # fmt: skip
    log.info("decision job ended", job_id=str(job_id), stopped=code)


def with_decisions(then: JobBackend) -> JobBackend:
    """The v1 backend, asking a job's questions first when it has decisions (see the module docstring)."""

    async def start(deps: Deps, job_id: uuid.UUID) -> None:
        async with deps.sessionmaker.begin() as session:
            job = await jobs.lock(session, job_id)
            if job is None or job.status in FINAL:
                return
            asks = bool(job.request.get(MODEL))
            if asks:
                await jobs.advance(session, job_id, "in_progress", started_at=_now(), submitted_at=_now())
        if not asks:
            await then.start(deps, job_id)
            return
        run = _Run(deps, job, await _asking(deps, job))
        try:
            stopped = await run.ask_all()
        except HumeTransientError as exc:
            if not run.stored_now:
                raise  # the task's retries (with backoff) take it from here
            # Progress was made: a fresh start later, so a long job is not failed by busy answers hours apart.
            wait = max(exc.retry_after or 0.0, deps.settings.worker_retry_base_s)
            async with deps.sessionmaker.begin() as session:
                await defer_start(session, deps, job_id, in_s=wait)
            log.warning("decision job paused; resuming later", job_id=str(job_id), error=str(exc), in_s=wait)
            return
        if job.request.get("models"):
            await then.start(deps, job_id)
        else:
            await _complete(deps, job_id, run.urls, stopped)

    return JobBackend(start=start, give_up=then.give_up)
