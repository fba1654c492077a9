"""Submitting a job: stored first, its start queued in the same transaction; the backend (batch or v1)
is called by the worker. `Idempotency-Key` makes an upstream retry return the same job.

A `notify_url` becomes a one-off webhook endpoint in the same transaction; its secret is returned by the
submit that created the job only (a retry answers with the same job and no secret: it was shown once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy.exc import IntegrityError

from app.core import metrics
from app.decisions import estimate as decision_estimate
from app.decisions import jobs as decision_jobs
from app.decisions import token_spend
from app.decisions.estimate import DecisionEstimate
from app.deps import Deps
from app.errors import Conflict, InvalidInput
from app.jobs.schemas import SubmitRequest
from app.store import jobs
from app.store.api_keys import DEFAULT_TENANT, Principal
from app.store.tables import Job
from app.worker.job_starter import defer_start
from app.worker.outbox import add_notify_endpoint

IDEMPOTENCY_CONSTRAINT = "uq_job_api_key_id_idempotency_key"


def _now() -> datetime:
    return datetime.now(UTC)


class Submitted(NamedTuple):
    job: Job
    created: bool
    """False: an Idempotency-Key retry answered with the job made before."""
    notify_secret: str | None
    """The signing secret of the job's notify_url endpoint, when this call created both."""


async def estimate(deps: Deps, principal: Principal | None, request: SubmitRequest) -> DecisionEstimate:
    """`decisions.estimate`: the input tokens the job would spend, answered at once; no job is stored."""
    assert request.decisions is not None
    async with deps.sessionmaker() as session:
        tenant = principal.tenant if principal else DEFAULT_TENANT
        question_set = await decision_jobs.usable_set(session, tenant, request.decisions["question_set"])
    return await decision_estimate.estimate(deps, question_set, request.decisions["window_s"], request.urls)


async def submit(
    deps: Deps, principal: Principal | None, request: SubmitRequest, idempotency_key: str | None
) -> Submitted:
    """Store the job and enqueue its submission. Hume is called by the worker."""
    fingerprint = request.fingerprint()
    key_id = principal.key_id if principal else None
    if request.notify_url is not None and key_id is None:
        raise InvalidInput("notify_url", "needs an API key to own its endpoint")
    for _ in range(2):
        try:
            async with deps.sessionmaker.begin() as session:
                if idempotency_key is not None:
                    existing = await jobs.by_idempotency_key(session, key_id, idempotency_key)
                    if existing is not None:
                        if existing.request_fingerprint != fingerprint:
                            raise Conflict("Idempotency-Key was already used with a different request body")
                        return Submitted(existing, False, None)
                tenant = principal.tenant if principal else DEFAULT_TENANT
                stored = request.as_json()
                if request.decisions is not None:
                    await token_spend.check_can_submit(session, deps.settings, tenant)
                    stored["decisions"] = await decision_jobs.pin(
                        session, tenant, request.decisions["question_set"], request.decisions["window_s"]
                    )
                job = await jobs.create(
                    session,
                    kind="batch",
                    backend=request.backend,
                    status="pending",
                    request=stored,
                    job_metadata=request.metadata,
                    api_key_id=key_id,
                    tenant=tenant,
                    idempotency_key=idempotency_key,
                    request_fingerprint=fingerprint,
                    deadline_at=_now() + timedelta(seconds=deps.settings.reconcile_after_s),
                )
                secret = None
                if request.notify_url is not None:
                    assert key_id is not None
                    secret = await add_notify_endpoint(
                        session, api_key_id=key_id, job_id=job.id, url=request.notify_url
                    )
                await defer_start(session, deps, job.id)
            metrics.JOBS_SUBMITTED.inc()
            return Submitted(job, True, secret)
        except IntegrityError as exc:
            # Two requests with one Idempotency-Key raced; the loser answers like a retry.
            if IDEMPOTENCY_CONSTRAINT not in str(exc.orig):
                raise
    raise Conflict("Idempotency-Key is in use by a concurrent request")
