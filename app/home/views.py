"""What the start pages show beyond the greeting: a teacher's own 7-2-7 dates, a core
trainer's cohorts. Plain data for the templates, read in one read-only session."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from app.classes.models import ClassSession, TrainingClass
from app.classes.repository import ClassRepository
from app.classes.rules import SUPPORT_PERIODS_MIN
from app.classes.service import ClassService
from app.identity.models import User
from app.schedule.rules import Schedule


@dataclass(frozen=True)
class LearnerClass:
    cls: TrainingClass
    schedule: Schedule
    sessions: list[ClassSession]
    phase_today: str | None
    shifted: bool
    ical_path: str


@dataclass(frozen=True)
class TrainerCohort:
    cls: TrainingClass
    cohort_id: int
    name: str
    members: list[User]
    support_periods: Decimal
    minimum: Decimal = SUPPORT_PERIODS_MIN
    logs: list = field(default_factory=list)

    @property
    def percent(self) -> int:
        return min(100, int(self.support_periods * 100 / self.minimum)) if self.minimum else 100


def learner_classes(
    db: Session, deployment_id: int, user_id: int, today: date
) -> list[LearnerClass]:
    service = ClassService(db)
    out = []
    for enrolment, cls in service.repo.enrolments_of_user(deployment_id, user_id):
        schedule = service.learner_schedule(cls, enrolment)
        out.append(
            LearnerClass(
                cls=cls,
                schedule=schedule,
                sessions=list(service.repo.sessions(cls.id)),
                phase_today=schedule.phase_on(today),
                shifted=enrolment.own_schedule is not None,
                ical_path=f"/ical/learner/{enrolment.ical_token}.ics",
            )
        )
    return out


def trainer_cohorts(db: Session, deployment_id: int, user_id: int) -> list[TrainerCohort]:
    repo = ClassRepository(db)
    out = []
    totals_by_class: dict[int, dict[int, Decimal]] = {}
    for cohort, cls in repo.cohorts_of_trainer(deployment_id, user_id):
        totals = totals_by_class.setdefault(cls.id, repo.support_totals(cls.id))
        out.append(
            TrainerCohort(
                cls=cls,
                cohort_id=cohort.id,
                name=cohort.name,
                members=[u for _, u in repo.cohort_members(cohort.id)],
                support_periods=totals.get(cohort.id, Decimal(0)),
                logs=list(repo.support_logs(cohort.id)),
            )
        )
    return out
