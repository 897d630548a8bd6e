"""The two dashboards.

* A teacher's **timeline** of each module they take: the three phases with their own dates,
  where today falls, what is due next, progress per phase, the in-person sessions with their
  place or virtual link and the teacher's own marks, follow-up hand-ins with grade and
  feedback, the result, and the certificate once earned.
* A core trainer's **cohort** on one screen: each learner with progress per phase,
  attendance marks, follow-up status, result and at-risk flags (``app.dashboards.rules``),
  and the trainer's support periods against the minimum.

Who may open a cohort: its core trainer, or an administrator of the deployment (any cohort
of it); anyone else gets 403, a cohort of another deployment is 404. The cohort is loaded in
a fixed number of queries (``DashboardRepository``), whatever the number of learners.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from app.attendance.service import AttendanceService, MarkInput
from app.auth.dependencies import Viewer
from app.catalogue.service import display_title, spec_of
from app.classes.models import ClassSession, Cohort, SupportLog, TrainingClass
from app.classes.repository import ClassRepository
from app.classes.rules import SUPPORT_PERIODS_MIN
from app.classes.service import learner_schedule, stored_schedule
from app.core.errors import Forbidden, NotFound
from app.core.time import local
from app.dashboards.repository import DashboardRepository
from app.dashboards.rules import (
    Due,
    LatestHandIn,
    LearnerRow,
    Position,
    ResultFacts,
    RowQuery,
    SessionMark,
    at_risk,
    attendance_progress,
    due,
    follow_up,
    position,
    select_rows,
)
from app.grading.models import ModuleResultRow
from app.grading.repository import GradingRepository
from app.grading.rules import GradePolicy
from app.grading.service import policy_of
from app.identity.models import Role, User
from app.learning.rules import GradeBase, Item, PhaseProgress, items_of, progress
from app.learning.service import ItemState, LearnerView, LearningService
from app.schedule.rules import Schedule


def certificate_path(class_id: int) -> str:
    """The learner's own certificate of a class (served by ``app.certificates``)."""
    return f"/certificates/classes/{class_id}/mine.pdf"


def result_facts(row: ModuleResultRow | None) -> ResultFacts | None:
    if row is None:
        return None
    return ResultFacts(
        classification=row.classification,
        final=bool(row.final),
        score=row.score,
        self_study=row.self_study,
        attendance=row.attendance,
        follow_up=row.follow_up,
        overridden=row.override_score is not None,
    )


def module_title(cls: TrainingClass, version: Any) -> tuple[dict[str, Any], str]:
    """The module version's spec and its title for the class's level."""
    if version is None:
        return {}, cls.name
    model = spec_of(version)
    return dict(version.spec), model.title_for(cls.level) or display_title(model)


# -- the teacher's timeline ------------------------------------------------------------------


def completed(view: LearnerView) -> bool:
    """Whether the learner's result is final and completes the module."""
    result = view.result
    return (
        result is not None and bool(result.final) and view.policy.completes(result.classification)
    )


def certificate_ready(view: LearnerView, today: date) -> bool:
    """Whether a certificate can be had now: the same rule the certificates use (a final,
    completing result, once the learner's module has ended or a trainer set it)."""
    from app.certificates.rules import ResultFacts, eligibility

    result = view.result
    facts = (
        None
        if result is None
        else ResultFacts(
            classification=result.classification,
            final=bool(result.final),
            overridden=result.override_score is not None,
            score=result.score,
        )
    )
    return eligibility(facts, view.policy, view.schedule.end, today).eligible


@dataclass(frozen=True)
class SessionLine:
    session: ClassSession
    mark: str | None
    is_today: bool


@dataclass(frozen=True)
class Timeline:
    view: LearnerView
    today: date
    position: Position
    due: Due
    progress: dict[str, PhaseProgress]  # self_study, in_person, follow_up
    sessions: list[SessionLine]
    shifted: bool
    ical_path: str
    certificate_path: str | None

    @property
    def cls(self) -> TrainingClass:
        return self.view.cls

    @property
    def schedule(self) -> Schedule:
        return self.view.schedule

    @property
    def work(self) -> list[ItemState]:
        """Follow-up items that take a hand-in, with what was handed in and the grade."""
        return [
            s for s in self.view.phase("follow_up") if s.item.mode in ("assignment", "reflection")
        ]

    @property
    def completed(self) -> bool:
        return completed(self.view)

    def phase_state(self, phase: str) -> str:
        """``past``, ``current`` or ``future`` for the timeline's markers."""
        days = self.schedule.days_in_phase(phase)  # type: ignore[arg-type]
        if not days:
            return "future"
        if self.today > days[-1]:
            return "past"
        if self.today >= days[0]:
            return "current"
        return "future"


# -- the trainer's cohort --------------------------------------------------------------------


@dataclass(frozen=True)
class CohortBoard:
    cohort: Cohort
    cls: TrainingClass
    trainer: User | None
    title: str
    schedule: Schedule
    sessions: list[ClassSession]
    rows: list[LearnerRow]
    policy: GradePolicy
    support_logs: list[SupportLog]
    own: bool  # the viewer is the cohort's core trainer (logs its support periods)
    today: date
    minimum: Decimal = SUPPORT_PERIODS_MIN
    _by_id: dict[int, LearnerRow] = field(default_factory=dict, repr=False)

    @property
    def support_periods(self) -> Decimal:
        return sum((Decimal(log.periods) for log in self.support_logs), Decimal(0))

    @property
    def support_percent(self) -> int:
        if not self.minimum:
            return 100
        return min(100, int(self.support_periods * 100 / self.minimum))

    @property
    def at_risk(self) -> int:
        return sum(1 for r in self.rows if r.at_risk)

    @property
    def to_grade(self) -> int:
        return sum(r.follow_up.to_grade for r in self.rows)

    def select(self, query: RowQuery) -> list[LearnerRow]:
        return select_rows(self.rows, query)

    def row(self, enrolment_id: int) -> LearnerRow | None:
        return self._by_id.get(enrolment_id)


class DashboardService:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.repo = DashboardRepository(session)

    # -- access ----------------------------------------------------------------------------
    def _cohort(self, viewer: Viewer, cohort_id: int) -> tuple[Cohort, TrainingClass, User | None]:
        found = self.repo.cohort_in_tenant(viewer.deployment_id, cohort_id)
        if found is None:
            raise NotFound()
        cohort = found[0]
        if viewer.role == Role.ADMIN:
            return found
        if viewer.role == Role.TRAINER and cohort.trainer_user_id == viewer.user.id:
            return found
        raise Forbidden(
            detail="Only the cohort's core trainer, or an administrator, can open this cohort."
        )

    # -- writes from the dashboard (the other domains' services check again) --------------
    def mark(
        self,
        viewer: Viewer,
        cohort_id: int,
        enrolment_id: int,
        statuses: Mapping[int, str],
        now: datetime,
    ) -> int:
        """Set one learner's marks: ``statuses`` maps a session of the class to a status
        (sessions not in it are left as they are). Returns how many marks changed."""
        cohort, cls, _trainer = self._cohort(viewer, cohort_id)
        enrolment = self.repo.member(cohort.id, enrolment_id)
        if enrolment is None:
            raise NotFound(detail="This learner is not in the cohort.")
        attendance = AttendanceService(self.session)
        changed = 0
        for session in self.repo.sessions(cls.id):
            status = statuses.get(session.id)
            if status:
                changed += attendance.save_marks(
                    viewer, session.id, [MarkInput(enrolment.id, status)], now
                )
        return changed

    def grade(
        self,
        viewer: Viewer,
        cohort_id: int,
        submission_id: int,
        score: Decimal,
        feedback: str | None,
        now: datetime,
        *,
        based_on: GradeBase | None = None,
    ) -> int:
        """Grade the newest hand-in of a learner of the cohort; returns their enrolment id
        (``based_on``: see ``LearningService.grade``)."""
        cohort, _cls, _trainer = self._cohort(viewer, cohort_id)
        if self.repo.submission_member(cohort.id, submission_id) is None:
            raise NotFound(detail="This hand-in is not by a learner of the cohort.")
        row, _result = LearningService(self.session).grade(
            viewer, submission_id, score, feedback, now, based_on=based_on
        )
        return row.enrolment_id

    # -- the cohort ------------------------------------------------------------------------
    def cohort(self, viewer: Viewer, cohort_id: int, now: datetime) -> CohortBoard:
        cohort, cls, trainer = self._cohort(viewer, cohort_id)
        today = local(now).date()
        spec, title = module_title(cls, self.repo.module_version(cls.module_version_id))
        policy = policy_of(spec)
        members = self.repo.members(cohort.id)
        sessions = list(self.repo.sessions(cls.id))
        marks = self.repo.marks(cohort.id)
        done = self.repo.done(cohort.id)
        graded = self.repo.graded(cohort.id)
        hand_ins: dict[int, dict[str, LatestHandIn]] = {}
        for (enrolment_id, key), submission_id in self.repo.latest_hand_ins(cohort.id).items():
            hand_ins.setdefault(enrolment_id, {})[key] = LatestHandIn(
                submission_id, graded.get((enrolment_id, key)) == submission_id
            )
        results = self.repo.results(cohort.id)
        logs = list(self.repo.support_logs(cohort.id))

        # Most learners share the class's dates: their items (and due dates) are built once.
        items_by_dates: dict[str, tuple[Schedule, list[Item]]] = {}
        rows: list[LearnerRow] = []
        for enrolment, user in members:
            dates_key = (
                json.dumps(enrolment.own_schedule, sort_keys=True) if enrolment.own_schedule else ""
            )
            if dates_key not in items_by_dates:
                schedule = learner_schedule(cls, enrolment)
                items_by_dates[dates_key] = (schedule, items_of(spec, schedule))
            schedule, items = items_by_dates[dates_key]
            mine = done.get(enrolment.id, set())
            own_marks = tuple(marks.get((s.id, enrolment.id)) for s in sessions)
            result = result_facts(results.get(enrolment.id))
            rows.append(
                LearnerRow(
                    enrolment_id=enrolment.id,
                    name=user.display_name,
                    school=user.school,
                    email=user.email,
                    schedule=schedule,
                    shifted=bool(dates_key),
                    progress={**progress(items, mine), "in_person": attendance_progress(own_marks)},
                    marks=own_marks,
                    follow_up=follow_up(items, hand_ins.get(enrolment.id, {}), now),
                    result=result,
                    flags=at_risk(
                        schedule=schedule,
                        items=items,
                        done=mine,
                        marks=[
                            SessionMark(s.date, s.part, m)
                            for s, m in zip(sessions, own_marks, strict=True)
                        ],
                        result=result,
                        policy=policy,
                        today=today,
                        now=now,
                    ),
                )
            )
        return CohortBoard(
            cohort=cohort,
            cls=cls,
            trainer=trainer,
            title=title,
            schedule=stored_schedule(cls),
            sessions=sessions,
            rows=rows,
            policy=policy,
            support_logs=logs,
            own=cohort.trainer_user_id == viewer.user.id,
            today=today,
            _by_id={r.enrolment_id: r for r in rows},
        )

    def learner(
        self, viewer: Viewer, board: CohortBoard, enrolment_id: int, now: datetime
    ) -> LearnerView | None:
        """One learner of the cohort opened on the dashboard (their hand-ins and grades);
        ``None`` when the id is not a learner of this cohort."""
        if board.row(enrolment_id) is None:
            return None
        return LearningService(self.session).learner_detail(viewer, enrolment_id, now)

    # -- the teacher's timelines -----------------------------------------------------------
    def timelines(self, viewer: Viewer, now: datetime) -> list[Timeline]:
        """A timeline for each class the viewer is an active learner of."""
        today = local(now).date()
        classes = ClassRepository(self.session)
        learning = LearningService(self.session)
        grading = GradingRepository(self.session)
        out: list[Timeline] = []
        for enrolment, cls in classes.enrolments_of_user(viewer.deployment_id, viewer.user.id):
            view = learning.learner_view(viewer, cls.id, now)
            sessions = list(classes.sessions(cls.id))
            marks = grading.marks(cls.id, [enrolment.id])
            own_marks = [marks.get((s.id, enrolment.id)) for s in sessions]
            done_keys = {s.item.key for s in view.items if s.done}
            out.append(
                Timeline(
                    view=view,
                    today=today,
                    position=position(view.schedule, today),
                    due=due([s.item for s in view.items], done_keys, now),
                    progress={**view.progress, "in_person": attendance_progress(own_marks)},
                    sessions=[
                        SessionLine(s, m, s.date == today)
                        for s, m in zip(sessions, own_marks, strict=True)
                    ],
                    shifted=enrolment.own_schedule is not None,
                    ical_path=f"/ical/learner/{enrolment.ical_token}.ics",
                    certificate_path=(
                        certificate_path(cls.id) if certificate_ready(view, today) else None
                    ),
                )
            )
        return out
