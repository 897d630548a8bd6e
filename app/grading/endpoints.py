"""The core trainer's grading pages and the results API. Thin: read, call a service, render.

Pages (core trainer of the cohort, or an administrator for the whole class):

* ``GET  /grading/classes/{id}`` — every learner followed: progress per phase, hand-ins
  waiting for a grade, components, result;
* ``GET  /grading/enrolments/{id}`` — one learner: items, hand-ins with a grade form,
  the result with its components, the override form and the audit trail;
* ``POST /grading/submissions/{id}/grade``, ``POST /grading/enrolments/{id}/override``,
  ``…/override/clear``, ``…/manual``.

JSON API under ``/api/v1/grading`` (``X-CSRF-Token`` on writes).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.attendance.service import clock
from app.auth.api import ApiTrainer
from app.auth.dependencies import DbSession, ReadDbSession, Viewer, check_form_csrf, require_roles
from app.core.http import small_form
from app.core.i18n import gettext
from app.core.templating import render, request_locale, score_text
from app.core.time import local
from app.grading.rules import MAX_REASON_CHARS
from app.grading.service import GradingService, LearnerResult
from app.identity.models import Role
from app.learning.endpoints import decimal_text
from app.learning.rules import GradeBase, grade_etag, parse_grade, parse_grade_base
from app.learning.service import GradeChanged, LearnerView, LearningService

pages = APIRouter(prefix="/grading", include_in_schema=False)
api = APIRouter(prefix="/api/v1/grading", tags=["grading"])

Now = Depends(clock)
Follower = Depends(require_roles(Role.TRAINER, Role.ADMIN))


def _(message: str) -> str:
    """Marks an English message id for extraction; translated when it is shown."""
    return message


FIELD_NAMES = {
    "score": _("Score"),
    "classification": _("Result"),
    "override": _("Override removed"),
    "self_study": _("Self-study"),
    "follow_up": _("Follow-up"),
}
GRADE_OF = _("Grade of “%(item)s”")


def _field_namer(locale: str, view: LearnerView) -> Callable[[str], str]:
    titles = {s.item.key: s.item.title for s in view.items}

    def name(field: str) -> str:
        if field.startswith("item:"):
            key = field.removeprefix("item:")
            return gettext(locale, GRADE_OF) % {"item": titles.get(key, key)}
        return gettext(locale, FIELD_NAMES.get(field, field))

    return name


def _hm(value: datetime) -> str:
    return local(value).strftime("%H:%M")


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@pages.get("/classes/{class_id}")
def class_page(
    class_id: int, request: Request, viewer: Viewer = Follower, db: Session = ReadDbSession
) -> Response:
    view = LearningService(db).class_progress(viewer, class_id)
    return render(request, "grading_class.html", {"viewer": viewer, "view": view})


@pages.get("/enrolments/{enrolment_id}")
def learner_page(
    enrolment_id: int,
    request: Request,
    saved: str | None = None,
    viewer: Viewer = Follower,
    db: Session = ReadDbSession,
    now: datetime = Now,
) -> Response:
    view = LearningService(db).learner_detail(viewer, enrolment_id, now)
    history = GradingService(db).history(viewer, enrolment_id)
    return render(
        request,
        "grading_learner.html",
        {
            "viewer": viewer,
            "view": view,
            "history": history,
            "saved": saved,
            "reason_max": MAX_REASON_CHARS,
            "field_name": _field_namer(request_locale(request), view),
            "hm": _hm,
            "local": local,
        },
    )


def form_base(form: FormData) -> GradeBase | None:
    """The grade a grade form was based on (its hidden ``expected_grade_id``)."""
    value = form.get("expected_grade_id")
    return parse_grade_base(value if isinstance(value, str) else None)


def conflict_page(
    request: Request,
    viewer: Viewer,
    conflict: GradeChanged,
    *,
    action: str,
    back: str,
    keep: dict[str, str] | None = None,
) -> Response:
    """409: another trainer graded meanwhile. Both grades side by side, and the form again
    on the new base, so that saving once more replaces theirs knowingly."""
    locale = request_locale(request)
    params = conflict.params | {
        "score": score_text(conflict.current.score, locale),
        "mine": score_text(conflict.mine, locale),
    }
    return render(
        request,
        "grading_conflict.html",
        {
            "viewer": viewer,
            "conflict": conflict,
            "params": params,
            "when": params["when"],
            "action": action,
            "back": back,
            "keep": keep or {},
        },
        status_code=409,
    )


@pages.post("/submissions/{submission_id}/grade")
def grade_page(
    submission_id: int,
    request: Request,
    form: FormData = Depends(small_form),
    viewer: Viewer = Follower,
    db: Session = DbSession,
    now: datetime = Now,
) -> Response:
    check_form_csrf(viewer, form)
    score = parse_grade(_field(form, "score"))
    try:
        row, _result = LearningService(db).grade(
            viewer, submission_id, score, _field(form, "feedback"), now, based_on=form_base(form)
        )
    except GradeChanged as conflict:
        return conflict_page(
            request,
            viewer,
            conflict,
            action=f"/grading/submissions/{submission_id}/grade",
            back=f"/grading/enrolments/{conflict.current.enrolment_id}"
            f"#item-{conflict.current.item_key}",
        )
    return RedirectResponse(
        f"/grading/enrolments/{row.enrolment_id}?saved=grade#item-{row.item_key}", status_code=303
    )


@pages.post("/enrolments/{enrolment_id}/override")
def override_page(
    enrolment_id: int,
    form: FormData = Depends(small_form),
    viewer: Viewer = Follower,
    db: Session = DbSession,
    now: datetime = Now,
) -> Response:
    check_form_csrf(viewer, form)
    score = parse_grade(_field(form, "score"))
    GradingService(db).override(
        viewer, enrolment_id, score, _field(form, "classification"), _field(form, "reason"), now
    )
    return RedirectResponse(f"/grading/enrolments/{enrolment_id}?saved=override", status_code=303)


@pages.post("/enrolments/{enrolment_id}/override/clear")
def clear_override_page(
    enrolment_id: int,
    form: FormData = Depends(small_form),
    viewer: Viewer = Follower,
    db: Session = DbSession,
    now: datetime = Now,
) -> Response:
    check_form_csrf(viewer, form)
    GradingService(db).clear_override(viewer, enrolment_id, _field(form, "reason"), now)
    return RedirectResponse(f"/grading/enrolments/{enrolment_id}?saved=override", status_code=303)


@pages.post("/enrolments/{enrolment_id}/manual")
def manual_page(
    enrolment_id: int,
    form: FormData = Depends(small_form),
    viewer: Viewer = Follower,
    db: Session = DbSession,
    now: datetime = Now,
) -> Response:
    check_form_csrf(viewer, form)
    raw = _field(form, "score").strip()
    score = parse_grade(raw) if raw else None
    GradingService(db).set_manual(
        viewer, enrolment_id, _field(form, "component"), score, _field(form, "reason"), now
    )
    return RedirectResponse(f"/grading/enrolments/{enrolment_id}?saved=manual", status_code=303)


# -- the JSON API ----------------------------------------------------------------------------


def result_out(found: LearnerResult) -> dict[str, Any]:
    result = found.result
    return {
        "enrolment_id": found.enrolment_id,
        "components": {
            "self_study": decimal_text(result.components.self_study),
            "attendance": decimal_text(result.components.attendance),
            "follow_up": decimal_text(result.components.follow_up),
        },
        "score": decimal_text(result.score),
        "classification": result.classification,
        "final": result.final,
        "overridden": result.overridden,
        "reasons": [{"code": r.code, "message": r.message % r.params} for r in result.reasons],
    }


class GradeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: Decimal = Field(ge=0, le=10, decimal_places=2)
    feedback: str | None = Field(default=None, max_length=5000)
    expected_grade_id: int | Literal["none"] | None = Field(
        default=None,
        description="The id of the grade this one replaces (as read in `grade.id`), or "
        '`"none"`/`null` when the hand-in had none. When another grade was recorded '
        "meanwhile the answer is 409 `grade_changed` with `current_grade` (who gave which "
        'grade when); send again with its id to replace it. Or send `If-Match: "grade-<id>"` '
        '/ `"grade-none"` (the `ETag` of the last answer). Without either, nothing is '
        "checked: the newest grade wins.",
    )


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: Decimal = Field(ge=0, le=10, decimal_places=2)
    classification: str = Field(max_length=40)
    reason: str = Field(max_length=MAX_REASON_CHARS + 100)


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=MAX_REASON_CHARS + 100)


class ManualIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    component: str = Field(pattern="^(self_study|follow_up)$")
    score: Decimal | None = Field(ge=0, le=10, decimal_places=2)
    reason: str = Field(max_length=MAX_REASON_CHARS + 100)


@api.post(
    "/submissions/{submission_id}/grade",
    summary="Grade a hand-in (0–10)",
    responses={409: {"description": "Another grade was recorded meanwhile (`grade_changed`)"}},
)
def post_grade(
    submission_id: int,
    data: GradeIn,
    response: Response,
    if_match: str | None = Header(default=None, alias="If-Match"),
    viewer: Viewer = ApiTrainer,
    db: Session = DbSession,
    now: datetime = Now,
) -> dict[str, Any]:
    based_on = None
    if "expected_grade_id" in data.model_fields_set:
        based_on = parse_grade_base(data.expected_grade_id or "none")
    elif if_match is not None:
        based_on = parse_grade_base(if_match)
    row, found = LearningService(db).grade(
        viewer, submission_id, data.score, data.feedback, now, based_on=based_on
    )
    response.headers["ETag"] = grade_etag(row.id)
    return {"grade": {"id": row.id, "score": str(row.score)}, "result": result_out(found)}


@api.get("/classes/{class_id}/results", summary="Module results of the learners a viewer follows")
def class_results(
    class_id: int, viewer: Viewer = ApiTrainer, db: Session = ReadDbSession
) -> dict[str, Any]:
    view = LearningService(db).class_progress(viewer, class_id)
    return {
        "class_id": class_id,
        "results": [
            {
                "enrolment_id": r.enrolment_id,
                "user_id": r.user.id,
                "name": r.user.display_name,
                "self_study": decimal_text(r.result.self_study) if r.result else None,
                "attendance": decimal_text(r.result.attendance) if r.result else None,
                "follow_up": decimal_text(r.result.follow_up) if r.result else None,
                "score": decimal_text(r.result.score) if r.result else None,
                "classification": r.result.classification if r.result else "incomplete",
                "final": bool(r.result and r.result.final),
                "overridden": bool(r.result and r.result.override_score is not None),
            }
            for r in view.rows
        ],
    }


@api.put("/enrolments/{enrolment_id}/override", summary="Override a module result")
def put_override(
    enrolment_id: int,
    data: OverrideIn,
    viewer: Viewer = ApiTrainer,
    db: Session = DbSession,
    now: datetime = Now,
) -> dict[str, Any]:
    found = GradingService(db).override(
        viewer, enrolment_id, data.score, data.classification, data.reason, now
    )
    return result_out(found)


@api.post("/enrolments/{enrolment_id}/override/clear", summary="Remove an override")
def clear_override(
    enrolment_id: int,
    data: ReasonIn,
    viewer: Viewer = ApiTrainer,
    db: Session = DbSession,
    now: datetime = Now,
) -> dict[str, Any]:
    return result_out(GradingService(db).clear_override(viewer, enrolment_id, data.reason, now))


@api.put("/enrolments/{enrolment_id}/manual", summary="Enter a component score by hand")
def put_manual(
    enrolment_id: int,
    data: ManualIn,
    viewer: Viewer = ApiTrainer,
    db: Session = DbSession,
    now: datetime = Now,
) -> dict[str, Any]:
    found = GradingService(db).set_manual(
        viewer, enrolment_id, data.component, data.score, data.reason, now
    )
    return result_out(found)


@api.get("/enrolments/{enrolment_id}/history", summary="Audit trail of a result")
def history(
    enrolment_id: int, viewer: Viewer = ApiTrainer, db: Session = ReadDbSession
) -> dict[str, Any]:
    return {
        "enrolment_id": enrolment_id,
        "changes": [
            {
                "at": change.at.isoformat(),
                "by": user.display_name if user else None,
                "by_user_id": change.by_user_id,
                "field": change.field,
                "old": change.old,
                "new": change.new,
                "reason": change.reason,
            }
            for change, user in GradingService(db).history(viewer, enrolment_id)
        ],
    }


__all__ = ["api", "pages"]
