"""Operations endpoints: ``/readyz`` for a load balancer, ``/metrics`` for Prometheus.

``/healthz`` (liveness: the process answers, the database too) stays in ``app.main``.
``/readyz`` says whether this process should get traffic: the database answers, its schema is
at the migrations' head (a new release whose ``db upgrade`` has not run yet is not ready)
and a signing key exists (without one, the JWKS would be empty and every service call fail).
"""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from app import __version__
from app.core.errors import AppError
from app.core.handlers import error_response
from app.core.migrate import current_revisions, head_revisions
from app.core.state import get_context
from app.keys.repository import KeyRepository
from app.ops.metrics import exposition

router = APIRouter(tags=["operations"])
log = logging.getLogger("blend727.health")

LOOPBACK = ("127.", "::1", "::ffff:127.")
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


class MetricsTokenRequired(AppError):
    status_code = 401
    code = "metrics_token_required"
    title = "The metrics need a token"
    detail = "Send this server's metrics token as a bearer token to read its metrics."


class MetricsNotShown(AppError):
    status_code = 403
    code = "metrics_local_only"
    title = "The metrics are not shown here"
    detail = (
        "Without a metrics token, blend727 shows its metrics only to programs on the same "
        "machine that do not come through a proxy."
    )
    advice = "Set BLEND727_METRICS_TOKEN and give Prometheus the same token."


@router.get("/readyz", summary="Readiness: database, schema at head, signing key")
def readyz(request: Request) -> JSONResponse:
    database = get_context(request).database
    checks: dict[str, str] = {}
    try:
        with database.session(readonly=True) as db:
            db.execute(text("SELECT 1"))
            checks["database"] = "ok"
            current = current_revisions(db.connection())
            expected = head_revisions()
            checks["migrations"] = (
                "ok"
                if current == expected
                else f"at {', '.join(sorted(current)) or 'nothing'}, "
                f"expected {', '.join(sorted(expected))}: run blend727 db upgrade"
            )
            checks["signing_key"] = "ok" if KeyRepository(db).current() is not None else "missing"
    except Exception as exc:
        log.warning("not ready: %s: %s", type(exc).__name__, exc)
        checks.setdefault("database", "unreachable")
        checks.setdefault("migrations", "unknown")
        checks.setdefault("signing_key", "unknown")
        if checks["database"] == "ok":  # the database answered, a later query failed
            checks["database"] = f"error: {type(exc).__name__}"
    failed = sorted(name for name, state in checks.items() if state != "ok")
    body = {
        "status": "not_ready" if failed else "ready",
        "failed": failed,
        "checks": checks,
        "version": __version__,
    }
    return JSONResponse(
        body, status_code=503 if failed else 200, headers={"Cache-Control": "no-store"}
    )


@router.get("/metrics", summary="Prometheus metrics (bearer token, or this machine only)")
def metrics(request: Request) -> Response:
    ctx = get_context(request)
    token = ctx.settings.metrics_token
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            response = error_response(request, MetricsTokenRequired())
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    else:
        host = request.client.host if request.client else ""
        forwarded = any(name in request.headers for name in FORWARDING_HEADERS)
        if forwarded or not host.startswith(LOOPBACK):
            raise MetricsNotShown()
    body, content_type = exposition(ctx.database)
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})
