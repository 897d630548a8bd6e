"""Registering platforms: validation of what an administrator types or pastes, dynamic
registration (LTI-DR) with its approval and one-time invitations."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy.orm import Session

from app.audit.rules import REGISTRATION, Actor, Subject
from app.audit.service import AuditLog
from app.core.db import Database
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.core.i18n import SUPPORTED_LOCALES, gettext
from app.core.time import utcnow
from app.platforms.models import Deployment, Platform, PlatformInvitation, PlatformStatus
from app.platforms.repository import PlatformRepository
from lti.errors import RegistrationRefused
from lti.registration import (
    DEEP_LINKING_REQUEST,
    RESOURCE_LINK_REQUEST,
    PlatformConfiguration,
    RegisteredTool,
    ToolDescription,
    ToolMessage,
    fetch_platform_configuration,
    register_tool,
    registration_request,
)

log = logging.getLogger("blend727.platforms")


def N_(message: str) -> str:
    """Marks a message id for extraction; translated where it is shown."""
    return message


#: The tool as the LMS lists it (the footer's own words) and what it says about itself.
TOOL_NAME = "blend727 · 7-2-7 blended in-service teacher training"
TOOL_DESCRIPTION = N_(
    "Self-study, in-person days and follow-up of the 7-2-7 teacher training modules, with "
    "attendance, results and certificates."
)
LAUNCH_LABEL = N_("blend727 — 7-2-7 training")
DEEP_LINKING_LABEL = N_("Add a 7-2-7 training module")

#: Registrations without an invitation waiting for approval; beyond this, new ones are
#: refused (anyone can point a registration at the tool).
MAX_PENDING_PLATFORMS = 50
MAX_INVITATION_HOURS = 24 * 90
MAX_TOKEN_CHARS = 8192


def lti_endpoints(base_url: str) -> dict[str, str]:
    """The URLs an administrator pastes into the LMS; stable across versions."""
    base = base_url.rstrip("/")
    return {
        "tool_url": f"{base}/lti/launch",
        "login_url": f"{base}/lti/login",
        "redirect_uri": f"{base}/lti/launch",
        "jwks_url": f"{base}/lti/jwks.json",
        "deep_linking_url": f"{base}/lti/launch",
        "registration_url": f"{base}/lti/register",
        "domain": base.split("://", 1)[-1].split("/", 1)[0],
    }


def tool_description(base_url: str) -> ToolDescription:
    """What blend727 tells an LMS about itself, Vietnamese first."""
    urls = lti_endpoints(base_url)

    def localized(message: str) -> dict[str, str]:
        return {locale: gettext(locale, message) for locale in SUPPORTED_LOCALES}

    return ToolDescription(
        login_url=urls["login_url"],
        launch_url=urls["tool_url"],
        jwks_url=urls["jwks_url"],
        domain=urls["domain"],
        names=localized(TOOL_NAME),
        descriptions=localized(TOOL_DESCRIPTION),
        messages=[
            ToolMessage(RESOURCE_LINK_REQUEST, urls["tool_url"], localized(LAUNCH_LABEL)),
            ToolMessage(
                DEEP_LINKING_REQUEST, urls["deep_linking_url"], localized(DEEP_LINKING_LABEL)
            ),
        ],
        # A class is named per activity (``class_code``, set by deep linking), so the tool
        # itself needs no custom parameter.
        custom_parameters={},
    )


def moodle_form(base_url: str) -> dict[str, Any]:
    """Moodle's "configure a tool manually" form, by its field names."""
    urls = lti_endpoints(base_url)
    return {
        "lti_toolurl": urls["tool_url"],
        "lti_ltiversion": "1.3.0",
        "lti_keytype": "JWK_KEYSET",
        "lti_publickeyset": urls["jwks_url"],
        "lti_initiatelogin": urls["login_url"],
        "lti_redirectionuris": urls["redirect_uri"],
        "lti_contentitem": True,
        "lti_toolurl_ContentItemSelectionRequest": urls["deep_linking_url"],
        "lti_tooldomain": urls["domain"],
    }


def invitation_hash(token: str) -> str:
    """Invitation tokens are 192 random bits, so a plain SHA-256 is enough to store."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


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


def _facts(platform: Platform) -> dict[str, Any]:
    """What the audit log keeps of a registration (addresses are public; no secrets)."""
    return {
        "name": platform.name,
        "issuer": platform.issuer,
        "client_id": platform.client_id,
        "auth_login_url": platform.auth_login_url,
        "token_url": platform.token_url,
        "keyset_url": platform.keyset_url,
        "status": platform.status,
    }


class PlatformService:
    """Registrations are the installation's: their audit events carry no tenant, and the
    actor is the operator at the command line unless ``actor`` says otherwise."""

    def __init__(self, session: Session, actor: Actor | None = None) -> None:
        self.repo = PlatformRepository(session)
        self.actor = actor or Actor.operator()

    def _log(
        self,
        action: str,
        platform: Platform,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        installation = Actor(self.actor.label, self.actor.user_id)  # never a tenant's event
        subject = Subject("platform", platform.id, platform.name or platform.issuer)
        AuditLog(self.repo.session).record(installation, action, subject, before, after)

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
        before = _facts(platform) if existing is not None else None
        deployments_before = (
            {d.deployment_id for d in self.repo.deployments_of(platform.id)} if existing else set()
        )
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
        added = sorted(set(data.deployment_ids) - deployments_before)
        if before is None:
            self._log(
                "platform.register", platform, None, {**_facts(platform), "deployments": added}
            )
        else:
            after = {**_facts(platform), **({"deployments": added} if added else {})}
            if any(before.get(k) != v for k, v in after.items()):
                self._log("platform.update", platform, before, after)
        return platform

    def set_status(self, platform_id: int, status: PlatformStatus) -> Platform:
        platform = self.repo.get(platform_id)
        if platform is None:
            raise NotFound()
        if platform.status != status:
            action = "platform.disable" if status == PlatformStatus.DISABLED else "platform.enable"
            self._log(action, platform, {"status": platform.status}, {"status": status})
        platform.status = status
        return platform

    def list(self) -> Sequence[Platform]:
        return self.repo.list_with_deployments()

    # -- dynamic registration ------------------------------------------------------------
    def approve(self, platform_id: int) -> Platform:
        """Let a platform that registered itself launch; approving an active one is a no-op."""
        platform = self.repo.get(platform_id)
        if platform is None:
            raise NotFound()
        if platform.status == PlatformStatus.DISABLED:
            raise Conflict(
                "Platform %(id)s is disabled, not waiting for approval; enable it with "
                "blend727 platform enable %(id)s",
                params={"id": platform_id},
            )
        if platform.status != PlatformStatus.ACTIVE:
            before, after = {"status": platform.status}, {"status": PlatformStatus.ACTIVE}
            self._log("platform.approve", platform, before, after)
        platform.status = PlatformStatus.ACTIVE
        return platform

    def reject(self, platform_id: int) -> Platform:
        """Delete a registration that is waiting for approval (it never launched)."""
        platform = self.repo.get(platform_id)
        if platform is None:
            raise NotFound()
        if platform.status != PlatformStatus.PENDING:
            raise Conflict(
                "Only a platform waiting for approval can be rejected; platform %(id)s is "
                "%(status)s",
                params={"id": platform_id, "status": platform.status},
            )
        self._log("platform.reject", platform, _facts(platform), None)
        self.repo.session.expunge(platform)
        self.repo.delete(platform_id)
        return platform

    def invite(
        self, *, name: str = "", expires_hours: int = 72, now: datetime | None = None
    ) -> tuple[str, PlatformInvitation]:
        """A one-time invitation; returns the token (shown once, never stored) and the row."""
        if not 1 <= expires_hours <= MAX_INVITATION_HOURS:
            raise ValidationFailed(
                "%(field)s must be between 1 and %(max)s hours",
                params={"field": "expires_hours", "max": MAX_INVITATION_HOURS},
            )
        now = now or utcnow()
        token = secrets.token_urlsafe(24)
        invitation = self.repo.add_invitation(
            PlatformInvitation(
                token_hash=invitation_hash(token),
                name=name.strip()[:255],
                created_at=now,
                expires_at=now + timedelta(hours=expires_hours),
            )
        )
        AuditLog(self.repo.session).record(  # never the token, nor its hash
            Actor(self.actor.label, self.actor.user_id),
            "platform.invite",
            Subject("invitation", invitation.id, invitation.name or None),
            None,
            {"name": invitation.name, "expires_at": invitation.expires_at},
        )
        return token, invitation

    def open_invitations(self, now: datetime | None = None) -> Sequence[PlatformInvitation]:
        return self.repo.open_invitations(now or utcnow())

    def check_invitation(self, token: str, now: datetime | None = None) -> PlatformInvitation:
        now = now or utcnow()
        invitation = (
            self.repo.invitation_by_hash(invitation_hash(token)) if len(token) <= 128 else None
        )
        if invitation is None or invitation.used_at is not None or invitation.expires_at <= now:
            raise RegistrationRefused(
                "invitation_invalid",
                "This invitation is unknown, has expired or has already been used. Ask the "
                "administrator of blend727 for a new one.",
                status_code=403,
            )
        return invitation

    def store_registration(
        self,
        config: PlatformConfiguration,
        registered: RegisteredTool,
        *,
        invite: str | None = None,
        now: datetime | None = None,
    ) -> RegistrationOutcome:
        """Store what a dynamic registration produced. A new platform is active when a valid
        invitation came with it, pending otherwise; registering the same issuer and client
        again refreshes its endpoints and adds the deployment, keeping its status (an
        invitation still lifts it out of pending, never out of disabled)."""
        now = now or utcnow()
        invitation = self.repo.claim_invitation(invitation_hash(invite), now) if invite else None
        existing = self.repo.by_issuer_and_client(config.issuer, registered.client_id)
        platform = existing or Platform(
            issuer=config.issuer,
            client_id=registered.client_id,
            status=PlatformStatus.ACTIVE if invitation else PlatformStatus.PENDING,
            is_demo=False,
        )
        host = urlsplit(config.issuer).netloc
        default_name = (
            f"{host} ({config.product_family_code})" if config.product_family_code else host
        )
        before = _facts(existing) if existing is not None else None
        invited_name = invitation.name if invitation else ""
        platform.name = (invited_name or platform.name or default_name)[:255]
        platform.auth_login_url = config.authorization_endpoint
        platform.token_url = config.token_endpoint
        platform.keyset_url = config.jwks_uri
        platform.auth_audience = config.authorization_server
        if existing is None:
            self.repo.add(platform)
        elif invitation and platform.status == PlatformStatus.PENDING:
            platform.status = PlatformStatus.ACTIVE
        deployment = registered.deployment_id
        if deployment and self.repo.deployment(platform.id, deployment) is None:
            self.repo.add_deployment(Deployment(platform_id=platform.id, deployment_id=deployment))
        if invitation is not None:
            invitation.platform_id = platform.id
        self.repo.session.flush()
        after = {
            **_facts(platform),
            "deployment_id": deployment,
            "invitation": invitation.id if invitation is not None else None,
        }
        self._log(
            "platform.register" if before is None else "platform.update", platform, before, after
        )
        return RegistrationOutcome(
            platform_id=platform.id,
            name=platform.name,
            issuer=platform.issuer,
            client_id=platform.client_id,
            deployment_id=deployment,
            status=platform.status,
            created=existing is None,
            invited=invitation is not None,
            invitation_taken=bool(invite) and invitation is None,
            moodle=config.is_moodle,
        )


@dataclass(frozen=True)
class RegistrationOutcome:
    platform_id: int
    name: str
    issuer: str
    client_id: str
    deployment_id: str | None
    status: str
    created: bool  # False: the same issuer and client were registered before
    invited: bool  # a valid invitation came with it
    invitation_taken: bool  # an invitation came, but another registration used it first
    moodle: bool


class DynamicRegistrationService:
    """LTI Advantage Dynamic Registration end to end: the network exchange with the platform
    happens outside any transaction (a slow LMS must not hold the database), then the result
    is stored in one unit of work. A failure anywhere stores nothing."""

    def __init__(
        self,
        database: Database,
        http: requests.Session,
        *,
        base_url: str,
        allow_http_loopback: bool = False,
        max_pending: int = MAX_PENDING_PLATFORMS,
    ) -> None:
        self.database = database
        self.http = http
        self.base_url = base_url
        self.allow_http_loopback = allow_http_loopback
        self.max_pending = max_pending

    def register(
        self, *, openid_configuration: str, registration_token: str = "", invite: str = ""
    ) -> RegistrationOutcome:
        if not openid_configuration.strip():
            raise RegistrationRefused(
                "registration_incomplete",
                "This address starts a registration only when an LMS opens it with its "
                "configuration (openid_configuration). In Moodle, paste it into “Tool URL” "
                "under Manage tools and choose “Add LTI Advantage”.",
            )
        if len(registration_token) > MAX_TOKEN_CHARS:
            raise RegistrationRefused(
                "registration_incomplete",
                "The registration link is damaged: %(field)s is too long.",
                params={"field": "registration_token"},
            )
        invite = invite.strip()
        # Cheap refusals first, before the tool sends anything anywhere.
        with self.database.session(readonly=True) as session:
            service = PlatformService(session)
            if invite:
                service.check_invitation(invite)
            elif service.repo.count_pending() >= self.max_pending:
                raise RegistrationRefused(
                    "too_many_pending",
                    "Too many registrations are waiting for approval by the administrator of "
                    "blend727. Try again once they have been handled, or ask for an "
                    "invitation.",
                    status_code=503,
                )
        config = fetch_platform_configuration(
            self.http, openid_configuration.strip(), allow_http_loopback=self.allow_http_loopback
        )
        body = registration_request(tool_description(self.base_url), config)
        registered = register_tool(self.http, config, body, registration_token.strip() or None)
        with self.database.session() as session:
            actor = Actor.system(None, None, REGISTRATION)
            outcome = PlatformService(session, actor).store_registration(
                config, registered, invite=invite or None
            )
        log.info(
            "platform registered dynamically",
            extra={
                "platform_id": outcome.platform_id,
                "issuer": outcome.issuer,
                "status": outcome.status,
                "created": outcome.created,
            },
        )
        return outcome


# -- platform values from a JSON file (``blend727 platform add --from-json``) ----------------

#: Accepted keys (compared lower-case, spaces and hyphens as underscores) for each value:
#: ours, pylti1p3's, the OpenID names, and the labels of Moodle's "Tool configuration details".
_JSON_ALIASES: dict[str, tuple[str, ...]] = {
    "issuer": ("issuer", "iss", "platform_id"),
    "client_id": ("client_id", "clientid"),
    "deployment_ids": ("deployment_id", "deployment_ids", "deployments"),
    "auth_login_url": (
        "auth_login_url",
        "authentication_request_url",
        "authorization_endpoint",
    ),
    "token_url": ("token_url", "access_token_url", "auth_token_url", "token_endpoint"),
    "keyset_url": ("keyset_url", "public_keyset_url", "key_set_url", "jwks_uri", "jwks_url"),
    "name": ("name",),
    "auth_audience": ("auth_audience", "authorization_server"),
}
_MOODLE_LABELS = {
    "issuer": "Platform ID",
    "client_id": "Client ID",
    "deployment_ids": "Deployment ID",
    "auth_login_url": "Authentication request URL",
    "token_url": "Access token URL",
    "keyset_url": "Public keyset URL",
}
_KEY_TO_FIELD = {alias: name for name, aliases in _JSON_ALIASES.items() for alias in aliases}


def _json_key(key: str) -> str:
    return re.sub(r"[\s\-]+", "_", key.strip().lower())


def _text(label: str, value: Any, *, numbers: bool = False) -> str:
    if isinstance(value, str):
        return value
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValidationFailed("%(field)s must be text", params={"field": label})


def platform_input_from_json(text: str) -> PlatformInput:
    """A platform's values from JSON, in our names or Moodle's; the first problem names its
    field. Keys that mean nothing here are ignored."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValidationFailed(
            "The file is not valid JSON: %(error)s", params={"error": str(exc)}
        ) from exc
    if not isinstance(data, dict):
        raise ValidationFailed("The file must hold one JSON object with the platform's values")
    found: dict[str, tuple[str, Any]] = {}
    for key, raw in data.items():
        name = _KEY_TO_FIELD.get(_json_key(str(key)))
        if name is None:
            continue
        if name in found and found[name][1] != raw:
            raise ValidationFailed(
                "%(field)s is given twice with different values",
                params={"field": f"{found[name][0]} / {key}"},
            )
        found[name] = (str(key), raw)

    def label(name: str) -> str:
        if name in found:
            return found[name][0]
        moodle = _MOODLE_LABELS.get(name)
        return f"{name} (“{moodle}”)" if moodle else name

    def value(name: str, *, numbers: bool = False) -> str:
        if name not in found or found[name][1] is None:
            return ""
        return _text(label(name), found[name][1], numbers=numbers).strip()

    for required in ("issuer", "client_id", "auth_login_url", "token_url", "keyset_url"):
        if not value(required, numbers=required == "client_id"):
            raise ValidationFailed("%(field)s is required", params={"field": label(required)})
    raw_deployments = found.get("deployment_ids", ("", None))[1]
    items = raw_deployments if isinstance(raw_deployments, list) else [raw_deployments]
    deployments = [
        _text(label("deployment_ids"), item, numbers=True).strip()
        for item in items
        if item is not None
    ]
    if not any(deployments):
        raise ValidationFailed("%(field)s is required", params={"field": label("deployment_ids")})
    return PlatformInput(
        issuer=value("issuer"),
        client_id=value("client_id", numbers=True),
        auth_login_url=value("auth_login_url"),
        token_url=value("token_url"),
        keyset_url=value("keyset_url"),
        deployment_ids=[d for d in deployments if d],
        name=value("name"),
        auth_audience=value("auth_audience") or None,
    )
