"""Queries for learning items. Every lookup that starts from an id a request carries goes
through the class and the deployment (tenant) the caller belongs to; the rest take ids the
service already checked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, delete, func, select
from sqlalchemy.orm import Session, aliased

from app.catalogue.models import ModuleVersion
from app.classes.models import Enrolment, EnrolmentStatus, TrainingClass
from app.core.upsert import insert_if_absent
from app.identity.models import User
from app.learning.models import ItemProgress, QuizAttempt, Submission, SubmissionGrade


def newest_grade_id(
    enrolment_id: ColumnElement[int], item_key: ColumnElement[str]
) -> ScalarSelect[int]:
    """The id of the newest grade (``graded_at``, then ``id``) of one (enrolment, item),
    correlated to the query it is used in: one probe of ``ix_submission_grade_latest`` per
    pair, however often that hand-in was regraded (the older grades are its history)."""
    older = aliased(SubmissionGrade)
    return (
        select(older.id)
        .where(older.enrolment_id == enrolment_id, older.item_key == item_key)
        .order_by(older.graded_at.desc(), older.id.desc())
        .limit(1)
        .scalar_subquery()
    )


class LearningRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, obj: object) -> None:
        self.session.add(obj)

    def flush(self) -> None:
        self.session.flush()

    # -- classes, enrolments ---------------------------------------------------------------
    def get_class(self, deployment_id: int, class_id: int) -> TrainingClass | None:
        stmt = select(TrainingClass).where(
            TrainingClass.deployment_id == deployment_id, TrainingClass.id == class_id
        )
        return self.session.scalars(stmt).first()

    def module_version(self, version_id: int) -> ModuleVersion | None:
        return self.session.get(ModuleVersion, version_id)

    def active_enrolment(self, class_id: int, user_id: int) -> Enrolment | None:
        stmt = select(Enrolment).where(
            Enrolment.class_id == class_id,
            Enrolment.user_id == user_id,
            Enrolment.status == EnrolmentStatus.ACTIVE,
        )
        return self.session.scalars(stmt).first()

    def enrolment_in_tenant(
        self, deployment_id: int, enrolment_id: int
    ) -> tuple[Enrolment, TrainingClass, User] | None:
        stmt = (
            select(Enrolment, TrainingClass, User)
            .join(TrainingClass, TrainingClass.id == Enrolment.class_id)
            .join(User, User.id == Enrolment.user_id)
            .where(Enrolment.id == enrolment_id, TrainingClass.deployment_id == deployment_id)
        )
        row = self.session.execute(stmt).first()
        return (row[0], row[1], row[2]) if row else None

    def learner_classes(self, deployment_id: int, user_id: int) -> Sequence[TrainingClass]:
        stmt = (
            select(TrainingClass)
            .join(Enrolment, Enrolment.class_id == TrainingClass.id)
            .where(
                TrainingClass.deployment_id == deployment_id,
                Enrolment.user_id == user_id,
                Enrolment.status == EnrolmentStatus.ACTIVE,
            )
            .order_by(TrainingClass.starts_on.desc(), TrainingClass.id)
        )
        return self.session.scalars(stmt).all()

    # -- progress --------------------------------------------------------------------------
    def progress(self, enrolment_ids: Sequence[int]) -> dict[int, dict[str, ItemProgress]]:
        out: dict[int, dict[str, ItemProgress]] = {e: {} for e in enrolment_ids}
        if not enrolment_ids:
            return out
        stmt = select(ItemProgress).where(ItemProgress.enrolment_id.in_(enrolment_ids))
        for row in self.session.scalars(stmt):
            out[row.enrolment_id][row.item_key] = row
        return out

    def mark_done(self, values: dict[str, Any]) -> bool:
        """Record an item as done (first time only: the first completion time stays);
        True when it was not done before."""
        return insert_if_absent(
            self.session, ItemProgress, values, conflict=("enrolment_id", "item_key")
        )

    def unmark(self, enrolment_id: int, item_key: str) -> int:
        result = self.session.execute(
            delete(ItemProgress).where(
                ItemProgress.enrolment_id == enrolment_id, ItemProgress.item_key == item_key
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    # -- quizzes ---------------------------------------------------------------------------
    def best_quiz(self, enrolment_ids: Sequence[int]) -> dict[tuple[int, str], tuple[int, int]]:
        """Best ``(correct, total)`` per (enrolment, quiz)."""
        if not enrolment_ids:
            return {}
        stmt = (
            select(
                QuizAttempt.enrolment_id,
                QuizAttempt.item_key,
                func.max(QuizAttempt.correct),
                func.max(QuizAttempt.total),
                func.count(),
            )
            .where(QuizAttempt.enrolment_id.in_(enrolment_ids))
            .group_by(QuizAttempt.enrolment_id, QuizAttempt.item_key)
        )
        return {(int(e), str(k)): (int(c), int(t)) for e, k, c, t, _n in self.session.execute(stmt)}

    def last_quiz_attempt(self, enrolment_id: int, item_key: str) -> QuizAttempt | None:
        stmt = (
            select(QuizAttempt)
            .where(QuizAttempt.enrolment_id == enrolment_id, QuizAttempt.item_key == item_key)
            .order_by(QuizAttempt.submitted_at.desc(), QuizAttempt.id.desc())
            .limit(1)
        )
        return self.session.scalars(stmt).first()

    def quiz_attempts(self, enrolment_id: int, item_key: str) -> int:
        stmt = select(func.count()).where(
            QuizAttempt.enrolment_id == enrolment_id, QuizAttempt.item_key == item_key
        )
        return int(self.session.scalar(stmt) or 0)

    # -- submissions -----------------------------------------------------------------------
    def submissions(self, enrolment_ids: Sequence[int]) -> dict[int, list[Submission]]:
        """Every submission of the enrolments, oldest first."""
        out: dict[int, list[Submission]] = {e: [] for e in enrolment_ids}
        if not enrolment_ids:
            return out
        stmt = (
            select(Submission)
            .where(Submission.enrolment_id.in_(enrolment_ids))
            .order_by(Submission.enrolment_id, Submission.item_key, Submission.attempt)
        )
        for row in self.session.scalars(stmt):
            out[row.enrolment_id].append(row)
        return out

    def last_attempt(self, enrolment_id: int, item_key: str) -> int:
        stmt = select(func.max(Submission.attempt)).where(
            Submission.enrolment_id == enrolment_id, Submission.item_key == item_key
        )
        return int(self.session.scalar(stmt) or 0)

    def submission_in_tenant(
        self, deployment_id: int, submission_id: int, *, lock: bool = False
    ) -> tuple[Submission, Enrolment, TrainingClass] | None:
        """``lock``: take the submission row's lock (PostgreSQL; SQLite's write lock is
        already held), so that two trainers grading it at once take turns."""
        stmt = (
            select(Submission, Enrolment, TrainingClass)
            .join(Enrolment, Enrolment.id == Submission.enrolment_id)
            .join(TrainingClass, TrainingClass.id == Enrolment.class_id)
            .where(Submission.id == submission_id, TrainingClass.deployment_id == deployment_id)
        )
        if lock:
            stmt = stmt.with_for_update(of=Submission)
        row = self.session.execute(stmt).first()
        return (row[0], row[1], row[2]) if row else None

    def grades(
        self, enrolment_ids: Sequence[int], item_key: str | None = None
    ) -> dict[tuple[int, str], SubmissionGrade]:
        """The newest grade per (enrolment, item) (of ``item_key`` only, when given).

        Only those rows are loaded: the (enrolment, item) pairs come from the hand-ins (a
        grade is always of one), and each pair's newest grade is one index probe."""
        if not enrolment_ids:
            return {}
        pairs = (
            select(Submission.enrolment_id, Submission.item_key)
            .where(Submission.enrolment_id.in_(enrolment_ids))
            .distinct()
        )
        if item_key is not None:
            pairs = pairs.where(Submission.item_key == item_key)
        handed_in = pairs.subquery()
        newest = select(
            newest_grade_id(handed_in.c.enrolment_id, handed_in.c.item_key)
        ).select_from(handed_in)
        stmt = select(SubmissionGrade).where(SubmissionGrade.id.in_(newest))
        return {(row.enrolment_id, row.item_key): row for row in self.session.scalars(stmt)}

    def grade_history(self, enrolment_id: int) -> Sequence[SubmissionGrade]:
        stmt = (
            select(SubmissionGrade)
            .where(SubmissionGrade.enrolment_id == enrolment_id)
            .order_by(SubmissionGrade.graded_at, SubmissionGrade.id)
        )
        return self.session.scalars(stmt).all()
