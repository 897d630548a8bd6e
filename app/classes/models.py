"""Waves, classes and everything hanging off a class. Every row carries, directly or through
its class, the deployment it belongs to."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.classes.rules import CLASS_CAP
from app.core.db import Base
from app.core.time import utcnow
from app.core.types import UTCDateTime

DEFAULT_CLASS_CAP = CLASS_CAP  # the rules' cap is the schema's default


class Level(StrEnum):
    TIEU_HOC = "tieu_hoc"
    THCS = "thcs"
    THPT = "thpt"


class SessionPart(StrEnum):
    MORNING = "morning"
    AFTERNOON = "afternoon"


class EnrolmentStatus(StrEnum):
    ACTIVE = "active"
    LEFT = "left"


class Wave(Base):
    """Đợt: classes that run together (wave 1: module 4; wave 2: modules 5 and 9)."""

    __tablename__ = "wave"
    __table_args__ = (UniqueConstraint("deployment_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    year: Mapped[int]
    description: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TrainingClass(Base):
    """Lớp: one module version for one set of learners, on a computed schedule."""

    __tablename__ = "training_class"
    __table_args__ = (
        UniqueConstraint("deployment_id", "code"),
        CheckConstraint("capacity > 0", name="capacity_positive"),
        CheckConstraint("enrolled_count >= 0 AND enrolled_count <= capacity", name="within_cap"),
        Index("ix_training_class_wave", "wave_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id", ondelete="CASCADE"))
    wave_id: Mapped[int | None] = mapped_column(
        ForeignKey("wave.id", ondelete="SET NULL"), default=None
    )
    module_version_id: Mapped[int] = mapped_column(ForeignKey("module_version.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    level: Mapped[str] = mapped_column(String(16))
    programme: Mapped[str] = mapped_column(String(32))
    capacity: Mapped[int] = mapped_column(default=DEFAULT_CLASS_CAP)
    enrolled_count: Mapped[int] = mapped_column(default=0)
    # The schedule's anchor as the administrator gave it; the dates below are computed.
    anchor_start: Mapped[date | None] = mapped_column(Date, default=None)
    anchor_in_person: Mapped[list[str]] = mapped_column(JSON, default=list)
    plan: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    self_study_start: Mapped[date | None] = mapped_column(Date, default=None)
    self_study_end: Mapped[date | None] = mapped_column(Date, default=None)
    in_person_dates: Mapped[list[str]] = mapped_column(JSON, default=list)
    follow_up_start: Mapped[date | None] = mapped_column(Date, default=None)
    follow_up_end: Mapped[date | None] = mapped_column(Date, default=None)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    course_id: Mapped[int | None] = mapped_column(
        ForeignKey("course.id", ondelete="SET NULL"), default=None
    )
    resource_link_id: Mapped[int | None] = mapped_column(
        ForeignKey("resource_link.id", ondelete="SET NULL"), default=None
    )
    # Epidemic or disaster: in-person sessions move to a virtual classroom.
    virtual_fallback_url: Mapped[str | None] = mapped_column(Text, default=None)
    virtual_fallback_reason: Mapped[str | None] = mapped_column(Text, default=None)
    virtual_fallback_decided_on: Mapped[date | None] = mapped_column(Date, default=None)
    # The LMS gradebook column of the class (AGS line item): the one the platform coupled to
    # the resource link, or the one blend727 found or created; stored once, reused after.
    line_item_url: Mapped[str | None] = mapped_column(Text, default=None)
    roster_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    ical_token: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ClassSession(Base):
    """An in-person session: a morning or afternoon of an in-person day."""

    __tablename__ = "class_session"
    __table_args__ = (UniqueConstraint("class_id", "date", "part"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("training_class.id", ondelete="CASCADE"))
    date: Mapped[date] = mapped_column(Date)
    part: Mapped[str] = mapped_column(String(16))
    venue: Mapped[str | None] = mapped_column(Text, default=None)
    room: Mapped[str | None] = mapped_column(String(120), default=None)
    virtual_url: Mapped[str | None] = mapped_column(Text, default=None)


class ClassTrainer(Base):
    __tablename__ = "class_trainer"

    class_id: Mapped[int] = mapped_column(
        ForeignKey("training_class.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    )
    source: Mapped[str] = mapped_column(String(16), default="manual")
    active: Mapped[bool] = mapped_column(default=True)


class Cohort(Base):
    """A core trainer's group of at most 50 learners within a class."""

    __tablename__ = "cohort"
    __table_args__ = (UniqueConstraint("class_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("training_class.id", ondelete="CASCADE"))
    position: Mapped[int]
    name: Mapped[str] = mapped_column(String(120))
    trainer_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), default=None
    )


class Enrolment(Base):
    __tablename__ = "enrolment"
    __table_args__ = (
        UniqueConstraint("class_id", "user_id"),
        Index("ix_enrolment_cohort", "cohort_id"),
        Index("ix_enrolment_user", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("training_class.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    cohort_id: Mapped[int | None] = mapped_column(
        ForeignKey("cohort.id", ondelete="SET NULL"), default=None
    )
    status: Mapped[str] = mapped_column(String(16), default=EnrolmentStatus.ACTIVE)
    source: Mapped[str] = mapped_column(String(16), default="manual")
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The learner's own dates when shifted (sick leave, late enrolment); null = the class's.
    own_schedule: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    ical_token: Mapped[str] = mapped_column(String(64), unique=True)


class ScheduleShift(Base):
    """Append-only history of individual date shifts: who, when, why."""

    __tablename__ = "schedule_shift"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolment.id", ondelete="CASCADE"))
    delay_days: Mapped[int | None] = mapped_column(default=None)
    in_person_dates: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    reason: Mapped[str] = mapped_column(Text)
    by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SupportLog(Base):
    """Tiết quy đổi: a core trainer's support periods for their cohort."""

    __tablename__ = "support_log"
    __table_args__ = (
        CheckConstraint("periods > 0 AND periods <= 24", name="periods_range"),
        Index("ix_support_log_cohort", "cohort_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"))
    trainer_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    date: Mapped[date] = mapped_column(Date)
    form: Mapped[str] = mapped_column(String(16))  # online | in_person
    periods: Mapped[Decimal] = mapped_column(Numeric(5, 1))
    note: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HolidayOverride(Base):
    """An administrator's extension of the shipped holiday calendar: an extra day off
    (``off``) or a shipped holiday that is a working day this year (``working``)."""

    __tablename__ = "holiday_override"
    __table_args__ = (UniqueConstraint("deployment_id", "date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id", ondelete="CASCADE"))
    date: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
