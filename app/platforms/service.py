"""Registering platforms: validation of what an administrator types or pastes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from app.core.errors import Conflict, NotFound, ValidationFailed
from app.platforms.models import Deployment, Platform, PlatformStatus
from app.platforms.repository import PlatformRepository


@dataclass(frozen=True)
class PlatformInput:
    issuer: str
    client_id: str
    auth_login_url: str
    token_url: str
    keyset_url: str
    deployment_ids: Sequence[str]
    name: str = ""
    auth_audience: str | None = None
    is_demo: bool = False


def _check_url(field: str, value: str, *, allow_http: bool = True) -> str:
    value = value.strip()
    parts = urlsplit(value)
    schemes = {"https", "http"} if allow_http else {"https"}
    if parts.scheme not in schemes or not parts.netloc:
        raise ValidationFailed(
            "%(field)s must be an absolute http(s) URL, got %(value)r",
            params={"field": field, "value": value},
        )
    return value


def validate_input(data: PlatformInput) -> PlatformInput:
    """Plain checks before anything is written; the first failure names its field."""
    issuer = data.issuer.strip()
    if not issuer:
        raise ValidationFailed("%(field)s is required", params={"field": "issuer"})
    client_id = data.client_id.strip()
    if not client_id:
        raise ValidationFailed("%(field)s is required", params={"field": "client_id"})
    deployment_ids = [d.strip() for d in data.deployment_ids if d.strip()]
    if not deployment_ids:
        raise ValidationFailed("%(field)s is required", params={"field": "deployment_id"})
    for field_name, value in (("issuer", issuer), ("client_id", client_id)):
        if len(value) > (512 if field_name == "issuer" else 255):
            raise ValidationFailed("%(field)s is too long", params={"field": field_name})
    return PlatformInput(
        issuer=issuer,
        client_id=client_id,
        auth_login_url=_check_url("auth_login_url", data.auth_login_url),
        token_url=_check_url("token_url", data.token_url),
        keyset_url=_check_url("keyset_url", data.keyset_url),
        deployment_ids=list(dict.fromkeys(deployment_ids)),
        name=data.name.strip(),
        auth_audience=(data.auth_audience or "").strip() or None,
        is_demo=data.is_demo,
    )


class PlatformService:
    def __init__(self, session: Session) -> None:
        self.repo = PlatformRepository(session)

    def register(self, data: PlatformInput, *, update: bool = False) -> Platform:
        """Add a platform with its deployments, or (``update``) add deployments and refresh
        the endpoints of an existing issuer + client id."""
        data = validate_input(data)
        existing = self.repo.by_issuer_and_client(data.issuer, data.client_id)
        if existing is not None and not update:
            raise Conflict(
                "A platform with issuer %(issuer)s and client id %(client_id)s is already "
                "registered",
                params={"issuer": data.issuer, "client_id": data.client_id},
            )
        platform = existing or Platform(issuer=data.issuer, client_id=data.client_id)
        platform.name = data.name or platform.name or data.issuer
        platform.auth_login_url = data.auth_login_url
        platform.token_url = data.token_url
        platform.keyset_url = data.keyset_url
        platform.auth_audience = data.auth_audience
        platform.is_demo = data.is_demo
        if existing is None:
            platform.status = PlatformStatus.ACTIVE
            self.repo.add(platform)
        for dep_id in data.deployment_ids:
            if self.repo.deployment(platform.id, dep_id) is None:
                self.repo.add_deployment(Deployment(platform_id=platform.id, deployment_id=dep_id))
        return platform

    def set_status(self, platform_id: int, status: PlatformStatus) -> Platform:
        platform = self.repo.get(platform_id)
        if platform is None:
            raise NotFound()
        platform.status = status
        return platform

    def list(self) -> Sequence[Platform]:
        return self.repo.list_with_deployments()
