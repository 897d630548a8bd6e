"""Module results and their audit trail.

``module_result`` holds, per enrolment, the trainer's inputs (manual component scores for a
module whose phase has no items in blend727, an override with its reason), the last computed
result, and what was last queued for the LMS. ``result_change`` is append-only: every change
of an input or an override — who, when, old, new, why — is a new row, never updated.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.time import utcnow
from app.core.types import UTCDateTime


class ModuleResultRow(Base):
    __tablename__ = "module_result"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(
        ForeignKey("enrolment.id", ondelete="CASCADE"), unique=True
    )
    # Inputs a trainer gives when the module has no items for a component.
    manual_self_study: Mapped[Decimal | None] = mapped_column(Numeric(4, 2), default=None)
    manual_follow_up: Mapped[Decimal | None] = mapped_column(Numeric(4, 2), default=None)
    # A trainer's override (score and classification) and its reason.
    override_score: Mapped[Decimal | None] = mapped_column(Numeric(4, 2), default=None)
    override_classification: Mapped[str | None] = mapped_column(String(40), default=None)
    override_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # The last computed result (what pages and reports read).
    self_study: Mapped[Decimal | None] = mapped_column(Numeric(4, 2), default=None)
    attendance: Mapped[Decimal | None] = mapped_column(Numeric(4, 2), default=None)
    follow_up: Mapped[Decimal | None] = mapped_column(Numeric(4, 2), default=None)
    score: Mapped[Decimal | None] = mapped_column(Numeric(4, 2), default=None)
    classification: Mapped[str] = mapped_column(String(40), default="incomplete")
    final: Mapped[bool] = mapped_column(default=False)
    # What was last queued for the LMS ("<activity>|<grading>|<scoreGiven>"); a result is
    # queued again only when this would change.
    sent_state: Mapped[str | None] = mapped_column(String(120), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ResultChange(Base):
    """Append-only audit trail of results: one row per changed field."""

    __tablename__ = "result_change"
    __table_args__ = (Index("ix_result_change_enrolment", "enrolment_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolment.id", ondelete="CASCADE"))
    # "score", "classification" (override), "override" (cleared), "self_study",
    # "follow_up" (manual component), "item:<key>" (a submission's grade)
    field: Mapped[str] = mapped_column(String(60))
    old: Mapped[str | None] = mapped_column(Text, default=None)
    new: Mapped[str | None] = mapped_column(Text, default=None)
    reason: Mapped[str] = mapped_column(Text)
    by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), default=None
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
