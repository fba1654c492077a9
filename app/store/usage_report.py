"""Hume-metered seconds and Audio Decisions input tokens grouped for /v1/usage and the usage page: by UTC day,
tenant, backend, kind (a file job's `batch` or a live `session`) and any key of the job's metadata. A run (a file
request, or a live session) counts with Hume's billed figure once read, else our estimate; a decision window
with the tokens Hume's answer reported, else the estimate reserved (app/store/hume_usage.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

METADATA_PREFIX = "metadata."
COLUMNS = {"day": "u.day", "tenant": "u.tenant", "backend": "j.backend", "kind": "j.kind"}
"""The fixed groupings; `metadata.<key>` groups by a key of the job's metadata."""


@dataclass(frozen=True)
class UsageGroup:
    keys: tuple[Any, ...]
    """One value per grouping asked for, in its order (a day, a tenant, a backend, a kind, a metadata value or
    None)."""
    seconds: float
    """What counts: Hume's billed seconds where read, else the estimate."""
    estimated_seconds: float
    requests: int
    """Runs at Hume: file requests and live sessions."""
    billed_by_hume: int
    """Runs whose figure is Hume's own (the rest: still to be read, or the estimate kept)."""
    decision_input_tokens: int
    decision_windows: int
    """Audio Decisions requests (one a window) that hold tokens: sent, and answered or never answered."""


async def usage_groups(
    session: AsyncSession, group_by: Sequence[str], *, tenant: str | None, since: date | None,
    until: date | None, limit: int, offset: int = 0,
) -> list[UsageGroup]:  # fmt: skip
    """Groups ordered by their keys; `since`/`until` are UTC days, both inclusive; `tenant` None: every tenant.
    `group_by` holds names from COLUMNS or `metadata.<key>` (the route checks them)."""
    params: dict[str, Any] = {"tenant": tenant, "since": since, "until": until, "limit": limit, "offset": offset}
    selected: list[str] = []
    for i, name in enumerate(group_by):
        if name.startswith(METADATA_PREFIX):
            params[f"m{i}"] = name[len(METADATA_PREFIX) :]
            selected.append(f"j.metadata ->> CAST(:m{i} AS text) AS g{i}")
        else:
            selected.append(f"{COLUMNS[name]} AS g{i}")
    # Grouped and ordered by position: the same bound metadata key twice would be two expressions to Postgres.
    positions = ", ".join(str(i + 1) for i in range(len(group_by)))
    sql = (
        f"SELECT {''.join(s + ', ' for s in selected)}"
        "sum(COALESCE(u.billed_seconds, u.seconds)) AS seconds, sum(u.seconds) AS estimated,"
        " count(*) FILTER (WHERE u.medium <> 'decisions') AS requests,"
        " count(*) FILTER (WHERE u.billing = 'hume' AND u.medium <> 'decisions') AS by_hume,"
        " COALESCE(sum(u.input_tokens), 0) AS tokens, count(*) FILTER (WHERE u.medium = 'decisions') AS windows"
        " FROM hume_usage u JOIN job j ON j.id = u.job_id"
        " WHERE (CAST(:tenant AS text) IS NULL OR u.tenant = :tenant)"
        " AND (CAST(:since AS date) IS NULL OR u.day >= :since) AND (CAST(:until AS date) IS NULL OR u.day <= :until)"
        + (f" GROUP BY {positions} ORDER BY {positions.replace(',', ' NULLS LAST,')} NULLS LAST" if group_by else "")
        + " LIMIT :limit OFFSET :offset"
    )
    rows = await session.execute(text(sql), params)
    return [
        UsageGroup(
            keys=tuple(r[i] for i in range(len(group_by))),
            seconds=float(r.seconds or 0.0),
            estimated_seconds=float(r.estimated or 0.0),
            requests=int(r.requests),
            billed_by_hume=int(r.by_hume),
            decision_input_tokens=int(r.tokens),
            decision_windows=int(r.windows),
        )
        for r in rows
    ]
