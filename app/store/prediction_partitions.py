"""Predictions partitioned by tenant, then by the UTC month they were stored in (see migration 0018).

`prediction` is PARTITION BY LIST (tenant); each tenant's partition is PARTITION BY RANGE (stored_at), one
partition a UTC month; `prediction_part.p_default` takes the rows of a tenant that has no partition yet, so a
COPY is never refused for want of one. Partitions live in their own schema (`prediction_part`), so the
public schema (and Alembic's comparison of it with app/store/tables.py) shows `prediction` only.

Partitions are made before they are needed: by the hourly prune (this and next month of every tenant with
jobs) and, for what that has not made yet (a new tenant's first rows), by `ensure_for_session` before a COPY,
on a connection of its own, remembered per process. They are made as standalone tables and then ATTACHed:
ATTACH takes SHARE UPDATE EXCLUSIVE on the parent, which no read or write of predictions conflicts with,
where CREATE TABLE ... PARTITION OF takes ACCESS EXCLUSIVE on it (Postgres 12 to 16; measured on 15 with
pg_locks), which would queue every read and write of the tenant's predictions behind any long one (a CSV
export) for as long as that runs. A new tenant's ATTACH to `prediction` also takes ACCESS EXCLUSIVE on the
default partition, to check it holds none of that tenant's rows (it moves any there first): only queries
that name no tenant read the default partition, so only those wait. Creators are serialised by one advisory
lock, and every DDL transaction here has a `lock_timeout`, so the queries queued behind one wait at most that.

Retention drops a tenant's month once all of it is older than the tenant's retention, by DROP TABLE on the
attached partition: that locks the tenant's partition (ACCESS EXCLUSIVE, for the moment of the drop) and
nothing else. DETACH ... CONCURRENTLY then DROP was measured worse: DETACH turns the month into a standalone
table, and dropping that took ACCESS EXCLUSIVE on `job` and `source` while predictions had foreign keys; and
CONCURRENTLY cannot run in a transaction, where the drop and the marking of its jobs belong together.
The jobs with rows in a dropped month are marked `predictions_expired_at` in the same transaction.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import structlog
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.config.sources import libpq_url
from app.store import tenant_settings
from app.store.db import driver_connection

log = structlog.get_logger(__name__)

SCHEMA = "prediction_part"
DEFAULT_PARTITION = "p_default"
LOCK_TIMEOUT_MS = 2000
"""How long a partition's DDL waits for a lock before giving up (and trying again later): what the queries
queued behind it wait at most."""
ATTEMPTS = 3
_LOCK = 0x70726564  # pg_advisory_xact_lock key serialising partition DDL ("pred")
_MARGIN = timedelta(days=1)
"""Months made before a COPY: those of now +- this, so a transaction begun just before a month's turn (its
rows carry its start time) and clocks apart by less than this still find theirs."""


def month_of(at: datetime) -> date:
    """The first day of `at`'s UTC month."""
    utc = at.astimezone(UTC)
    return date(utc.year, utc.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _start(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


def tenant_table(tenant: str) -> str:
    """A tenant's partition: readable, and unique whatever the tenant's name holds (up to 128 characters,
    any but NUL) through a hash of it; at most 31 characters, so its months' names fit Postgres's 63."""
    slug = re.sub(r"[^a-z0-9]+", "_", tenant.lower()).strip("_")[:20]
    return f"p_{slug}_{hashlib.md5(tenant.encode()).hexdigest()[:8]}"  # noqa: S324 (a name, not a secret)


def month_table(tenant: str, month: date) -> str:
    return f"{tenant_table(tenant)}_{month:%Y%m}"


def _name(table: str) -> sql.Identifier:
    return sql.Identifier(SCHEMA, table)


def _range(month: date) -> sql.Composed:
    return sql.SQL("FROM ({}) TO ({})").format(
        sql.Literal(_start(month).isoformat()), sql.Literal(_start(next_month(month)).isoformat())
    )


def create_tenant_statements(tenant: str, months: Iterable[date]) -> list[sql.Composed]:
    """A tenant's partition with `months`, made standalone (not yet attached): nobody else can see it."""
    parent = _name(tenant_table(tenant))
    statements: list[sql.Composed] = [
        sql.SQL("CREATE TABLE {} (LIKE prediction INCLUDING DEFAULTS) PARTITION BY RANGE (stored_at)").format(parent)
    ]
    for month in sorted(set(months)):
        statements.append(
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES {}").format(
                _name(month_table(tenant, month)), parent, _range(month)
            )
        )
    return statements


def attach_tenant_statement(tenant: str) -> sql.Composed:
    return sql.SQL("ALTER TABLE prediction ATTACH PARTITION {} FOR VALUES IN ({})").format(
        _name(tenant_table(tenant)), sql.Literal(tenant)
    )


def _add_month_statements(tenant: str, month: date) -> list[sql.Composed]:
    table = _name(month_table(tenant, month))
    return [
        sql.SQL("CREATE TABLE {} (LIKE prediction INCLUDING DEFAULTS)").format(table),
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES {}").format(
            _name(tenant_table(tenant)), table, _range(month)
        ),
    ]


def default_partition_statements() -> list[sql.Composed]:
    return [
        sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)),
        sql.SQL("CREATE TABLE {} PARTITION OF prediction DEFAULT").format(_name(DEFAULT_PARTITION)),
    ]


# --- Making partitions ---------------------------------------------------------------------------------------

Connection = psycopg.AsyncConnection[Any]


async def _exists(conn: Connection, table: str) -> bool:
    cursor = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.{table}",))
    row = await cursor.fetchone()
    return bool(row and row[0])


async def _strays(conn: Connection, tenant: str) -> list[date]:
    """Months of the tenant's rows in the default partition (stored while the tenant had no partition)."""
    cursor = await conn.execute(
        sql.SQL("SELECT DISTINCT date_trunc('month', stored_at, 'UTC') FROM {} WHERE tenant = %s").format(
            _name(DEFAULT_PARTITION)
        ),
        (tenant,),
    )
    return [month_of(at) for (at,) in await cursor.fetchall()]


@contextlib.asynccontextmanager
async def _ddl_transaction(conn: Connection) -> AsyncIterator[None]:
    """A transaction for partition DDL: serialised with every other one by the advisory lock, and waiting at
    most LOCK_TIMEOUT_MS for a table lock, so the queries queued behind it wait at most that too."""
    async with conn.transaction():
        await conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{LOCK_TIMEOUT_MS}ms")))
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        yield


async def _make(conn: Connection, tenant: str, months: Sequence[date]) -> list[str]:
    """One transaction: the tenant's partition (with its rows moved out of the default partition) or the
    months it lacks. Returns the tables made."""
    made: list[str] = []
    async with _ddl_transaction(conn):
        if not await _exists(conn, tenant_table(tenant)):
            strays = await _strays(conn, tenant)
            wanted = sorted(set(months) | set(strays))
            for statement in create_tenant_statements(tenant, wanted):
                await conn.execute(statement)
            if strays:
                # Rows stored before the partition existed join it, or ATTACH would refuse the tenant.
                await conn.execute(
                    sql.SQL(
                        "WITH moved AS (DELETE FROM {} WHERE tenant = %s RETURNING *)"
                        " INSERT INTO {} SELECT * FROM moved"
                    ).format(_name(DEFAULT_PARTITION), _name(tenant_table(tenant))),
                    (tenant,),
                )
            await conn.execute(attach_tenant_statement(tenant))
            return [tenant_table(tenant)] + [month_table(tenant, m) for m in wanted]
        for month in months:
            if not await _exists(conn, month_table(tenant, month)):
                for statement in _add_month_statements(tenant, month):
                    await conn.execute(statement)
                made.append(month_table(tenant, month))
    return made


async def ensure(conn: Connection, tenant: str, months: Iterable[date]) -> list[str]:
    """Make the tenant's partition and these months of it where missing, trying ATTEMPTS times when a lock
    is not granted within LOCK_TIMEOUT_MS. `conn` must not be in a transaction. Returns the tables made."""
    wanted = sorted(set(months))
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return await _make(conn, tenant, wanted)
        except psycopg.errors.LockNotAvailable:
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


@dataclass
class _Known:
    """Partitions this process saw exist, per database: a COPY then costs no look-up."""

    months: dict[tuple[str, str], set[date]] = field(default_factory=dict)

    def missing(self, database: str, tenant: str, months: Iterable[date]) -> list[date]:
        have = self.months.get((database, tenant), set())
        return [m for m in months if m not in have]

    def add(self, database: str, tenant: str, months: Iterable[date]) -> None:
        self.months.setdefault((database, tenant), set()).update(months)


_known = _Known()
_tenants: dict[uuid.UUID, str] = {}
_TENANTS_KEPT = 10_000


def _database(conn: Connection) -> str:
    info = conn.info
    return f"{info.host}:{info.port}/{info.dbname}"


def months_around(now: datetime) -> list[date]:
    return sorted({month_of(now - _MARGIN), month_of(now), month_of(now + _MARGIN)})


async def tenants_of(session: AsyncSession, job_ids: Sequence[uuid.UUID]) -> list[str]:
    """Each job's tenant, in order (a job's tenant never changes: remembered per process)."""
    unknown = sorted({j for j in job_ids if j not in _tenants})
    if unknown:
        if len(_tenants) > _TENANTS_KEPT:
            _tenants.clear()
        rows = await session.execute(
            text("SELECT id, tenant FROM job WHERE id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": "{" + ",".join(map(str, unknown)) + "}"},
        )
        _tenants.update({job_id: tenant for job_id, tenant in rows})
    missing = [j for j in job_ids if j not in _tenants]
    if missing:
        raise LookupError(f"no job {missing[0]}")
    return [_tenants[j] for j in job_ids]


async def ensure_for_session(session: AsyncSession, tenants: Iterable[str], *, now: datetime | None = None) -> None:
    """Before a COPY in `session`'s transaction: the partitions its rows go to exist. What this process knows
    to exist costs nothing; otherwise the catalog is read on the session's connection, and what is missing is
    made on a connection of its own, in a transaction of its own (one made here would hold
    its locks until the COPY's transaction ends). Rows of a tenant whose partition cannot be made go to
    the default partition; a month that cannot be made fails the COPY, which its task retries."""
    months = months_around(now or datetime.now(UTC))
    conn = await driver_connection(session)
    database = _database(conn)
    for tenant in sorted(set(tenants)):
        missing = _known.missing(database, tenant, months)
        if not missing:
            continue
        present = [m for m in missing if await _exists(conn, month_table(tenant, m))]
        _known.add(database, tenant, present)
        if len(present) == len(missing):
            continue
        try:
            async with _own_connection(session) as own:
                made = await ensure(own, tenant, months)
        except psycopg.errors.LockNotAvailable:
            log.warning("prediction partition not made: lock not granted", tenant=tenant)
            continue
        if made:
            log.info("prediction partitions made", tenant=tenant, tables=made)
        _known.add(database, tenant, months)


@contextlib.asynccontextmanager
async def _own_connection(session: AsyncSession) -> AsyncIterator[Connection]:
    """A new connection to the session's database, outside its transaction and its engine's pool: taking one
    from the pool while the session holds another could wait forever once concurrent ingests hold them all."""
    bind = session.bind
    assert bind is not None, "the session is bound to an engine or a connection"
    engine = bind if isinstance(bind, AsyncEngine) else bind.engine
    url = libpq_url(engine.url.render_as_string(hide_password=False))
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=5) as conn:
        yield conn


# --- Upkeep and retention (the hourly prune) ------------------------------------------------------------------


@dataclass(frozen=True)
class Upkeep:
    made: list[str]
    dropped: list[str]
    expired_jobs: int
    failed: list[str]
    """Tenants whose partitions could not be made or dropped this time (a lock not granted): tried next time."""


async def tenants_with_jobs(conn: Connection) -> list[str]:
    """Every tenant that has a job, by skipping along the (tenant, created_at) index: a step per tenant."""
    cursor = await conn.execute(
        """
        WITH RECURSIVE t AS (
          (SELECT tenant FROM job ORDER BY tenant LIMIT 1)
          UNION ALL
          SELECT (SELECT tenant FROM job WHERE tenant > t.tenant ORDER BY tenant LIMIT 1) FROM t
          WHERE t.tenant IS NOT NULL
        )
        SELECT tenant FROM t WHERE tenant IS NOT NULL
        """
    )
    return [tenant for (tenant,) in await cursor.fetchall()]


async def _stray_tenants(conn: Connection) -> list[str]:
    cursor = await conn.execute(sql.SQL("SELECT DISTINCT tenant FROM {}").format(_name(DEFAULT_PARTITION)))
    return [tenant for (tenant,) in await cursor.fetchall()]


async def tenant_retention(conn: Connection) -> dict[str, int]:
    """The tenants' own retention in days (0 keeps for good), where one is set (`python -m app tenant-retention`)."""
    cursor = await conn.execute("SELECT tenant, days FROM prediction_retention")
    return {tenant: days for tenant, days in await cursor.fetchall()}


async def months_stored(conn: Connection, tenant: str) -> list[date]:
    """The months the tenant's partition has (from its partitions' names), oldest first."""
    cursor = await conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)",
        (f"{SCHEMA}.{tenant_table(tenant)}",),
    )
    suffix = len(tenant_table(tenant)) + 1
    return sorted(
        date(int(name[suffix : suffix + 4]), int(name[suffix + 4 :]), 1) for (name,) in await cursor.fetchall()
    )


def expired(months: Iterable[date], *, days: int, now: datetime) -> list[date]:
    """Months wholly older than `days` (0: none): a month goes once its last row is past the retention."""
    if days <= 0:
        return []
    cutoff = now - timedelta(days=days)
    return [m for m in months if _start(next_month(m)) <= cutoff]


async def drop_month(conn: Connection, tenant: str, month: date) -> int:
    """Drop one month of a tenant's predictions (the partition, not its rows one by one), marking the jobs
    that had rows in it; returns how many jobs were newly marked."""
    table = _name(month_table(tenant, month))
    async with _ddl_transaction(conn):
        cursor = await conn.execute(
            sql.SQL(
                "UPDATE job SET predictions_expired_at = now() WHERE predictions_expired_at IS NULL"
                " AND id IN (SELECT DISTINCT job_id FROM {})"
            ).format(table)
        )
        marked = cursor.rowcount
        await conn.execute(sql.SQL("DROP TABLE {}").format(table))
    return marked


async def upkeep(conn: Connection, *, default_days: int, now: datetime | None = None) -> Upkeep:
    """For every tenant with jobs (or rows in the default partition): its partition with this month and the
    next made, and the months past its retention dropped. `conn` must be in autocommit mode."""
    now = now or datetime.now(UTC)
    ahead = [month_of(now), next_month(month_of(now))]
    own = await tenant_retention(conn)
    made: list[str] = []
    dropped: list[str] = []
    failed: list[str] = []
    marked = 0
    for tenant in sorted(set(await tenants_with_jobs(conn)) | set(await _stray_tenants(conn))):
        try:
            made += await ensure(conn, tenant, ahead)
            for month in expired(await months_stored(conn, tenant), days=own.get(tenant, default_days), now=now):
                marked += await drop_month(conn, tenant, month)
                dropped.append(month_table(tenant, month))
        except psycopg.errors.LockNotAvailable:
            failed.append(tenant)
    return Upkeep(made=made, dropped=dropped, expired_jobs=marked, failed=failed)


# --- A tenant's retention (`python -m app tenant-retention`) --------------------------------------------------


@dataclass(frozen=True)
class TenantStorage:
    days: int
    """The retention in force (0: for good)."""
    override: bool
    """The tenant's own, not PREDICTION_RETENTION_DAYS."""
    months: list[date]
    """The months stored, oldest first."""


async def set_retention(session: AsyncSession, tenant: str, days: int | None) -> None:
    """Set a tenant's own retention (0: for good), or with None remove it (PREDICTION_RETENTION_DAYS applies)."""
    await tenant_settings.set_own(session, "prediction_retention", "days", tenant, days)


async def storage(session: AsyncSession, tenant: str, *, default_days: int) -> TenantStorage:
    own = (
        await session.execute(text("SELECT days FROM prediction_retention WHERE tenant = :tenant"), {"tenant": tenant})
    ).scalar_one_or_none()
    months = await months_stored(await driver_connection(session), tenant)
    return TenantStorage(days=default_days if own is None else int(own), override=own is not None, months=months)
