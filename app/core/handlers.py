"""Error responses: a translated HTML page for people, RFC 9457 problem+json for programs."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.errors import AppError, NotFound
from app.core.i18n import get_translations
from app.core.middleware import route_of
from app.core.templating import render, request_locale

log = logging.getLogger("blend727.errors")

PROBLEM_TYPE_BASE = "https://blend727.example/problems/"


def wants_json(request: Request) -> bool:
    if request.url.path.startswith("/api/"):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _t(locale: str, text: str, params: dict[str, Any]) -> str:
    if not text:
        return ""
    translated = get_translations(locale).gettext(text)
    try:
        return translated % params if params else translated
    except (KeyError, ValueError, TypeError):
        return translated


def error_response(request: Request, error: AppError) -> Response:
    locale = request_locale(request)
    title = _t(locale, error.title, error.params)
    detail = _t(locale, error.detail, error.params)
    advice = _t(locale, error.advice, error.params)
    headers = getattr(error, "headers", None) or None  # e.g. Retry-After of a 429
    if wants_json(request):
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + error.code,
            "title": title,
            "status": error.status_code,
            "detail": detail,
            "code": error.code,
        }
        extra = getattr(error, "problem_extra", None)
        if extra:
            body.update(extra)
        field = error.params.get("field") if isinstance(error.params, dict) else None
        if field and "errors" not in body:
            body["errors"] = [{"field": str(field), "message": detail}]
        return JSONResponse(
            body,
            status_code=error.status_code,
            media_type="application/problem+json",
            headers=headers,
        )
    return render(
        request,
        "error.html",
        {
            "title": title,
            "detail": detail,
            "advice": advice,
            "code": error.code,
            "status": error.status_code,
            "request_id": getattr(request.state, "request_id", ""),
        },
        status_code=error.status_code,
        headers=headers,
    )


async def _app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    level = logging.WARNING if exc.status_code < 500 else logging.ERROR
    log.log(
        level,
        "%s %s refused: %s (%s)",
        request.method,
        route_of(request.scope),  # the template: paths carry feed tokens and codes
        exc.code,
        exc.log_detail,
        extra={"reason": exc.code},
    )
    return error_response(request, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return error_response(request, NotFound())
    if exc.status_code == 405:
        error = AppError(
            detail="Use the links in blend727, or open it again from your course.",
            status_code=405,
            code="method_not_allowed",
            title="This address does not accept that request",
        )
    elif exc.status_code == 400:
        # FastAPI's only 400 of its own: a body it cannot parse (not JSON, cut short).
        error = AppError(
            detail="The body of the request could not be read. Send JSON (or a form) of the "
            "documented shape.",
            status_code=400,
            code="unreadable_body",
            title="The request is not valid",
        )
    else:
        # Starlette's own reason phrases are English; people get a translated message.
        error = AppError(
            detail="The request could not be handled.",
            status_code=exc.status_code,
            code="http_error",
        )
    return error_response(request, error)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
            "message": e.get("msg", ""),
        }
        for e in exc.errors()
    ]
    error = AppError(
        detail="Some fields are missing or not valid.",
        status_code=422,
        code="validation_failed",
        title="The data is not valid",
    )
    error.problem_extra = {"errors": errors}  # type: ignore[attr-defined]
    return error_response(request, error)


async def _out_of_range(request: Request, exc: Exception) -> Response:
    """A number the database cannot hold (an id of 2**63, a PostgreSQL integer past 2**31):
    bad input, not our failure. The request's transaction is rolled back; nothing is kept."""
    log.warning("%s %s refused: value out of range (%s)", request.method, request.url.path, exc)
    error = AppError(
        detail="A number in the request is out of the range blend727 accepts.",
        status_code=422,
        code="out_of_range",
        title="The data is not valid",
    )
    return error_response(request, error)


#: Seconds a client is asked to wait when the database is out (a restart takes a few).
DATABASE_RETRY_AFTER = 5


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    """The database went away (restarting, failing over, out of connections): the request's
    transaction is lost, nothing was saved. A 503 that says so — never a 500 — and the
    connection pool drops the dead connections by itself (``pool_pre_ping``), so the next
    requests succeed once the database is back, without restarting blend727."""
    log.warning(
        "%s %s: database unavailable (%s: %s)",
        request.method,
        route_of(request.scope),
        type(exc).__name__,
        str(getattr(exc, "orig", None) or exc).splitlines()[0][:300] if str(exc) else "",
        extra={"reason": "database_unavailable"},
    )
    error = AppError(
        detail="The database is not answering just now. Nothing was saved.",
        status_code=503,
        code="database_unavailable",
        title="blend727 is briefly unavailable",
        advice="Try again in a minute. If it keeps happening, tell your administrator.",
    )
    response = error_response(request, error)
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, route_of(request.scope))
    error = AppError(
        detail="Something went wrong on our side. Nothing was saved.",
        status_code=500,
        code="internal_error",
        title="Sorry, something went wrong",
        advice="Try again in a moment. If it keeps happening, tell your administrator.",
    )
    return error_response(request, error)


def install(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(OverflowError, _out_of_range)
    app.add_exception_handler(DataError, _out_of_range)
    for unavailable in (OperationalError, InterfaceError, DisconnectionError, PoolTimeout):
        app.add_exception_handler(unavailable, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)
