"""LTI 1.3 endpoints: OIDC login, launch, the tool's JWKS and its public configuration.

pylti1p3 blocks (``requests``), so the work runs in the thread pool; these async handlers
only read the request and write the response. The event loop stays free to answer the
platform when it calls back for our JWKS in the middle of a launch.

Launches where the browser blocks blend727's cookies inside the LMS's iframe
-----------------------------------------------------------------------------
The common path is unchanged and writes nothing extra: login answers with a 302 and a state
cookie, the launch finds the cookie, consumes the nonce, sets the session cookie and 303s.

* ``/lti/login`` answers with a small page (``lti_login.html`` + ``lti-storage.js``) instead
  of the 302 when the platform offers storage (``lti_storage_target``), or when the login
  runs in a frame (``Sec-Fetch-Dest: iframe``) and brought no cookie of ours. The page stores
  the state in the platform's storage (``lti.put_data``), tests whether a cookie like ours
  survives in the frame, and goes on to the platform's authorization endpoint. When neither
  storage nor cookies work it offers "Open in a new window": the same login initiation,
  top-level. That must happen *before* the platform's authorization request, because Moodle
  accepts each launch's ``lti_message_hint`` once (``mod/lti/auth.php`` drops it from its
  session): after the launch there is nothing left to start again from.
* ``/lti/launch`` without the state cookie, for a login that used storage, validates the
  id_token fully but writes nothing, and answers with a page that reads the state back from
  the platform's storage (``lti.get_data``) and, if it matches, posts the id_token again to
  ``/lti/launch/confirm``. Without storage, a framed launch without its cookie is refused
  (``cookies_blocked``).
* ``/lti/launch/confirm`` completes the launch (the nonce is consumed there, once) and sends
  the browser to ``/lti/continue?h=…`` with a one-time hand-off. If the session cookie came
  back, that goes straight on; if not, it offers to open ``/lti/continue`` in a new window,
  where the hand-off is exchanged for a first-party session cookie.

What the server can and cannot verify on the storage path: it sees no browser-bound secret.
It verifies the id_token completely (signature, audience, expiry, nonce = HMAC of the state,
replay). That the state belongs to *this* browser is checked by the page, in JavaScript:
only the platform's own frame (its origin checked on the answer) can return a value, and it
holds what this browser's login page stored there. The server enforces that the
confirmation comes from its own page (``Origin`` and ``Sec-Fetch-Site: same-origin`` when
the browser sends them, as every current browser does), so another site cannot post a
launch past the check; it trusts the browser to have run the check. That is the guarantee
the 1EdTech platform-storage specifications give, weaker than a cookie's.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from app.auth.dependencies import SESSION_COOKIE
from app.core.concurrency import run_read
from app.core.http import cookie_attributes, delete_cookie, read_params, set_cookie
from app.core.state import AppContext, get_context
from app.core.templating import render
from app.deeplink.service import deep_link_location
from app.keys.service import KeyService
from app.launch.repository import NonceRepository
from app.launch.service import Continuation, HandoffService, LaunchOutcome, LaunchService
from app.ops.metrics import LAUNCHES, counting_refusals
from app.platforms.service import lti_endpoints, moodle_form, tool_description
from app.rosters.service import RosterService
from lti.errors import LaunchRefused
from lti.launch import DEEP_LINKING_REQUEST, ValidatedLaunch, state_cookie_name, validate_launch
from lti.login import (
    LoginResult,
    clean_storage_target,
    start_login,
    storage_key,
    storage_target_of_state,
    url_origin,
)
from lti.registration import tool_configuration

log = logging.getLogger("blend727.launch")
router = APIRouter(tags=["lti"])


#: The login initiation parameters a new window needs to start the same login again.
RELAUNCH_PARAMS = (
    "iss",
    "login_hint",
    "target_link_uri",
    "lti_message_hint",
    "lti_deployment_id",
    "client_id",
)
#: How long the pages wait for the platform's storage to answer (milliseconds).
STORAGE_TIMEOUT_MS = 2000


def _framed(request: Request) -> bool:
    """The browser says the request loads a frame (Fetch Metadata; absent in old browsers)."""
    return request.headers.get("sec-fetch-dest", "") in ("iframe", "frame")


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


def _check_launch(ctx: AppContext, params: dict[str, str]) -> ValidatedLaunch:
    """Validate a launch whose state cookie did not come back, writing nothing: the page that
    answers asks the platform's storage for the state before anything is written."""
    with ctx.database.session(readonly=True) as session:
        launch = _validate(ctx, session, params, state_in_storage=True)
        if NonceRepository(session).is_used(launch.platform_id, launch.nonce):
            raise LaunchRefused("replayed", f"nonce reused for platform {launch.platform_id}")
    return launch


def _confirm(ctx: AppContext, params: dict[str, str]) -> tuple[LaunchOutcome, str]:
    """Complete a launch whose state the platform's storage confirmed (in the browser), and
    leave a hand-off for a new window. Returns the outcome and the hand-off token."""
    if storage_target_of_state(params.get("state", "")) is None:
        raise LaunchRefused("storage_unconfirmed", "confirmation of a login without storage")
    with ctx.database.session() as session:
        launch = _validate(ctx, session, params, state_in_storage=True)
        handoffs = HandoffService(session, ctx.secret)
        handoff = handoffs.new()
        outcome = LaunchService(session).complete(
            launch,
            lifetime_seconds=ctx.settings.session_lifetime_seconds,
            default_locale=ctx.settings.default_locale,
            token=handoffs.session_token(handoff),
        )
        handoffs.add(handoff, outcome.session_id, _landing(ctx, launch, outcome))
    return outcome, handoff


def _validate(
    ctx: AppContext, session: Session, params: dict[str, str], *, state_in_storage: bool
) -> ValidatedLaunch:
    return validate_launch(
        session,
        params,
        {},
        key_cache=ctx.key_cache,
        secret=ctx.secret,
        leeway=ctx.settings.jwt_leeway_seconds,
        secure=ctx.settings.https,
        allow_demo=ctx.settings.demo,
        http=ctx.http,
        state_in_storage=state_in_storage,
    )


def _continue(ctx: AppContext, handoff: str, cookie: str | None, new_window: bool) -> Continuation:
    with ctx.database.session() as session:
        return HandoffService(session, ctx.secret).resolve(handoff, cookie, new_window=new_window)


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


def _set_session(response: Response, ctx: AppContext, token: str) -> None:
    """The session cookie of a launch (SameSite=None; Secure; Partitioned over https)."""
    set_cookie(response, ctx.settings, SESSION_COOKIE, token, ctx.settings.session_lifetime_seconds)


@router.get("/lti/login", summary="OIDC login initiation", operation_id="lti_login_get")
@router.post(
    "/lti/login", summary="OIDC login initiation (form post)", operation_id="lti_login_post"
)
async def login(request: Request) -> Response:
    ctx = get_context(request)
    with counting_refusals():
        params = await read_params(request, ctx.settings.max_launch_body_bytes)
        # The login reads two rows and never touches the network (see app.core.concurrency).
        result = await run_read(ctx, _login, ctx, params, dict(request.cookies))
    response: Response
    if result.storage_target or (_framed(request) and not request.cookies):
        # The page when the platform offers storage, or in a frame that brought no cookie
        # of ours (one that came back proves the browser keeps ours here: the plain 302).
        response = _login_page(request, ctx, params, result)
    else:
        response = RedirectResponse(result.redirect_url, status_code=302)
    for cookie in result.cookies:
        set_cookie(response, ctx.settings, cookie.name, cookie.value, cookie.max_age)
    response.headers["Cache-Control"] = "no-store"
    return response


def _login_page(
    request: Request, ctx: AppContext, params: dict[str, str], result: LoginResult
) -> Response:
    relaunch = {k: params[k] for k in RELAUNCH_PARAMS if params.get(k)}
    storage = None
    if result.storage_target:
        storage = {
            "target": result.storage_target,
            "origin": result.platform_origin,
            "key": storage_key(result.state),
            "value": result.state,
        }
    return render(
        request,
        "lti_login.html",
        {
            "auth_url": result.redirect_url,
            "storage": storage,
            "cookie_attributes": cookie_attributes(ctx.settings),
            "timeout_ms": STORAGE_TIMEOUT_MS,
            "new_window_url": "/lti/login?" + urlencode(relaunch),
        },
    )


@router.post("/lti/launch", summary="LTI launch (OIDC redirect URI)")
async def launch(request: Request) -> Response:
    ctx = get_context(request)
    with counting_refusals():
        params = await read_params(request, ctx.settings.max_launch_body_bytes)
        state = params.get("state", "")
        if state and state_cookie_name(state) not in request.cookies:
            stored_in = storage_target_of_state(state)
            if stored_in is not None and params.get("id_token"):
                checked = await run_in_threadpool(_check_launch, ctx, params)
                target = clean_storage_target(params.get("lti_storage_target")) or stored_in
                return _storage_check_page(request, checked, params, target)
            if _framed(request):
                raise LaunchRefused("cookies_blocked", "no state cookie in a frame, no storage")
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
    _set_session(response, ctx, outcome.token)
    delete_cookie(response, ctx.settings, state_cookie_name(params["state"]))
    response.headers["Cache-Control"] = "no-store"
    return response


def _storage_check_page(
    request: Request, launch: ValidatedLaunch, params: dict[str, str], target: str
) -> Response:
    return render(
        request,
        "lti_storage_check.html",
        {
            "storage": {
                "target": target,
                "origin": launch.platform_origin,
                "key": storage_key(launch.state),
                "value": launch.state,
            },
            "timeout_ms": STORAGE_TIMEOUT_MS,
            "id_token": params["id_token"],
            "state": launch.state,
        },
        headers={"Cache-Control": "no-store"},
    )


def _from_own_page(request: Request, ctx: AppContext) -> bool:
    """A form post from one of blend727's pages, as far as the browser tells (Fetch Metadata
    and ``Origin``, both sent by every current browser on a form post)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return False
    origin = request.headers.get("origin")
    return origin is None or origin == url_origin(ctx.settings.public_base_url)


@router.post("/lti/launch/confirm", include_in_schema=False)
async def launch_confirm(request: Request) -> Response:
    """The id_token again, posted by the storage check page once the platform's storage
    returned this launch's state (see the module's docstring for what that proves)."""
    ctx = get_context(request)
    with counting_refusals():
        if not _from_own_page(request, ctx):
            raise LaunchRefused("storage_unconfirmed", "confirmation not posted by our own page")
        params = await read_params(request, ctx.settings.max_launch_body_bytes)
        outcome, handoff = await run_in_threadpool(_confirm, ctx, params)
    LAUNCHES.labels(outcome.message_type, outcome.role).inc()
    log.info(
        "launch accepted through platform storage",
        extra={"role": outcome.role, "message_type": outcome.message_type},
    )
    response = RedirectResponse("/lti/continue?" + urlencode({"h": handoff}), status_code=303)
    if outcome.stale_rosters:
        response.background = BackgroundTask(_sync_rosters, ctx, outcome)
    # Set anyway: where the browser keeps it, /lti/continue goes straight on.
    _set_session(response, ctx, outcome.token)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/lti/continue", include_in_schema=False)
async def launch_continue(request: Request, h: str = "", w: str = "") -> Response:
    """After a launch confirmed through storage: on to the start page if the session cookie
    came back; otherwise a page offering a new window, where ``w=1`` (or a top-level
    navigation) exchanges the one-time hand-off for a first-party session cookie."""
    ctx = get_context(request)
    new_window = w == "1" or request.headers.get("sec-fetch-dest") == "document"
    site = request.headers.get("sec-fetch-site")
    if new_window and site is not None and site not in ("same-origin", "none"):
        # Only blend727's own page links here: another site cannot sign a visitor in.
        new_window = False
    cookie = request.cookies.get(SESSION_COOKIE)
    result = await run_in_threadpool(_continue, ctx, h, cookie, new_window)
    response: Response
    if result.landing is None:
        response = render(
            request,
            "lti_continue.html",
            {"new_window_url": "/lti/continue?" + urlencode({"h": h, "w": "1"})},
        )
    else:
        response = RedirectResponse(result.landing, status_code=303)
        if result.set_token:
            _set_session(response, ctx, result.set_token)
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
    base_url = ctx.settings.public_base_url
    endpoints = lti_endpoints(base_url)
    if "application/json" in request.headers.get("accept", ""):
        # The whole tool configuration, as a dynamic registration would send it (every
        # scope and message), with the addresses to paste and Moodle's manual form.
        body = {
            **tool_configuration(tool_description(base_url)),
            **endpoints,
            "moodle": moodle_form(base_url),
        }
        return JSONResponse(body)
    return render(request, "lti_config.html", {"endpoints": endpoints})
