"""The webhook-ack floors: yardsticks for the real routes, each served by the stack under measurement.

`app`, the durable floor: a bare endpoint that stores each body with one INSERT (autocommit, a psycopg
pool, a unique key) and answers 202, with no verification, routing, logging or metrics. A webhook route
that verifies, writes its inbox row and queues its task cannot beat it. `http_app`, the HTTP-only floor:
the same endpoint reading the body and answering 202 without storing it, what the server stack alone
costs. bench_ack serves them from bench/ (`uvicorn --app-dir bench floor_app:app`, or granian) in a
process of its own, FLOOR_DATABASE_URL set for `app`.
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


async def answer(request: Request) -> Response:
    await request.body()
    return Response(status_code=202)


app = Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])], lifespan=lifespan)
http_app = Starlette(routes=[Route("/{path:path}", answer, methods=["POST"])])
