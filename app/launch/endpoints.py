"""LTI 1.3 endpoints: OIDC login, launch, the tool's JWKS and its public configuration.

pylti1p3 blocks (``requests``), so the work runs in the thread pool; these async handlers
only read the request and write the response. The event loop stays free to answer the
platform when it calls back for our JWKS in the middle of a launch.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.background import BackgroundTask

from app.auth.dependencies import SESSION_COOKIE
from app.core.concurrency import run_read
from app.core.http import delete_cookie, read_params, set_cookie
from app.core.state import AppContext, get_context
from app.core.templating import render
from app.deeplink.service import deep_link_location
from app.keys.service import KeyService
from app.launch.service import LaunchOutcome, LaunchService
from app.ops.metrics import LAUNCHES, counting_refusals
from app.rosters.service import RosterService
from lti.errors import LaunchRefused
from lti.launch import DEEP_LINKING_REQUEST, ValidatedLaunch, state_cookie_name, validate_launch
from lti.login import LoginResult, start_login

log = logging.getLogger("blend727.launch")
router = APIRouter(tags=["lti"])


def lti_endpoints(base_url: str) -> dict[str, str]:
    """The URLs an administrator pastes into the LMS; stable across versions."""
    base = base_url.rstrip("/")
    return {
        "tool_url": f"{base}/lti/launch",
        "login_url": f"{base}/lti/login",
        "redirect_uri": f"{base}/lti/launch",
        "jwks_url": f"{base}/lti/jwks.json",
        "deep_linking_url": f"{base}/lti/launch",
        "domain": base.split("://", 1)[-1].split("/", 1)[0],
    }


def _login(ctx: AppContext, params: dict[str, str], cookies: dict[str, str]) -> LoginResult:
    with ctx.database.session(readonly=True) as session:
        return start_login(
            session,
            params,
            cookies,
            secret=ctx.secret,
            base_url=ctx.settings.public_base_url,
            secure=ctx.settings.https,
            allow_demo=ctx.settings.demo,
        )


def _sync_rosters(ctx: AppContext, outcome: LaunchOutcome) -> None:
    service = RosterService(ctx.database, ctx.http)
    for class_id in outcome.stale_rosters:
        service.sync_if_stale(outcome.deployment_id, class_id)


def _launch(
    ctx: AppContext, params: dict[str, str], cookies: dict[str, str]
) -> tuple[LaunchOutcome, str]:
    with ctx.database.session() as session:
        launch = validate_launch(
            session,
            params,
            cookies,
            key_cache=ctx.key_cache,
            secret=ctx.secret,
            leeway=ctx.settings.jwt_leeway_seconds,
            secure=ctx.settings.https,
            allow_demo=ctx.settings.demo,
            http=ctx.http,
        )
        outcome = LaunchService(session).complete(
            launch,
            lifetime_seconds=ctx.settings.session_lifetime_seconds,
            default_locale=ctx.settings.default_locale,
        )
    return outcome, _landing(ctx, launch, outcome)


def _landing(ctx: AppContext, launch: ValidatedLaunch, outcome: LaunchOutcome) -> str:
    """Where the browser goes after the launch: the deep-linking picker for "Select
    content", carrying the signed settings; the start page otherwise."""
    settings = launch.deep_linking_settings
    if outcome.message_type != DEEP_LINKING_REQUEST or settings is None:
        return "/"
    return deep_link_location(
        ctx.secret,
        settings,
        deployment_id=launch.deployment_pk,
        platform_id=launch.platform_id,
        session_id=outcome.session_id,
    )


@router.api_route("/lti/login", methods=["GET", "POST"], summary="OIDC login initiation")
async def login(request: Request) -> Response:
    ctx = get_context(request)
    with counting_refusals():
        params = await read_params(request, ctx.settings.max_launch_body_bytes)
        # The login reads two rows and never touches the network (see app.core.concurrency).
        result = await run_read(ctx, _login, ctx, params, dict(request.cookies))
    response = RedirectResponse(result.redirect_url, status_code=302)
    for cookie in result.cookies:
        set_cookie(response, ctx.settings, cookie.name, cookie.value, cookie.max_age)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/lti/launch", summary="LTI launch (OIDC redirect URI)")
async def launch(request: Request) -> Response:
    ctx = get_context(request)
    with counting_refusals():
        params = await read_params(request, ctx.settings.max_launch_body_bytes)
        outcome, location = await run_in_threadpool(_launch, ctx, params, dict(request.cookies))
    LAUNCHES.labels(outcome.message_type, outcome.role).inc()
    log.info(
        "launch accepted",
        extra={"role": outcome.role, "message_type": outcome.message_type},
    )
    response = RedirectResponse(location, status_code=303)
    if outcome.stale_rosters:
        # After the response: the person does not wait for the LMS's member list.
        response.background = BackgroundTask(_sync_rosters, ctx, outcome)
    set_cookie(
        response,
        ctx.settings,
        SESSION_COOKIE,
        outcome.token,
        ctx.settings.session_lifetime_seconds,
    )
    delete_cookie(response, ctx.settings, state_cookie_name(params["state"]))
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/lti/launch", include_in_schema=False)
def launch_get() -> Response:
    with counting_refusals():
        raise LaunchRefused("method_not_allowed", "GET on /lti/launch")


@router.get("/lti/jwks.json", summary="The tool's public keys (RFC 7517)")
def jwks(request: Request) -> JSONResponse:
    ctx = get_context(request)
    with ctx.database.session(readonly=True) as session:
        body = KeyService(session).jwks()
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})


@router.get("/lti/config", summary="Registration details for the LMS administrator")
def config_page(request: Request) -> Response:
    ctx = get_context(request)
    endpoints = lti_endpoints(ctx.settings.public_base_url)
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(endpoints)
    return render(request, "lti_config.html", {"endpoints": endpoints})
