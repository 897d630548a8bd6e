"""FastAPI adapters for pylti1p3: request, cookies, session, redirect and tool configuration.

pylti1p3 ships Django and Flask adapters only. Ours are deliberately thin: request
parameters are read by the endpoint (with a size cap) and handed over as a dict; cookies to
set are collected and applied to the response by the caller; nothing is kept in a server
session before the id_token's signature is verified (see ``lti.launch``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pylti1p3.cookie import CookieService
from pylti1p3.deployment import Deployment as LibDeployment
from pylti1p3.redirect import Redirect
from pylti1p3.registration import Registration
from pylti1p3.request import Request
from pylti1p3.session import SessionService
from pylti1p3.tool_config.abstract import ToolConfAbstract
from sqlalchemy.orm import Session

from app.platforms.models import PlatformRecord
from app.platforms.repository import PlatformRepository

COOKIE_PREFIX = "blend727-lti-"


class ParamsRequest(Request):
    """Query + form parameters already read (and size-checked) by the endpoint."""

    def __init__(self, params: Mapping[str, str], *, secure: bool) -> None:
        self._params = dict(params)
        self._secure = secure

    @property
    def session(self) -> dict[str, Any]:
        return {}

    def is_secure(self) -> bool:
        return self._secure

    def get_param(self, key: str) -> str:
        return self._params.get(key, "")


@dataclass
class CookieToSet:
    name: str
    value: str
    max_age: int | None


class CollectingCookieService(CookieService):
    """Reads the request's cookies; records the ones pylti1p3 wants set.

    Names are prefixed ``blend727-lti-`` so they never clash with Moodle's ``MoodleSession``
    when tool and LMS share a host.
    """

    _cookie_prefix = COOKIE_PREFIX

    def __init__(self, cookies: Mapping[str, str]) -> None:
        self._cookies = cookies
        self.to_set: list[CookieToSet] = []

    def get_cookie(self, name: str) -> str | None:
        return self._cookies.get(self._cookie_prefix + name)

    def set_cookie(self, name: str, value: str | int, exp: int | None = 3600) -> None:
        self.to_set.append(CookieToSet(self._cookie_prefix + name, str(value), exp))


class StatelessSessionService(SessionService):
    """pylti1p3's session service, storing nothing.

    The nonce is derived from the state (``lti.login.nonce_for_state``), so login writes no
    row; the launch consumes the nonce in the database only after the signature check.
    """

    def __init__(self, request: Request) -> None:
        super().__init__(request)

    def save_nonce(self, nonce: str) -> None:
        return None

    def check_nonce(self, nonce: str) -> bool:  # pragma: no cover - validate_nonce is ours
        return False

    def save_state_params(self, state: str, params: dict[str, object]) -> None:
        return None

    def get_state_params(self, state: str) -> dict[str, object]:
        return {}

    def set_state_valid(self, state: str, id_token_hash: str) -> None:
        return None

    def check_state_is_valid(self, state: str, id_token_hash: str) -> bool:
        return False

    def save_launch_data(self, key: str, jwt_body: Mapping[str, Any]) -> None:
        return None


class UrlRedirect(Redirect[str]):
    """Carries the URL; the endpoint turns it into a 302."""

    def __init__(self, location: str) -> None:
        self._location = location

    def do_redirect(self) -> str:
        return self._location

    def do_js_redirect(self) -> str:
        return self._location

    def set_redirect_url(self, location: str) -> None:
        self._location = location

    def get_redirect_url(self) -> str:
        return self._location


def registration_for(
    platform: PlatformRecord, tool_private_key_pem: str | None = None
) -> Registration:
    reg = (
        Registration()
        .set_issuer(platform.issuer)
        .set_client_id(platform.client_id)
        .set_key_set_url(platform.keyset_url)
        .set_auth_token_url(platform.token_url)
        .set_auth_login_url(platform.auth_login_url)
    )
    if platform.auth_audience:
        reg.set_auth_audience(platform.auth_audience)
    if tool_private_key_pem:
        reg.set_tool_private_key(tool_private_key_pem)
    return reg


class DatabaseToolConf(ToolConfAbstract[ParamsRequest]):
    """Registrations from the ``platform``/``deployment`` tables, many per issuer.

    Lookups are remembered for the life of one request (the object is per request), so
    pylti1p3's repeated calls cost one query each.
    """

    def __init__(self, session: Session, *, allow_demo: bool = False) -> None:
        super().__init__()
        self.issuers_relation_types = {}
        self._allow_demo = allow_demo
        self._repo = PlatformRepository(session)
        self._by_issuer: dict[str, list[PlatformRecord]] = {}
        self._deployments: dict[tuple[int, str], int | None] = {}
        self.matched: PlatformRecord | None = None
        self.deployment_pk: int | None = None

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def _platforms_of(self, iss: str) -> list[PlatformRecord]:
        """Every registration of an issuer, one query per request however often asked."""
        found = self._by_issuer.get(iss)
        if found is None:
            found = [
                p
                for p in self._repo.records_by_issuer(iss)
                # the demonstration platform exists only while the demo runs
                if self._allow_demo or not p.is_demo
            ]
            self._by_issuer[iss] = found
        return found

    def platform_for(self, iss: str, client_id: str | None) -> PlatformRecord | None:
        candidates = self._platforms_of(iss)
        if client_id:
            return next((p for p in candidates if p.client_id == client_id), None)
        # Without a client_id the issuer must name exactly one registration.
        return candidates[0] if len(candidates) == 1 else None

    def client_ids_for(self, iss: str) -> set[str]:
        return {p.client_id for p in self._platforms_of(iss)}

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Registration:
        raise NotImplementedError("blend727 always looks registrations up by issuer + client")

    def find_registration_by_params(  # type: ignore[override]
        self, iss: str, client_id: str | None, *args: Any, **kwargs: Any
    ) -> Registration | None:
        platform = self.platform_for(iss, client_id)
        if platform is None:
            return None
        self.matched = platform
        return registration_for(platform)

    def find_deployment(self, iss: str, deployment_id: str) -> LibDeployment | None:
        raise NotImplementedError

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str, *args: Any, **kwargs: Any
    ) -> LibDeployment | None:
        platform = self.platform_for(iss, client_id)
        if platform is None:
            return None
        key = (platform.id, deployment_id)
        if key not in self._deployments:
            self._deployments[key] = self._repo.deployment_pk(platform.id, deployment_id)
        pk = self._deployments[key]
        if pk is None:
            return None
        self.deployment_pk = pk
        return LibDeployment().set_deployment_id(deployment_id)
