"""Queries for waves, classes, sessions, enrolments, cohorts and support logs.

Every method takes the tenant (deployment) or an id already checked against it by the
service: nothing is looked up across tenants.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session

from app.classes.models import (
    ClassSession,
    ClassTrainer,
    Cohort,
    Enrolment,
    EnrolmentStatus,
    HolidayOverride,
    ScheduleShift,
    SupportLog,
    TrainingClass,
    Wave,
)
from app.identity.models import Role, User
from app.platforms.models import Deployment, Platform, PlatformStatus


class ClassRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- waves -----------------------------------------------------------------------------
    def waves(self, deployment_id: int) -> Sequence[Wave]:
        stmt = select(Wave).where(Wave.deployment_id == deployment_id).order_by(Wave.year, Wave.id)
        return self.session.scalars(stmt).all()

    def wave(self, deployment_id: int, wave_id: int) -> Wave | None:
        stmt = select(Wave).where(Wave.deployment_id == deployment_id, Wave.id == wave_id)
        return self.session.scalars(stmt).first()

    def wave_by_name(self, deployment_id: int, name: str) -> Wave | None:
        stmt = select(Wave).where(Wave.deployment_id == deployment_id, Wave.name == name)
        return self.session.scalars(stmt).first()

    # -- classes ---------------------------------------------------------------------------
    def classes(self, deployment_id: int, wave_id: int | None = None) -> Sequence[TrainingClass]:
        stmt = select(TrainingClass).where(TrainingClass.deployment_id == deployment_id)
        if wave_id is not None:
            stmt = stmt.where(TrainingClass.wave_id == wave_id)
        return self.session.scalars(stmt.order_by(TrainingClass.starts_on, TrainingClass.id)).all()

    def get_class(self, deployment_id: int, class_id: int) -> TrainingClass | None:
        stmt = select(TrainingClass).where(
            TrainingClass.deployment_id == deployment_id, TrainingClass.id == class_id
        )
        return self.session.scalars(stmt).first()

    def class_by_code(self, deployment_id: int, code: str) -> TrainingClass | None:
        stmt = select(TrainingClass).where(
            TrainingClass.deployment_id == deployment_id, TrainingClass.code == code
        )
        return self.session.scalars(stmt).first()

    def class_by_ical_token(self, token: str) -> TrainingClass | None:
        """The class of a calendar feed, while its LMS is not switched off."""
        stmt = (
            select(TrainingClass)
            .join(Deployment, Deployment.id == TrainingClass.deployment_id)
            .join(Platform, Platform.id == Deployment.platform_id)
            .where(TrainingClass.ical_token == token, Platform.status == PlatformStatus.ACTIVE)
        )
        return self.session.scalars(stmt).first()

    def classes_for_course(self, deployment_id: int, course_id: int) -> Sequence[TrainingClass]:
        stmt = select(TrainingClass).where(
            TrainingClass.deployment_id == deployment_id, TrainingClass.course_id == course_id
        )
        return self.session.scalars(stmt).all()

    def add(self, obj: object) -> None:
        self.session.add(obj)
        self.session.flush()

    def take_seat(self, class_id: int) -> bool:
        """Atomically take one seat: the row lock (PostgreSQL) or the write lock (SQLite)
        makes simultaneous enrolments queue, so the count never passes the capacity."""
        result = self.session.execute(
            update(TrainingClass)
            .where(
                TrainingClass.id == class_id, TrainingClass.enrolled_count < TrainingClass.capacity
            )
            .values(enrolled_count=TrainingClass.enrolled_count + 1)
            .returning(TrainingClass.enrolled_count)
        )
        return result.first() is not None

    def take_seats_up_to(self, class_id: int, wanted: int) -> int:
        """Take as many of ``wanted`` seats as are free, atomically (the class row is locked
        on PostgreSQL; SQLite's write lock serialises); returns how many were taken."""
        row = self.session.execute(
            select(TrainingClass.enrolled_count, TrainingClass.capacity)
            .where(TrainingClass.id == class_id)
            .with_for_update()
        ).one()
        taken = max(0, min(wanted, int(row.capacity) - int(row.enrolled_count)))
        if taken:
            self.session.execute(
                update(TrainingClass)
                .where(TrainingClass.id == class_id)
                .values(enrolled_count=TrainingClass.enrolled_count + taken)
            )
        return taken

    def enrolments_for_users(self, class_id: int, user_ids: Sequence[int]) -> dict[int, Enrolment]:
        if not user_ids:
            return {}
        stmt = select(Enrolment).where(
            Enrolment.class_id == class_id, Enrolment.user_id.in_(user_ids)
        )
        return {e.user_id: e for e in self.session.scalars(stmt)}

    def user_names(self, user_ids: Sequence[int]) -> dict[int, str]:
        """People's names as pages show them (``User.display_name``), in one query."""
        if not user_ids:
            return {}
        stmt = select(User).where(User.id.in_(user_ids))
        return {u.id: u.display_name for u in self.session.scalars(stmt)}

    def tenant_user_ids(self, platform_id: int, user_ids: Sequence[int]) -> set[int]:
        if not user_ids:
            return set()
        stmt = select(User.id).where(User.platform_id == platform_id, User.id.in_(user_ids))
        return set(self.session.scalars(stmt))

    def insert_enrolments(self, rows: Sequence[dict[str, object]]) -> None:
        if rows:
            self.session.execute(insert(Enrolment), list(rows))

    def release_seat(self, class_id: int) -> None:
        self.session.execute(
            update(TrainingClass)
            .where(TrainingClass.id == class_id, TrainingClass.enrolled_count > 0)
            .values(enrolled_count=TrainingClass.enrolled_count - 1)
        )

    # -- sessions --------------------------------------------------------------------------
    def sessions(self, class_id: int) -> Sequence[ClassSession]:
        stmt = (
            select(ClassSession)
            .where(ClassSession.class_id == class_id)
            .order_by(ClassSession.date, ClassSession.part.desc())
        )
        return self.session.scalars(stmt).all()

    def delete_sessions(self, class_id: int) -> None:
        for row in self.sessions(class_id):
            self.session.delete(row)
        self.session.flush()

    # -- trainers --------------------------------------------------------------------------
    def trainers(self, class_id: int) -> Sequence[tuple[ClassTrainer, User]]:
        stmt = (
            select(ClassTrainer, User)
            .join(User, User.id == ClassTrainer.user_id)
            .where(ClassTrainer.class_id == class_id, ClassTrainer.active.is_(True))
            .order_by(User.name, User.id)
        )
        return [(row[0], row[1]) for row in self.session.execute(stmt).all()]

    def trainer_link(self, class_id: int, user_id: int) -> ClassTrainer | None:
        return self.session.get(ClassTrainer, (class_id, user_id))

    # -- enrolments ------------------------------------------------------------------------
    def enrolment(self, class_id: int, user_id: int) -> Enrolment | None:
        stmt = select(Enrolment).where(Enrolment.class_id == class_id, Enrolment.user_id == user_id)
        return self.session.scalars(stmt).first()

    def enrolment_by_id(self, class_id: int, enrolment_id: int) -> Enrolment | None:
        stmt = select(Enrolment).where(Enrolment.class_id == class_id, Enrolment.id == enrolment_id)
        return self.session.scalars(stmt).first()

    def enrolment_by_ical_token(self, token: str) -> Enrolment | None:
        """The enrolment of a learner's calendar feed, while the learner and their LMS are not
        switched off (``blend727 user disable`` keeps a person out of their feed too)."""
        stmt = (
            select(Enrolment)
            .join(User, User.id == Enrolment.user_id)
            .join(TrainingClass, TrainingClass.id == Enrolment.class_id)
            .join(Deployment, Deployment.id == TrainingClass.deployment_id)
            .join(Platform, Platform.id == Deployment.platform_id)
            .where(
                Enrolment.ical_token == token,
                User.disabled_at.is_(None),
                Platform.status == PlatformStatus.ACTIVE,
            )
        )
        return self.session.scalars(stmt).first()

    def active_enrolments(self, class_id: int) -> Sequence[tuple[Enrolment, User]]:
        return self.roster(class_id, None)

    def roster(
        self, class_id: int, cohort_ids: Sequence[int] | None
    ) -> Sequence[tuple[Enrolment, User]]:
        """Active learners of the class, or of the given cohorts of it, by school and name."""
        stmt = (
            select(Enrolment, User)
            .join(User, User.id == Enrolment.user_id)
            .where(Enrolment.class_id == class_id, Enrolment.status == EnrolmentStatus.ACTIVE)
            .order_by(User.school, User.name, User.id)
        )
        if cohort_ids is not None:
            if not cohort_ids:
                return []
            stmt = stmt.where(Enrolment.cohort_id.in_(cohort_ids))
        return [(row[0], row[1]) for row in self.session.execute(stmt).all()]

    def follows(self, role: str, user_id: int, enrolment: Enrolment) -> bool:
        """Whether a person sees a learner's work: an administrator (the caller has checked
        the tenant), or the core trainer of the learner's cohort."""
        if role == Role.ADMIN:
            return True
        if role != Role.TRAINER or enrolment.cohort_id is None:
            return False
        return enrolment.cohort_id in self.trainer_cohort_ids(enrolment.class_id, user_id)

    def trainer_cohort_ids(self, class_id: int, user_id: int) -> list[int]:
        """The cohorts of a class that this person trains, in order."""
        stmt = (
            select(Cohort.id)
            .where(Cohort.class_id == class_id, Cohort.trainer_user_id == user_id)
            .order_by(Cohort.position)
        )
        return list(self.session.scalars(stmt))

    def all_enrolments(self, class_id: int) -> Sequence[tuple[Enrolment, User]]:
        stmt = (
            select(Enrolment, User)
            .join(User, User.id == Enrolment.user_id)
            .where(Enrolment.class_id == class_id)
            .order_by(User.name, User.id)
        )
        return [(row[0], row[1]) for row in self.session.execute(stmt).all()]

    def enrolments_of_user(
        self, deployment_id: int, user_id: int
    ) -> Sequence[tuple[Enrolment, TrainingClass]]:
        stmt = (
            select(Enrolment, TrainingClass)
            .join(TrainingClass, TrainingClass.id == Enrolment.class_id)
            .where(
                TrainingClass.deployment_id == deployment_id,
                Enrolment.user_id == user_id,
                Enrolment.status == EnrolmentStatus.ACTIVE,
            )
            .order_by(TrainingClass.starts_on)
        )
        return [(row[0], row[1]) for row in self.session.execute(stmt).all()]

    def add_shift(self, shift: ScheduleShift) -> None:
        self.session.add(shift)
        self.session.flush()

    def shifts(self, enrolment_id: int) -> Sequence[ScheduleShift]:
        stmt = (
            select(ScheduleShift)
            .where(ScheduleShift.enrolment_id == enrolment_id)
            .order_by(ScheduleShift.created_at, ScheduleShift.id)
        )
        return self.session.scalars(stmt).all()

    # -- cohorts ---------------------------------------------------------------------------
    def cohorts(self, class_id: int) -> Sequence[Cohort]:
        stmt = select(Cohort).where(Cohort.class_id == class_id).order_by(Cohort.position)
        return self.session.scalars(stmt).all()

    def cohort(self, class_id: int, cohort_id: int) -> Cohort | None:
        stmt = select(Cohort).where(Cohort.class_id == class_id, Cohort.id == cohort_id)
        return self.session.scalars(stmt).first()

    def cohort_sizes(self, class_id: int) -> dict[int, int]:
        stmt = (
            select(Enrolment.cohort_id, func.count())
            .where(
                Enrolment.class_id == class_id,
                Enrolment.status == EnrolmentStatus.ACTIVE,
                Enrolment.cohort_id.is_not(None),
            )
            .group_by(Enrolment.cohort_id)
        )
        return {int(cid or 0): int(n) for cid, n in self.session.execute(stmt).all()}

    def unassigned_count(self, class_id: int) -> int:
        stmt = select(func.count()).where(
            Enrolment.class_id == class_id,
            Enrolment.status == EnrolmentStatus.ACTIVE,
            Enrolment.cohort_id.is_(None),
        )
        return int(self.session.scalar(stmt) or 0)

    def delete_cohorts(self, class_id: int) -> None:
        self.session.execute(
            update(Enrolment).where(Enrolment.class_id == class_id).values(cohort_id=None)
        )
        for cohort in self.cohorts(class_id):
            self.session.delete(cohort)
        self.session.flush()

    def assign_cohort(self, enrolment_ids: Sequence[int], cohort_id: int) -> None:
        if enrolment_ids:
            self.session.execute(
                update(Enrolment)
                .where(Enrolment.id.in_(enrolment_ids))
                .values(cohort_id=cohort_id)
                .execution_options(synchronize_session=False)
            )

    def cohorts_of_trainer(
        self, deployment_id: int, user_id: int
    ) -> Sequence[tuple[Cohort, TrainingClass]]:
        stmt = (
            select(Cohort, TrainingClass)
            .join(TrainingClass, TrainingClass.id == Cohort.class_id)
            .where(TrainingClass.deployment_id == deployment_id, Cohort.trainer_user_id == user_id)
            .order_by(TrainingClass.starts_on, Cohort.position)
        )
        return [(row[0], row[1]) for row in self.session.execute(stmt).all()]

    def cohort_members(self, cohort_id: int) -> Sequence[tuple[Enrolment, User]]:
        stmt = (
            select(Enrolment, User)
            .join(User, User.id == Enrolment.user_id)
            .where(Enrolment.cohort_id == cohort_id, Enrolment.status == EnrolmentStatus.ACTIVE)
            .order_by(User.school, User.name, User.id)
        )
        return [(row[0], row[1]) for row in self.session.execute(stmt).all()]

    # -- batched, for lists of classes (a fixed number of queries, not a few per class) --
    def cohorts_of_classes(self, class_ids: Sequence[int]) -> dict[int, list[Cohort]]:
        out: dict[int, list[Cohort]] = {cid: [] for cid in class_ids}
        if class_ids:
            stmt = (
                select(Cohort)
                .where(Cohort.class_id.in_(class_ids))
                .order_by(Cohort.class_id, Cohort.position)
            )
            for cohort in self.session.scalars(stmt):
                out[cohort.class_id].append(cohort)
        return out

    def enrolment_counts(self, class_ids: Sequence[int]) -> tuple[dict[int, int], dict[int, int]]:
        """(active learners per cohort, active learners in no cohort per class)."""
        per_cohort: dict[int, int] = {}
        unassigned: dict[int, int] = dict.fromkeys(class_ids, 0)
        if class_ids:
            stmt = (
                select(Enrolment.class_id, Enrolment.cohort_id, func.count())
                .where(
                    Enrolment.class_id.in_(class_ids), Enrolment.status == EnrolmentStatus.ACTIVE
                )
                .group_by(Enrolment.class_id, Enrolment.cohort_id)
            )
            for class_id, cohort_id, count in self.session.execute(stmt).all():
                if cohort_id is None:
                    unassigned[int(class_id)] = int(count)
                else:
                    per_cohort[int(cohort_id)] = int(count)
        return per_cohort, unassigned

    def support_totals_of_classes(self, class_ids: Sequence[int]) -> dict[int, Decimal]:
        if not class_ids:
            return {}
        stmt = (
            select(SupportLog.cohort_id, func.sum(SupportLog.periods))
            .join(Cohort, Cohort.id == SupportLog.cohort_id)
            .where(Cohort.class_id.in_(class_ids))
            .group_by(SupportLog.cohort_id)
        )
        return {
            int(cid): Decimal(str(total or 0)) for cid, total in self.session.execute(stmt).all()
        }

    # -- support periods -------------------------------------------------------------------
    def support_totals(self, class_id: int) -> dict[int, Decimal]:
        stmt = (
            select(SupportLog.cohort_id, func.sum(SupportLog.periods))
            .join(Cohort, Cohort.id == SupportLog.cohort_id)
            .where(Cohort.class_id == class_id)
            .group_by(SupportLog.cohort_id)
        )
        return {
            int(cid): Decimal(str(total or 0)) for cid, total in self.session.execute(stmt).all()
        }

    def support_logs(self, cohort_id: int) -> Sequence[SupportLog]:
        stmt = (
            select(SupportLog)
            .where(SupportLog.cohort_id == cohort_id)
            .order_by(SupportLog.date, SupportLog.id)
        )
        return self.session.scalars(stmt).all()

    # -- holidays --------------------------------------------------------------------------
    def holiday_overrides(self, deployment_id: int) -> Sequence[HolidayOverride]:
        stmt = (
            select(HolidayOverride)
            .where(HolidayOverride.deployment_id == deployment_id)
            .order_by(HolidayOverride.date)
        )
        return self.session.scalars(stmt).all()

    def holiday_override(self, deployment_id: int, day: object) -> HolidayOverride | None:
        stmt = select(HolidayOverride).where(
            HolidayOverride.deployment_id == deployment_id, HolidayOverride.date == day
        )
        return self.session.scalars(stmt).first()

    def claim_roster_sync(self, class_id: int, now: datetime, stale_after: timedelta) -> bool:
        """Atomically mark a stale roster as being synced; False if someone else just did."""
        result = self.session.execute(
            update(TrainingClass)
            .where(
                TrainingClass.id == class_id,
                or_(
                    TrainingClass.roster_synced_at.is_(None),
                    TrainingClass.roster_synced_at < now - stale_after,
                ),
            )
            .values(roster_synced_at=now)
            .returning(TrainingClass.id)
        )
        return result.first() is not None

    def touch_roster(self, class_id: int, when: datetime) -> None:
        self.session.execute(
            update(TrainingClass).where(TrainingClass.id == class_id).values(roster_synced_at=when)
        )
