"""``audit_event``: the append-only log of changes that matter (grades, overrides, attendance,
enrolments, cohorts, class settings, modules, holidays, targets, scores sent again, the
issuing unit and revoked certificates, people disabled, platform registrations, keys) and of
exports of the log itself.

One row per change, written by the service that makes the change, in the same transaction.
Rows are never updated or deleted: the repository has no such method, and the database
refuses both (triggers of migration 0012, on PostgreSQL and SQLite alike) — except the
deletion of a whole tenant, whose platform row takes its events with it (ON DELETE CASCADE).

``platform_id`` is the tenant. It is NULL for the installation's own events (what the
operator does to registrations and keys on the command line, and registrations arriving
from LMSs): those are in no tenant's pages or exports, only in ``blend727 audit list``.

The other ids are kept as they were: ``object_id`` names a row of ``object_type`` that may
since have changed or gone, and the labels (``actor_label``, ``object_label``) are what the
names were at the time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.backup.tenant import TENANT
from app.core.db import Base
from app.core.time import utcnow
from app.core.types import UTCDateTime


class AuditEvent(Base):
    __tablename__ = "audit_event"
    __table_args__ = (
        # Newest first within a tenant (keyset pagination on occurred_at, id).
        Index("ix_audit_event_platform_time", "platform_id", "occurred_at", "id"),
        Index("ix_audit_event_class_time", "class_id", "occurred_at", "id"),
        Index("ix_audit_event_object", "object_type", "object_id"),
        Index("ix_audit_event_actor", "actor_user_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A tenant deleted as a whole takes its log with it (the only way an event ever goes);
    # a person, deployment or class with a history cannot be deleted on its own.
    platform_id: Mapped[int | None] = mapped_column(
        ForeignKey("platform.id", ondelete="CASCADE"), default=None, info={TENANT: True}
    )
    deployment_id: Mapped[int | None] = mapped_column(ForeignKey("deployment.id"), default=None)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), default=None)
    # The actor's name at the time; "operator (CLI)", "system (worker)" … for non-people.
    actor_label: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(80), default=None)
    object_label: Mapped[str | None] = mapped_column(String(255), default=None)
    class_id: Mapped[int | None] = mapped_column(ForeignKey("training_class.id"), default=None)
    # Only the fields that changed; never file contents or secrets.
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
