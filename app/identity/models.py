"""Who launched, from where, with which role.

Users are keyed by platform (issuer) + ``sub``; courses and resource links by deployment +
their LTI id. Every query for them is scoped by those keys, so two platforms that reuse the
same ids never see each other's rows.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import Base
from app.core.time import utcnow
from app.core.types import UTCDateTime
from app.platforms.models import Deployment


class Role(StrEnum):
    """blend727's roles. A launch maps its LTI roles onto one of these (see ``lti.roles``)."""

    TEACHER = "teacher"  # học viên: an ordinary teacher taking the module
    TRAINER = "trainer"  # giáo viên/CBQL cốt cán: supports a cohort
    ADMIN = "admin"  # quản trị: configures modules, classes, waves
    NONE = "none"  # a valid launch with no role we serve


class User(Base):
    __tablename__ = "app_user"
    __table_args__ = (UniqueConstraint("platform_id", "sub"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255), default=None)
    given_name: Mapped[str | None] = mapped_column(String(255), default=None)
    family_name: Mapped[str | None] = mapped_column(String(255), default=None)
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    locale: Mapped[str | None] = mapped_column(String(16), default=None)
    # Where the person works: entered or imported by administrators (the LMS rarely says);
    # cohorts keep a school's teachers together, reports count by school and district.
    school: Mapped[str | None] = mapped_column(String(255), default=None)
    district: Mapped[str | None] = mapped_column(String(255), default=None)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    disabled_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_launch_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    @property
    def display_name(self) -> str:
        """Name as the LMS gave it; Moodle may withhold it, so fall back to the id."""
        if self.name:
            return self.name
        parts = [p for p in (self.family_name, self.given_name) if p]
        if parts:
            return " ".join(parts)
        return f"#{self.sub}"


class Course(Base):
    """An LTI context (a Moodle course, or a course section in Moodle 5.1's words)."""

    __tablename__ = "course"
    __table_args__ = (UniqueConstraint("deployment_id", "context_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id", ondelete="CASCADE"))
    context_id: Mapped[str] = mapped_column(String(255))
    label: Mapped[str | None] = mapped_column(String(255), default=None)
    title: Mapped[str | None] = mapped_column(Text, default=None)
    context_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    nrps_url: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ResourceLink(Base):
    __tablename__ = "resource_link"
    __table_args__ = (UniqueConstraint("deployment_id", "resource_link_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id", ondelete="CASCADE"))
    course_id: Mapped[int | None] = mapped_column(
        ForeignKey("course.id", ondelete="CASCADE"), default=None
    )
    resource_link_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(Text, default=None)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    custom: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ags_endpoint: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Membership(Base):
    """A user's role in a course as of their last launch (NRPS will fill it for the rest)."""

    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("course_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    lti_roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebSession(Base):
    """A signed-in browser after a launch. Only the SHA-256 of the cookie token is stored."""

    __tablename__ = "web_session"
    __table_args__ = (Index("ix_web_session_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id", ondelete="CASCADE"))
    course_id: Mapped[int | None] = mapped_column(
        ForeignKey("course.id", ondelete="CASCADE"), default=None
    )
    resource_link_id: Mapped[int | None] = mapped_column(
        ForeignKey("resource_link.id", ondelete="CASCADE"), default=None
    )
    role: Mapped[str] = mapped_column(String(16))
    lti_roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    locale: Mapped[str] = mapped_column(String(8), default="vi")
    message_type: Mapped[str] = mapped_column(String(64), default="LtiResourceLinkRequest")
    return_url: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    user: Mapped[User] = relationship(lazy="raise")
    deployment: Mapped[Deployment] = relationship(lazy="raise")
    course: Mapped[Course | None] = relationship(lazy="raise")
    resource_link: Mapped[ResourceLink | None] = relationship(lazy="raise")
