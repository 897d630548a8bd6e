"""Validating an LTI 1.3 launch (the ``id_token`` form post), through pylti1p3's
``MessageLaunch`` with the gaps of the library closed here (1EdTech Security Framework §5.1.3):

* ``aud`` is checked (the library turns PyJWT's check off): our client id must be in it, an
  extra audience must be another of our client ids for that issuer, and ``azp`` must name us
  when there are several;
* ``exp``/``iat``/``nbf`` are checked with a configurable leeway, and tokens older than
  ``max_age`` are refused;
* the signature is checked with cached key objects, refetching the platform's JWKS once on
  an unknown ``kid``; only RS256 is accepted;
* the nonce is bound to the state (see ``lti.login``) and consumed later, in the same
  database transaction as everything the launch writes (``app.launch.service``);
* version, message type and the required claims are checked, with a reason for each failure
  (a deep-linking request that accepts no LTI resource links is ``deep_link_types``).

Nothing is written before ``validate_launch`` returns.

The state is normally matched with the state cookie the login set. A launch whose cookie did
not come back (a browser that blocks cookies in the LMS's iframe) can be validated with
``state_in_storage=True``: every check above still runs, the nonce included (it is an HMAC
of the state), but the state's tie to this browser is left to the platform's storage, which
only a page in the browser can read (``app.launch.endpoints``).
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import jwt
import requests
from pylti1p3.exception import LtiException
from pylti1p3.message_launch import MessageLaunch, TLaunchData
from sqlalchemy.orm import Session

from app.identity.models import Role
from app.platforms.models import PlatformRecord
from lti.adapters import (
    COOKIE_PREFIX,
    CollectingCookieService,
    DatabaseToolConf,
    ParamsRequest,
    StatelessSessionService,
    registration_for,
)
from lti.errors import LaunchRefused, refusal_for_status
from lti.login import nonce_for_state, url_origin
from lti.platform_keys import PlatformKeyCache
from lti.roles import map_roles

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
MESSAGE_TYPE = CLAIM + "message_type"
VERSION = CLAIM + "version"
DEPLOYMENT_ID = CLAIM + "deployment_id"
ROLES = CLAIM + "roles"
RESOURCE_LINK = CLAIM + "resource_link"
TARGET_LINK_URI = CLAIM + "target_link_uri"
CONTEXT = CLAIM + "context"
CUSTOM = CLAIM + "custom"
PRESENTATION = CLAIM + "launch_presentation"
AGS_ENDPOINT = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DEEP_LINKING_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
RESOURCE_LINK_TYPE = "ltiResourceLink"  # the one content item type blend727 returns

RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
SUPPORTED_MESSAGES = {RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST}

MAX_ID_TOKEN_CHARS = 48 * 1024
MAX_ID_CHARS = 255  # LTI ids are "at most 255 ASCII characters" (LTI 1.3 §5.3.6, §5.4.1)


def clean_claims(value: Any) -> Any:
    """Make verified claims safe to store: drop NUL characters and lone surrogates, which
    JSON can carry but PostgreSQL text (and UTF-8 itself) cannot."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {clean_claims(k): clean_claims(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_claims(v) for v in value]
    return value


def _bad_identifier(value: Any) -> bool:
    """An LTI id must stay exactly what the platform sent: one with control characters or
    lone surrogates is refused, never cleaned into a different (possibly existing) id."""
    if not isinstance(value, str):
        return False
    if len(value) > MAX_ID_CHARS or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_identifiers(body: dict[str, Any]) -> None:
    for label, value in (
        ("sub", body.get("sub")),
        ("nonce", body.get("nonce")),
        ("deployment_id", body.get(DEPLOYMENT_ID)),
        ("context.id", _dict(body.get(CONTEXT)).get("id")),
        ("resource_link.id", _dict(body.get(RESOURCE_LINK)).get("id")),
    ):
        if _bad_identifier(value):
            raise LaunchRefused("malformed_token", f"{label} is not a usable identifier")


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class ValidatedLaunch:
    """Everything the application needs from a verified launch, as plain data."""

    platform_id: int
    deployment_pk: int
    client_id: str
    state: str
    nonce: str
    nonce_expires_at: datetime
    claims: Mapping[str, Any]
    role: Role
    #: origin of the platform's OIDC authorization endpoint (where storage messages go)
    platform_origin: str = ""

    @property
    def sub(self) -> str:
        return str(self.claims["sub"])

    @property
    def message_type(self) -> str:
        return str(self.claims[MESSAGE_TYPE])

    @property
    def roles(self) -> list[str]:
        return [r for r in self.claims.get(ROLES, []) if isinstance(r, str)]

    @property
    def name(self) -> str | None:
        return _str(self.claims.get("name"))

    @property
    def given_name(self) -> str | None:
        return _str(self.claims.get("given_name"))

    @property
    def family_name(self) -> str | None:
        return _str(self.claims.get("family_name"))

    @property
    def email(self) -> str | None:
        return _str(self.claims.get("email"))

    @property
    def context(self) -> dict[str, Any] | None:
        ctx = _dict(self.claims.get(CONTEXT))
        return ctx if _str(ctx.get("id")) else None

    @property
    def resource_link(self) -> dict[str, Any] | None:
        link = _dict(self.claims.get(RESOURCE_LINK))
        return link if _str(link.get("id")) else None

    @property
    def presentation(self) -> dict[str, Any]:
        return _dict(self.claims.get(PRESENTATION))

    @property
    def locale(self) -> str | None:
        return _str(self.presentation.get("locale"))

    @property
    def return_url(self) -> str | None:
        url = _str(self.presentation.get("return_url"))
        return url if url and url.startswith(("https://", "http://")) else None

    @property
    def custom(self) -> dict[str, Any]:
        return _dict(self.claims.get(CUSTOM))

    @property
    def ags_endpoint(self) -> dict[str, Any] | None:
        return _dict(self.claims.get(AGS_ENDPOINT)) or None

    @property
    def nrps_url(self) -> str | None:
        return _str(_dict(self.claims.get(NRPS)).get("context_memberships_url"))

    @property
    def deep_linking_settings(self) -> dict[str, Any] | None:
        return _dict(self.claims.get(DEEP_LINKING_SETTINGS)) or None


class _Launch(
    MessageLaunch[ParamsRequest, DatabaseToolConf, StatelessSessionService, CollectingCookieService]
):
    def __init__(
        self,
        request: ParamsRequest,
        tool_config: DatabaseToolConf,
        *,
        cookie_service: CollectingCookieService,
        key_cache: PlatformKeyCache,
        secret: str,
        leeway: int,
        max_age: int,
        http: requests.Session | None,
        state_in_storage: bool = False,
    ) -> None:
        super().__init__(
            request,
            tool_config,
            session_service=StatelessSessionService(request),
            cookie_service=cookie_service,
            requests_session=http,
        )
        self._key_cache = key_cache
        self._secret = secret
        self._leeway = leeway
        self._max_age = max_age
        self._state_in_storage = state_in_storage
        self._platform: PlatformRecord | None = None
        self._client_id: str | None = None
        self.nonce_expires_at: float = 0.0

    def _get_request_param(self, key: str) -> str:
        return self._request.get_param(key)

    def get_client_id(self) -> str:
        assert self._client_id is not None
        return self._client_id

    # -- the pipeline ----------------------------------------------------------------------
    def validate(self) -> _Launch:
        self._validated = True  # stop pylti1p3 from re-entering validate() via _get_jwt_body
        try:
            self._step("state", self.validate_state)
            self._step("format", self.validate_jwt_format)
            self.validate_registration()
            self.validate_jwt_signature()
            self.validate_nonce()
            self.validate_deployment()
            self.validate_message()
        except Exception:
            self._validated = False
            raise
        return self

    def _step(self, name: str, func: Any) -> None:
        try:
            func()
        except LaunchRefused:
            raise
        except LtiException as exc:
            message = str(exc)
            if name == "state":
                reason = "missing_parameters" if "Missing" in message else "state_mismatch"
            elif name == "format":
                reason = "missing_parameters" if "empty" in message else "malformed_token"
            elif name == "deployment":
                reason = "missing_claims" if "not set" in message else "unknown_deployment"
            else:
                reason = "missing_claims"
            raise LaunchRefused(reason, f"{name}: {message}") from exc

    def validate_state(self) -> _Launch:
        if self._state_in_storage:
            # The page that reads the platform's storage checks the state (see the module).
            if not self._get_request_param("state"):
                raise LaunchRefused("missing_parameters", "no state")
            return self
        super().validate_state()
        return self

    def validate_jwt_format(self) -> _Launch:
        if len(self._get_id_token()) > MAX_ID_TOKEN_CHARS:
            raise LaunchRefused("too_large", "id_token too long")
        super().validate_jwt_format()
        if not isinstance(self._jwt.get("header"), dict) or not isinstance(
            self._jwt.get("body"), dict
        ):
            raise LaunchRefused("malformed_token", "JWT header or body is not an object")
        return self

    def validate_registration(self) -> _Launch:
        # Lookups happen before the signature check, so the unverified body is cleaned too.
        body = clean_claims(self._jwt["body"])
        iss = _str(body.get("iss"))
        if iss is None:
            raise LaunchRefused("missing_claims", "no iss")
        aud = body.get("aud")
        if isinstance(aud, str) and aud:
            audiences = [aud]
        elif isinstance(aud, list) and aud and all(isinstance(a, str) and a for a in aud):
            audiences = list(aud)
        else:
            raise LaunchRefused("missing_claims", "no usable aud")
        azp = body.get("azp")
        known = self._tool_config.client_ids_for(iss)
        if not known:
            raise LaunchRefused("unknown_platform", f"issuer {iss!r} not registered")
        if len(audiences) == 1:
            client_id = audiences[0]
            if azp is not None and azp != client_id:
                raise LaunchRefused("wrong_audience", f"azp {azp!r} != aud {client_id!r}")
        else:
            if not isinstance(azp, str) or azp not in audiences:
                raise LaunchRefused("wrong_audience", "several audiences and no matching azp")
            untrusted = set(audiences) - known
            if untrusted:
                raise LaunchRefused("wrong_audience", f"untrusted audiences {sorted(untrusted)}")
            client_id = azp
        if client_id not in known:
            raise LaunchRefused("wrong_audience", f"aud {client_id!r} is not our client id")
        platform = self._tool_config.platform_for(iss, client_id)
        assert platform is not None
        if not platform.active:
            reason = refusal_for_status(platform.status)
            raise LaunchRefused(reason, f"platform {platform.id} {platform.status}")
        self._platform = platform
        self._client_id = client_id
        self._registration = registration_for(platform)
        return self

    def validate_jwt_signature(self) -> _Launch:
        assert self._platform is not None and self._client_id is not None
        header = self._jwt["header"]
        if header.get("alg") != "RS256":
            raise LaunchRefused("bad_signature", f"alg {header.get('alg')!r} refused")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise LaunchRefused("unknown_key", "no kid in JWT header")
        key = self._key_cache.get(self._platform.keyset_url, kid)
        try:
            payload = jwt.decode(
                self._get_id_token(),
                key.key,
                algorithms=["RS256"],
                audience=self._client_id,
                issuer=self._platform.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError) as exc:
            raise LaunchRefused("expired", str(exc)) from exc
        except jwt.InvalidAudienceError as exc:
            raise LaunchRefused("wrong_audience", str(exc)) from exc
        except jwt.InvalidIssuerError as exc:
            raise LaunchRefused("unknown_platform", str(exc)) from exc
        except jwt.MissingRequiredClaimError as exc:
            raise LaunchRefused("missing_claims", str(exc)) from exc
        except jwt.InvalidSignatureError as exc:
            raise LaunchRefused("bad_signature", str(exc)) from exc
        except jwt.InvalidTokenError as exc:
            raise LaunchRefused("malformed_token", str(exc)) from exc
        iat, exp = payload.get("iat"), payload.get("exp")
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            raise LaunchRefused("malformed_token", "iat/exp not numeric")
        now = time.time()
        if iat < now - self._max_age - self._leeway:
            raise LaunchRefused("expired", f"iat {iat} older than {self._max_age}s")
        self.nonce_expires_at = min(exp, iat + self._max_age) + self._leeway
        _check_identifiers(payload)
        # From here on: the verified claims (not the unverified parse), made storable.
        self._jwt["body"] = cast(TLaunchData, clean_claims(payload))
        return self

    def validate_nonce(self) -> _Launch:
        assert self._platform is not None and self._client_id is not None
        nonce = self._jwt["body"].get("nonce")
        if not isinstance(nonce, str) or not nonce:
            raise LaunchRefused("missing_claims", "no nonce")
        expected = nonce_for_state(
            self._secret, self._get_request_param("state"), self._platform.issuer, self._client_id
        )
        if not hmac.compare_digest(nonce.encode(), expected.encode()):
            raise LaunchRefused("bad_nonce", "nonce does not match the state")
        return self

    def validate_deployment(self) -> _Launch:
        deployment_id = _str(self._jwt["body"].get(DEPLOYMENT_ID))
        if deployment_id is None:
            raise LaunchRefused("missing_claims", "no deployment_id")
        if len(deployment_id) > MAX_ID_CHARS:
            raise LaunchRefused("unknown_deployment", "deployment_id too long")
        self._step("deployment", super().validate_deployment)
        return self

    def validate_message(self) -> _Launch:
        body = self._jwt["body"]
        version = body.get(VERSION)
        if version is None:
            raise LaunchRefused("missing_claims", "no version claim")
        if version != "1.3.0":
            raise LaunchRefused("wrong_version", f"version {version!r}")
        message_type = body.get(MESSAGE_TYPE)
        if not _str(message_type):
            raise LaunchRefused("missing_claims", "no message_type")
        if message_type not in SUPPORTED_MESSAGES:
            raise LaunchRefused("wrong_message_type", f"message type {message_type!r}")
        if not _str(body.get("sub")):
            raise LaunchRefused("missing_claims", "no sub")
        roles = body.get(ROLES)
        if not isinstance(roles, list):
            raise LaunchRefused("missing_claims", "roles claim missing or not a list")
        if CONTEXT in body and not _str(_dict(body.get(CONTEXT)).get("id")):
            raise LaunchRefused("missing_claims", "context claim without id")
        if message_type == RESOURCE_LINK_REQUEST:
            if not _str(_dict(body.get(RESOURCE_LINK)).get("id")):
                raise LaunchRefused("missing_claims", "no resource_link.id")
            if not _str(body.get(TARGET_LINK_URI)):
                raise LaunchRefused("missing_claims", "no target_link_uri")
        if message_type == DEEP_LINKING_REQUEST:
            settings = _dict(body.get(DEEP_LINKING_SETTINGS))
            if not _str(settings.get("deep_link_return_url")):
                raise LaunchRefused("missing_claims", "no deep_link_return_url")
            accept_types = settings.get("accept_types")
            # a list without resource links is a request we cannot serve, not a broken one
            # (pylti1p3 would call it a missing claim); no list at all is left to pylti1p3
            if isinstance(accept_types, list) and RESOURCE_LINK_TYPE not in accept_types:
                raise LaunchRefused("deep_link_types", f"accept_types {accept_types!r}"[:500])
        self._step("message", super().validate_message)
        return self


def validate_launch(
    session: Session,
    params: Mapping[str, str],
    cookies: Mapping[str, str],
    *,
    key_cache: PlatformKeyCache,
    secret: str,
    leeway: int,
    max_age: int = 3600,
    secure: bool = False,
    allow_demo: bool = False,
    http: requests.Session | None = None,
    state_in_storage: bool = False,
) -> ValidatedLaunch:
    """Verify a launch; raise ``LaunchRefused`` with the reason, having written nothing.

    ``state_in_storage``: do not look for the state cookie; the caller has the state checked
    against the platform's storage instead (see the module's docstring)."""
    if not params.get("id_token"):
        raise LaunchRefused("missing_parameters", "no id_token")
    if not params.get("state"):
        raise LaunchRefused("missing_parameters", "no state")
    request = ParamsRequest(params, secure=secure)
    conf = DatabaseToolConf(session, allow_demo=allow_demo)
    launch = _Launch(
        request,
        conf,
        cookie_service=CollectingCookieService(cookies),
        key_cache=key_cache,
        secret=secret,
        leeway=leeway,
        max_age=max_age,
        http=http,
        state_in_storage=state_in_storage,
    )
    try:
        launch.validate()
    except LaunchRefused:
        raise
    except (LtiException, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise LaunchRefused("malformed_token", f"{type(exc).__name__}: {exc}") from exc
    assert launch._platform is not None and conf.deployment_pk is not None
    claims = dict(launch._jwt["body"])
    return ValidatedLaunch(
        platform_id=launch._platform.id,
        deployment_pk=conf.deployment_pk,
        client_id=launch.get_client_id(),
        state=params["state"],
        nonce=str(claims["nonce"]),
        nonce_expires_at=datetime.fromtimestamp(launch.nonce_expires_at, UTC),
        claims=claims,
        role=map_roles(roles if isinstance(roles := claims.get(ROLES), list) else []),
        platform_origin=url_origin(launch._platform.auth_login_url),
    )


def state_cookie_name(state: str) -> str:
    return COOKIE_PREFIX + state
