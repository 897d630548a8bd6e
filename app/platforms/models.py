"""A platform is one LMS registration (issuer + client id); a deployment is one install of the
tool in it. Every row of teaching data hangs off a deployment, which is how tenants stay apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.db import Base
from app.core.time import utcnow
from app.core.types import UTCDateTime


class PlatformStatus(StrEnum):
    ACTIVE = "active"
    DISABLED = "disabled"
    # Registered itself through dynamic registration without an invitation: no login, launch
    # or session until a tool operator approves it (``blend727 platform approve ID``).
    PENDING = "pending"


class Platform(Base):
    __tablename__ = "platform"
    __table_args__ = (UniqueConstraint("issuer", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(512))
    client_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    auth_login_url: Mapped[str] = mapped_column(Text)
    token_url: Mapped[str] = mapped_column(Text)
    keyset_url: Mapped[str] = mapped_column(Text)
    # Some platforms (Blackboard, D2L) ask for a token audience other than the token URL.
    auth_audience: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(16), default=PlatformStatus.ACTIVE)
    is_demo: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    deployments: Mapped[list[Deployment]] = relationship(
        back_populates="platform", lazy="raise", order_by="Deployment.id"
    )

    @property
    def active(self) -> bool:
        return self.status == PlatformStatus.ACTIVE


@dataclass(frozen=True)
class PlatformRecord:
    """A platform as plain data, for the launch path (loading ORM objects costs ~10x more)."""

    id: int
    issuer: str
    client_id: str
    name: str
    auth_login_url: str
    token_url: str
    keyset_url: str
    auth_audience: str | None
    status: str
    is_demo: bool

    @property
    def active(self) -> bool:
        return self.status == PlatformStatus.ACTIVE


class Deployment(Base):
    __tablename__ = "deployment"
    __table_args__ = (UniqueConstraint("platform_id", "deployment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("platform.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    platform: Mapped[Platform] = relationship(back_populates="deployments", lazy="raise")


class PlatformInvitation(Base):
    """A one-time invitation to register by dynamic registration (``blend727 platform
    invite``): a platform that registers with it is active at once. Only a SHA-256 of the
    token is kept; the token itself is shown once, inside the invitation URL."""

    __tablename__ = "platform_invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("platform.id", ondelete="SET NULL"), default=None
    )
