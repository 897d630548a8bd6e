"""OIDC third-party-initiated login (LTI 1.3 §5.1.1), through pylti1p3's ``OIDCLogin``.

The nonce is an HMAC of the state and the registration, keyed by the tool's secret. The
login therefore writes nothing anywhere (no row, no server session): a flood of login
requests costs no storage, and any worker can check the launch that follows.

Platform storage (1EdTech "OIDC Login with LTI Client Side postMessages", lti-cs-oidc): when
the login initiation names an ``lti_storage_target``, the state ends in ``.<target>``
(``state-<uuid>._parent``). The launch learns from it, even when the platform does not send
the target again, that the state can be checked in the platform's storage; the nonce, an
HMAC of the whole state, makes the suffix tamper-proof.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pylti1p3.exception import OIDCException
from pylti1p3.oidc_login import OIDCLogin
from sqlalchemy.orm import Session

from lti.adapters import (
    CollectingCookieService,
    CookieToSet,
    DatabaseToolConf,
    ParamsRequest,
    StatelessSessionService,
    UrlRedirect,
)
from lti.errors import LaunchRefused, refusal_for_status

STATE_COOKIE_SECONDS = 10 * 60
#: Frame names blend727 accepts as ``lti_storage_target``: ``_parent``, or a named frame such
#: as Canvas's ``post_message_forwarding``. Anything else is ignored (cookies only).
_STORAGE_TARGET = re.compile(r"[A-Za-z0-9_-]{1,64}")


def clean_storage_target(value: str | None) -> str | None:
    """The ``lti_storage_target`` if blend727 can use it, else None."""
    return value if value and _STORAGE_TARGET.fullmatch(value) else None


def storage_target_of_state(state: str) -> str | None:
    """The storage target a login with platform storage wrote into its state."""
    head, dot, tail = state.rpartition(".")
    if not dot or not head.startswith("state-"):
        return None
    return clean_storage_target(tail)


def storage_key(state: str) -> str:
    """The key under which the login page stores the state in the platform's storage."""
    return "blend727_" + state


def url_origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL: the ``targetOrigin`` of the storage messages is the
    origin of the platform's OIDC authorization endpoint (lti-cs-oidc)."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def nonce_for_state(secret: str, state: str, issuer: str, client_id: str) -> str:
    """Unpredictable without the secret, and tied to one login of one registration."""
    mac = hmac.new(
        secret.encode(), f"{state}\x00{issuer}\x00{client_id}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


@dataclass
class LoginResult:
    redirect_url: str
    platform_id: int
    state: str
    nonce: str
    cookies: list[CookieToSet] = field(default_factory=list)
    storage_target: str | None = None

    @property
    def platform_origin(self) -> str:
        return url_origin(self.redirect_url)


class _Login(
    OIDCLogin[
        ParamsRequest, DatabaseToolConf, StatelessSessionService, CollectingCookieService, str
    ]
):
    def __init__(
        self,
        request: ParamsRequest,
        tool_config: DatabaseToolConf,
        *,
        cookie_service: CollectingCookieService,
        secret: str,
        storage_target: str | None,
    ) -> None:
        super().__init__(
            request,
            tool_config,
            session_service=StatelessSessionService(request),
            cookie_service=cookie_service,
        )
        self._secret = secret
        self._state_suffix = f".{storage_target}" if storage_target else ""
        self._last_uuid: str | None = None
        self.state: str | None = None
        self.nonce: str | None = None

    def get_redirect(self, url: str) -> UrlRedirect:
        return UrlRedirect(url)

    def _get_uuid(self) -> str:
        # pylti1p3 2.0.x asks once, for the state; the suffix names the storage target.
        self._last_uuid = str(uuid.uuid4()) + self._state_suffix
        return self._last_uuid

    def _generate_nonce(self) -> str:
        # pylti1p3 2.0.x builds the state as "state-" + _get_uuid() just before this call.
        assert self._last_uuid is not None
        platform = self._tool_config.matched
        assert platform is not None
        self.state = "state-" + self._last_uuid
        self.nonce = nonce_for_state(self._secret, self.state, platform.issuer, platform.client_id)
        return self.nonce


def _same_origin(url: str, base_url: str) -> bool:
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.netloc.lower()) == (b.scheme, b.netloc.lower())


def start_login(
    session: Session,
    params: Mapping[str, str],
    cookies: Mapping[str, str],
    *,
    secret: str,
    base_url: str,
    secure: bool,
    allow_demo: bool = False,
) -> LoginResult:
    """Validate a login initiation and build the redirect to the platform's auth endpoint."""
    iss = params.get("iss", "").strip()
    login_hint = params.get("login_hint", "")
    if not iss or not login_hint:
        raise LaunchRefused("missing_parameters", "login without iss or login_hint")
    target = params.get("target_link_uri", "")
    if target and not _same_origin(target, base_url):
        raise LaunchRefused("bad_target", f"target_link_uri {target!r} is not ours")

    conf = DatabaseToolConf(session, allow_demo=allow_demo)
    client_id = params.get("client_id", "").strip() or None
    platform = conf.platform_for(iss, client_id)
    if platform is None:
        raise LaunchRefused("unknown_platform", f"no registration for {iss!r} / {client_id!r}")
    if not platform.active:
        raise LaunchRefused(refusal_for_status(platform.status), f"platform {platform.id} inactive")
    deployment_id = params.get("lti_deployment_id", "")
    if deployment_id and (
        len(deployment_id) > 255
        or conf.find_deployment_by_params(iss, deployment_id, platform.client_id) is None
    ):
        raise LaunchRefused("unknown_deployment", f"deployment {deployment_id!r} unknown")

    # pylti1p3 looks the registration up by the client id it is given; pass the one we found.
    request = ParamsRequest({**params, "client_id": platform.client_id}, secure=secure)
    cookie_service = CollectingCookieService(cookies)
    storage_target = clean_storage_target(params.get("lti_storage_target"))
    login = _Login(
        request, conf, cookie_service=cookie_service, secret=secret, storage_target=storage_target
    )
    try:
        redirect = login.get_redirect_object(base_url.rstrip("/") + "/lti/launch")
    except OIDCException as exc:
        raise LaunchRefused("unknown_platform", str(exc)) from exc
    assert login.state is not None and login.nonce is not None
    for cookie in cookie_service.to_set:
        cookie.max_age = STATE_COOKIE_SECONDS
    return LoginResult(
        redirect_url=redirect.get_redirect_url(),
        platform_id=platform.id,
        state=login.state,
        nonce=login.nonce,
        cookies=cookie_service.to_set,
        storage_target=storage_target,
    )
