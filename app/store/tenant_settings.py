"""A tenant's own value of a setting (its daily seconds, its retention): one row per tenant in the setting's
table, keyed by tenant, with the value's column and `updated_at`; no row, the setting applies."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def set_own(session: AsyncSession, table: str, column: str, tenant: str, value: int | None) -> None:
    """Set the tenant's own `value` in `table`.`column`, or with None remove it (the setting applies)."""
    if value is None:
        await session.execute(text(f"DELETE FROM {table} WHERE tenant = :tenant"), {"tenant": tenant})
        return
    await session.execute(
        text(
            f"INSERT INTO {table} (tenant, {column}) VALUES (:tenant, :value)"
            f" ON CONFLICT (tenant) DO UPDATE SET {column} = EXCLUDED.{column}, updated_at = now()"
        ),
        {"tenant": tenant, "value": value},
    )
