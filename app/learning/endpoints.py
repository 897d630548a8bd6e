"""Learning pages and JSON API. Thin: read the request, call ``LearningService``, render.

Pages:

* ``GET  /learn`` — the learner's class (or a list when they have several);
* ``GET  /learn/classes/{id}`` — items per phase with due dates, what is done, progress;
* ``POST /learn/classes/{id}/items/{key}/done`` — mark a reading/video/LMS activity done;
* ``GET  /learn/classes/{id}/items/{key}`` — a quiz, a reflection or an assignment;
  ``POST …/quiz`` takes the quiz, ``POST …/hand-in`` hands in (multipart, one file);
* ``POST /learn/classes/{id}/calendar/renew`` — a new address for the learner's calendar feed;
* ``GET  /learn/files/{submission id}`` — a handed-in file (the learner, their core trainer,
  an administrator), always as an attachment.

JSON API under ``/api/v1/learning`` (``X-CSRF-Token`` on writes).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from app.attendance.service import clock
from app.audit.service import actor_of
from app.auth.api import ApiAnyone, ApiTrainer
from app.auth.dependencies import (
    DbSession,
    ReadDbSession,
    Viewer,
    check_form_csrf,
    current_viewer,
    require_roles,
)
from app.classes.service import ClassService
from app.core.errors import NotFound, ValidationFailed
from app.core.files import cap_request_body, content_disposition
from app.core.http import small_form
from app.core.state import get_context
from app.core.templating import render
from app.core.time import local
from app.identity.models import Role
from app.learning.rules import HandIn, PhaseProgress
from app.learning.service import ItemState, LearnerView, LearningService
from app.learning.storage import FileStore, StoredFile

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1/learning", tags=["learning"])

Now = Depends(clock)
Learner = Depends(current_viewer)
Follower = Depends(require_roles(Role.TRAINER, Role.ADMIN))
FORM_OVERHEAD = 256 * 1024


def file_store(request: Request) -> FileStore:
    settings = get_context(request).settings
    return FileStore(settings.upload_dir, settings.max_upload_mb * 1024 * 1024)


Store = Depends(file_store)


async def upload_form(request: Request) -> FormData:
    """The posted hand-in form: at most one file, within the configured size."""
    settings = get_context(request).settings
    cap_request_body(
        request,
        settings.max_upload_mb * 1024 * 1024 + FORM_OVERHEAD,
        shown_mb=settings.max_upload_mb,
    )
    return await request.form(max_files=1, max_fields=20)


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _store_upload(store: FileStore, form: FormData) -> StoredFile | None:
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    return store.save(upload.filename, upload.file)


def _hand_in(
    viewer: Viewer,
    db: Session,
    store: FileStore,
    class_id: int,
    key: str,
    hand_in: HandIn,
    file: StoredFile | None,
    now: datetime,
) -> Any:
    """Hand in; a stored file whose hand-in is refused is removed again."""
    try:
        return LearningService(db, store).hand_in(viewer, class_id, key, hand_in, file, now)
    except BaseException:
        if file is not None:
            store.discard(file.key)
        raise


# -- the learner's pages ---------------------------------------------------------------------


@pages.get("/learn")
def my_learning(
    request: Request, viewer: Viewer = Learner, db: Session = ReadDbSession
) -> Response:
    classes = LearningService(db).my_classes(viewer)
    if len(classes) == 1:
        return RedirectResponse(f"/learn/classes/{classes[0].id}", status_code=303)
    return render(request, "learn_classes.html", {"viewer": viewer, "classes": classes})


@pages.get("/learn/classes/{class_id}")
def learner_page(
    class_id: int,
    request: Request,
    viewer: Viewer = Learner,
    db: Session = ReadDbSession,
    now: datetime = Now,
) -> Response:
    view = LearningService(db).learner_view(viewer, class_id, now)
    return render(
        request, "learn_class.html", {"viewer": viewer, "view": view, "now": now, "local": local}
    )


@pages.post("/learn/classes/{class_id}/items/{key}/done")
def mark_done_page(
    class_id: int,
    key: str,
    form: FormData = Depends(small_form),
    viewer: Viewer = Learner,
    db: Session = DbSession,
    now: datetime = Now,
) -> Response:
    check_form_csrf(viewer, form)
    done = _text(form, "done") != "0"
    LearningService(db).set_done(viewer, class_id, key, done, now)
    return RedirectResponse(f"/learn/classes/{class_id}#item-{key}", status_code=303)


@pages.get("/learn/classes/{class_id}/items/{key}")
def item_page(
    class_id: int,
    key: str,
    request: Request,
    saved: int | None = None,
    answered: int | None = None,
    viewer: Viewer = Learner,
    db: Session = ReadDbSession,
    now: datetime = Now,
) -> Response:
    service = LearningService(db)
    view = service.learner_view(viewer, class_id, now)
    state = _state(view, key)
    outcome = service.last_quiz_outcome(view, key) if answered else None
    return render(
        request,
        "learn_item.html",
        {
            "viewer": viewer,
            "view": view,
            "state": state,
            "saved": saved,
            "outcome": outcome,
            "max_mb": get_context(request).settings.max_upload_mb,
            "local": local,
        },
    )


def _state(view: LearnerView, key: str) -> ItemState:
    found = next((s for s in view.items if s.item.key == key), None)
    if found is None:
        raise NotFound(detail="This learning item is not part of your class's module.")
    return found


def _answers(form: FormData) -> dict[int, int]:
    out: dict[int, int] = {}
    for name, value in form.multi_items():
        if not name.startswith("q") or not isinstance(value, str):
            continue
        try:
            out[int(name[1:])] = int(value)
        except ValueError as exc:
            raise ValidationFailed("%(field)s is not valid", params={"field": name}) from exc
    return out


@pages.post("/learn/classes/{class_id}/items/{key}/quiz")
def quiz_page(
    class_id: int,
    key: str,
    request: Request,
    form: FormData = Depends(small_form),
    viewer: Viewer = Learner,
    db: Session = DbSession,
    now: datetime = Now,
) -> Response:
    check_form_csrf(viewer, form)
    LearningService(db).take_quiz(viewer, class_id, key, _answers(form), now)
    # Post/redirect/get: reloading the answers page must not take the quiz again.
    return RedirectResponse(f"/learn/classes/{class_id}/items/{key}?answered=1", status_code=303)


@pages.post("/learn/classes/{class_id}/items/{key}/hand-in")
def hand_in_page(
    class_id: int,
    key: str,
    form: FormData = Depends(upload_form),
    viewer: Viewer = Learner,
    db: Session = DbSession,
    store: FileStore = Store,
    now: datetime = Now,
) -> Response:
    check_form_csrf(viewer, form)
    hand_in = HandIn(text=_text(form, "text"), link_url=_text(form, "link"))
    # Who and what are checked before a byte is written to the store.
    LearningService(db).can_hand_in(viewer, class_id, key)
    file = _store_upload(store, form)
    _hand_in(viewer, db, store, class_id, key, hand_in, file, now)
    return RedirectResponse(f"/learn/classes/{class_id}/items/{key}?saved=1", status_code=303)


@pages.post("/learn/classes/{class_id}/calendar/renew")
def renew_calendar_page(
    class_id: int,
    form: FormData = Depends(small_form),
    viewer: Viewer = Learner,
    db: Session = DbSession,
) -> Response:
    """A new address for the learner's own calendar feed; the old one stops working at once
    (a phone that was lost, a link that was shared)."""
    check_form_csrf(viewer, form)
    ClassService(db, actor_of(viewer)).renew_learner_feed(
        viewer.deployment_id, class_id, viewer.user.id
    )
    return RedirectResponse(f"/?calendar=renewed#tl-{class_id}", status_code=303)


@pages.get("/learn/files/{submission_id}")
def download_file(
    submission_id: int,
    viewer: Viewer = Learner,
    db: Session = ReadDbSession,
    store: FileStore = Store,
) -> Response:
    found = LearningService(db, store).download(viewer, submission_id)
    return FileResponse(
        found.path,
        media_type=found.content_type,
        headers={
            "Content-Disposition": content_disposition(found.name),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


# -- the JSON API ----------------------------------------------------------------------------


def _progress_out(progress: dict[str, PhaseProgress]) -> dict[str, Any]:
    return {
        phase: {"done": p.done, "total": p.total, "percent": p.percent}
        for phase, p in progress.items()
    }


def decimal_text(value: Any) -> str | None:
    """A stored score as the API gives it: "7.25", or null."""
    return None if value is None else str(value)


def view_out(view: LearnerView) -> dict[str, Any]:
    result = view.result
    return {
        "class_id": view.cls.id,
        "enrolment_id": view.enrolment.id,
        "module": view.title,
        "progress": _progress_out(view.progress),
        "items": [
            {
                "key": s.item.key,
                "phase": s.item.phase,
                "kind": s.item.kind,
                "mode": s.item.mode,
                "title": s.item.title,
                "url": s.item.url,
                "required": s.item.required,
                "due_on": s.item.due_on.isoformat() if s.item.due_on else None,
                "due_at": s.item.due_at.isoformat() if s.item.due_at else None,
                "done": s.done,
                "done_at": s.done_at.isoformat() if s.done_at else None,
                "overdue": s.overdue,
                "quiz_best": None
                if s.best_quiz is None
                else {"correct": s.best_quiz[0], "total": s.best_quiz[1]},
                "submission": None
                if s.latest is None
                else {
                    "id": s.latest.id,
                    "attempt": s.latest.attempt,
                    "late": s.latest.late,
                    "submitted_at": s.latest.submitted_at.isoformat(),
                    "has_file": s.latest.file_key is not None,
                    "file_name": s.latest.file_name,
                    "link": s.latest.link_url,
                    "text": s.latest.text,
                },
                "grade": None
                if s.grade is None
                else {"score": str(s.grade.score), "feedback": s.grade.feedback},
            }
            for s in view.items
        ],
        "result": None
        if result is None
        else {
            "self_study": decimal_text(result.self_study),
            "attendance": decimal_text(result.attendance),
            "follow_up": decimal_text(result.follow_up),
            "score": decimal_text(result.score),
            "classification": result.classification,
            "final": result.final,
            "overridden": result.override_score is not None,
        },
    }


class DoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    done: bool = True


class QuizIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: question index (from 0) → the chosen choice (from 1)
    answers: dict[int, int] = Field(max_length=50)


class HandInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, max_length=60_000)
    link: str | None = Field(default=None, max_length=2_000)


@api.get("/classes/{class_id}/me", summary="My learning items and progress in a class")
def my_items(
    class_id: int, viewer: Viewer = ApiAnyone, db: Session = ReadDbSession, now: datetime = Now
) -> dict[str, Any]:
    return view_out(LearningService(db).learner_view(viewer, class_id, now))


@api.put("/classes/{class_id}/items/{key}/done", summary="Mark an item done or not done")
def put_done(
    class_id: int,
    key: str,
    data: DoneIn,
    viewer: Viewer = ApiAnyone,
    db: Session = DbSession,
    now: datetime = Now,
) -> dict[str, Any]:
    changed = LearningService(db).set_done(viewer, class_id, key, data.done, now)
    return {"key": key, "done": data.done, "changed": changed}


@api.post("/classes/{class_id}/items/{key}/quiz", summary="Take a self-check quiz")
def post_quiz(
    class_id: int,
    key: str,
    data: QuizIn,
    viewer: Viewer = ApiAnyone,
    db: Session = DbSession,
    now: datetime = Now,
) -> dict[str, Any]:
    outcome = LearningService(db).take_quiz(viewer, class_id, key, data.answers, now)
    return {
        "key": key,
        "correct": outcome.correct,
        "total": outcome.total,
        "score": str(outcome.score),
    }


@api.post(
    "/classes/{class_id}/items/{key}/submissions",
    summary="Hand in a reflection or an assignment (text or link as JSON)",
    status_code=201,
)
def post_submission(
    class_id: int,
    key: str,
    data: HandInIn,
    viewer: Viewer = ApiAnyone,
    db: Session = DbSession,
    now: datetime = Now,
) -> dict[str, Any]:
    """Files are handed in through the page (``multipart/form-data``)."""
    row = LearningService(db).hand_in(
        viewer, class_id, key, HandIn(text=data.text, link_url=data.link), None, now
    )
    return {"id": row.id, "attempt": row.attempt, "late": row.late}


@api.get("/classes/{class_id}/progress", summary="Progress of the learners a viewer follows")
def class_progress(
    class_id: int, viewer: Viewer = ApiTrainer, db: Session = ReadDbSession
) -> dict[str, Any]:
    view = LearningService(db).class_progress(viewer, class_id)
    return {
        "class_id": view.cls.id,
        "whole_class": view.whole_class,
        "learners": [
            {
                "enrolment_id": r.enrolment_id,
                "user_id": r.user.id,
                "name": r.user.display_name,
                "progress": _progress_out(r.progress),
                "to_grade": r.to_grade,
                "score": decimal_text(r.result.score) if r.result else None,
                "classification": r.result.classification if r.result else None,
            }
            for r in view.rows
        ],
    }


__all__ = ["api", "pages"]
