"""The score outbox. A row is written in the same transaction as the grade it carries, so a
grade that exists is a grade that will be sent; workers claim rows, send them, and record
the outcome. Nothing is deleted: sent rows are the history of what the LMS accepted."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.time import utcnow
from app.core.types import UTCDateTime


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    SENDING = "sending"  # claimed by a worker until lease_until
    SENT = "sent"  # the LMS accepted it
    SUPERSEDED = "superseded"  # a newer score for the same person and line item replaced it
    FAILED = "failed"  # the LMS refused it for good (e.g. not gradable); a person must look
    DEAD = "dead"  # retried for too long without success (dead letter)


class ScoreOutbox(Base):
    __tablename__ = "score_outbox"
    __table_args__ = (
        Index("ix_score_outbox_due", "status", "next_attempt_at"),
        # Every enqueue looks up the pending scores of one person and line item: with the
        # status in this index SQLite uses it rather than scanning every pending row.
        Index("ix_score_outbox_target", "line_item_url_hash", "lms_user_id", "status"),
        # The passback page counts a deployment's scores by status, sent ones included (they
        # only grow): from this index alone, without reading the rows.
        Index("ix_score_outbox_deployment", "deployment_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id", ondelete="CASCADE"))
    # The line item belongs to this resource link's AGS endpoint (checked when enqueued):
    # no request can make the tool post a grade to another course's line item.
    resource_link_id: Mapped[int] = mapped_column(
        ForeignKey("resource_link.id", ondelete="CASCADE")
    )
    line_item_url: Mapped[str] = mapped_column(Text)
    line_item_url_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), default=None
    )
    lms_user_id: Mapped[str] = mapped_column(String(255))
    score: Mapped[dict[str, Any]] = mapped_column(JSON)
    score_timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_http_status: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Start of the current retry window (a manual retry opens a new one): dead letter after
    # DEAD_AFTER of trying within one window.
    window_start: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
