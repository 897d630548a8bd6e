"""Queries for users, courses, resource links, memberships and sessions.

Every lookup is scoped by platform or deployment: the keys that keep tenants apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from app.core.types import UTCDateTime
from app.core.upsert import insert_row, upsert_returning, upsert_returning_id
from app.identity.models import Course, Membership, ResourceLink, Role, User, WebSession
from app.platforms.models import Deployment, Platform

# Built once: every page after a launch runs it (see PlatformRepository for why).
_VIEWER = (
    select(
        WebSession.role,
        WebSession.locale,
        WebSession.deployment_id,
        WebSession.return_url,
        User.id.label("user_id"),
        User.sub,
        User.name,
        User.given_name,
        User.family_name,
        User.email,
        User.disabled_at,
        Platform.id.label("platform_id"),
        Platform.status.label("platform_status"),
        Course.id.label("course_id"),
        Course.context_id,
        Course.label.label("course_label"),
        Course.title.label("course_title"),
        ResourceLink.id.label("link_id"),
        ResourceLink.resource_link_id,
        ResourceLink.title.label("link_title"),
    )
    .join(User, User.id == WebSession.user_id)
    .join(Deployment, Deployment.id == WebSession.deployment_id)
    .join(Platform, Platform.id == Deployment.platform_id)
    .outerjoin(Course, Course.id == WebSession.course_id)
    .outerjoin(ResourceLink, ResourceLink.id == WebSession.resource_link_id)
    .where(
        WebSession.id == bindparam("session_id"),
        WebSession.expires_at > bindparam("now", type_=UTCDateTime()),
        WebSession.revoked_at.is_(None),
    )
)


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
        """A resource link stays in the course it was first launched from: a launch that
        names its id from another course (or none) leaves its course and its AGS endpoint
        as they were, so no launch can point a class's scores at another course's
        gradebook (the line item and container a class's scores go to come from there)."""
        return upsert_returning_id(
            self.session,
            ResourceLink,
            values,
            conflict=("deployment_id", "resource_link_id"),
            update=[
                k for k in values if k not in ("deployment_id", "resource_link_id", "created_at")
            ],
            owner="course_id",
            owned=("course_id", "ags_endpoint"),
        )

    def upsert_membership(self, values: Mapping[str, Any]) -> int:
        return upsert_returning_id(
            self.session,
            Membership,
            values,
            conflict=("course_id", "user_id"),
            update=["role", "lti_roles", "updated_at"],
        )

    def add_session(self, values: Mapping[str, Any]) -> None:
        insert_row(self.session, WebSession, values)

    def viewer_row(self, session_id: str, now: datetime) -> Any:
        """Everything a page needs about its viewer, in one query (no ORM objects)."""
        params = {"session_id": session_id, "now": now}
        return self.session.connection().execute(_VIEWER, params).first()

    def courses(self, deployment_id: int) -> Sequence[Course]:
        stmt = (
            select(Course)
            .where(Course.deployment_id == deployment_id)
            .order_by(Course.title, Course.id)
        )
        return self.session.scalars(stmt).all()

    def trainers_of_deployment(
        self, platform_id: int, deployment_id: int, limit: int
    ) -> Sequence[User]:
        """People with the trainer role in a course of this deployment (not switched off).

        Bounded by the deployment's trainers, not by every user of the platform: a province
        has 100,000 teachers and a handful of core trainers per course.
        """
        has_trainer_role = (
            select(Membership.user_id)
            .join(Course, Course.id == Membership.course_id)
            .where(
                Course.deployment_id == deployment_id,
                Membership.role == Role.TRAINER.value,
            )
        )
        stmt = (
            select(User)
            .where(
                User.platform_id == platform_id,
                User.disabled_at.is_(None),
                User.id.in_(has_trainer_role),
            )
            .order_by(User.name, User.id)
            .limit(limit)
        )
        return self.session.scalars(stmt).all()

    def users_by_subs(self, platform_id: int, subs: Sequence[str]) -> dict[str, User]:
        """People of this platform by their LMS user id (``sub``), in one query."""
        if not subs:
            return {}
        stmt = select(User).where(User.platform_id == platform_id, User.sub.in_(list(subs)))
        return {u.sub: u for u in self.session.scalars(stmt)}

    def users_by_emails(self, platform_id: int, emails: Sequence[str]) -> dict[str, list[User]]:
        """People of this platform by lower-case e-mail (several may share one), in one query."""
        if not emails:
            return {}
        stmt = (
            select(User)
            .where(User.platform_id == platform_id, func.lower(User.email).in_(list(emails)))
            .order_by(User.id)
        )
        found: dict[str, list[User]] = {}
        for user in self.session.scalars(stmt):
            found.setdefault((user.email or "").lower(), []).append(user)
        return found

    def search_people(self, platform_id: int, text: str, limit: int) -> Sequence[User]:
        """People of this platform whose name, e-mail or school contains ``text``."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = (
            select(User)
            .where(
                User.platform_id == platform_id,
                User.disabled_at.is_(None),
                User.name.ilike(pattern, escape="\\")
                | User.email.ilike(pattern, escape="\\")
                | User.school.ilike(pattern, escape="\\"),
            )
            .order_by(User.name, User.id)
            .limit(limit)
        )
        return self.session.scalars(stmt).all()

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
