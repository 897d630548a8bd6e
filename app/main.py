"""The FastAPI application factory."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.admin.endpoints import router as admin_router
from app.config import Settings, get_settings
from app.core.db import Database
from app.core.handlers import install as install_handlers
from app.core.middleware import RequestContextMiddleware
from app.core.state import AppContext, get_context
from app.home.endpoints import router as home_router
from app.launch.endpoints import router as launch_router

STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = FastAPI(
        title="blend727",
        version=__version__,
        description="LTI 1.3 tool for Vietnam's 7-2-7 blended in-service teacher training.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.ctx = AppContext.build(settings, database)
    install_handlers(app)
    app.add_middleware(
        RequestContextMiddleware, default_locale=settings.default_locale, https=settings.https
    )
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.include_router(launch_router)
    app.include_router(home_router)
    app.include_router(admin_router)
    if settings.demo:
        from app.demo.endpoints import router as demo_router

        app.include_router(demo_router)

    @app.get("/healthz", tags=["operations"], summary="Liveness and database reachability")
    def healthz(request: Request) -> JSONResponse:
        ctx = get_context(request)
        try:
            ctx.database.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
            logging.getLogger("blend727.health").warning("database unreachable: %s", exc)
            return JSONResponse(
                {"status": "error", "database": "unreachable", "version": __version__},
                status_code=503,
            )
        return JSONResponse({"status": "ok", "database": "ok", "version": __version__})

    return app
