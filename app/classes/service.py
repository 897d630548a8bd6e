"""Waves, classes and their schedule, enrolments within the cap, cohorts, support periods
and compliance. Routes call these; every method is scoped to one tenant (deployment)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from app.audit.rules import Actor, Subject
from app.audit.service import AuditLog, system_actor
from app.catalogue.models import ModuleVersion
from app.catalogue.repository import CatalogueRepository
from app.classes.models import (
    ClassSession,
    ClassTrainer,
    Cohort,
    Enrolment,
    EnrolmentStatus,
    ScheduleShift,
    SessionPart,
    SupportLog,
    TrainingClass,
    Wave,
)
from app.classes.repository import ClassRepository
from app.classes.rules import (
    ClassFacts,
    CohortFacts,
    LearnerRef,
    RuleResult,
    evaluate,
    plan_cohorts,
)
from app.classes.schemas import ClassCreate, FallbackSet, ShiftCreate, SupportLogCreate, WaveCreate
from app.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.core.time import utcnow
from app.identity.models import Course, User
from app.schedule.rules import (
    PhasePlan,
    Schedule,
    schedule_from_in_person,
    schedule_from_start,
    shift_schedule,
)
from app.schedule.service import calendar_for


class ClassFull(Conflict):
    code = "class_full"
    title = "The class is full"
    detail = "This class has reached its capacity of %(capacity)s learners."


def _iso(days: Sequence[date]) -> list[str]:
    return [d.isoformat() for d in days]


def _dates(values: Sequence[str]) -> tuple[date, ...]:
    return tuple(date.fromisoformat(v) for v in values)


def plan_of(spec: dict[str, Any]) -> PhasePlan:
    plan = spec.get("plan", {})
    return PhasePlan(
        self_study_days=int(plan.get("self_study_days", 7)),
        in_person_days=int(plan.get("in_person_days", 2)),
        follow_up_days=int(plan.get("follow_up_days", 7)),
    )


def periods_of(spec: dict[str, Any]) -> tuple[int, int, int]:
    plan = spec.get("plan", {})
    return (
        int(plan.get("self_study_periods", 0)),
        int(plan.get("in_person_periods", 0)),
        int(plan.get("follow_up_periods", 0)),
    )


def stored_schedule(cls: TrainingClass) -> Schedule:
    return Schedule(
        self_study_start=cls.self_study_start,
        self_study_end=cls.self_study_end,
        in_person_dates=_dates(cls.in_person_dates),
        follow_up_start=cls.follow_up_start,
        follow_up_end=cls.follow_up_end,
    )


def learner_schedule(cls: TrainingClass, enrolment: Enrolment) -> Schedule:
    """A learner's own dates: the class's, unless theirs were moved (``own_schedule``)."""
    if enrolment.own_schedule:
        return Schedule.from_dict(enrolment.own_schedule)
    return stored_schedule(cls)


@dataclass(frozen=True)
class CohortView:
    cohort: Cohort
    size: int
    support_periods: Decimal
    trainer: User | None


def class_subject(cls: TrainingClass) -> Subject:
    return Subject("class", cls.id, cls.code, cls.id)


class ClassService:
    """``actor``: who makes the changes, for the audit log (the tool itself when ``None``:
    the demonstration's seed, a background roster sync)."""

    def __init__(self, session: Session, actor: Actor | None = None) -> None:
        self.session = session
        self.repo = ClassRepository(session)
        self.catalogue = CatalogueRepository(session)
        self.actor = actor

    def _log(
        self,
        deployment_id: int,
        action: str,
        subject: Subject,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> None:
        """The change in the audit log, in this unit of work."""
        actor = self.actor or system_actor(self.session, deployment_id)
        AuditLog(self.session).record(actor, action, subject, before, after, reason)

    def _learner(self, enrolment: Enrolment, cls: TrainingClass) -> Subject:
        user = self.session.get(User, enrolment.user_id)
        return Subject("enrolment", enrolment.id, user.display_name if user else None, cls.id)

    # -- waves -----------------------------------------------------------------------------
    def create_wave(self, deployment_id: int, data: WaveCreate) -> Wave:
        if self.repo.wave_by_name(deployment_id, data.name) is not None:
            raise Conflict(
                "A wave named %(name)s already exists",
                params={"name": data.name, "field": "name"},
                code="duplicate",
            )
        wave = Wave(
            deployment_id=deployment_id,
            name=data.name,
            year=data.year,
            description=data.description,
        )
        self.repo.add(wave)
        self._log(
            deployment_id,
            "wave.create",
            Subject("wave", wave.id, wave.name),
            None,
            {"name": wave.name, "year": wave.year},
        )
        return wave

    def get_wave(self, deployment_id: int, wave_id: int) -> Wave:
        wave = self.repo.wave(deployment_id, wave_id)
        if wave is None:
            raise NotFound()
        return wave

    # -- classes ---------------------------------------------------------------------------
    def get_class(self, deployment_id: int, class_id: int) -> TrainingClass:
        cls = self.repo.get_class(deployment_id, class_id)
        if cls is None:
            raise NotFound()
        return cls

    def version_of(self, cls: TrainingClass) -> ModuleVersion:
        version = self.catalogue.version(cls.module_version_id)
        assert version is not None
        return version

    def _compute(
        self, deployment_id: int, plan: PhasePlan, start: date | None, in_person: Sequence[date]
    ) -> Schedule:
        anchor = start or min(in_person)
        calendar = calendar_for(self.session, deployment_id, around=anchor.year)
        # ScheduleError is a ValidationFailed naming the field and date at fault.
        if in_person:
            return schedule_from_in_person(list(in_person), plan, calendar)
        assert start is not None
        return schedule_from_start(start, plan, calendar)

    def _apply_schedule(self, cls: TrainingClass, schedule: Schedule) -> None:
        cls.self_study_start = schedule.self_study_start
        cls.self_study_end = schedule.self_study_end
        cls.in_person_dates = _iso(schedule.in_person_dates)
        cls.follow_up_start = schedule.follow_up_start
        cls.follow_up_end = schedule.follow_up_end
        cls.starts_on = schedule.start
        cls.ends_on = schedule.end

    def _make_sessions(
        self, cls: TrainingClass, schedule: Schedule, venue: str | None, room: str | None
    ) -> None:
        for day in schedule.in_person_dates:
            for part in (SessionPart.MORNING, SessionPart.AFTERNOON):
                self.session.add(
                    ClassSession(class_id=cls.id, date=day, part=part, venue=venue, room=room)
                )
        self.session.flush()

    def create_class(self, deployment_id: int, data: ClassCreate) -> TrainingClass:
        module = self.catalogue.module(deployment_id, data.module_id)
        if module is None or module.current_version_id is None:
            raise ValidationFailed(
                "%(field)s does not name a module of this catalogue",
                params={"field": "module_id"},
            )
        version = self.catalogue.version(module.current_version_id)
        assert version is not None
        levels = version.spec.get("levels", [])
        if levels and data.level.value not in levels:
            raise ValidationFailed(
                "This module has no title for level %(level)s yet; add it in the catalogue first",
                params={"level": data.level.value, "field": "level"},
            )
        if data.wave_id is not None and self.repo.wave(deployment_id, data.wave_id) is None:
            raise ValidationFailed(
                "%(field)s does not name a wave of this LMS", params={"field": "wave_id"}
            )
        if data.course_id is not None:
            course = self.session.get(Course, data.course_id)
            if course is None or course.deployment_id != deployment_id:
                raise ValidationFailed(
                    "%(field)s does not name a course of this LMS", params={"field": "course_id"}
                )
        if self.repo.class_by_code(deployment_id, data.code) is not None:
            raise Conflict(
                "A class with code %(code)s already exists",
                params={"code": data.code, "field": "code"},
                code="duplicate",
            )
        plan = plan_of(version.spec)
        schedule = self._compute(deployment_id, plan, data.start_date, data.in_person_dates)
        cls = TrainingClass(
            deployment_id=deployment_id,
            wave_id=data.wave_id,
            module_version_id=version.id,
            code=data.code,
            name=data.name,
            level=data.level.value,
            programme=str(version.spec.get("plan", {}).get("programme", "etep-7-2-7")),
            capacity=data.capacity,
            enrolled_count=0,
            anchor_start=data.start_date,
            anchor_in_person=_iso(sorted(data.in_person_dates)),
            plan={
                "self_study_days": plan.self_study_days,
                "in_person_days": plan.in_person_days,
                "follow_up_days": plan.follow_up_days,
            },
            course_id=data.course_id,
            ical_token=secrets.token_urlsafe(24),
            starts_on=schedule.start,
            ends_on=schedule.end,
        )
        self._apply_schedule(cls, schedule)
        self.repo.add(cls)
        self._make_sessions(cls, schedule, data.venue, data.room)
        self._log(
            deployment_id,
            "class.create",
            class_subject(cls),
            None,
            {
                "code": cls.code,
                "name": cls.name,
                "module": version.title_vi,
                "level": cls.level,
                "capacity": cls.capacity,
                "in_person_dates": cls.in_person_dates,
            },
        )
        return cls

    def link_course(
        self, deployment_id: int, class_id: int, course_id: int | None
    ) -> TrainingClass:
        cls = self.get_class(deployment_id, class_id)
        if course_id is not None:
            course = self.session.get(Course, course_id)
            if course is None or course.deployment_id != deployment_id:
                raise ValidationFailed(
                    "%(field)s does not name a course of this LMS", params={"field": "course_id"}
                )
        if cls.course_id != course_id:
            self._log(
                deployment_id,
                "class.update",
                class_subject(cls),
                {"course_id": cls.course_id},
                {"course_id": course_id},
            )
        cls.course_id = course_id
        return cls

    def renew_class_feed(self, deployment_id: int, class_id: int) -> TrainingClass:
        """A new address for the class's calendar feed; the old one answers 404 from now on
        (a link that was passed around too widely)."""
        cls = self.get_class(deployment_id, class_id)
        cls.ical_token = secrets.token_urlsafe(24)  # never in the log: the token is the key
        self.session.flush()
        self._log(deployment_id, "calendar.renew", class_subject(cls))
        return cls

    def renew_learner_feed(self, deployment_id: int, class_id: int, user_id: int) -> Enrolment:
        """A new address for a learner's own calendar feed of a class; the old one answers
        404 from now on. Only the learner's own, active enrolment."""
        cls = self.get_class(deployment_id, class_id)
        enrolment = self.repo.enrolment(cls.id, user_id)
        if enrolment is None or enrolment.status != EnrolmentStatus.ACTIVE:
            raise Forbidden(detail="Only learners enrolled in this class have a calendar link.")
        enrolment.ical_token = secrets.token_urlsafe(24)
        self.session.flush()
        self._log(deployment_id, "calendar.renew", self._learner(enrolment, cls))
        return enrolment

    def set_fallback(self, deployment_id: int, class_id: int, data: FallbackSet) -> TrainingClass:
        """Epidemic or disaster: every in-person session moves to the virtual classroom."""
        cls = self.get_class(deployment_id, class_id)
        before = {
            "url": cls.virtual_fallback_url,
            "decided_on": cls.virtual_fallback_decided_on,
        }
        cls.virtual_fallback_url = str(data.url)
        cls.virtual_fallback_reason = data.reason
        cls.virtual_fallback_decided_on = data.decided_on
        after = {"url": cls.virtual_fallback_url, "decided_on": data.decided_on}
        self._log(
            deployment_id, "class.fallback.set", class_subject(cls), before, after, data.reason
        )
        for row in self.repo.sessions(cls.id):
            row.virtual_url = str(data.url)
        return cls

    def clear_fallback(self, deployment_id: int, class_id: int) -> TrainingClass:
        cls = self.get_class(deployment_id, class_id)
        if cls.virtual_fallback_url is not None:
            self._log(
                deployment_id,
                "class.fallback.clear",
                class_subject(cls),
                {"url": cls.virtual_fallback_url, "decided_on": cls.virtual_fallback_decided_on},
                {"url": None, "decided_on": None},
            )
        cls.virtual_fallback_url = None
        cls.virtual_fallback_reason = None
        cls.virtual_fallback_decided_on = None
        for row in self.repo.sessions(cls.id):
            row.virtual_url = None
        return cls

    # -- enrolments ------------------------------------------------------------------------
    def enrol(
        self, deployment_id: int, class_id: int, user_id: int, *, source: str = "manual"
    ) -> Enrolment:
        """Enrol within the cap, safely under concurrency; idempotent for an active learner."""
        cls = self.get_class(deployment_id, class_id)
        user = self.session.get(User, user_id)
        if user is None or not self._same_tenant_user(deployment_id, user):
            raise ValidationFailed(
                "%(field)s is not a person of this LMS", params={"field": "user_id"}
            )
        existing = self.repo.enrolment(cls.id, user_id)
        if existing is not None and existing.status == EnrolmentStatus.ACTIVE:
            return existing
        if not self.repo.take_seat(cls.id):
            raise ClassFull(params={"capacity": cls.capacity})
        if existing is not None:
            before = {"status": existing.status}
            existing.status = EnrolmentStatus.ACTIVE
            existing.left_at = None
            existing.source = source
            self.session.flush()
            self._log(
                deployment_id,
                "enrolment.add",
                self._learner(existing, cls),
                before,
                {"status": EnrolmentStatus.ACTIVE, "source": source},
            )
            return existing
        enrolment = Enrolment(
            class_id=cls.id,
            user_id=user_id,
            source=source,
            ical_token=secrets.token_urlsafe(24),
        )
        self.repo.add(enrolment)
        self._log(
            deployment_id,
            "enrolment.add",
            self._learner(enrolment, cls),
            None,
            {"status": EnrolmentStatus.ACTIVE, "source": source},
        )
        return enrolment

    def enrol_many(
        self, deployment_id: int, class_id: int, user_ids: Sequence[int], *, source: str
    ) -> tuple[list[int], list[int]]:
        """Enrol many at once (a roster, an import): a fixed number of statements whatever the
        number of people. Seats are filled in the order given; who does not fit is returned
        as refused. Returns (enrolled now, refused because the class is full); people
        already enrolled are in neither list."""
        cls = self.get_class(deployment_id, class_id)
        wanted = list(dict.fromkeys(user_ids))
        platform_id = self._platform_id(deployment_id)
        known = self.repo.tenant_user_ids(platform_id, wanted) if platform_id else set()
        if len(known) != len(wanted):
            raise ValidationFailed(
                "%(field)s is not a person of this LMS", params={"field": "user_id"}
            )
        existing = self.repo.enrolments_for_users(cls.id, wanted)
        to_seat = [
            u for u in wanted if u not in existing or existing[u].status != EnrolmentStatus.ACTIVE
        ]
        taken = self.repo.take_seats_up_to(cls.id, len(to_seat))
        seated, refused = to_seat[:taken], to_seat[taken:]
        previous = {u: existing[u].status for u in seated if u in existing}
        now = utcnow()
        new_rows: list[dict[str, object]] = []
        for user_id in seated:
            row = existing.get(user_id)
            if row is not None:
                row.status, row.left_at, row.source = EnrolmentStatus.ACTIVE, None, source
            else:
                new_rows.append(
                    {
                        "class_id": cls.id,
                        "user_id": user_id,
                        "cohort_id": None,
                        "status": EnrolmentStatus.ACTIVE.value,
                        "source": source,
                        "enrolled_at": now,
                        "left_at": None,
                        "own_schedule": None,
                        "ical_token": secrets.token_urlsafe(24),
                    }
                )
        self.repo.insert_enrolments(new_rows)
        self.session.flush()
        if seated:
            rows = self.repo.enrolments_for_users(cls.id, seated)
            names = self.repo.user_names(seated)
            for user_id in seated:
                row = rows[user_id]
                self._log(
                    deployment_id,
                    "enrolment.add",
                    Subject("enrolment", row.id, names.get(user_id), cls.id),
                    {"status": previous[user_id]} if user_id in previous else None,
                    {"status": EnrolmentStatus.ACTIVE, "source": source},
                )
        return seated, refused

    def _platform_id(self, deployment_id: int) -> int | None:
        from app.platforms.models import Deployment

        deployment = self.session.get(Deployment, deployment_id)
        return deployment.platform_id if deployment is not None else None

    def leave(self, deployment_id: int, class_id: int, user_id: int) -> None:
        """Mark a learner as gone; the record and its history stay."""
        cls = self.get_class(deployment_id, class_id)
        enrolment = self.repo.enrolment(cls.id, user_id)
        if enrolment is None or enrolment.status != EnrolmentStatus.ACTIVE:
            return
        self._log(
            deployment_id,
            "enrolment.remove",
            self._learner(enrolment, cls),
            {"status": enrolment.status, "cohort_id": enrolment.cohort_id},
            {"status": EnrolmentStatus.LEFT, "cohort_id": None},
        )
        enrolment.status = EnrolmentStatus.LEFT
        enrolment.left_at = utcnow()
        enrolment.cohort_id = None
        self.repo.release_seat(cls.id)
        self.session.flush()

    def _same_tenant_user(self, deployment_id: int, user: User) -> bool:
        return self._platform_id(deployment_id) == user.platform_id

    def learner_schedule(self, cls: TrainingClass, enrolment: Enrolment) -> Schedule:
        return learner_schedule(cls, enrolment)

    def shift(
        self,
        deployment_id: int,
        class_id: int,
        enrolment_id: int,
        data: ShiftCreate,
        by_user_id: int,
    ) -> Enrolment:
        cls = self.get_class(deployment_id, class_id)
        enrolment = self.repo.enrolment_by_id(cls.id, enrolment_id)
        if enrolment is None:
            raise NotFound()
        calendar = calendar_for(self.session, deployment_id, around=cls.starts_on.year)
        version = self.version_of(cls)
        shifted = shift_schedule(
            stored_schedule(cls),
            new_in_person_dates=data.in_person_dates,
            delay_days=data.delay_days,
            calendar=calendar,
            plan=plan_of(version.spec),
        )
        before_dates = learner_schedule(cls, enrolment)
        enrolment.own_schedule = shifted.to_dict()
        self._log(
            deployment_id,
            "enrolment.shift",
            self._learner(enrolment, cls),
            {"start": before_dates.start, "end": before_dates.end},
            {"start": shifted.start, "end": shifted.end},
            data.reason,
        )
        self.repo.add_shift(
            ScheduleShift(
                enrolment_id=enrolment.id,
                delay_days=data.delay_days,
                in_person_dates=_iso(data.in_person_dates) if data.in_person_dates else None,
                reason=data.reason,
                by_user_id=by_user_id,
            )
        )
        return enrolment

    # -- trainers and cohorts --------------------------------------------------------------
    def add_trainer(
        self, deployment_id: int, class_id: int, user_id: int, *, source: str = "manual"
    ) -> None:
        cls = self.get_class(deployment_id, class_id)
        user = self.session.get(User, user_id)
        if user is None or not self._same_tenant_user(deployment_id, user):
            raise ValidationFailed(
                "%(field)s is not a person of this LMS", params={"field": "user_id"}
            )
        link = self.repo.trainer_link(cls.id, user_id)
        if link is not None and link.active:
            return
        if link is None:
            self.repo.add(ClassTrainer(class_id=cls.id, user_id=user_id, source=source))
        else:
            link.active = True
            self.session.flush()
        self._log(
            deployment_id,
            "trainer.add",
            class_subject(cls),
            None,
            {"trainer": user.display_name, "trainer_user_id": user.id, "source": source},
        )

    def split_cohorts(self, deployment_id: int, class_id: int) -> list[Cohort]:
        """(Re)split the active learners into balanced cohorts of at most 50, one per trainer
        where possible, keeping schools together."""
        cls = self.get_class(deployment_id, class_id)
        learners = self.repo.active_enrolments(cls.id)
        trainers = [u.id for _, u in self.repo.trainers(cls.id)]
        self.repo.delete_cohorts(cls.id)
        if not learners:
            return []  # nothing to split: an empty cohort would only fail the rules
        plans = plan_cohorts([LearnerRef(e.id, u.school) for e, u in learners], trainers)
        cohorts: list[Cohort] = []
        for position, plan in enumerate(plans, start=1):
            cohort = Cohort(
                class_id=cls.id,
                position=position,
                name=f"Nhóm {position}",
                trainer_user_id=plan.trainer_id,
            )
            self.repo.add(cohort)
            # One UPDATE per cohort rather than one per learner.
            self.repo.assign_cohort(list(plan.learner_ids), cohort.id)
            cohorts.append(cohort)
        for enrolment, _ in learners:
            self.session.expire(enrolment, ["cohort_id"])
        self._log(
            deployment_id,
            "cohort.split",
            class_subject(cls),
            None,
            {"cohorts": len(cohorts), "learners": len(learners)},
        )
        return cohorts

    def move(
        self, deployment_id: int, class_id: int, enrolment_id: int, cohort_id: int
    ) -> Enrolment:
        cls = self.get_class(deployment_id, class_id)
        enrolment = self.repo.enrolment_by_id(cls.id, enrolment_id)
        cohort = self.repo.cohort(cls.id, cohort_id)
        if enrolment is None or cohort is None or enrolment.status != EnrolmentStatus.ACTIVE:
            raise NotFound()
        if enrolment.cohort_id == cohort.id:
            return enrolment
        if self.repo.cohort_sizes(cls.id).get(cohort.id, 0) >= 50:
            raise Conflict(
                "%(name)s already has 50 learners", params={"name": cohort.name}, code="cohort_full"
            )
        names = {c.id: c.name for c in self.repo.cohorts(cls.id)}
        self._log(
            deployment_id,
            "cohort.move",
            self._learner(enrolment, cls),
            {"cohort": names.get(enrolment.cohort_id) if enrolment.cohort_id else None},
            {"cohort": cohort.name},
        )
        enrolment.cohort_id = cohort.id
        self.session.flush()
        return enrolment

    def set_cohort_trainer(
        self, deployment_id: int, class_id: int, cohort_id: int, trainer_user_id: int | None
    ) -> Cohort:
        cls = self.get_class(deployment_id, class_id)
        cohort = self.repo.cohort(cls.id, cohort_id)
        if cohort is None:
            raise NotFound()
        if trainer_user_id is not None:
            self.add_trainer(deployment_id, cls.id, trainer_user_id)
        if cohort.trainer_user_id != trainer_user_id:
            self._log(
                deployment_id,
                "cohort.trainer",
                Subject("cohort", cohort.id, cohort.name, cls.id),
                {"trainer": self._name(cohort.trainer_user_id)},
                {"trainer": self._name(trainer_user_id)},
            )
        cohort.trainer_user_id = trainer_user_id
        self.session.flush()
        return cohort

    def _name(self, user_id: int | None) -> str | None:
        user = self.session.get(User, user_id) if user_id is not None else None
        return user.display_name if user else None

    def cohort_views(self, cls: TrainingClass) -> list[CohortView]:
        sizes = self.repo.cohort_sizes(cls.id)
        totals = self.repo.support_totals(cls.id)
        trainers = {u.id: u for _, u in self.repo.trainers(cls.id)}
        return [
            CohortView(
                cohort=c,
                size=sizes.get(c.id, 0),
                support_periods=totals.get(c.id, Decimal(0)),
                trainer=trainers.get(c.trainer_user_id) if c.trainer_user_id else None,
            )
            for c in self.repo.cohorts(cls.id)
        ]

    def log_support(
        self,
        deployment_id: int,
        class_id: int,
        cohort_id: int,
        trainer_user_id: int,
        data: SupportLogCreate,
    ) -> SupportLog:
        cls = self.get_class(deployment_id, class_id)
        cohort = self.repo.cohort(cls.id, cohort_id)
        if cohort is None:
            raise NotFound()
        if cohort.trainer_user_id != trainer_user_id:
            raise Forbidden(detail="Only the cohort's core trainer logs its support periods.")
        window_end = cls.ends_on + timedelta(days=30)
        if not (cls.starts_on - timedelta(days=30) <= data.date <= window_end):
            raise ValidationFailed(
                "%(field)s must fall within the class's dates", params={"field": "date"}
            )
        row = SupportLog(
            cohort_id=cohort.id,
            trainer_user_id=trainer_user_id,
            date=data.date,
            form=data.form,
            periods=data.periods,
            note=data.note,
        )
        self.repo.add(row)
        self._log(
            deployment_id,
            "support.log",
            Subject("cohort", cohort.id, cohort.name, cls.id),
            None,
            {"date": data.date, "form": data.form, "periods": data.periods},
        )
        return row

    # -- compliance ------------------------------------------------------------------------
    def compliance(self, deployment_id: int, class_id: int, today: date) -> list[RuleResult]:
        cls = self.get_class(deployment_id, class_id)
        return self.compliance_many([cls], today)[cls.id]

    def compliance_many(
        self, classes: Sequence[TrainingClass], today: date
    ) -> dict[int, list[RuleResult]]:
        """The rules of many classes with a fixed number of queries, whatever their number."""
        ids = [c.id for c in classes]
        versions = self.catalogue.versions_with_modules({c.module_version_id for c in classes})
        cohorts = self.repo.cohorts_of_classes(ids)
        sizes, unassigned = self.repo.enrolment_counts(ids)
        totals = self.repo.support_totals_of_classes(ids)
        out: dict[int, list[RuleResult]] = {}
        for cls in classes:
            found = versions.get(cls.module_version_id)
            self_study, in_person, follow_up = periods_of(found[1].spec if found else {})
            facts = ClassFacts(
                class_name=cls.name,
                programme=cls.programme,
                capacity=cls.capacity,
                enrolled=cls.enrolled_count,
                self_study_periods=self_study,
                in_person_periods=in_person,
                follow_up_periods=follow_up,
                cohorts=tuple(
                    CohortFacts(
                        name=c.name,
                        size=sizes.get(c.id, 0),
                        has_trainer=c.trainer_user_id is not None,
                        support_periods=totals.get(c.id, Decimal(0)),
                    )
                    for c in cohorts.get(cls.id, [])
                ),
                unassigned=unassigned.get(cls.id, 0),
                ends_on=cls.ends_on,
                today=today,
                virtual_fallback=cls.virtual_fallback_url is not None,
                fallback_reason=cls.virtual_fallback_reason,
                fallback_decided_on=cls.virtual_fallback_decided_on,
            )
            out[cls.id] = evaluate(facts)
        return out
