"""Learning items of a class: what a learner sees and does, and what their core trainer and
the administrator see of it.

Who may do what:

* a learner (active enrolment in the class): read their own items and progress, mark items
  done, take quizzes, hand in work, download their own files;
* the core trainer of the learner's cohort, or an administrator (whole class): read the
  progress of learners, download their files, grade their hand-ins.

Every write recomputes the learner's module result in the same transaction
(``GradingService.refresh``), which queues the score the LMS is owed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.audit.rules import Subject
from app.audit.service import AuditLog, actor_of
from app.auth.dependencies import Viewer
from app.catalogue.service import display_title, spec_of
from app.classes.models import Enrolment, TrainingClass
from app.classes.repository import ClassRepository
from app.classes.service import learner_schedule, stored_schedule
from app.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.core.time import local
from app.grading.models import ModuleResultRow
from app.grading.repository import GradingRepository
from app.grading.rules import GradePolicy, round_score
from app.grading.service import GradingService, LearnerResult, policy_of
from app.identity.models import Role, User
from app.learning.models import (
    ItemProgress,
    ProgressSource,
    QuizAttempt,
    Submission,
    SubmissionGrade,
)
from app.learning.repository import LearningRepository
from app.learning.rules import (
    MAX_URL_CHARS,
    GradeBase,
    HandIn,
    Item,
    PhaseProgress,
    QuizOutcome,
    check_hand_in,
    check_takes_hand_in,
    find_item,
    grade_quiz,
    items_of,
    overdue,
    progress,
)
from app.learning.storage import FileStore, StoredFile
from app.schedule.rules import Schedule
from modules.catalogue import is_web_address


@dataclass(frozen=True)
class ItemState:
    item: Item
    done_at: datetime | None
    overdue: bool
    best_quiz: tuple[int, int] | None = None
    submissions: tuple[Submission, ...] = ()
    grade: SubmissionGrade | None = None

    @property
    def done(self) -> bool:
        return self.done_at is not None

    @property
    def latest(self) -> Submission | None:
        return self.submissions[-1] if self.submissions else None


@dataclass(frozen=True)
class LearnerView:
    cls: TrainingClass
    title: str
    enrolment: Enrolment
    user: User
    schedule: Schedule
    items: list[ItemState]
    progress: dict[str, PhaseProgress]
    result: ModuleResultRow | None
    policy: GradePolicy

    def phase(self, name: str) -> list[ItemState]:
        return [s for s in self.items if s.item.phase == name]


@dataclass(frozen=True)
class ProgressRow:
    enrolment_id: int
    user: User
    cohort_id: int | None
    progress: dict[str, PhaseProgress]
    to_grade: int
    result: ModuleResultRow | None


@dataclass(frozen=True)
class ClassProgress:
    cls: TrainingClass
    title: str
    rows: list[ProgressRow]
    whole_class: bool
    policy: GradePolicy
    items: list[Item] = field(default_factory=list)


@dataclass(frozen=True)
class Download:
    path: Path
    name: str
    content_type: str


@dataclass(frozen=True)
class RecordedGrade:
    """A grade as plain data (it outlives the request's session in a ``GradeChanged``)."""

    id: int
    enrolment_id: int
    item_key: str
    score: Decimal
    feedback: str | None
    graded_at: datetime


class GradeChanged(Conflict):
    """Someone else graded the hand-in after this form was opened: a 409 that names who gave
    which grade when, so the trainer can compare and, if theirs should stand, save again on
    the new base (``current.id``)."""

    code = "grade_changed"
    title = "Another grade was recorded meanwhile"
    detail = (
        "%(who)s gave %(score)s at %(when)s, after you opened this form. Your grade, "
        "%(mine)s, was not saved. Compare both and save yours again if it should replace "
        "theirs."
    )

    def __init__(
        self, grade: SubmissionGrade, who: str, mine: Decimal, mine_feedback: str | None
    ) -> None:
        current = RecordedGrade(
            id=grade.id,
            enrolment_id=grade.enrolment_id,
            item_key=grade.item_key,
            score=grade.score,
            feedback=grade.feedback,
            graded_at=grade.graded_at,
        )
        when = local(current.graded_at)
        super().__init__(
            params={
                "who": who,
                "score": str(current.score),
                "when": when.strftime("%H:%M %d/%m/%Y"),
                "mine": str(mine),
            },
            log_detail=f"grade {current.id} recorded meanwhile",
        )
        self.current = current
        self.who = who
        self.mine = mine
        self.mine_feedback = mine_feedback
        self.problem_extra = {
            "current_grade": {
                "id": current.id,
                "score": str(current.score),
                "feedback": current.feedback,
                "graded_by": who,
                "graded_at": current.graded_at.isoformat(),
            },
            "your_grade": {"score": str(mine), "feedback": mine_feedback},
        }


class LearningService:
    def __init__(self, session: Session, store: FileStore | None = None) -> None:
        self.session = session
        self.repo = LearningRepository(session)
        self.classes = ClassRepository(session)
        self.store = store

    # -- access ----------------------------------------------------------------------------
    def _class(self, viewer: Viewer, class_id: int) -> TrainingClass:
        cls = self.repo.get_class(viewer.deployment_id, class_id)
        if cls is None:
            raise NotFound()
        return cls

    def _own(self, viewer: Viewer, class_id: int) -> tuple[TrainingClass, Enrolment]:
        cls = self._class(viewer, class_id)
        enrolment = self.repo.active_enrolment(cls.id, viewer.user.id)
        if enrolment is None:
            raise Forbidden(
                detail="Only learners enrolled in this class can open its learning items.",
                advice="Open blend727 from your own course in the LMS, or ask your core trainer.",
            )
        return cls, enrolment

    def _scope(self, viewer: Viewer, cls: TrainingClass) -> list[int] | None:
        """Cohorts the viewer follows in the class; ``None``: the whole class (admin)."""
        if viewer.role == Role.ADMIN:
            return None
        if viewer.role == Role.TRAINER:
            cohorts = self.classes.trainer_cohort_ids(cls.id, viewer.user.id)
            if cohorts:
                return cohorts
        raise Forbidden(
            detail=(
                "Only the core trainer of a cohort in this class, or an administrator, can "
                "follow its learners."
            )
        )

    def _follows(self, viewer: Viewer, cls: TrainingClass, enrolment: Enrolment) -> None:
        scope = self._scope(viewer, cls)
        if scope is not None and enrolment.cohort_id not in scope:
            raise Forbidden(
                detail=(
                    "Only the core trainer of this learner's cohort, or an administrator, "
                    "can see this learner's work."
                )
            )

    def _spec(self, cls: TrainingClass) -> tuple[dict[str, Any], str]:
        version = self.repo.module_version(cls.module_version_id)
        if version is None:
            return {}, cls.name
        spec = dict(version.spec)
        model = spec_of(version)
        return spec, model.title_for(cls.level) or display_title(model)

    # -- reading ---------------------------------------------------------------------------
    def my_classes(self, viewer: Viewer) -> Sequence[TrainingClass]:
        return self.repo.learner_classes(viewer.deployment_id, viewer.user.id)

    def learner_view(self, viewer: Viewer, class_id: int, now: datetime) -> LearnerView:
        cls, enrolment = self._own(viewer, class_id)
        return self._view(cls, enrolment, self.session.get(User, enrolment.user_id), now)

    def learner_detail(self, viewer: Viewer, enrolment_id: int, now: datetime) -> LearnerView:
        found = self.repo.enrolment_in_tenant(viewer.deployment_id, enrolment_id)
        if found is None:
            raise NotFound()
        enrolment, cls, user = found
        self._follows(viewer, cls, enrolment)
        return self._view(cls, enrolment, user, now)

    def _view(
        self, cls: TrainingClass, enrolment: Enrolment, user: User | None, now: datetime
    ) -> LearnerView:
        assert user is not None
        spec, title = self._spec(cls)
        schedule = learner_schedule(cls, enrolment)
        items = items_of(spec, schedule)
        done = self.repo.progress([enrolment.id])[enrolment.id]
        quizzes = self.repo.best_quiz([enrolment.id])
        submissions = self.repo.submissions([enrolment.id])[enrolment.id]
        grades = self.repo.grades([enrolment.id])
        states = []
        for item in items:
            row = done.get(item.key)
            states.append(
                ItemState(
                    item=item,
                    done_at=row.done_at if row else None,
                    overdue=overdue(item, row is not None, now),
                    best_quiz=quizzes.get((enrolment.id, item.key)),
                    submissions=tuple(s for s in submissions if s.item_key == item.key),
                    grade=grades.get((enrolment.id, item.key)),
                )
            )
        result = GradingRepository(self.session).results([enrolment.id]).get(enrolment.id)
        return LearnerView(
            cls=cls,
            title=title,
            enrolment=enrolment,
            user=user,
            schedule=schedule,
            items=states,
            progress=progress(items, done),
            result=result,
            policy=policy_of(spec),
        )

    def class_progress(self, viewer: Viewer, class_id: int) -> ClassProgress:
        cls = self._class(viewer, class_id)
        scope = self._scope(viewer, cls)
        spec, title = self._spec(cls)
        roster = self.classes.roster(cls.id, scope)
        ids = [e.id for e, _ in roster]
        done = self.repo.progress(ids)
        submissions = self.repo.submissions(ids)
        grades = self.repo.grades(ids)
        results = GradingRepository(self.session).results(ids)
        rows = []
        class_items = items_of(spec, stored_schedule(cls))
        for enrolment, user in roster:
            # Items depend on the dates only: the class's, unless this learner's were moved.
            items = (
                items_of(spec, learner_schedule(cls, enrolment))
                if enrolment.own_schedule
                else class_items
            )
            latest: dict[str, Submission] = {}
            for s in submissions[enrolment.id]:
                latest[s.item_key] = s
            to_grade = sum(
                1
                for key, sub in latest.items()
                if (g := grades.get((enrolment.id, key))) is None or g.submission_id != sub.id
                if (i := find_item(items, key)) is not None and i.mode == "assignment"
            )
            rows.append(
                ProgressRow(
                    enrolment_id=enrolment.id,
                    user=user,
                    cohort_id=enrolment.cohort_id,
                    progress=progress(items, done[enrolment.id]),
                    to_grade=to_grade,
                    result=results.get(enrolment.id),
                )
            )
        return ClassProgress(
            cls=cls,
            title=title,
            rows=rows,
            whole_class=scope is None,
            policy=policy_of(spec),
            items=class_items,
        )

    # -- the learner's writes --------------------------------------------------------------
    def _item(self, cls: TrainingClass, enrolment: Enrolment, key: str) -> Item:
        spec, _title = self._spec(cls)
        item = find_item(items_of(spec, learner_schedule(cls, enrolment)), key)
        if item is None:
            raise NotFound(detail="This learning item is not part of your class's module.")
        return item

    def set_done(self, viewer: Viewer, class_id: int, key: str, done: bool, now: datetime) -> bool:
        """Mark a reading, video or LMS activity done (or not done again)."""
        cls, enrolment = self._own(viewer, class_id)
        item = self._item(cls, enrolment, key)
        if item.mode != "manual":
            raise Conflict(
                title="This item is recorded by blend727",
                detail="It counts as done when you take the quiz or hand in the work.",
                code="recorded_by_tool",
            )
        if done:
            changed = self.repo.mark_done(
                {
                    "enrolment_id": enrolment.id,
                    "item_key": item.key,
                    "source": ProgressSource.LEARNER,
                    "done_at": now,
                }
            )
        else:
            changed = self.repo.unmark(enrolment.id, item.key) > 0
        if changed:
            GradingService(self.session).refresh(cls.id, [enrolment.id], now=now)
        return changed

    def take_quiz(
        self, viewer: Viewer, class_id: int, key: str, answers: Mapping[int, int], now: datetime
    ) -> QuizOutcome:
        cls, enrolment = self._own(viewer, class_id)
        item = self._item(cls, enrolment, key)
        if item.mode != "quiz":
            raise Conflict(
                title="This item is not a quiz in blend727",
                detail="Open it in the LMS, then mark it done.",
                code="not_a_quiz",
            )
        outcome = grade_quiz(item.questions, answers)
        self.repo.add(
            QuizAttempt(
                enrolment_id=enrolment.id,
                item_key=item.key,
                answers=list(outcome.answers),
                correct=outcome.correct,
                total=outcome.total,
                submitted_at=now,
            )
        )
        self._done_by_tool(cls, enrolment, item, ProgressSource.QUIZ, now)
        return outcome

    def hand_in(
        self,
        viewer: Viewer,
        class_id: int,
        key: str,
        hand_in: HandIn,
        file: StoredFile | None,
        now: datetime,
    ) -> Submission:
        """Hand in a reflection or an assignment (a new attempt each time, until graded).
        ``file`` is already stored; the caller discards it if this raises."""
        cls, enrolment = self._own(viewer, class_id)
        item = self._item(cls, enrolment, key)
        link = (hand_in.link_url or "").strip() or None
        if link is not None:
            _check_link(link)
        graded = (enrolment.id, item.key) in self.repo.grades([enrolment.id], item.key)
        late = check_hand_in(
            item,
            HandIn(
                text=hand_in.text,
                link_url=link,
                file_name=file.name if file else None,
                file_size=file.size if file else None,
            ),
            graded=graded,
            now=now,
        )
        attempt = self.repo.last_attempt(enrolment.id, item.key) + 1
        text = (hand_in.text or "").strip() or None
        row = Submission(
            enrolment_id=enrolment.id,
            item_key=item.key,
            attempt=attempt,
            text=text,
            link_url=link,
            file_name=file.name if file else None,
            file_key=file.key if file else None,
            file_size=file.size if file else None,
            file_type=file.content_type if file else None,
            file_sha256=file.sha256 if file else None,
            late=late,
            submitted_at=now,
        )
        self.repo.add(row)
        source = (
            ProgressSource.SUBMISSION if item.mode == "assignment" else ProgressSource.REFLECTION
        )
        self._done_by_tool(cls, enrolment, item, source, now)
        return row

    def can_hand_in(self, viewer: Viewer, class_id: int, key: str) -> None:
        """Refuse early (before a file is stored) what :meth:`hand_in` would refuse for the
        person or the item."""
        cls, enrolment = self._own(viewer, class_id)
        check_takes_hand_in(self._item(cls, enrolment, key))

    def last_quiz_outcome(self, view: LearnerView, key: str) -> QuizOutcome | None:
        """The learner's latest attempt at a quiz, to show its answers after the redirect."""
        attempt = self.repo.last_quiz_attempt(view.enrolment.id, key)
        if attempt is None:
            return None
        return QuizOutcome(tuple(attempt.answers), attempt.correct, attempt.total)

    def _done_by_tool(
        self, cls: TrainingClass, enrolment: Enrolment, item: Item, source: str, now: datetime
    ) -> None:
        self.repo.mark_done(
            {"enrolment_id": enrolment.id, "item_key": item.key, "source": source, "done_at": now}
        )
        GradingService(self.session).refresh(cls.id, [enrolment.id], now=now)

    # -- files -----------------------------------------------------------------------------
    def download(self, viewer: Viewer, submission_id: int) -> Download:
        found = self.repo.submission_in_tenant(viewer.deployment_id, submission_id)
        if found is None or found[0].file_key is None or self.store is None:
            raise NotFound()
        submission, enrolment, cls = found
        if enrolment.user_id != viewer.user.id:
            self._follows(viewer, cls, enrolment)
        path = self.store.path(submission.file_key or "")
        if not path.is_file():
            raise NotFound(detail="The file is missing from the server's storage.")
        return Download(
            path, submission.file_name or "file", submission.file_type or "application/octet-stream"
        )

    # -- the trainer's grading -------------------------------------------------------------
    def grade(
        self,
        viewer: Viewer,
        submission_id: int,
        score: Decimal,
        feedback: str | None,
        now: datetime,
        *,
        based_on: GradeBase | None = None,
    ) -> tuple[SubmissionGrade, LearnerResult]:
        """Grade the newest hand-in of an assignment (a regrade adds a row; all are kept);
        returns the grade and the learner's module result it moved.

        ``based_on``: the grade the trainer saw; when another grade has been recorded since,
        ``GradeChanged`` (409) and nothing is saved. ``None`` checks nothing (last word
        wins), for callers that showed no grade."""
        score = round_score(score)  # "9" from the API is stored and audited as "9.00"
        found = self.repo.submission_in_tenant(viewer.deployment_id, submission_id, lock=True)
        if found is None:
            raise NotFound()
        submission, enrolment, cls = found
        self._follows(viewer, cls, enrolment)
        item = self._item(cls, enrolment, submission.item_key)
        if item.mode != "assignment":
            raise Conflict(
                title="Only assignments are graded",
                detail="Reflections and quizzes count as done; they carry no grade.",
                code="not_gradable",
            )
        if self.repo.last_attempt(enrolment.id, item.key) != submission.attempt:
            raise Conflict(
                title="A newer hand-in exists",
                detail="The learner handed in again; grade the newest hand-in.",
                code="not_latest",
            )
        text = (feedback or "").strip() or None
        if text is not None and len(text) > 5000:
            raise ValidationFailed(
                "The feedback is longer than %(max)s characters",
                params={"field": "feedback", "max": 5000},
            )
        previous = self.repo.grades([enrolment.id], item.key).get((enrolment.id, item.key))
        if based_on is not None and previous is not None and based_on.grade_id != previous.id:
            # (no grade at all: nothing can be lost, whatever the form was based on)
            grader = (
                self.session.get(User, previous.graded_by_user_id)
                if previous.graded_by_user_id
                else None
            )
            who = grader.display_name if grader is not None else "—"
            raise GradeChanged(previous, who, score, text)
        if previous is not None and previous.score == score and previous.feedback == text:
            raise ValidationFailed(
                "The change leaves the result as it was", params={"field": "score"}
            )
        row = SubmissionGrade(
            submission_id=submission.id,
            enrolment_id=enrolment.id,
            item_key=item.key,
            score=score,
            feedback=text,
            graded_by_user_id=viewer.user.id,
            graded_at=now,
        )
        self.repo.add(row)
        grading = GradingService(self.session)
        grading.record_grade_change(
            viewer,
            enrolment.id,
            item.key,
            previous.score if previous else None,
            score,
            text,
            now,
        )
        learner = self.session.get(User, enrolment.user_id)
        AuditLog(self.session).record(
            actor_of(viewer),
            "grade.set",
            Subject(
                "submission",
                submission.id,
                " · ".join(t for t in (learner.display_name if learner else "", item.title) if t),
                cls.id,
            ),
            {"score": previous.score if previous else None},
            {"score": score},
        )
        (result,) = grading.refresh(cls.id, [enrolment.id], now=now)
        return row, result


def _check_link(link: str) -> None:
    if len(link) > MAX_URL_CHARS or not is_web_address(link):
        raise ValidationFailed(
            "Give a link starting with http:// or https://", params={"field": "link"}
        )


__all__ = [
    "ClassProgress",
    "Download",
    "ItemProgress",
    "ItemState",
    "LearnerView",
    "LearningService",
    "ProgressRow",
]
