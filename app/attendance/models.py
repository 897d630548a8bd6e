"""Attendance marks per session and learner, their append-only history, the check-in
window a core trainer opens for a session, and the check-ins learners made through it.

Every row reaches its tenant through the class session (``class_session`` → ``training_class``
→ ``deployment``); the repository always joins that far.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.attendance.rules import LATE_AFTER_MAX
from app.core.db import Base
from app.core.time import utcnow
from app.core.types import UTCDateTime

_STATUS_IN = "('present', 'late', 'excused', 'absent')"


class MarkSource:
    MANUAL = "manual"
    CHECKIN = "checkin"


class AttendanceMark(Base):
    """A learner's attendance at one session: the latest word (trainer or check-in)."""

    __tablename__ = "attendance_mark"
    __table_args__ = (
        UniqueConstraint("session_id", "enrolment_id"),
        CheckConstraint(f"status IN {_STATUS_IN}", name="status_known"),
        CheckConstraint("source IN ('manual', 'checkin')", name="source_known"),
        Index("ix_attendance_mark_enrolment", "enrolment_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("class_session.id", ondelete="CASCADE"))
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolment.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text, default=None)
    source: Mapped[str] = mapped_column(String(16), default=MarkSource.MANUAL)
    marked_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), default=None
    )
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AttendanceChange(Base):
    """Append-only history of marks: who changed what, when, from what, and why."""

    __tablename__ = "attendance_change"
    __table_args__ = (Index("ix_attendance_change_session", "session_id", "enrolment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("class_session.id", ondelete="CASCADE"))
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolment.id", ondelete="CASCADE"))
    old_status: Mapped[str | None] = mapped_column(String(16), default=None)
    new_status: Mapped[str] = mapped_column(String(16))
    old_note: Mapped[str | None] = mapped_column(Text, default=None)
    new_note: Mapped[str | None] = mapped_column(Text, default=None)
    source: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), default=None
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CheckinWindow(Base):
    """Check-in opened by a core trainer for one session: the secret its rotating codes are
    derived from, and the late threshold. One per session; closing keeps the row."""

    __tablename__ = "attendance_checkin_window"
    __table_args__ = (
        CheckConstraint(
            f"late_after_minutes >= 0 AND late_after_minutes <= {LATE_AFTER_MAX}",
            name="late_after_range",
        ),
    )

    session_id: Mapped[int] = mapped_column(
        ForeignKey("class_session.id", ondelete="CASCADE"), primary_key=True
    )
    secret: Mapped[str] = mapped_column(String(64))
    late_after_minutes: Mapped[int]
    opened_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), default=None
    )
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class CheckinRecord(Base):
    """One accepted self check-in: which code window, from which device and launch."""

    __tablename__ = "attendance_checkin"
    __table_args__ = (
        Index("ix_attendance_checkin_device", "session_id", "device_hash"),
        # A learner's first check-in in a session is one probe; counting the learners who
        # checked in reads this index only.
        Index("ix_attendance_checkin_first", "session_id", "enrolment_id", "at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("class_session.id", ondelete="CASCADE"))
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolment.id", ondelete="CASCADE"))
    code_window: Mapped[int]
    # SHA-256 of the device cookie; the launch (web session) id as it is stored, not a key:
    # web sessions are purged when they expire, the record stays.
    device_hash: Mapped[str] = mapped_column(String(64))
    web_session_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
