"""Modules and their immutable versions.

A running class points at the ``ModuleVersion`` it started with; editing a module writes a
new version and moves ``Module.current_version_id``, so no class ever changes under its
learners' feet.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.time import utcnow
from app.core.types import UTCDateTime


class Module(Base):
    __tablename__ = "module"
    __table_args__ = (UniqueConstraint("deployment_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id", ondelete="CASCADE"))
    # "gvpt-4", "cbql-9", or "local-<code>" for a local topic.
    key: Mapped[str] = mapped_column(String(64))
    track: Mapped[str] = mapped_column(String(8))
    number: Mapped[int | None] = mapped_column(default=None)
    # Not a foreign key on purpose: module and module_version would reference each other.
    # The catalogue service is the only writer and always points it at one of its versions.
    # ``references`` tells backups (app/backup) to remap it like a foreign key.
    current_version_id: Mapped[int | None] = mapped_column(
        default=None, info={"references": "module_version.id"}
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ModuleVersion(Base):
    __tablename__ = "module_version"
    __table_args__ = (UniqueConstraint("module_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("module.id", ondelete="CASCADE"))
    version: Mapped[int]
    title_vi: Mapped[str] = mapped_column(Text)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    change_note: Mapped[str | None] = mapped_column(Text, default=None)
    created_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
