"""/v1/usage as the API declares it: the query (groupings, UTC day range, paging) and the answer. The structs
are the validation and the OpenAPI document alike; what a schema cannot state (the grouping list) is checked
by `groupings`."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import msgspec
from msgspec import Meta

from app.api.typed_input import QueryStruct
from app.errors import InvalidInput
from app.store.usage_report import COLUMNS, METADATA_PREFIX

MAX_GROUPINGS = 4
MAX_METADATA_KEY = 200
MAX_PAGE = 1000


class UsageQuery(QueryStruct):
    group_by: Annotated[
        str,
        Meta(description="comma-separated groupings, in order: day (UTC), tenant, backend, kind (batch: file"
             " jobs; session: live sessions), metadata.<key> (a key of the job's metadata); at most"
             f" {MAX_GROUPINGS}", min_length=1),
    ] = "day"  # fmt: skip
    since: Annotated[date, Meta(description="first UTC day included")] | None = None
    until: Annotated[date, Meta(description="last UTC day included")] | None = None
    limit: Annotated[int, Meta(ge=1, le=MAX_PAGE)] = 100
    offset: Annotated[int, Meta(ge=0, le=10_000_000, description="next_offset of the previous page")] = 0


class UsageGroup(msgspec.Struct, omit_defaults=True):
    group: dict[str, str | None]
    """The group's value for each grouping asked for (a metadata key the job lacks: null)."""
    metered_seconds: float
    """What Hume billed: its runs API's `metered_seconds` where read, else our estimate made before sending."""
    estimated_seconds: float
    """Our estimates of the same runs (HUME-V1-FACTS §6 billing rules), for comparison."""
    requests: int
    """Runs at Hume: each v1 file request is one, and each live session one (HUME-V1-FACTS §6, §8)."""
    billed_by_hume: int
    """Runs whose seconds are Hume's own figure; the rest are still to be read or kept as estimated."""
    decision_input_tokens: int
    """Audio Decisions input tokens (what Hume bills decisions by, D/billing): each window's `received.input_tokens`
    as Hume's answer reported it, else the estimate reserved before sending (a window never answered)."""
    decision_windows: int
    """Audio Decisions requests sent (one per window); they are not among `requests`."""
    cost: float | None = None
    """metered_seconds / 60 x HUME_PRICE_PER_MINUTE; absent when that setting is unset."""


class UsagePage(msgspec.Struct, omit_defaults=True):
    group_by: list[str]
    items: list[UsageGroup]
    price_per_minute: float | None = None
    """HUME_PRICE_PER_MINUTE, when set."""
    next_offset: int | None = None
    """Where the next page starts; absent on the last page."""


def groupings(raw: str) -> list[str]:
    """`group_by` as a list of groupings, each known and named once; a 422 naming `group_by` otherwise."""
    names = [part.strip() for part in raw.split(",")]
    known = ", ".join(COLUMNS)
    for name in names:
        if name in COLUMNS:
            continue
        if name.startswith(METADATA_PREFIX):
            key = name[len(METADATA_PREFIX) :]
            if not 1 <= len(key) <= MAX_METADATA_KEY:
                raise InvalidInput("group_by", f"a metadata key must be 1 to {MAX_METADATA_KEY} characters")
            continue
        raise InvalidInput("group_by", f"{name!r} is not a grouping: use {known} or metadata.<key>")
    if len(names) > MAX_GROUPINGS:
        raise InvalidInput("group_by", f"at most {MAX_GROUPINGS} groupings, got {len(names)}")
    if len(set(names)) != len(names):
        raise InvalidInput("group_by", "names a grouping twice")
    return names
