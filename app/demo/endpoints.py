"""The demonstration platform's endpoints: a launcher page, a course page that frames the
tool (and answers its platform-storage messages, ``app/static/demo-platform.js``), the OIDC
authorization endpoint and the platform JWKS. Mounted only when ``BLEND727_DEMO`` is on
(``blend727 demo``).

The platform lives at ``Settings.demo_platform_base_url``: the tool's own address by
default, or the same server under another host name, which makes the framed launch
cross-site as Moodle's is (a browser that blocks third-party cookies then blocks them)."""

from __future__ import annotations

import threading
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from app.core.errors import AppError, NotFound
from app.core.middleware import CONTENT_SECURITY_POLICY
from app.core.state import AppContext, get_context
from app.core.templating import render
from app.demo.seed import seed_demo
from app.demo.service import (
    DEMO_CLIENT_ID,
    DEMO_DEPLOYMENT_ID,
    PERSONAS,
    STORAGE_FLAG,
    DemoSigner,
    demo_issuer,
    ensure_demo_platform,
    new_login_hint,
)
from lti.login import url_origin

router = APIRouter(prefix="/demo", tags=["demo"], include_in_schema=False)

_lock = threading.Lock()
_signers: dict[int, DemoSigner] = {}


def prepare_demo(ctx: AppContext) -> DemoSigner:
    """Register the demo platform for this base URL (idempotent) and load its key.

    The key also goes into the tool's platform-key cache: the tool still verifies every
    id_token signature, it just need not fetch its own page for the demo platform's JWKS.
    """
    with _lock:
        with ctx.database.session() as session:
            platform, key = ensure_demo_platform(session, ctx.settings.demo_platform_base_url)
            seed_demo(session, platform)
            signer = DemoSigner(key)
        ctx.key_cache.prime(ctx.settings.demo_platform_base_url + "/demo/jwks.json", signer.jwks)
        _signers[id(ctx)] = signer
    return signer


def demo_signer(ctx: AppContext) -> DemoSigner:
    return _signers.get(id(ctx)) or prepare_demo(ctx)


class DemoRefused(AppError):
    status_code = 400
    code = "demo_auth_refused"
    title = "The demonstration LMS refused the sign-in"


@router.get("")
def launcher(request: Request) -> Response:
    locale = request.state.locale
    ctx = get_context(request)
    return render(
        request,
        "demo.html",
        {
            "personas": PERSONAS,
            "demo_locale": locale,
            "platform_base": ctx.settings.demo_platform_base_url,
        },
    )


@router.get("/start/{persona}")
def start(persona: str, request: Request, locale: str = "", storage: str = "") -> Response:
    """Third-party initiated login, exactly as an LMS starts it; ``storage=1`` offers the
    platform's storage (``lti_storage_target=_parent``), as the framed course page does."""
    if persona not in PERSONAS:
        raise NotFound()
    ctx = get_context(request)
    base = ctx.settings.public_base_url
    locale = locale if locale in ("vi", "en") else request.state.locale
    with_storage = storage == "1"
    params = {
        "iss": demo_issuer(ctx.settings.demo_platform_base_url),
        "login_hint": new_login_hint(persona),
        "target_link_uri": f"{base}/lti/launch",
        # the hint tells the authorization endpoint to send the storage target again
        "lti_message_hint": f"{persona}|{locale}" + (f"|{STORAGE_FLAG}" if with_storage else ""),
        "client_id": DEMO_CLIENT_ID,
        "lti_deployment_id": DEMO_DEPLOYMENT_ID,
    }
    if with_storage:
        params["lti_storage_target"] = "_parent"
    return RedirectResponse(f"{base}/lti/login?{urlencode(params)}", status_code=302)


@router.get("/frame/{persona}")
def frame(persona: str, request: Request, locale: str = "", storage: str = "1") -> Response:
    """A course page of the demonstration LMS with the tool in an iframe, as Moodle's
    ``mod/lti/view.php`` embeds it; its script answers the tool's storage messages."""
    if persona not in PERSONAS:
        raise NotFound()
    ctx = get_context(request)
    locale = locale if locale in ("vi", "en") else request.state.locale
    query = urlencode({"locale": locale, "storage": "1" if storage == "1" else ""})
    tool_origin = url_origin(ctx.settings.public_base_url)
    # The usual policy, plus framing the tool (default-src 'self' would refuse another site).
    policy = CONTENT_SECURITY_POLICY + f"; frame-src 'self' {tool_origin}"
    return render(
        request,
        "demo_frame.html",
        {
            "persona": PERSONAS[persona],
            "src": f"/demo/start/{persona}?{query}",
            "tool_origin": tool_origin,
            "storage": storage == "1",
        },
        headers={"Content-Security-Policy": policy},
    )


@router.api_route("/auth", methods=["GET", "POST"])
def authorize(request: Request) -> Response:
    """The platform's OIDC authorization endpoint: checks the tool's request, then posts a
    signed id_token back to the tool's redirect URI."""
    ctx = get_context(request)
    params = request.query_params
    base = ctx.settings.public_base_url
    platform_base = ctx.settings.demo_platform_base_url
    expected = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": f"{base}/lti/launch",
    }
    for name, value in expected.items():
        if params.get(name) != value:
            raise DemoRefused(
                "Parameter %(name)s should be %(value)s", params={"name": name, "value": value}
            )
    nonce, state = params.get("nonce"), params.get("state")
    if not nonce or not state:
        raise DemoRefused("The request has no nonce or state.")
    hint = params.get("lti_message_hint", "")
    persona_key, _, rest = hint.partition("|")
    locale, _, flag = rest.partition("|")
    persona = PERSONAS.get(persona_key)
    if persona is None or not params.get("login_hint", "").startswith(persona_key + ":"):
        raise DemoRefused("Unknown demonstration user.")
    id_token = demo_signer(ctx).id_token(
        base_url=platform_base,
        persona=persona,
        nonce=nonce,
        locale=locale or "vi",
        redirect_uri=expected["redirect_uri"],
    )
    return render(
        request,
        "demo_post.html",
        {
            "action": expected["redirect_uri"],
            "id_token": id_token,
            "state": state,
            # like Canvas, the platform names its storage frame again in the launch
            "storage_target": "_parent" if flag == STORAGE_FLAG else None,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get("/jwks.json")
def jwks(request: Request) -> JSONResponse:
    return JSONResponse(demo_signer(get_context(request)).jwks)
