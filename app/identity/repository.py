"""Queries for users, courses, resource links, memberships and sessions.

Every lookup is scoped by platform or deployment: the keys that keep tenants apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, joinedload

from app.core.upsert import upsert_returning, upsert_returning_id
from app.identity.models import Course, Membership, ResourceLink, User, WebSession
from app.platforms.models import Deployment


class IdentityRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def user_by_sub(self, platform_id: int, sub: str) -> User | None:
        stmt = select(User).where(User.platform_id == platform_id, User.sub == sub)
        return self.session.scalars(stmt).first()

    def upsert_user(
        self, values: Mapping[str, Any], update_cols: list[str]
    ) -> tuple[int, datetime | None]:
        """Create or refresh a user; returns (id, disabled_at) in the same round trip."""
        row = upsert_returning(
            self.session,
            User,
            values,
            conflict=("platform_id", "sub"),
            update=update_cols,
            returning=(User.id, User.disabled_at),
        )
        user_id, disabled_at = tuple(row)
        if isinstance(disabled_at, str):  # SQLite RETURNING bypasses the column type
            disabled_at = datetime.fromisoformat(disabled_at)
        return int(user_id), disabled_at

    def upsert_course(self, values: Mapping[str, Any]) -> int:
        return upsert_returning_id(
            self.session,
            Course,
            values,
            conflict=("deployment_id", "context_id"),
            update=[k for k in values if k not in ("deployment_id", "context_id", "created_at")],
        )

    def upsert_resource_link(self, values: Mapping[str, Any]) -> int:
        return upsert_returning_id(
            self.session,
            ResourceLink,
            values,
            conflict=("deployment_id", "resource_link_id"),
            update=[
                k for k in values if k not in ("deployment_id", "resource_link_id", "created_at")
            ],
        )

    def upsert_membership(self, values: Mapping[str, Any]) -> int:
        return upsert_returning_id(
            self.session,
            Membership,
            values,
            conflict=("course_id", "user_id"),
            update=["role", "lti_roles", "updated_at"],
        )

    def add_session(self, web_session: WebSession) -> None:
        self.session.add(web_session)
        self.session.flush()

    def live_session(self, session_id: str, now: datetime) -> WebSession | None:
        stmt = (
            select(WebSession)
            .options(
                joinedload(WebSession.user),
                joinedload(WebSession.deployment).joinedload(Deployment.platform),
                joinedload(WebSession.course),
                joinedload(WebSession.resource_link),
            )
            .where(
                WebSession.id == session_id,
                WebSession.expires_at > now,
                WebSession.revoked_at.is_(None),
            )
        )
        return self.session.scalars(stmt).first()

    def set_session_locale(self, session_id: str, locale: str) -> None:
        self.session.execute(
            update(WebSession).where(WebSession.id == session_id).values(locale=locale)
        )

    def revoke_session(self, session_id: str, now: datetime) -> None:
        self.session.execute(
            update(WebSession).where(WebSession.id == session_id).values(revoked_at=now)
        )

    def purge_expired_sessions(self, now: datetime) -> int:
        result = self.session.execute(delete(WebSession).where(WebSession.expires_at < now))
        return int(getattr(result, "rowcount", 0) or 0)

    def set_user_disabled(
        self, platform_id: int, sub: str, disabled_at: datetime | None, reason: str | None
    ) -> User | None:
        user = self.user_by_sub(platform_id, sub)
        if user is None:
            return None
        user.disabled_at = disabled_at
        user.disabled_reason = reason
        if disabled_at is not None:
            self.session.execute(
                update(WebSession)
                .where(WebSession.user_id == user.id, WebSession.revoked_at.is_(None))
                .values(revoked_at=disabled_at)
            )
        return user
