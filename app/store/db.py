"""Engine and session factory; the caller owns transactions (`async with sessionmaker.begin()`). `Database`
owns both of a process's ways to the database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from app.config.sources import libpq_url, sqlalchemy_url


def make_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # A dead server must fail requests fast (503), not hang them.
        connect_args={"connect_timeout": 5},
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def driver_connection(session: AsyncSession) -> psycopg.AsyncConnection[object]:
    """The psycopg connection under the session's transaction, for COPY and procrastinate defers."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, psycopg.AsyncConnection)
    return driver


class Database:
    """A process's database: the SQLAlchemy sessionmaker (transactions, the ORM) over a pool of `pool_size`
    connections (as many again may overflow), and a small autocommit psycopg pool of `autocommit_size`
    for one-statement work (webhook acknowledgements, the event runner's reads, delivery bookkeeping): no
    ORM, BEGIN/COMMIT or pool ping between a request and its statement, and a pool of its own so long
    reads (CSV exports) on the other never starve it."""

    def __init__(self, database_url: str, *, pool_size: int, autocommit_size: int) -> None:
        self.engine = make_engine(database_url, pool_size=pool_size)
        self.sessionmaker = make_sessionmaker(self.engine)
        self.pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            libpq_url(database_url),
            min_size=min(2, autocommit_size),
            max_size=autocommit_size,
            kwargs={"autocommit": True},
            open=False,
            # Waiting longer would only hold Hume's connection: a 503 makes it retry.
            timeout=10.0,
        )

    async def open(self) -> None:
        # Not waiting: the service starts (and answers 503) while the database is away.
        await self.pool.open(wait=False)

    async def aclose(self) -> None:
        await self.pool.close()
        await self.engine.dispose()

    def connection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """An autocommit connection from the small pool: each statement commits on its own."""
        return self.pool.connection()


# Bytes an export hands its reader at a time: a few large writes instead of one per row COPY sends.
EXPORT_CHUNK_BYTES = 1 << 16


async def copy_out_chunks(
    sessionmaker: async_sessionmaker[AsyncSession],
    blocks: Callable[[AsyncSession], AsyncIterator[bytes]],
    *,
    chunk_bytes: int = EXPORT_CHUNK_BYTES,
    statement_timeout_s: float | None = None,
) -> AsyncIterator[bytes]:
    """What a `COPY ... TO STDOUT` (`blocks`, one message a row) produces, regrouped into chunks of about
    `chunk_bytes`, in a session of its own that cannot outlive `statement_timeout_s`."""
    parts: list[bytes] = []
    size = 0
    async with sessionmaker() as session:
        if statement_timeout_s is not None:
            # The database's own backstop: an export cannot hold its connection past this, whatever we do.
            ms = int(statement_timeout_s * 1000)
            await session.execute(text(f"SET LOCAL statement_timeout = {ms}"))
            await session.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = {ms}"))
        async for block in blocks(session):
            parts.append(block)
            size += len(block)
            if size >= chunk_bytes:
                yield b"".join(parts)
                parts.clear()
                size = 0
    if parts:
        yield b"".join(parts)
