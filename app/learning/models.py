"""What learners did with the learning items of their class.

The items themselves are not rows: they are the ``materials`` of the module version the class
runs (immutable), identified by their key. Rows here reach their tenant through the
enrolment (``enrolment`` → ``training_class`` → ``deployment``); the repository always joins
that far.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.time import utcnow
from app.core.types import UTCDateTime


class ProgressSource:
    LEARNER = "learner"  # marked done by the learner (reading, video, LMS activity)
    QUIZ = "quiz"  # a self-check quiz taken in blend727
    REFLECTION = "reflection"  # a reflection written in blend727
    SUBMISSION = "submission"  # an assignment handed in


class ItemProgress(Base):
    """An item a learner has done. No row: not done."""

    __tablename__ = "item_progress"
    __table_args__ = (UniqueConstraint("enrolment_id", "item_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolment.id", ondelete="CASCADE"))
    item_key: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(16))
    done_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class QuizAttempt(Base):
    """One attempt at a self-check quiz (every attempt is kept; the best is shown)."""

    __tablename__ = "quiz_attempt"
    __table_args__ = (Index("ix_quiz_attempt_enrolment", "enrolment_id", "item_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolment.id", ondelete="CASCADE"))
    item_key: Mapped[str] = mapped_column(String(40))
    answers: Mapped[list[Any]] = mapped_column(JSON)
    correct: Mapped[int]
    total: Mapped[int]
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Submission(Base):
    """One hand-in of an assignment or reflection. Resubmitting adds an attempt; the highest
    attempt is the one that counts. Files live outside the web root, named by ``file_key``."""

    __tablename__ = "submission"
    __table_args__ = (
        UniqueConstraint("enrolment_id", "item_key", "attempt"),
        CheckConstraint("attempt >= 1", name="attempt_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolment.id", ondelete="CASCADE"))
    item_key: Mapped[str] = mapped_column(String(40))
    attempt: Mapped[int]
    text: Mapped[str | None] = mapped_column(Text, default=None)
    link_url: Mapped[str | None] = mapped_column(Text, default=None)
    file_name: Mapped[str | None] = mapped_column(String(255), default=None)
    # ``upload_key``: names a file under BLEND727_UPLOAD_DIR (tenant exports carry it along).
    file_key: Mapped[str | None] = mapped_column(
        String(80), default=None, info={"upload_key": True}
    )
    file_size: Mapped[int | None] = mapped_column(default=None)
    file_type: Mapped[str | None] = mapped_column(String(120), default=None)
    file_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    late: Mapped[bool] = mapped_column(default=False)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SubmissionGrade(Base):
    """A trainer's grade of a submission. Append-only: a regrade is a new row, the newest
    counts, and the older ones are the grade's history."""

    __tablename__ = "submission_grade"
    __table_args__ = (
        CheckConstraint("score >= 0 AND score <= 10", name="score_range"),
        # The newest grade of a hand-in is one backward probe of this index (see
        # ``newest_grade_id``); its prefix serves a learner's grade history.
        Index("ix_submission_grade_latest", "enrolment_id", "item_key", "graded_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submission.id", ondelete="CASCADE"))
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("enrolment.id", ondelete="CASCADE"))
    item_key: Mapped[str] = mapped_column(String(40))
    score: Mapped[Decimal] = mapped_column(Numeric(4, 2))
    feedback: Mapped[str | None] = mapped_column(Text, default=None)
    graded_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL"), default=None
    )
    graded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
