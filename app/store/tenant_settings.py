"""A tenant's own value of a setting (its daily seconds or decision tokens, its retention): one row per tenant in
the setting's table, keyed by tenant, with the value's column and `updated_at`; no row (or NULL), the setting
applies."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def set_own(
    session: AsyncSession, table: str, column: str, tenant: str, value: int | None, *, others: Sequence[str] = ()
) -> None:
    """Set the tenant's own `value` in `table`.`column`, or with None remove it (the setting applies). A table
    holding several settings (`others`: its other nullable value columns) keeps the tenant's row while another
    of them is set; the row goes once all are NULL."""
    if value is None:
        if others:
            await session.execute(
                text(f"UPDATE {table} SET {column} = NULL, updated_at = now() WHERE tenant = :tenant"),
                {"tenant": tenant},
            )
        unset = " AND ".join(f"{c} IS NULL" for c in others)
        where = f" AND {unset}" if unset else ""
        await session.execute(text(f"DELETE FROM {table} WHERE tenant = :tenant{where}"), {"tenant": tenant})
        return
    await session.execute(
        text(
            f"INSERT INTO {table} (tenant, {column}) VALUES (:tenant, :value)"
            f" ON CONFLICT (tenant) DO UPDATE SET {column} = EXCLUDED.{column}, updated_at = now()"
        ),
        {"tenant": tenant, "value": value},
    )
