"""The one place resources are built: `build_deps(settings)` for the server's lifespan, the worker and
every command. Features plug into the inbox pipeline here (handlers by provider, backends by name,
reconciler checks), so the pipeline itself never imports a feature."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
from collections.abc import AsyncIterator

import structlog
import uvicorn

from app.batch import outcomes as batch_outcomes
from app.batch import submission as batch_submission
from app.config import EMULATOR_API_KEY, EMULATOR_SECRET_KEY, Settings
from app.core import background_server
from app.core.prediction_rows import PredictionFormatError
from app.decisions import jobs as decision_jobs
from app.deps import Deps, Pipeline
from app.egress.post import Courier
from app.evi import service as evi_service
from app.hume import catalog
from app.hume.callbacks import CallbackFormatError
from app.hume.decisions import DecisionsClient
from app.hume.errors import HumeNotFoundError, HumeRejectedError, HumeSunsetError
from app.hume.evi_chats import EviClient
from app.hume.expression_client import ExpressionClient
from app.hume.gateway import HumeGateway
from app.hume.realtime_client import RealtimeClient
from app.hume.token_client import TokenProvider
from app.hume.tts_client import HumeTts
from app.inbox.pipeline import DELIVER_MESSAGE, READ_BILLED
from app.notifications import delivery, redelivery
from app.sessions import flusher as session_flusher
from app.sessions import service as session_service
from app.store import request_budget
from app.store.db import Database
from app.store.webhook_intake import WebhookIntake
from app.tts.service import TtsService
from app.usage import billed_runs
from app.v1 import backend as v1_backend
from app.worker.task_queue import make_queue

log = structlog.get_logger(__name__)


def pipeline() -> Pipeline:
    """Every feature's part in the inbox pipeline."""
    plan = Pipeline(
        permanent=(HumeRejectedError, HumeNotFoundError, HumeSunsetError, PredictionFormatError, CallbackFormatError)
    )
    plan.handle(batch_outcomes.PROVIDERS, batch_outcomes.handle_event)
    plan.handle(evi_service.PROVIDERS, evi_service.handle_event)
    plan.backends["batch"] = batch_submission.BACKEND
    # A v1 job with decisions has its questions asked first (app/decisions/jobs.py).
    plan.backends["v1"] = decision_jobs.with_decisions(v1_backend.BACKEND)
    plan.checks.append(batch_outcomes.poll_overdue)
    plan.tasks[DELIVER_MESSAGE] = delivery.deliver
    plan.checks.append(redelivery.count_waiting)
    plan.checks.append(session_service.end_abandoned)
    plan.tasks[READ_BILLED] = billed_runs.read_billed
    plan.checks.append(billed_runs.keep_reading)
    plan.checks.append(billed_runs.report_unowned)
    return plan


def hume_budget(settings: Settings) -> request_budget.Budget:
    """The organization's request budget, shared by every process using the same cloud key (Hume counts per
    organization; a key stands for its organization, which we cannot see)."""
    digest = hashlib.sha256(f"{settings.cloud_url} {settings.cloud_key}".encode()).hexdigest()[:16]
    return request_budget.Budget(f"hume:{digest}", settings.hume_requests_per_minute, settings.hume_rate_burst)


def _same(error: Exception) -> Exception:
    return error


@contextlib.asynccontextmanager
async def built_in_emulator(settings: Settings) -> AsyncIterator[None]:
    """The Hume emulator on EMULATOR_PORT (PORT + 1 by default), in this process, for development without
    Hume credentials. It sends EVI webhooks to this service, signed with the key the service verifies, so
    a chat made at the emulator lands as a job with no arguments."""
    from app import emulator  # only imported when used

    config = emulator.EmulatorConfig(
        api_key=EMULATOR_API_KEY,
        secret_key=EMULATOR_SECRET_KEY,
        evi_webhook_url=f"{settings.callback_base_url}/v1/webhooks/hume/evi",
        evi_signing_key=settings.webhook_signing_keys[0],
    )
    app = emulator.create_app(config)
    # Two listeners, as Hume has two hosts: a call sent to the wrong one gets the 404 Hume would answer.
    voice, cloud = settings.built_in_emulator_port, settings.built_in_emulator_cloud_port
    servers = []
    for port, origin in ((voice, "voice"), (cloud, "cloud")):
        app.state.emu.origins[("127.0.0.1", port)] = origin
        servers.append(uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                     lifespan="on" if origin == "voice" else "off")))  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        for server in servers:
            failure = RuntimeError(f"the built-in emulator could not listen on port {server.config.port}")
            await stack.enter_async_context(background_server.running(server, functools.partial(_same, failure)))
        log.info(
            "using the built-in Hume emulator", voice_url=settings.emulator_url, cloud_url=settings.emulator_cloud_url
        )
        yield


@contextlib.asynccontextmanager
async def build_deps(settings: Settings, *, pool_size: int | None = None) -> AsyncIterator[Deps]:
    """Engine, Hume clients, queue and feature services, closed in reverse order on exit. The SQLAlchemy
    pool holds `pool_size` connections (DB_POOL_SIZE, else 10) plus as many overflowing."""
    if settings.database_url is None:
        raise RuntimeError("DATABASE_URL is not set (`make run` starts an embedded Postgres)")
    async with contextlib.AsyncExitStack() as stack:
        db = Database(
            settings.database_url,
            pool_size=pool_size or settings.db_pool_size or 10,
            autocommit_size=settings.webhook_pool_size,
        )
        await db.open()
        stack.push_async_callback(db.aclose)
        gateway = HumeGateway(
            api_key=settings.hume_key, base_url=settings.hume_url, max_retries=settings.hume_max_retries
        )
        stack.push_async_callback(gateway.aclose)
        evi = EviClient(api_key=settings.hume_key, base_url=settings.hume_url)
        stack.push_async_callback(evi.aclose)
        plan = pipeline()
        queue = make_queue(settings.database_url, settings, plan.tasks)
        await queue.open_async()
        stack.push_async_callback(queue.close_async)
        sessionmaker = db.sessionmaker
        intake = WebhookIntake(db)
        stack.push_async_callback(intake.aclose)
        tokens = None
        secret = settings.hume_secret
        if secret:
            tokens = TokenProvider(
                api_key=settings.hume_key,
                secret_key=secret,
                base_url=settings.hume_url,
                refresh_margin_s=settings.hume_token_refresh_margin_s,
            )
            stack.push_async_callback(tokens.aclose)
        hume_tts = HumeTts(api_key=settings.hume_key, base_url=settings.hume_url)
        stack.push_async_callback(hume_tts.aclose)
        tts = TtsService(
            hume=hume_tts, sessionmaker=sessionmaker, max_bytes=settings.tts_cache_max_bytes,
            retired=catalog.retired_at_hume(catalog.TTS, settings),
        )  # fmt: skip
        stack.push_async_callback(tts.aclose)
        courier = Courier(settings.outbound_allow_list, timeout_s=settings.webhook_timeout_s)
        stack.push_async_callback(courier.aclose)
        # Hume counts Audio Decisions requests per organization like v1's (600 a minute, C/2026/11/6): one budget
        # for every Hume client keeps the service under either limit, whichever API a burst goes to.
        pace = functools.partial(request_budget.reserve, sessionmaker, hume_budget(settings))
        expression = ExpressionClient(
            api_key=settings.cloud_key, base_url=settings.cloud_url, max_retries=settings.hume_max_retries,
            pace=pace,
        )  # fmt: skip
        stack.push_async_callback(expression.aclose)
        decisions = DecisionsClient(api_key=settings.cloud_key, base_url=settings.cloud_url, pace=pace)
        stack.push_async_callback(decisions.aclose)
        realtime = RealtimeClient(api_key=settings.cloud_key, cloud_url=settings.cloud_url, pace=pace)
        live = session_flusher.LiveFlusher(sessionmaker, interval_s=settings.session_flush_ms / 1000)
        await live.start()
        # Closed before the database (exit order): its last tick stores what is still held.
        stack.push_async_callback(live.aclose)
        yield Deps(
            settings=settings,
            db=db,
            intake=intake,
            queue=queue,
            pipeline=plan,
            gateway=gateway,
            expression=expression,
            decisions=decisions,
            realtime=realtime,
            evi=evi,
            tts=tts,
            courier=courier,
            url_guard=courier.guard,
            decode_slots=asyncio.Semaphore(settings.media_decode_concurrency),
            live=live,
            tokens=tokens,
        )
