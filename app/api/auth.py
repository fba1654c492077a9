"""Who is calling: the API key's principal and its scopes, and the jobs its tenant may read."""

from __future__ import annotations

import uuid

from starlette.requests import Request

from app.api import auth_throttle
from app.api.params import path_uuid
from app.api.responses import deps
from app.errors import Forbidden, NotFound, Unauthorized
from app.store import api_keys, jobs
from app.store.api_keys import Principal
from app.store.tables import Job


def _job_id(request: Request) -> uuid.UUID:
    return path_uuid(request, "job_id", "job")


async def existing_job(request: Request) -> Job:
    """The job the path names, if the caller (see `authorize`) may read it: another tenant's job is a 404,
    indistinguishable from one that does not exist."""
    async with deps(request).sessionmaker() as session:
        job = await jobs.get(session, _job_id(request))
    principal = getattr(request.state, "principal", None)
    tenant = principal.read_tenant if isinstance(principal, Principal) else api_keys.DEFAULT_TENANT
    if job is None or (tenant is not None and job.tenant != tenant):
        raise NotFound("unknown job")
    return job


async def authorize(request: Request, scope: str) -> Principal:
    """The key's principal, looked up on every request and never cached: the lookup (one read by the unique
    key_hash index) is itself the revocation check, so a key revoked by any process answers 401 on its next
    request in every process. A cache would have to be checked against Postgres on each request anyway
    (a revocation generation), which costs the same round trip. Wrong keys count against the client's
    address (`auth_throttle`), which answers 429 before any lookup once it failed too often."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized()
    digest = api_keys.hash_key(key.strip())
    throttle = auth_throttle.for_app(request)
    client = auth_throttle.client_of(request)
    admission = throttle.admit(client, digest)
    if admission.wait_s:
        raise auth_throttle.TooManyFailures(admission.wait_s)
    principal = await api_keys.authenticate(deps(request).sessionmaker, digest)
    if principal is None:
        throttle.failed(client, digest, held=admission.held)
        raise Unauthorized("unknown or revoked API key")
    throttle.succeeded(digest, client, held=admission.held)
    if scope not in principal.grants:
        raise Forbidden(f"this key lacks the '{scope}' scope")
    request.state.principal = principal
    return principal
