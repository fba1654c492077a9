"""What Hume billed, drawn: metered seconds per UTC day, stacked by tenant, kind (file jobs or live sessions),
backend or a key of the jobs' metadata, from the same report as GET /v1/usage, with the cost per group when
HUME_PRICE_PER_MINUTE is set; the table lists each group's Audio Decisions input tokens beside its seconds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from app.api.responses import deps
from app.dashboard import charts
from app.dashboard.jobs_pages import param
from app.dashboard.rendering import Ui, Viewer
from app.errors import InvalidInput
from app.usage import service as usage_service
from app.usage.schemas import MAX_METADATA_KEY, MAX_PAGE, UsageQuery

STACKS = {"tenant": "tenant", "kind": "kind (batch: file jobs; session: live sessions)", "backend": "backend"}
"""The groupings the chart may be stacked by (besides a metadata key), and how the page names each."""
DEFAULT_DAYS = 30
MAX_DAYS = 366
"""A year of days at most: the chart stays readable and the report within one bounded page."""


def _day(request: Request, name: str, default: date) -> date:
    value = param(request, name)
    if value is None:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(name, "must be a date like 2026-12-05") from None


async def usage_page(ui: Ui, request: Request, viewer: Viewer) -> Response:
    today = datetime.now(UTC).date()
    until = _day(request, "until", today)
    since = _day(request, "since", until - timedelta(days=DEFAULT_DAYS - 1))
    if since > until:
        raise InvalidInput("since", f"must not be after until ({until.isoformat()})")
    if (until - since).days >= MAX_DAYS:
        raise InvalidInput("since", f"at most {MAX_DAYS} days are drawn at once")
    key = param(request, "metadata_key")
    if key is not None and len(key) > MAX_METADATA_KEY:
        raise InvalidInput("metadata_key", f"must be at most {MAX_METADATA_KEY} characters")
    stack = param(request, "stack") or "tenant"
    if stack not in STACKS:
        raise InvalidInput("stack", f"must be one of {', '.join(STACKS)}")
    by = stack if key is None else f"metadata.{key}"
    query = UsageQuery(group_by=f"day,{by}", since=since, until=until, limit=MAX_PAGE)
    page = await usage_service.report(deps(request), query, tenant=viewer.read_tenant)
    days = [(since + timedelta(days=i)).isoformat() for i in range((until - since).days + 1)]
    index = {d: i for i, d in enumerate(days)}
    names = sorted({item.group[by] or "(none)" for item in page.items})
    values = {name: [0.0] * len(days) for name in names}
    for item in page.items:
        values[item.group[by] or "(none)"][index[item.group["day"] or ""]] += item.metered_seconds
    label = f"Hume-metered seconds per UTC day by {stack if key is None else key}, {days[0]} to {days[-1]}"
    chart = charts.stacked_bars(days, [(n, values[n]) for n in names], label=label, unit="s")
    return ui.render(
        request, "usage.html", viewer=viewer, chart=chart, items=page.items, by=by, names=names,
        form={"since": since.isoformat(), "until": until.isoformat(), "metadata_key": key or "", "stack": stack},
        stacks=STACKS,
        price=page.price_per_minute, truncated=page.next_offset is not None,
        total=round(sum(item.metered_seconds for item in page.items), 3),
        tokens=sum(item.decision_input_tokens for item in page.items),
    )  # fmt: skip
