"""Training targets a department's plan sets: a share of a staff group trained by a date
(the HCMC plan: 100% of managers in 2024, 30% of teachers in advanced topics, …)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.time import utcnow
from app.core.types import UTCDateTime


class Target(Base):
    __tablename__ = "training_target"
    __table_args__ = (
        CheckConstraint("staff_count > 0", name="staff_positive"),
        CheckConstraint("percent > 0 AND percent <= 100", name="percent_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    # Whose training counts: a track ("gvpt" teachers, "cbql" managers), optionally one
    # level, one district, one module ("gvpt-4"); null = any.
    track: Mapped[str] = mapped_column(String(8))
    level: Mapped[str | None] = mapped_column(String(16), default=None)
    district: Mapped[str | None] = mapped_column(String(255), default=None)
    module_key: Mapped[str | None] = mapped_column(String(64), default=None)
    # The staff group's size, as the administrator enters it (the LMS does not know it).
    staff_count: Mapped[int]
    percent: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    due_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
