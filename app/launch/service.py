"""What a verified launch writes: the nonce (consumed), the user, course, resource link,
membership and a web session — all in one transaction, so a refused launch writes nothing.

A launch confirmed through the platform's storage (its browser kept no cookie of ours inside
the LMS's iframe) also writes a one-time hand-off (``HandoffService``): it lets a new window,
where blend727's cookie is first-party, pick up the session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.audit.rules import Actor
from app.core.errors import AppError
from app.core.i18n import negotiate_locale
from app.core.time import utcnow
from app.identity.repository import IdentityRepository
from app.launch.repository import HandoffRepository, NonceRepository
from app.rosters.service import class_code_of, on_launch
from lti.errors import LaunchRefused
from lti.launch import ValidatedLaunch


def session_id_for(token: str) -> str:
    """Only a hash of the cookie token is stored: a leaked table signs no one in."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class LaunchOutcome:
    token: str
    session_id: str
    role: str
    locale: str
    message_type: str
    deployment_id: int = 0
    stale_rosters: tuple[int, ...] = ()


def _clip(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else value


def purge_expired(session: Session) -> tuple[int, int]:
    """Delete consumed nonces whose tokens have expired anyway, ended sessions and hand-offs
    nobody took (those are not counted)."""
    now = utcnow()
    HandoffRepository(session).purge(now)
    return NonceRepository(session).purge(now), IdentityRepository(session).purge_expired_sessions(
        now
    )


# -- the hand-off to a new window ------------------------------------------------------------

#: How long ``/lti/continue?h=…`` can be exchanged for the session cookie.
HANDOFF_SECONDS = 120
MAX_HANDOFF_CHARS = 64


class HandoffInvalid(AppError):
    status_code = 410
    code = "handoff_invalid"
    title = "This link no longer works"
    detail = "The link that carries your sign-in into a new window works once, within two minutes."
    advice = "Open blend727 again from your course in the LMS (Moodle)."


def _handoff_id(handoff: str) -> str:
    return hashlib.sha256(handoff.encode("ascii")).hexdigest()


def handoff_session_token(secret: str, handoff: str) -> str:
    """The session cookie a hand-off stands for: derived with the tool's secret, never stored."""
    mac = hmac.new(secret.encode(), f"handoff\x00{handoff}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Continuation:
    """What ``/lti/continue`` does: go to ``landing`` (setting ``set_token`` as the session
    cookie when given), or, when ``landing`` is None, ask for a new window."""

    landing: str | None
    set_token: str | None = None


class HandoffService:
    """One-time, short-lived, hashed hand-offs from a cookie-less launch to a new window.

    The hand-off token is a bearer credential for two minutes, used once; it travels in the
    URL of the frame and of the new window (both blend727's own origin) and nowhere else.
    """

    def __init__(self, session: Session, secret: str) -> None:
        self.repo = HandoffRepository(session)
        self.secret = secret

    @staticmethod
    def new() -> str:
        """A fresh hand-off token (the session cookie it stands for is ``session_token``)."""
        return secrets.token_urlsafe(32)

    def session_token(self, handoff: str) -> str:
        return handoff_session_token(self.secret, handoff)

    def add(self, handoff: str, session_id: str, landing: str) -> None:
        expires = utcnow() + timedelta(seconds=HANDOFF_SECONDS)
        self.repo.add(_handoff_id(handoff), session_id, landing, expires)

    def resolve(self, handoff: str, cookie: str | None, *, new_window: bool) -> Continuation:
        if not handoff or len(handoff) > MAX_HANDOFF_CHARS or not handoff.isascii():
            raise HandoffInvalid()
        token = self.session_token(handoff)
        key = _handoff_id(handoff)
        now = utcnow()
        if cookie and hmac.compare_digest(cookie.encode(), token.encode()):
            # The session cookie came back: this browser keeps it here. Burn the hand-off.
            found = self.repo.take(key, now)
            return Continuation(landing=found[1] if found else "/")
        if new_window:
            found = self.repo.take(key, now)
            if found is None:
                raise HandoffInvalid()
            return Continuation(landing=found[1], set_token=token)
        if self.repo.find(key, now) is None:
            raise HandoffInvalid()
        return Continuation(landing=None)


def launch_label(launch: ValidatedLaunch) -> str:
    """The launching person's name as pages show it (``User.display_name``)."""
    if launch.name:
        return launch.name
    parts = [p for p in (launch.family_name, launch.given_name) if p]
    return " ".join(parts) if parts else f"#{launch.sub}"


class LaunchService:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.identity = IdentityRepository(session)
        self.nonces = NonceRepository(session)

    def complete(
        self,
        launch: ValidatedLaunch,
        *,
        lifetime_seconds: int,
        default_locale: str,
        token: str | None = None,
    ) -> LaunchOutcome:
        """Write the launch. ``token`` is the session cookie's value (a fresh random one
        unless a hand-off derives it)."""
        now = utcnow()
        if not self.nonces.consume(launch.platform_id, launch.nonce, launch.nonce_expires_at):
            raise LaunchRefused("replayed", f"nonce reused for platform {launch.platform_id}")

        user_values: dict[str, Any] = {
            "platform_id": launch.platform_id,
            "sub": launch.sub,
            "last_launch_at": now,
            "created_at": now,
        }
        # Moodle sends name and email only when its privacy settings allow: keep what we
        # know rather than erase it when a later launch leaves them out.
        for field, value, limit in (
            ("name", launch.name, 255),
            ("given_name", launch.given_name, 255),
            ("family_name", launch.family_name, 255),
            ("email", launch.email, 320),
            ("locale", launch.locale, 16),
        ):
            if value:
                user_values[field] = _clip(value, limit)
        update_cols = [k for k in user_values if k not in ("platform_id", "sub", "created_at")]
        user_id, disabled_at = self.identity.upsert_user(user_values, update_cols)
        if disabled_at is not None:
            raise LaunchRefused("user_disabled", f"user {user_id} is disabled")

        course_id: int | None = None
        context = launch.context
        if context is not None:
            types = context.get("type")
            course_id = self.identity.upsert_course(
                {
                    "deployment_id": launch.deployment_pk,
                    "context_id": str(context["id"]),
                    "label": _clip(
                        context.get("label") if isinstance(context.get("label"), str) else None, 255
                    ),
                    "title": context.get("title")
                    if isinstance(context.get("title"), str)
                    else None,
                    "context_types": [t for t in types if isinstance(t, str)]
                    if isinstance(types, list)
                    else [],
                    "nrps_url": launch.nrps_url,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            self.identity.upsert_membership(
                {
                    "course_id": course_id,
                    "user_id": user_id,
                    "role": launch.role.value,
                    "lti_roles": launch.roles,
                    "updated_at": now,
                }
            )

        link_id: int | None = None
        link = launch.resource_link
        if link is not None:
            link_id = self.identity.upsert_resource_link(
                {
                    "deployment_id": launch.deployment_pk,
                    "resource_link_id": str(link["id"]),
                    "course_id": course_id,
                    "title": link.get("title") if isinstance(link.get("title"), str) else None,
                    "description": (
                        link.get("description")
                        if isinstance(link.get("description"), str)
                        else None
                    ),
                    "custom": {k: v for k, v in launch.custom.items() if isinstance(v, str)},
                    "ags_endpoint": launch.ags_endpoint,
                    "created_at": now,
                    "updated_at": now,
                }
            )

        token = token or secrets.token_urlsafe(32)
        session_id = session_id_for(token)
        locale = negotiate_locale(launch.locale, default_locale)
        self.identity.add_session(
            {
                "id": session_id,
                "user_id": user_id,
                "deployment_id": launch.deployment_pk,
                "course_id": course_id,
                "resource_link_id": link_id,
                "role": launch.role.value,
                "lti_roles": launch.roles[:50],
                "locale": locale,
                "message_type": launch.message_type,
                "return_url": launch.return_url,
                "created_at": now,
                "expires_at": now + timedelta(seconds=lifetime_seconds),
                "revoked_at": None,
            }
        )
        stale = on_launch(
            self.session,
            launch.deployment_pk,
            course_id,
            user_id,
            launch.role.value,
            resource_link_id=link_id,
            class_code=class_code_of(launch.custom),
            actor=Actor.person(
                user_id,
                launch_label(launch),
                launch.platform_id,
                launch.deployment_pk,
            ),
        )
        return LaunchOutcome(
            token=token,
            session_id=session_id,
            role=launch.role.value,
            locale=locale,
            message_type=launch.message_type,
            deployment_id=launch.deployment_pk,
            stale_rosters=tuple(stale),
        )
