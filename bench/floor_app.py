"""The webhook-ack floor: the fastest durable ack we could write, a yardstick for the real routes.

A bare endpoint that stores each body with one INSERT (autocommit, a psycopg pool, a unique key) and
answers 202, with no verification, routing, logging or metrics. A webhook route that verifies, writes
its inbox row and queues its task cannot beat it. bench_ack runs it with
`uvicorn --app-dir bench floor_app:app` in a process of its own, FLOOR_DATABASE_URL set.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

pool = AsyncConnectionPool(
    os.environ.get("FLOOR_DATABASE_URL", "").replace("+psycopg", ""),
    min_size=4,
    max_size=10,
    open=False,
    kwargs={"autocommit": True},
)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await pool.open()
    async with pool.connection() as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS floor_inbox (id bigserial PRIMARY KEY, body bytea, dedup text UNIQUE)"
        )
    yield
    await pool.close()


async def hook(request: Request) -> Response:
    body = await request.body()
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO floor_inbox (body, dedup) VALUES (%s, md5(%s)) ON CONFLICT DO NOTHING", (body, body)
        )
    return Response(status_code=202)


app = Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])], lifespan=lifespan)
