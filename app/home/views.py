"""What the start pages show beyond the greeting: a teacher's timeline of each module they
take (``app.dashboards``), a core trainer's cohorts with a link to each cohort's dashboard.
Plain data for the templates, read in one read-only session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from app.auth.dependencies import Viewer
from app.classes.models import TrainingClass
from app.classes.repository import ClassRepository
from app.classes.rules import SUPPORT_PERIODS_MIN
from app.dashboards.repository import DashboardRepository
from app.dashboards.service import DashboardService, Timeline
from app.identity.models import User


@dataclass(frozen=True)
class TrainerCohort:
    cls: TrainingClass
    cohort_id: int
    name: str
    members: list[User]
    support_periods: Decimal
    minimum: Decimal = SUPPORT_PERIODS_MIN

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def percent(self) -> int:
        return min(100, int(self.support_periods * 100 / self.minimum)) if self.minimum else 100


def learner_timelines(db: Session, viewer: Viewer, now: datetime) -> list[Timeline]:
    return DashboardService(db).timelines(viewer, now)


def trainer_cohorts(db: Session, deployment_id: int, user_id: int) -> list[TrainerCohort]:
    """The trainer's cohorts, in three queries however many there are."""
    repo = ClassRepository(db)
    found = repo.cohorts_of_trainer(deployment_id, user_id)
    members = DashboardRepository(db).members_of_cohorts([cohort.id for cohort, _ in found])
    totals = repo.support_totals_of_classes(sorted({cls.id for _, cls in found}))
    return [
        TrainerCohort(
            cls=cls,
            cohort_id=cohort.id,
            name=cohort.name,
            members=members[cohort.id],
            support_periods=totals.get(cohort.id, Decimal(0)),
        )
        for cohort, cls in found
    ]
