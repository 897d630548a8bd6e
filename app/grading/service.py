"""Module results: computed from what learners did, overridden by trainers with a reason, and
queued for the LMS gradebook.

``GradingService.refresh`` recomputes the results of some learners of a class and, in the
same transaction, queues a score for each result whose LMS-visible state changed (activity
progress, grading progress, score). Every write that moves a component — an item done, a quiz
taken, a hand-in, a grade, an attendance mark or check-in, a trainer's input — calls it, so
the grade and the score owed to the LMS are committed together.

``ResultSweeper`` runs in the worker: it finds the gradebook column of classes that do not
know it yet (network: outside any transaction) and settles the results of classes that have
ended, whose scores turn from ``Pending`` to ``FullyGraded`` with time rather than with a
write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import requests
from sqlalchemy.orm import Session

from app.attendance.service import attendance_points_of
from app.audit.rules import Subject
from app.audit.service import AuditLog, actor_of
from app.auth.dependencies import Viewer
from app.classes.models import Enrolment, TrainingClass
from app.classes.repository import ClassRepository
from app.classes.service import learner_schedule, stored_schedule
from app.core.db import Database
from app.core.errors import AppError, Forbidden, NotFound, ValidationFailed
from app.core.time import local, utcnow
from app.grading.models import ModuleResultRow, ResultChange
from app.grading.repository import GradingRepository
from app.grading.rules import (
    COMPLETE,
    INCOMPLETE,
    NOT_COMPLETE,
    GradePolicy,
    ModuleResult,
    apply_override,
    attendance_score,
    check_reason,
    components_from,
    compute_result,
    grading_progress,
    round_score,
    to_ags_score,
    with_override,
)
from app.identity.models import ResourceLink, User
from app.learning.repository import LearningRepository
from app.learning.rules import Item, items_of
from app.ops.service import PeriodicTask
from modules.catalogue import AssessmentSpec

log = logging.getLogger("blend727.grading")

#: The tag of blend727's gradebook column (also set by deep linking).
LINE_ITEM_TAG = "blend727-module-result"
SCORE_MAXIMUM = Decimal(10)
SWEEP_EVERY = timedelta(seconds=60)
#: How long a sweep holds its lease before it must renew it (between LMS calls).
SWEEP_HOLD = timedelta(minutes=5)
SWEEP_LEASE = "result-sweep"

CLASSIFICATION_NAMES = {
    INCOMPLETE: ("Chưa đủ điểm thành phần", "Not all components scored"),
    NOT_COMPLETE: ("Chưa hoàn thành", "Not complete"),
    COMPLETE: ("Hoàn thành", "Complete"),
}


def policy_of(spec: dict[str, Any]) -> GradePolicy:
    return GradePolicy.from_assessment(AssessmentSpec.model_validate(spec.get("assessment") or {}))


def link_fits_class(cls: TrainingClass, link: ResourceLink) -> bool:
    """Whether a class's scores may go through a resource link: the link is of the class's
    deployment and, when both know their course, of the class's course."""
    if link.deployment_id != cls.deployment_id:
        return False
    return cls.course_id is None or link.course_id is None or link.course_id == cls.course_id


def classification_name(policy: GradePolicy, code: str, locale: str = "vi") -> str:
    tier = policy.tier(code)
    if tier is not None:
        return tier.name_vi if locale == "vi" or not tier.name_en else tier.name_en
    vi, en = CLASSIFICATION_NAMES.get(code, (code, code))
    return vi if locale == "vi" else en


@dataclass(frozen=True)
class LearnerResult:
    enrolment_id: int
    result: ModuleResult
    row: ModuleResultRow


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class GradingService:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.repo = GradingRepository(session)
        self.learning = LearningRepository(session)

    # -- computing -------------------------------------------------------------------------
    def refresh(
        self,
        class_id: int,
        enrolment_ids: Sequence[int] | None = None,
        *,
        now: datetime | None = None,
    ) -> list[LearnerResult]:
        """Recompute results (every active learner of the class when ``enrolment_ids`` is
        None), store them, and queue a score where the LMS would see a change."""
        now = now or utcnow()
        self.session.flush()
        cls = self.repo.get_class(class_id)
        if cls is None:
            return []
        version = self.learning.module_version(cls.module_version_id)
        spec = dict(version.spec) if version is not None else {}
        policy = policy_of(spec)
        points = attendance_points_of(spec)
        class_schedule = stored_schedule(cls)
        items = items_of(spec, class_schedule)
        learners = self.repo.enrolments(cls.id, enrolment_ids)
        ids = [e.id for e, _ in learners]
        self.repo.lock_enrolments(ids)  # what follows reads after any other refresh of them
        session_ids = self.repo.session_ids(cls.id)
        marks = self.repo.marks(cls.id, ids)
        done = self.learning.progress(ids)
        grades = self.learning.grades(ids)
        rows = self.repo.results(ids)
        link = self.repo.resource_link(cls.resource_link_id) if cls.resource_link_id else None
        platform = self._platform_urls(cls) if link is not None else ()
        line_item = self._line_item(cls, link, platform)
        today = local(now).date()
        out: list[LearnerResult] = []
        for enrolment, user in learners:
            row = rows.get(enrolment.id)
            if row is None:
                row = ModuleResultRow(enrolment_id=enrolment.id, classification=INCOMPLETE)
                self.repo.add(row)
            result = self._compute(
                items,
                done[enrolment.id],
                grades,
                enrolment.id,
                row,
                policy,
                points,
                session_ids,
                marks,
            )
            row.self_study = result.components.self_study
            row.attendance = result.components.attendance
            row.follow_up = result.components.follow_up
            row.score = result.score
            row.classification = result.classification
            row.final = result.final
            row.updated_at = now
            if line_item is not None and link is not None:
                running = today <= learner_schedule(cls, enrolment).end
                self._queue(cls, link, line_item, user, row, result, policy, running, now, platform)
            out.append(LearnerResult(enrolment.id, result, row))
        self.session.flush()
        from app.certificates.service import CertificateService

        CertificateService(self.session).sync(out, policy, now)  # revoke what stopped completing
        return out

    def _compute(
        self,
        items: Sequence[Item],
        done: dict[str, Any],
        grades: dict[tuple[int, str], Any],
        enrolment_id: int,
        row: ModuleResultRow,
        policy: GradePolicy,
        points: Any,
        session_ids: Sequence[int],
        marks: dict[tuple[int, int], str],
    ) -> ModuleResult:
        self_items = [i for i in items if i.counts_for_self_study]
        assignments = [i for i in items if i.counts_for_follow_up]
        attendance = (
            attendance_score(
                [marks.get((s, enrolment_id)) for s in session_ids], points, len(session_ids)
            )
            if session_ids
            else None
        )
        components = components_from(
            self_study_done=sum(1 for i in self_items if i.key in done),
            self_study_total=len(self_items),
            manual_self_study=row.manual_self_study,
            assignment_grades=[
                g.score if (g := grades.get((enrolment_id, i.key))) is not None else None
                for i in assignments
            ],
            manual_follow_up=row.manual_follow_up,
            attendance=attendance,
        )
        result = compute_result(components, policy)
        if row.override_score is not None and row.override_classification is not None:
            result = with_override(
                result,
                score=Decimal(row.override_score),
                classification=row.override_classification,
                reason=row.override_reason or "",
                by_user_id=None,
            )
        return result

    # -- the LMS ---------------------------------------------------------------------------
    def _platform_urls(self, cls: TrainingClass) -> tuple[str, ...]:
        from app.passback.service import platform_urls
        from app.platforms.repository import PlatformRepository

        return platform_urls(
            PlatformRepository(self.session).record_for_deployment(cls.deployment_id)
        )

    def _line_item(
        self, cls: TrainingClass, link: ResourceLink | None, platform: Sequence[str]
    ) -> str | None:
        """The class's gradebook column: stored, else the one the platform coupled to the
        resource link (stored now); ``None`` until the sweep finds or creates one — and
        ``None`` when the link is not the class's (another LMS, another course)."""
        if link is None or not link_fits_class(cls, link):
            return None
        if cls.line_item_url:
            return cls.line_item_url
        from app.passback.service import line_item_belongs

        endpoint = link.ags_endpoint
        coupled = endpoint.get("lineitem") if endpoint else None
        if isinstance(coupled, str) and coupled:
            if not line_item_belongs(coupled, endpoint, platform):
                log.warning(
                    "class %s: the coupled line item %s is not on the LMS's own origin: ignored",
                    cls.id,
                    coupled,
                )
                return None
            cls.line_item_url = coupled
            return coupled
        return None

    def _queue(
        self,
        cls: TrainingClass,
        link: ResourceLink,
        line_item: str,
        user: User,
        row: ModuleResultRow,
        result: ModuleResult,
        policy: GradePolicy,
        running: bool,
        now: datetime,
        platform: Sequence[str],
    ) -> None:
        from app.passback.service import enqueue_score

        activity, grading = grading_progress(result, running)
        given = to_ags_score(result, SCORE_MAXIMUM) if grading == "FullyGraded" else None
        comment = (
            classification_name(policy, result.classification) if grading == "FullyGraded" else None
        )
        # Only what the LMS sees: a change it cannot see (a Pending result whose
        # classification moved) queues nothing.
        state = f"{activity}|{grading}|{_text(given) or ''}|{comment or ''}"
        if state == row.sent_state:
            return
        try:
            enqueue_score(
                self.session,
                deployment_id=cls.deployment_id,
                resource_link=link,
                line_item_url=line_item,
                user=user,
                score_given=given,
                score_maximum=SCORE_MAXIMUM,
                activity_progress=activity,
                grading_progress=grading,
                comment=comment,
                now=now,
                platform=platform,
            )
        except AppError as exc:
            # The column is not this link's (a class re-tied to another course): nothing
            # can be sent there; say so once instead of trying on every change.
            log.warning("class %s: score for user %s not queued: %s", cls.id, user.id, exc.detail)
            state = "Refused|" + state
        row.sent_state = state[:120]

    # -- the trainer's inputs --------------------------------------------------------------
    def _enrolment(
        self, viewer: Viewer, enrolment_id: int, *, lock: bool = False
    ) -> tuple[Enrolment, TrainingClass, User]:
        found = self.learning.enrolment_in_tenant(viewer.deployment_id, enrolment_id)
        if found is None:
            raise NotFound()
        if ClassRepository(self.session).follows(viewer.role, viewer.user.id, found[0]):
            return found
        raise Forbidden(
            detail=(
                "Only the core trainer of this learner's cohort, or an administrator, can "
                "grade this learner."
            )
        )

    def _row(self, enrolment_id: int) -> ModuleResultRow:
        row = self.repo.result_for_update(enrolment_id)
        if row is None:
            row = ModuleResultRow(enrolment_id=enrolment_id, classification=INCOMPLETE)
            self.repo.add(row)
            self.repo.flush()
        return row

    def set_manual(
        self,
        viewer: Viewer,
        enrolment_id: int,
        component: str,
        score: Decimal | None,
        reason: str,
        now: datetime,
    ) -> LearnerResult:
        """A trainer enters the self-study or follow-up score of a module that has no items
        for it in blend727 (the work happened in the LMS or on paper)."""
        if component not in ("self_study", "follow_up"):
            raise ValidationFailed("%(field)s is not valid", params={"field": "component"})
        enrolment, cls, learner = self._enrolment(viewer, enrolment_id)
        spec = self._spec(cls)
        items = items_of(spec, stored_schedule(cls))
        computed = (
            any(i.counts_for_self_study for i in items)
            if component == "self_study"
            else any(i.counts_for_follow_up for i in items)
        )
        if computed:
            raise ValidationFailed(
                "This score is computed from the learner's items; it cannot be typed in",
                params={"field": component},
            )
        text = check_reason(reason)
        if score is not None:
            score = round_score(score)  # "6" from the API is stored and audited as "6.00"
        row = self._row(enrolment.id)
        field = f"manual_{component}"
        old = getattr(row, field)
        if old == score:  # Decimal compares by value (6 == 6.00); None only equals None
            raise ValidationFailed(
                "The change leaves the result as it was", params={"field": component}
            )
        setattr(row, field, score)
        self._audit(enrolment.id, component, _text(old), _text(score), text, viewer, now)
        self._log(
            viewer,
            "result.manual",
            cls,
            enrolment,
            learner,
            {component: old},
            {component: score},
            text,
        )
        return self.refresh(cls.id, [enrolment.id], now=now)[0]

    def override(
        self,
        viewer: Viewer,
        enrolment_id: int,
        score: Decimal,
        classification: str,
        reason: str,
        now: datetime,
    ) -> LearnerResult:
        enrolment, cls, learner = self._enrolment(viewer, enrolment_id)
        policy = policy_of(self._spec(cls))
        current = self.refresh(cls.id, [enrolment.id], now=now)[0]
        _updated, entries = apply_override(
            current.result,
            policy=policy,
            new_score=score,
            new_classification=classification,
            reason=reason,
            by_user_id=viewer.user.id,
            at=now,
        )
        row = self._row(enrolment.id)
        before = {"score": row.override_score, "classification": row.override_classification}
        row.override_score = round_score(score)
        row.override_classification = classification
        row.override_reason = reason.strip()
        for entry in entries:
            self._audit(enrolment.id, entry.field, entry.old, entry.new, entry.reason, viewer, now)
        after = {"score": row.override_score, "classification": classification}
        self._log(
            viewer, "override.set", cls, enrolment, learner, before, after, row.override_reason
        )
        return self.refresh(cls.id, [enrolment.id], now=now)[0]

    def clear_override(
        self, viewer: Viewer, enrolment_id: int, reason: str, now: datetime
    ) -> LearnerResult:
        enrolment, cls, learner = self._enrolment(viewer, enrolment_id)
        text = check_reason(reason)
        row = self._row(enrolment.id)
        if row.override_score is None:
            raise ValidationFailed("This result is not overridden", params={"field": "override"})
        old = f"{row.override_score} {row.override_classification}"
        before = {"score": row.override_score, "classification": row.override_classification}
        row.override_score = None
        row.override_classification = None
        row.override_reason = None
        self._audit(enrolment.id, "override", old, None, text, viewer, now)
        after = {"score": None, "classification": None}
        self._log(viewer, "override.clear", cls, enrolment, learner, before, after, text)
        return self.refresh(cls.id, [enrolment.id], now=now)[0]

    def record_grade_change(
        self,
        viewer: Viewer,
        enrolment_id: int,
        item_key: str,
        old: Decimal | None,
        new: Decimal,
        feedback: str | None,
        now: datetime,
    ) -> None:
        """A submission's grade, in the result's audit trail."""
        reason = (feedback or "").strip() or "—"
        self._audit(enrolment_id, f"item:{item_key}", _text(old), _text(new), reason, viewer, now)

    def history(
        self, viewer: Viewer, enrolment_id: int
    ) -> Sequence[tuple[ResultChange, User | None]]:
        self._enrolment(viewer, enrolment_id)
        return self.repo.changes(enrolment_id)

    def _audit(
        self,
        enrolment_id: int,
        field: str,
        old: str | None,
        new: str | None,
        reason: str,
        viewer: Viewer,
        now: datetime,
    ) -> None:
        self.repo.add(
            ResultChange(
                enrolment_id=enrolment_id,
                field=field,
                old=old,
                new=new,
                reason=reason,
                by_user_id=viewer.user.id,
                at=now,
            )
        )

    def _log(
        self,
        viewer: Viewer,
        action: str,
        cls: TrainingClass,
        enrolment: Enrolment,
        learner: User,
        before: dict[str, Any],
        after: dict[str, Any],
        reason: str | None,
    ) -> None:
        """The change in the cross-cutting audit log (beside the result's own trail)."""
        subject = Subject("enrolment", enrolment.id, learner.display_name, cls.id)
        AuditLog(self.session).record(actor_of(viewer), action, subject, before, after, reason)

    def _spec(self, cls: TrainingClass) -> dict[str, Any]:
        version = self.learning.module_version(cls.module_version_id)
        return dict(version.spec) if version is not None else {}


class ResultSweeper:
    """Work of the worker besides sending: find gradebook columns, settle ended classes."""

    def __init__(
        self,
        database: Database,
        http: requests.Session,
        *,
        token_cache: Any = None,
        batch: int = 500,
    ) -> None:
        self.database = database
        self.http = http
        self.token_cache = token_cache
        self.batch = batch
        # One sweep at a time across every server and worker process (a lease row): two
        # sweeps at once could create a class's gradebook column twice.
        self.task = PeriodicTask(database, SWEEP_LEASE, every=SWEEP_EVERY, hold=SWEEP_HOLD)

    def run_if_due(self, now: datetime | None = None) -> None:
        try:
            self.task.run_if_due(lambda keep: self.run(now or utcnow(), keep), now)
        except Exception:  # the sweep must never stop the sending
            log.exception("result sweep failed")

    def run(self, now: datetime, keep: Callable[[], bool] | None = None) -> dict[str, int]:
        today = local(now).date()
        found = self.find_line_items(today, keep)
        settled = 0
        with self.database.session() as db:
            for class_id, ids in GradingRepository(db).results_to_settle(today, self.batch).items():
                settled += len(GradingService(db).refresh(class_id, ids, now=now))
        return {"line_items": found, "settled": settled}

    def find_line_items(self, today: Any, keep: Callable[[], bool] | None = None) -> int:
        from app.catalogue.service import display_title, spec_of
        from app.keys.service import KeyService
        from app.passback.service import line_item_belongs, platform_urls
        from app.platforms.repository import PlatformRepository
        from lti.ags import find_or_create_line_item
        from lti.services import ServiceError

        with self.database.session(readonly=True) as db:
            todo = []
            for cls, link in GradingRepository(db).classes_needing_line_item(
                today - timedelta(days=60)
            ):
                if not link_fits_class(cls, link):
                    log.warning("class %s: resource link %s is not the class's", cls.id, link.id)
                    continue
                platform = PlatformRepository(db).record_for_deployment(cls.deployment_id)
                version = LearningRepository(db).module_version(cls.module_version_id)
                title = display_title(spec_of(version)) if version is not None else cls.name
                todo.append(
                    (
                        cls.id,
                        f"{cls.code} — {title}",
                        dict(link.ags_endpoint or {}),
                        link.resource_link_id,
                        platform,
                    )
                )
            tool_key = KeyService(db).signing_key() if todo else None
        found = 0
        if tool_key is None:
            return found
        for class_id, label, endpoint, resource_link_id, platform in todo:
            if platform is None or not platform.active:
                continue
            if keep is not None and not keep():
                break  # another process took the sweep over (this one was too slow)
            urls = platform_urls(platform)
            coupled = endpoint.get("lineitem")
            if coupled and not line_item_belongs(coupled, endpoint, urls):
                log.warning("class %s: coupled line item %s ignored (origin)", class_id, coupled)
                endpoint.pop("lineitem", None)
            try:
                item = find_or_create_line_item(
                    registration=platform,
                    tool_key=tool_key,
                    http=self.http,
                    endpoint=endpoint,
                    label=label,
                    score_maximum=float(SCORE_MAXIMUM),
                    resource_link_id=resource_link_id,
                    tag=LINE_ITEM_TAG,
                    token_cache=self.token_cache,
                )
            except (ServiceError, ValueError) as exc:
                log.warning("class %s: no gradebook column yet: %s", class_id, exc)
                continue
            if not line_item_belongs(item.id, endpoint, urls):
                log.warning(
                    "class %s: line item %s is not the course's: ignored", class_id, item.id
                )
                continue
            with self.database.session() as db:
                GradingRepository(db).set_line_item(class_id, item.id)
                GradingService(db).refresh(class_id)
            found += 1
        return found
