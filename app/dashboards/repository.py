"""Queries for the cohort dashboard: everything about one cohort in a fixed number of
statements, whatever its size. Each query joins through the enrolment to the cohort (active
learners only) instead of passing a list of ids, so the database walks the cohort's index
(``ix_enrolment_cohort``) and then each table's enrolment index.

The cohort itself is looked up within the tenant (deployment); the rest take the id of a
cohort already checked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, aliased

from app.attendance.models import AttendanceMark
from app.catalogue.models import ModuleVersion
from app.classes.models import (
    ClassSession,
    Cohort,
    Enrolment,
    EnrolmentStatus,
    SupportLog,
    TrainingClass,
)
from app.grading.models import ModuleResultRow
from app.identity.models import User
from app.learning.models import ItemProgress, Submission, SubmissionGrade
from app.learning.repository import newest_grade_id

S = TypeVar("S", bound=Select)


def _in_cohort(stmt: S, enrolment_id: Any, cohort_id: int) -> S:
    return stmt.join(Enrolment, Enrolment.id == enrolment_id).where(
        Enrolment.cohort_id == cohort_id, Enrolment.status == EnrolmentStatus.ACTIVE
    )


class DashboardRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def cohort_in_tenant(
        self, deployment_id: int, cohort_id: int
    ) -> tuple[Cohort, TrainingClass, User | None] | None:
        """The cohort, its class and its core trainer (if any), within the tenant."""
        trainer = aliased(User)
        stmt = (
            select(Cohort, TrainingClass, trainer)
            .join(TrainingClass, TrainingClass.id == Cohort.class_id)
            .outerjoin(trainer, trainer.id == Cohort.trainer_user_id)
            .where(Cohort.id == cohort_id, TrainingClass.deployment_id == deployment_id)
        )
        row = self.session.execute(stmt).first()
        return (row[0], row[1], row[2]) if row else None

    def module_version(self, version_id: int) -> ModuleVersion | None:
        return self.session.get(ModuleVersion, version_id)

    def members(self, cohort_id: int) -> Sequence[tuple[Enrolment, User]]:
        stmt = (
            select(Enrolment, User)
            .join(User, User.id == Enrolment.user_id)
            .where(Enrolment.cohort_id == cohort_id, Enrolment.status == EnrolmentStatus.ACTIVE)
            .order_by(User.name, User.id)
        )
        return [(r[0], r[1]) for r in self.session.execute(stmt).all()]

    def members_of_cohorts(self, cohort_ids: Sequence[int]) -> dict[int, list[User]]:
        """Active learners of several cohorts at once (a trainer's start page), by name."""
        out: dict[int, list[User]] = {cid: [] for cid in cohort_ids}
        if not cohort_ids:
            return out
        stmt = (
            select(Enrolment.cohort_id, User)
            .join(User, User.id == Enrolment.user_id)
            .where(Enrolment.cohort_id.in_(cohort_ids), Enrolment.status == EnrolmentStatus.ACTIVE)
            .order_by(User.name, User.id)
        )
        for cohort_id, user in self.session.execute(stmt).all():
            out[int(cohort_id or 0)].append(user)
        return out

    def sessions(self, class_id: int) -> Sequence[ClassSession]:
        stmt = (
            select(ClassSession)
            .where(ClassSession.class_id == class_id)
            .order_by(ClassSession.date, ClassSession.part.desc(), ClassSession.id)
        )
        return self.session.scalars(stmt).all()

    def marks(self, cohort_id: int) -> dict[tuple[int, int], str]:
        """``(session_id, enrolment_id) → status`` of the cohort's learners."""
        stmt = _in_cohort(
            select(AttendanceMark.session_id, AttendanceMark.enrolment_id, AttendanceMark.status),
            AttendanceMark.enrolment_id,
            cohort_id,
        )
        return {(int(s), int(e)): str(st) for s, e, st in self.session.execute(stmt).all()}

    def done(self, cohort_id: int) -> dict[int, set[str]]:
        """Item keys done, per enrolment."""
        stmt = _in_cohort(
            select(ItemProgress.enrolment_id, ItemProgress.item_key),
            ItemProgress.enrolment_id,
            cohort_id,
        )
        out: dict[int, set[str]] = {}
        for enrolment_id, key in self.session.execute(stmt).all():
            out.setdefault(int(enrolment_id), set()).add(str(key))
        return out

    def latest_hand_ins(self, cohort_id: int) -> dict[tuple[int, str], int]:
        """``(enrolment_id, item_key) → id`` of the newest hand-in (no text is loaded)."""
        stmt = _in_cohort(
            select(Submission.enrolment_id, Submission.item_key, Submission.id),
            Submission.enrolment_id,
            cohort_id,
        ).order_by(Submission.attempt)
        return {(int(e), str(k)): int(s) for e, k, s in self.session.execute(stmt).all()}

    def graded(self, cohort_id: int) -> dict[tuple[int, str], int]:
        """``(enrolment_id, item_key) → submission id`` the newest grade is of (only the
        newest grades are read: one index probe per hand-in, not the grade history)."""
        handed_in = (
            _in_cohort(
                select(Submission.enrolment_id, Submission.item_key),
                Submission.enrolment_id,
                cohort_id,
            )
            .distinct()
            .subquery()
        )
        newest = select(
            newest_grade_id(handed_in.c.enrolment_id, handed_in.c.item_key)
        ).select_from(handed_in)
        stmt = select(
            SubmissionGrade.enrolment_id, SubmissionGrade.item_key, SubmissionGrade.submission_id
        ).where(SubmissionGrade.id.in_(newest))
        return {(int(e), str(k)): int(s) for e, k, s in self.session.execute(stmt).all()}

    def results(self, cohort_id: int) -> dict[int, ModuleResultRow]:
        stmt = _in_cohort(select(ModuleResultRow), ModuleResultRow.enrolment_id, cohort_id)
        return {r.enrolment_id: r for r in self.session.scalars(stmt)}

    def support_logs(self, cohort_id: int) -> Sequence[SupportLog]:
        stmt = (
            select(SupportLog)
            .where(SupportLog.cohort_id == cohort_id)
            .order_by(SupportLog.date, SupportLog.id)
        )
        return self.session.scalars(stmt).all()

    # -- checks for the writes made from the dashboard -------------------------------------
    def member(self, cohort_id: int, enrolment_id: int) -> Enrolment | None:
        stmt = select(Enrolment).where(
            Enrolment.id == enrolment_id,
            Enrolment.cohort_id == cohort_id,
            Enrolment.status == EnrolmentStatus.ACTIVE,
        )
        return self.session.scalars(stmt).first()

    def submission_member(self, cohort_id: int, submission_id: int) -> int | None:
        """The enrolment id of a hand-in by an active learner of the cohort, else ``None``."""
        stmt = _in_cohort(
            select(Submission.enrolment_id).where(Submission.id == submission_id),
            Submission.enrolment_id,
            cohort_id,
        )
        value = self.session.scalar(stmt)
        return int(value) if value is not None else None
