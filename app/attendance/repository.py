"""Queries for attendance. Every lookup of a session goes through its class and the
deployment (tenant) the caller belongs to; the rest take ids the service already checked."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from app.attendance.models import AttendanceChange, AttendanceMark, CheckinRecord, CheckinWindow
from app.catalogue.models import ModuleVersion
from app.classes.models import ClassSession, Enrolment, EnrolmentStatus, TrainingClass
from app.identity.models import User


class AttendanceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, obj: object) -> None:
        self.session.add(obj)

    def flush(self) -> None:
        self.session.flush()

    # -- sessions and classes --------------------------------------------------------------
    def session_and_class(
        self, deployment_id: int, session_id: int, *, lock: bool = False
    ) -> tuple[ClassSession, TrainingClass] | None:
        """The session and its class, within the tenant. ``lock`` takes the session row's
        lock (PostgreSQL; SQLite's write lock is already held) so that writes to one
        session's attendance queue up instead of racing."""
        stmt = (
            select(ClassSession, TrainingClass)
            .join(TrainingClass, TrainingClass.id == ClassSession.class_id)
            .where(ClassSession.id == session_id, TrainingClass.deployment_id == deployment_id)
        )
        if lock:
            stmt = stmt.with_for_update(of=ClassSession)
        row = self.session.execute(stmt).first()
        return (row[0], row[1]) if row else None

    def get_class(self, deployment_id: int, class_id: int) -> TrainingClass | None:
        stmt = select(TrainingClass).where(
            TrainingClass.deployment_id == deployment_id, TrainingClass.id == class_id
        )
        return self.session.scalars(stmt).first()

    def sessions(self, class_id: int) -> Sequence[ClassSession]:
        """Sessions of a class in order: by date, the morning before the afternoon."""
        stmt = (
            select(ClassSession)
            .where(ClassSession.class_id == class_id)
            .order_by(ClassSession.date, ClassSession.part.desc(), ClassSession.id)
        )
        return self.session.scalars(stmt).all()

    def module_spec(self, module_version_id: int) -> dict:
        version = self.session.get(ModuleVersion, module_version_id)
        return dict(version.spec) if version is not None else {}

    def learner_sessions_on(
        self, deployment_id: int, user_id: int, day: date
    ) -> Sequence[tuple[ClassSession, TrainingClass, CheckinWindow | None]]:
        """The sessions on ``day`` of the classes a person is an active learner of."""
        stmt = (
            select(ClassSession, TrainingClass, CheckinWindow)
            .join(TrainingClass, TrainingClass.id == ClassSession.class_id)
            .join(Enrolment, Enrolment.class_id == TrainingClass.id)
            .outerjoin(CheckinWindow, CheckinWindow.session_id == ClassSession.id)
            .where(
                TrainingClass.deployment_id == deployment_id,
                Enrolment.user_id == user_id,
                Enrolment.status == EnrolmentStatus.ACTIVE,
                ClassSession.date == day,
            )
            .order_by(ClassSession.part.desc(), TrainingClass.id)
        )
        return [(r[0], r[1], r[2]) for r in self.session.execute(stmt).all()]

    # -- learners ----------------------------------------------------------------------------
    def active_enrolment(self, class_id: int, user_id: int) -> Enrolment | None:
        stmt = select(Enrolment).where(
            Enrolment.class_id == class_id,
            Enrolment.user_id == user_id,
            Enrolment.status == EnrolmentStatus.ACTIVE,
        )
        return self.session.scalars(stmt).first()

    # -- marks -------------------------------------------------------------------------------
    def marks(self, session_id: int) -> dict[int, AttendanceMark]:
        stmt = select(AttendanceMark).where(AttendanceMark.session_id == session_id)
        return {m.enrolment_id: m for m in self.session.scalars(stmt)}

    def mark(self, session_id: int, enrolment_id: int) -> AttendanceMark | None:
        stmt = select(AttendanceMark).where(
            AttendanceMark.session_id == session_id, AttendanceMark.enrolment_id == enrolment_id
        )
        return self.session.scalars(stmt).first()

    def marks_of_class(self, class_id: int) -> Sequence[tuple[int, int, str]]:
        """``(session_id, enrolment_id, status)`` of every mark of the class's sessions."""
        stmt = (
            select(AttendanceMark.session_id, AttendanceMark.enrolment_id, AttendanceMark.status)
            .join(ClassSession, ClassSession.id == AttendanceMark.session_id)
            .where(ClassSession.class_id == class_id)
        )
        return [(int(s), int(e), str(st)) for s, e, st in self.session.execute(stmt).all()]

    def changes(
        self, session_id: int, enrolment_ids: Sequence[int] | None
    ) -> Sequence[tuple[AttendanceChange, User | None]]:
        stmt = (
            select(AttendanceChange, User)
            .outerjoin(User, User.id == AttendanceChange.by_user_id)
            .where(AttendanceChange.session_id == session_id)
            .order_by(AttendanceChange.at, AttendanceChange.id)
        )
        if enrolment_ids is not None:
            stmt = stmt.where(AttendanceChange.enrolment_id.in_(enrolment_ids))
        return [(r[0], r[1]) for r in self.session.execute(stmt).all()]

    # -- check-in ----------------------------------------------------------------------------
    def window(self, session_id: int) -> CheckinWindow | None:
        return self.session.get(CheckinWindow, session_id)

    def device_windows(self, session_id: int, device_hash: str, enrolment_id: int) -> list[int]:
        """Code windows of check-ins of *other* learners from this device in this session."""
        stmt = select(CheckinRecord.code_window).where(
            CheckinRecord.session_id == session_id,
            CheckinRecord.device_hash == device_hash,
            CheckinRecord.enrolment_id != enrolment_id,
        )
        return [int(w) for w in self.session.scalars(stmt)]

    def checked_in_count(self, session_id: int) -> int:
        stmt = select(func.count(func.distinct(CheckinRecord.enrolment_id))).where(
            CheckinRecord.session_id == session_id
        )
        return int(self.session.scalar(stmt) or 0)

    def checkins(self, session_id: int, enrolment_ids: Sequence[int]) -> dict[int, CheckinRecord]:
        """The first check-in of each of these learners in a session. Only those rows are
        loaded: one probe of ``ix_attendance_checkin_first`` per learner, however often the
        learner checked in again (after a trainer's correction)."""
        if not enrolment_ids:
            return {}
        other = aliased(CheckinRecord)
        first = (
            select(other.id)
            .where(other.session_id == session_id, other.enrolment_id == Enrolment.id)
            .order_by(other.at, other.id)
            .limit(1)
            .scalar_subquery()
        )
        firsts = select(first).where(Enrolment.id.in_(enrolment_ids))
        stmt = select(CheckinRecord).where(CheckinRecord.id.in_(firsts))
        return {r.enrolment_id: r for r in self.session.scalars(stmt)}
