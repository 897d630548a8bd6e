"""Queries for module results and their audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.attendance.models import AttendanceMark
from app.classes.models import ClassSession, Enrolment, EnrolmentStatus, TrainingClass
from app.grading.models import ModuleResultRow, ResultChange
from app.identity.models import ResourceLink, User


class GradingRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, obj: object) -> None:
        self.session.add(obj)

    def flush(self) -> None:
        self.session.flush()

    def get_class(self, class_id: int) -> TrainingClass | None:
        return self.session.get(TrainingClass, class_id)

    def resource_link(self, link_id: int) -> ResourceLink | None:
        return self.session.get(ResourceLink, link_id)

    def enrolments(
        self, class_id: int, enrolment_ids: Sequence[int] | None
    ) -> Sequence[tuple[Enrolment, User]]:
        stmt = (
            select(Enrolment, User)
            .join(User, User.id == Enrolment.user_id)
            .where(Enrolment.class_id == class_id, Enrolment.status == EnrolmentStatus.ACTIVE)
            .order_by(Enrolment.id)
        )
        if enrolment_ids is not None:
            stmt = stmt.where(Enrolment.id.in_(enrolment_ids))
        return [(r[0], r[1]) for r in self.session.execute(stmt).all()]

    def lock_enrolments(self, enrolment_ids: Sequence[int]) -> None:
        """Hold the learners' rows until commit (PostgreSQL), so that two refreshes of one
        learner — a request in one process, the worker's sweep in another — take turns, and
        the second reads what the first wrote (no lost update, no duplicate result row).
        SQLite's writers already take turns."""
        if not enrolment_ids or self.session.get_bind().dialect.name != "postgresql":
            return
        self.session.execute(
            select(Enrolment.id)
            .where(Enrolment.id.in_(enrolment_ids))
            .order_by(Enrolment.id)
            .with_for_update()
        )

    def session_ids(self, class_id: int) -> list[int]:
        stmt = (
            select(ClassSession.id)
            .where(ClassSession.class_id == class_id)
            .order_by(ClassSession.date, ClassSession.part.desc(), ClassSession.id)
        )
        return list(self.session.scalars(stmt))

    def marks(self, class_id: int, enrolment_ids: Sequence[int]) -> dict[tuple[int, int], str]:
        """``(session_id, enrolment_id) → status`` for the enrolments' marks in the class."""
        if not enrolment_ids:
            return {}
        stmt = (
            select(AttendanceMark.session_id, AttendanceMark.enrolment_id, AttendanceMark.status)
            .join(ClassSession, ClassSession.id == AttendanceMark.session_id)
            .where(
                ClassSession.class_id == class_id,
                AttendanceMark.enrolment_id.in_(enrolment_ids),
            )
        )
        return {(int(s), int(e)): str(st) for s, e, st in self.session.execute(stmt).all()}

    def results(self, enrolment_ids: Sequence[int]) -> dict[int, ModuleResultRow]:
        if not enrolment_ids:
            return {}
        stmt = select(ModuleResultRow).where(ModuleResultRow.enrolment_id.in_(enrolment_ids))
        return {r.enrolment_id: r for r in self.session.scalars(stmt)}

    def result_for_update(self, enrolment_id: int) -> ModuleResultRow | None:
        stmt = (
            select(ModuleResultRow)
            .where(ModuleResultRow.enrolment_id == enrolment_id)
            .with_for_update()
        )
        return self.session.scalars(stmt).first()

    def changes(self, enrolment_id: int) -> Sequence[tuple[ResultChange, User | None]]:
        stmt = (
            select(ResultChange, User)
            .outerjoin(User, User.id == ResultChange.by_user_id)
            .where(ResultChange.enrolment_id == enrolment_id)
            .order_by(ResultChange.at.desc(), ResultChange.id.desc())
        )
        return [(r[0], r[1]) for r in self.session.execute(stmt).all()]

    # -- the sweep -------------------------------------------------------------------------
    def classes_needing_line_item(
        self, since: date
    ) -> Sequence[tuple[TrainingClass, ResourceLink]]:
        """Classes tied to a resource link whose gradebook column is not known yet."""
        stmt = (
            select(TrainingClass, ResourceLink)
            .join(ResourceLink, ResourceLink.id == TrainingClass.resource_link_id)
            .where(
                TrainingClass.line_item_url.is_(None),
                ResourceLink.ags_endpoint.is_not(None),
                TrainingClass.ends_on >= since,
            )
            .order_by(TrainingClass.id)
        )
        return [(r[0], r[1]) for r in self.session.execute(stmt).all()]

    def set_line_item(self, class_id: int, url: str) -> None:
        cls = self.session.get(TrainingClass, class_id, with_for_update=True)
        if cls is not None and cls.line_item_url is None:
            cls.line_item_url = url

    def results_to_settle(self, ended_before: date, limit: int) -> dict[int, list[int]]:
        """Enrolments of ended classes (with a gradebook column) whose result was last
        computed while the module was running, or never: ``class_id → enrolment ids``."""
        stmt = (
            select(Enrolment.class_id, Enrolment.id)
            .join(TrainingClass, TrainingClass.id == Enrolment.class_id)
            .outerjoin(ModuleResultRow, ModuleResultRow.enrolment_id == Enrolment.id)
            .where(
                TrainingClass.line_item_url.is_not(None),
                TrainingClass.ends_on < ended_before,
                Enrolment.status == EnrolmentStatus.ACTIVE,
                or_(
                    ModuleResultRow.id.is_(None),
                    ModuleResultRow.sent_state.is_(None),
                    ModuleResultRow.sent_state.like("InProgress|%"),
                ),
            )
            # Least recently computed first: learners whose own dates run past the class's
            # end come back every sweep until they end, and must not starve the others.
            .order_by(ModuleResultRow.updated_at.asc().nulls_first(), Enrolment.id)
            .limit(limit)
        )
        out: dict[int, list[int]] = {}
        for class_id, enrolment_id in self.session.execute(stmt).all():
            out.setdefault(int(class_id), []).append(int(enrolment_id))
        return out
