"""What a verified launch writes: the nonce (consumed), the user, course, resource link,
membership and a web session — all in one transaction, so a refused launch writes nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.core.i18n import negotiate_locale
from app.core.time import utcnow
from app.identity.repository import IdentityRepository
from app.launch.repository import NonceRepository
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
    """Delete consumed nonces whose tokens have expired anyway, and ended sessions."""
    now = utcnow()
    return NonceRepository(session).purge(now), IdentityRepository(session).purge_expired_sessions(
        now
    )


class LaunchService:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.identity = IdentityRepository(session)
        self.nonces = NonceRepository(session)

    def complete(
        self, launch: ValidatedLaunch, *, lifetime_seconds: int, default_locale: str
    ) -> LaunchOutcome:
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

        token = secrets.token_urlsafe(32)
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
