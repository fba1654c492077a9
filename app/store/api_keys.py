"""API keys: stored as SHA-256 hashes (keys are random 256-bit tokens, so a slow hash buys nothing)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.tables import ApiKey

SCOPES = ("submit", "read", "token", "tts", "webhooks", "analyst", "admin")
DEFAULT_TENANT = "default"
# What each scope grants, in one table: a key may do what the union of its scopes' rows allows, nothing
# implied elsewhere. `analyst` reads every tenant; `admin` operates the inbox (events, replays), reads every
# tenant and manages every outbound webhook endpoint (an operator's job), but does not submit, mint tokens
# or spend TTS unless those scopes are given too.
GRANTS: dict[str, frozenset[str]] = {
    "submit": frozenset({"submit"}),
    "read": frozenset({"read"}),
    "token": frozenset({"token"}),
    "tts": frozenset({"tts"}),
    "webhooks": frozenset({"webhooks"}),
    "analyst": frozenset({"read", "all_tenants"}),
    "admin": frozenset({"admin", "read", "all_tenants", "webhooks"}),
}
KEY_PREFIX = "hes_"


@dataclass(frozen=True)
class Principal:
    key_id: uuid.UUID
    name: str
    scopes: frozenset[str]
    tenant: str = DEFAULT_TENANT

    @property
    def grants(self) -> frozenset[str]:
        return frozenset().union(*(GRANTS.get(s, frozenset()) for s in self.scopes))

    @property
    def all_tenants(self) -> bool:
        return "all_tenants" in self.grants

    @property
    def read_tenant(self) -> str | None:
        """The tenant whose data this key reads, or None for every tenant."""
        return None if self.all_tenants else self.tenant


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create(
    session: AsyncSession, *, name: str, scopes: list[str], key: str | None = None, tenant: str = DEFAULT_TENANT
) -> str:
    """Store a new key and return it in clear text: the only time it exists outside the caller."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(unknown)} (known: {', '.join(SCOPES)})")
    if not tenant or "\x00" in tenant or len(tenant) > 128:
        raise ValueError("tenant must be 1 to 128 characters, without NUL")
    key = key or new_key()
    session.add(ApiKey(id=uuid.uuid4(), name=name, key_hash=hash_key(key), scopes=sorted(set(scopes)), tenant=tenant))
    await session.flush()
    return key


async def find(session: AsyncSession, key: str) -> Principal | None:
    return await find_by_hash(session, hash_key(key))


async def find_by_hash(session: AsyncSession, key_hash: str) -> Principal | None:
    row = (
        await session.execute(
            select(ApiKey.id, ApiKey.name, ApiKey.scopes, ApiKey.tenant).where(
                ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None:
        return None
    return Principal(key_id=row.id, name=row.name, scopes=frozenset(row.scopes), tenant=row.tenant)


async def revoke(session: AsyncSession, key_id: uuid.UUID) -> bool:
    """Revoke a key at once; False if no such key is active."""
    result = await session.execute(
        update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=func.now())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class KeyInfo:
    key_id: uuid.UUID
    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None


async def all_keys(session: AsyncSession) -> list[KeyInfo]:
    """Every key, oldest first, without anything secret (only hashes are stored anyway)."""
    rows = await session.execute(
        select(ApiKey.id, ApiKey.name, ApiKey.scopes, ApiKey.created_at, ApiKey.revoked_at).order_by(ApiKey.created_at)
    )
    return [KeyInfo(r.id, r.name, tuple(r.scopes), r.created_at, r.revoked_at) for r in rows]
