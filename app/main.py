"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.admin.endpoints import router as admin_router
from app.admin.pages import router as admin_pages_router
from app.attendance.endpoints import api as attendance_api
from app.attendance.endpoints import pages as attendance_pages
from app.audit.endpoints import api as audit_api
from app.audit.endpoints import pages as audit_pages
from app.auth.endpoints import router as session_api
from app.catalogue.endpoints import router as catalogue_api
from app.certificates.endpoints import router as certificates_router
from app.certificates.limits import VerifyLimit
from app.classes.endpoints import router as classes_api
from app.config import Settings, get_settings
from app.core.db import Database
from app.core.framing import REFRESH_SECONDS as FRAMING_REFRESH_SECONDS
from app.core.handlers import install as install_handlers
from app.core.logs import configure_logging
from app.core.middleware import RequestContextMiddleware
from app.core.proxy import ProxyHeadersMiddleware, TrustedProxies
from app.core.state import AppContext, get_context
from app.core.time import utcnow
from app.dashboards.endpoints import router as dashboards_router
from app.deeplink.endpoints import router as deeplink_router
from app.grading.endpoints import api as grading_api
from app.grading.endpoints import pages as grading_pages
from app.home.endpoints import router as home_router
from app.imports.endpoints import router as imports_api
from app.keys.crypto import KeyEncryptionError
from app.keys.service import KeyService
from app.launch.endpoints import router as launch_router
from app.launch.service import purge_expired
from app.learning.endpoints import api as learning_api
from app.learning.endpoints import pages as learning_pages
from app.ops.endpoints import router as ops_router
from app.ops.metrics import MetricsMiddleware
from app.ops.service import PeriodicTask
from app.passback.endpoints import api as passback_api
from app.passback.endpoints import pages as passback_pages
from app.platforms.endpoints import router as registration_router
from app.reports.endpoints import api as reports_api
from app.reports.endpoints import pages as reports_pages
from app.schedule.endpoints import router as ical_router

STATIC_DIR = Path(__file__).resolve().parent / "static"


PURGE_EVERY_SECONDS = 600.0
log = logging.getLogger("blend727")


def _ensure_signing_key(ctx: AppContext) -> None:
    """A current key and one published ahead; stored keys that the configured key-encryption
    key does not open stop the start (never a silent fallback)."""
    try:
        with ctx.database.session() as session:
            state = KeyService(session).prepare()
    except KeyEncryptionError as exc:
        log.critical("cannot start: %s", exc)
        raise
    except Exception:
        log.exception("could not ensure a signing key at start-up")
        return
    if state.plaintext:
        log.warning(
            "%d stored private keys/secrets are not encrypted yet: run `blend727 keys encrypt` "
            "(once every server has the key-encryption key)",
            state.plaintext,
        )


def _purge(ctx: AppContext) -> None:
    with ctx.database.session() as session:
        nonces, sessions = purge_expired(session)
        VerifyLimit(session).prune(utcnow())
    if nonces or sessions:
        log.info("purged %d expired nonces and %d ended sessions", nonces, sessions)


async def _purge_forever(ctx: AppContext) -> None:
    """Housekeeping in the background, done by one process at a time (a lease row); a
    failure is logged and retried next round."""
    task = PeriodicTask(
        ctx.database,
        "housekeeping",
        every=timedelta(seconds=PURGE_EVERY_SECONDS),
        hold=timedelta(seconds=PURGE_EVERY_SECONDS),
    )
    while True:
        await asyncio.sleep(task.check_every.total_seconds())
        try:
            await run_in_threadpool(task.run_if_due, lambda _keep: _purge(ctx))
        except Exception:
            log.exception("housekeeping failed")


def _refresh_framing(ctx: AppContext) -> None:
    try:
        ctx.framing.refresh(ctx.database)
    except Exception:
        log.exception("could not read the LMSs allowed to frame blend727; keeping the last list")


async def _refresh_framing_forever(ctx: AppContext) -> None:
    """Every process reads the registered LMSs again now and then (a registration or an
    approval made by another process shows within REFRESH_SECONDS)."""
    while True:
        await asyncio.sleep(FRAMING_REFRESH_SECONDS)
        await run_in_threadpool(_refresh_framing, ctx)


async def _send_scores_forever(ctx: AppContext) -> None:
    """The in-process outbox worker of `blend727 serve` (off with BLEND727_INPROCESS_WORKER=0)."""
    from app.grading.service import ResultSweeper
    from app.passback.service import OutboxWorker

    sweeper = ResultSweeper(ctx.database, ctx.http)
    sender = OutboxWorker(
        ctx.database,
        ctx.http,
        before_round=sweeper.run_if_due,
        lease=timedelta(seconds=ctx.settings.worker_lease_seconds),
        send_timeout=ctx.settings.http_timeout_seconds,
    )
    while True:
        try:
            result = await run_in_threadpool(sender.run_once)
        except Exception:
            log.exception("sending scores failed; trying again shortly")
            result = None
        if result is None or result.claimed < sender.batch:
            await asyncio.sleep(ctx.settings.worker_poll_seconds)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    ctx: AppContext = app.state.ctx
    for warning in ctx.settings.startup_warnings():
        log.warning("%s", warning)
    # Never publish an empty JWKS: the first start creates the tool's signing key.
    await run_in_threadpool(_ensure_signing_key, ctx)
    if ctx.settings.demo:
        from app.demo.endpoints import prepare_demo

        await run_in_threadpool(prepare_demo, ctx)
    # Everything imported and built so far lives as long as the process: moved out of the
    # garbage collector's view, a full collection no longer walks ~200,000 objects (it paused
    # requests 150–240 ms at p99 in benches/dashboards.py).
    await run_in_threadpool(_refresh_framing, ctx)
    gc.collect()
    gc.freeze()
    tasks = [
        asyncio.create_task(_purge_forever(ctx)),
        asyncio.create_task(_refresh_framing_forever(ctx)),
    ]
    if ctx.settings.inprocess_worker:
        tasks.append(asyncio.create_task(_send_scores_forever(ctx)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_format, settings.log_level)
    app = FastAPI(
        title="blend727",
        version=__version__,
        description="LTI 1.3 tool for Vietnam's 7-2-7 blended in-service teacher training.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    app.state.ctx = AppContext.build(settings, database)
    install_handlers(app)
    app.add_middleware(
        RequestContextMiddleware,
        default_locale=settings.default_locale,
        https=settings.secure_cookies,
        access_log=settings.log_format == "json",
        framing=app.state.ctx.framing,
    )
    app.add_middleware(MetricsMiddleware)  # times the whole request
    # Outermost, so that the request context and its access line see the real client.
    app.add_middleware(ProxyHeadersMiddleware, trusted=TrustedProxies(settings.trusted_proxies))
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.include_router(launch_router)
    app.include_router(registration_router)
    app.include_router(deeplink_router)
    app.include_router(home_router)
    app.include_router(dashboards_router)
    app.include_router(admin_router)
    app.include_router(admin_pages_router)
    app.include_router(session_api)
    app.include_router(catalogue_api)
    app.include_router(classes_api)
    app.include_router(imports_api)
    app.include_router(ical_router)
    app.include_router(attendance_pages)
    app.include_router(attendance_api)
    app.include_router(learning_pages)
    app.include_router(learning_api)
    app.include_router(grading_pages)
    app.include_router(grading_api)
    app.include_router(passback_pages)
    app.include_router(passback_api)
    app.include_router(reports_pages)
    app.include_router(reports_api)
    app.include_router(certificates_router)
    app.include_router(ops_router)
    app.include_router(audit_pages)
    app.include_router(audit_api)
    if settings.demo:
        from app.demo.endpoints import router as demo_router

        app.include_router(demo_router)

    @app.get("/healthz", tags=["operations"], summary="Liveness and database reachability")
    def healthz(request: Request) -> JSONResponse:
        ctx = get_context(request)
        try:
            ctx.database.ping()
        except Exception as exc:
            logging.getLogger("blend727.health").warning("database unreachable: %s", exc)
            return JSONResponse(
                {"status": "error", "database": "unreachable", "version": __version__},
                status_code=503,
            )
        return JSONResponse({"status": "ok", "database": "ok", "version": __version__})

    return app
