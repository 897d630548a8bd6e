"""Attendance pages and JSON API. Thin: read the request, call ``AttendanceService``, render.

Pages (``/attendance``):

* ``GET  /attendance/classes/{class_id}`` — to the sheet of the session running now (or next);
* ``GET  /attendance/sessions/{id}`` — the core trainer's sheet: their cohort, one radio group
  per learner, one submit; ``POST`` saves it;
* ``GET  /attendance/sessions/{id}/checkin`` — the rotating code and its QR code (refreshed by
  ``/static/attendance.js`` from ``code.json``); ``POST …/checkin/open`` and ``…/close``;
* ``GET  /attendance/checkin`` — a learner's sessions today, with a field for the code;
* ``GET  /attendance/checkin/{id}?c=<code>`` — what the QR code opens; ``POST`` checks in.

JSON API (``/api/v1/attendance``, ``X-CSRF-Token`` on writes): marks of a session (GET/PUT),
their history, opening and closing check-in, a learner's check-in, and the scores of a class.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.attendance.rules import (
    LATE_AFTER_DEFAULT,
    LATE_AFTER_MAX,
    MAX_NOTE_CHARS,
    STATUSES,
    STEP_SECONDS,
)
from app.attendance.service import (
    DEVICE_COOKIE,
    DEVICE_COOKIE_MAX_AGE,
    AttendanceService,
    CheckinResult,
    MarkInput,
    Sheet,
    clock,
    device_hash,
    new_device_token,
    valid_device_token,
)
from app.auth.api import ApiAnyone, ApiTrainer
from app.auth.dependencies import (
    DbSession,
    ReadDbSession,
    Viewer,
    check_csrf,
    current_viewer,
    require_roles,
)
from app.core.errors import AppError, ValidationFailed
from app.core.http import set_cookie
from app.core.i18n import gettext
from app.core.state import get_context
from app.core.templating import render, request_locale
from app.core.time import local
from app.identity.models import Role

pages = APIRouter(prefix="/attendance", include_in_schema=False)
api = APIRouter(prefix="/api/v1/attendance", tags=["attendance"])

Marker = Depends(require_roles(Role.TRAINER, Role.ADMIN))
Now = Depends(clock)
MAX_FORM_FIELDS = 2000


def _(message: str) -> str:
    """Marks an English message id for extraction; translated when it is shown."""
    return message


CHECKED_IN = {
    "present": _("You are checked in: present."),
    "late": _("You are checked in, but late."),
}
ALREADY = _("You were already checked in to this session.")


def _hm(value: datetime | None) -> str:
    return local(value).strftime("%H:%M") if value else ""


def _result_message(locale: str, result: CheckinResult) -> str:
    return gettext(locale, ALREADY if result.already else CHECKED_IN[result.status])


def _device(request: Request) -> tuple[str, str | None]:
    """The device hash of this browser, and a new cookie token to set when it had none."""
    token = request.cookies.get(DEVICE_COOKIE)
    if valid_device_token(token):
        assert token is not None
        return device_hash(token), None
    fresh = new_device_token()
    return device_hash(fresh), fresh


def _remember_device(request: Request, response: Response, fresh: str | None) -> None:
    if fresh is not None:
        set_cookie(
            response, get_context(request).settings, DEVICE_COOKIE, fresh, DEVICE_COOKIE_MAX_AGE
        )


async def form_data(request: Request) -> FormData:
    """The posted form, read before the (sync) endpoint runs in the thread pool."""
    return await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)


def _late_after(value: str) -> int:
    try:
        return int(value.strip() or LATE_AFTER_DEFAULT)
    except ValueError as exc:
        raise ValidationFailed(
            "The late threshold must be from 0 to %(max)s minutes",
            params={"max": LATE_AFTER_MAX, "field": "late_after_minutes"},
        ) from exc


def _translated(request: Request, error: AppError) -> dict[str, str]:
    locale = request_locale(request)

    def t(text: str) -> str:
        if not text:
            return ""
        translated = gettext(locale, text)
        try:
            return translated % error.params if error.params else translated
        except (KeyError, ValueError, TypeError):
            return translated

    return {"title": t(error.title), "detail": t(error.detail), "advice": t(error.advice)}


# -- the core trainer's pages ----------------------------------------------------------------


@pages.get("/classes/{class_id}")
def class_entry(
    class_id: int, viewer: Viewer = Marker, db: Session = ReadDbSession, now: datetime = Now
) -> Response:
    """The attendance of a class starts at the session running now, or the next one."""
    session_id = AttendanceService(db).default_session(viewer, class_id, now)
    return RedirectResponse(f"/attendance/sessions/{session_id}", status_code=303)


@pages.get("/sessions/{session_id}")
def sheet_page(
    session_id: int,
    request: Request,
    saved: int | None = None,
    viewer: Viewer = Marker,
    db: Session = ReadDbSession,
    now: datetime = Now,
) -> Response:
    sheet = AttendanceService(db).sheet(viewer, session_id, now)
    return render(
        request,
        "attendance_mark.html",
        {
            "viewer": viewer,
            "view": sheet,
            "saved": saved,
            "statuses": STATUSES,
            "step": STEP_SECONDS,
            "hm": _hm,
            "late_default": LATE_AFTER_DEFAULT,
            "late_max": LATE_AFTER_MAX,
            "note_max": MAX_NOTE_CHARS,
        },
    )


def _entries(form: FormData) -> tuple[list[MarkInput], str | None]:
    """``status-<enrolment id>`` radio values and ``note-<enrolment id>`` texts."""
    statuses: dict[int, str] = {}
    notes: dict[int, str] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            continue
        prefix, _sep, rest = key.partition("-")
        if prefix not in ("status", "note") or not rest:
            continue
        try:
            enrolment_id = int(rest)
        except ValueError as exc:
            raise ValidationFailed("%(field)s is not valid", params={"field": key}) from exc
        (statuses if prefix == "status" else notes)[enrolment_id] = value
    for enrolment_id, note in notes.items():
        if note.strip() and enrolment_id not in statuses:
            raise ValidationFailed(
                "Choose a status for the learner before writing a note",
                params={"field": f"note-{enrolment_id}"},
            )
    entries = [
        MarkInput(enrolment_id, value, notes.get(enrolment_id))
        for enrolment_id, value in statuses.items()
    ]
    rest_value = form.get("rest")
    return entries, rest_value if isinstance(rest_value, str) and rest_value else None


@pages.post("/sessions/{session_id}")
def save_sheet(
    session_id: int,
    form: FormData = Depends(form_data),
    viewer: Viewer = Marker,
    db: Session = DbSession,
    now: datetime = Now,
) -> Response:
    csrf = form.get("csrf_token")
    check_csrf(viewer, csrf if isinstance(csrf, str) else None)
    entries, rest = _entries(form)
    changed = AttendanceService(db).save_marks(viewer, session_id, entries, now, rest=rest)
    return RedirectResponse(f"/attendance/sessions/{session_id}?saved={changed}", status_code=303)


@pages.get("/sessions/{session_id}/checkin")
def code_screen(
    session_id: int,
    request: Request,
    viewer: Viewer = Marker,
    db: Session = ReadDbSession,
    now: datetime = Now,
) -> Response:
    ctx = get_context(request)
    view = AttendanceService(db).code_view(viewer, session_id, now, ctx.settings.public_base_url)
    return render(
        request,
        "attendance_checkin_show.html",
        {
            "viewer": viewer,
            "view": view,
            "step": STEP_SECONDS,
            "late_default": LATE_AFTER_DEFAULT,
            "late_max": LATE_AFTER_MAX,
        },
        headers={"Cache-Control": "no-store"},
    )


@pages.get("/sessions/{session_id}/code.json")
def code_json(
    session_id: int,
    request: Request,
    viewer: Viewer = Marker,
    db: Session = ReadDbSession,
    now: datetime = Now,
) -> JSONResponse:
    ctx = get_context(request)
    view = AttendanceService(db).code_view(viewer, session_id, now, ctx.settings.public_base_url)
    return JSONResponse(view.as_json(), headers={"Cache-Control": "no-store"})


@pages.post("/sessions/{session_id}/checkin/open")
def open_checkin_page(
    session_id: int,
    csrf_token: str = Form(""),
    late_after_minutes: str = Form(""),
    viewer: Viewer = Marker,
    db: Session = DbSession,
    now: datetime = Now,
) -> Response:
    check_csrf(viewer, csrf_token)
    AttendanceService(db).open_checkin(viewer, session_id, _late_after(late_after_minutes), now)
    return RedirectResponse(f"/attendance/sessions/{session_id}/checkin", status_code=303)


@pages.post("/sessions/{session_id}/checkin/close")
def close_checkin_page(
    session_id: int,
    csrf_token: str = Form(""),
    viewer: Viewer = Marker,
    db: Session = DbSession,
    now: datetime = Now,
) -> Response:
    check_csrf(viewer, csrf_token)
    AttendanceService(db).close_checkin(viewer, session_id, now)
    return RedirectResponse(f"/attendance/sessions/{session_id}", status_code=303)


# -- the learner's pages ---------------------------------------------------------------------


def _learner_page(
    request: Request,
    viewer: Viewer,
    context: dict[str, Any],
    status_code: int = 200,
    fresh: str | None = None,
) -> Response:
    """The learner's page; ``fresh`` is a device cookie to set (the browser had none)."""
    if fresh is None:
        fresh = _device(request)[1]
    response = render(
        request,
        "attendance_checkin.html",
        {"viewer": viewer, "hm": _hm, "step": STEP_SECONDS} | context,
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )
    _remember_device(request, response, fresh)
    return response


@pages.get("/checkin")
def my_sessions_today(
    request: Request,
    viewer: Viewer = Depends(current_viewer),
    db: Session = ReadDbSession,
    now: datetime = Now,
) -> Response:
    """A learner's sessions today, each with a field for the code on the trainer's screen."""
    sessions = AttendanceService(db).learner_sessions_today(viewer, now)
    return _learner_page(request, viewer, {"page": "list", "sessions": sessions})


@pages.get("/checkin/{session_id}")
def checkin_form(
    session_id: int,
    request: Request,
    c: str = "",
    viewer: Viewer = Depends(current_viewer),
    db: Session = ReadDbSession,
    now: datetime = Now,
) -> Response:
    """What the QR code opens: the session and the code, one tap to check in."""
    service = AttendanceService(db)
    try:
        learner = service.learner_session(viewer, session_id, now)
    except AppError as error:
        if error.status_code == 404:
            raise
        return _learner_page(
            request,
            viewer,
            {"page": "refused", "error": _translated(request, error)},
            status_code=error.status_code,
        )
    code = "".join(ch for ch in c if ch.isdigit())[:6]
    return _learner_page(request, viewer, {"page": "form", "learner": learner, "code": code})


@pages.post("/checkin/{session_id}")
def checkin_submit(
    session_id: int,
    request: Request,
    csrf_token: str = Form(""),
    code: str = Form("", max_length=64),
    viewer: Viewer = Depends(current_viewer),
    db: Session = DbSession,
    now: datetime = Now,
) -> Response:
    check_csrf(viewer, csrf_token)
    device, fresh = _device(request)
    service = AttendanceService(db)
    try:
        result = service.checkin(viewer, session_id, code, device, now)
    except AppError as error:
        if error.status_code == 404:
            raise
        db.rollback()  # a refusal writes nothing
        context: dict[str, Any] = {"page": "refused", "error": _translated(request, error)}
        with suppress(AppError):  # not a learner of the class: no form to show again
            context |= {"page": "form", "learner": service.learner_session(viewer, session_id, now)}
        return _learner_page(request, viewer, context, error.status_code, fresh)
    return _learner_page(
        request,
        viewer,
        {
            "page": "done",
            "result": result,
            "message": _result_message(request_locale(request), result),
        },
        fresh=fresh,
    )


# -- JSON API --------------------------------------------------------------------------------


class MarkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enrolment_id: int
    status: str = Field(max_length=16)
    note: str | None = Field(default=None, max_length=MAX_NOTE_CHARS)


class MarksIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    marks: list[MarkIn] = Field(default_factory=list, max_length=1000)
    rest: str | None = Field(default=None, max_length=16)


class CheckinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=64)


class WindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    late_after_minutes: int = Field(default=LATE_AFTER_DEFAULT, ge=0, le=LATE_AFTER_MAX)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def sheet_out(sheet: Sheet) -> dict[str, Any]:
    s = sheet.info.session
    window = sheet.window
    return {
        "session": {
            "id": s.id,
            "class_id": sheet.info.cls.id,
            "date": s.date.isoformat(),
            "part": s.part,
            "starts_at": sheet.info.starts_at.isoformat(),
            "ends_at": sheet.info.ends_at.isoformat(),
            "venue": s.venue,
            "room": s.room,
            "virtual_url": s.virtual_url,
        },
        "state": sheet.state,
        "whole_class": sheet.whole_class,
        "checkin": None
        if window is None
        else {
            "open": window.closed_at is None,
            "late_after_minutes": window.late_after_minutes,
            "opened_at": _iso(window.opened_at),
            "closed_at": _iso(window.closed_at),
        },
        "counts": sheet.counts,
        "marks": [
            {
                "enrolment_id": r.enrolment_id,
                "user_id": r.user_id,
                "name": r.name,
                "school": r.school,
                "status": r.status,
                "note": r.note,
                "source": r.source,
                "marked_at": _iso(r.marked_at),
                "checked_in_at": _iso(r.checked_in_at),
            }
            for r in sheet.rows
        ],
    }


@api.get("/sessions/{session_id}/marks", summary="Attendance marks of a session")
def get_marks(
    session_id: int, viewer: Viewer = ApiTrainer, db: Session = ReadDbSession, now: datetime = Now
) -> dict[str, Any]:
    """The learners the viewer marks (their cohorts; the whole class for an administrator)
    with their mark in this session (``status`` null: not marked yet)."""
    return sheet_out(AttendanceService(db).sheet(viewer, session_id, now))


@api.put("/sessions/{session_id}/marks", summary="Set attendance marks of a session")
def put_marks(
    session_id: int,
    data: MarksIn,
    viewer: Viewer = ApiTrainer,
    db: Session = DbSession,
    now: datetime = Now,
) -> dict[str, Any]:
    """Set ``present``/``late``/``excused``/``absent`` (and a note; ``null`` keeps it, ``""``
    clears it) for learners of the viewer's cohorts; ``rest`` marks everyone else who has no
    mark yet. Every change goes to the history."""
    service = AttendanceService(db)
    entries = [MarkInput(m.enrolment_id, m.status, m.note) for m in data.marks]
    changed = service.save_marks(viewer, session_id, entries, now, rest=data.rest)
    return {"changed": changed} | sheet_out(service.sheet(viewer, session_id, now))


@api.get("/sessions/{session_id}/history", summary="Every change of the marks of a session")
def get_history(
    session_id: int, viewer: Viewer = ApiTrainer, db: Session = ReadDbSession
) -> list[dict[str, Any]]:
    return [
        {
            "enrolment_id": change.enrolment_id,
            "old_status": change.old_status,
            "new_status": change.new_status,
            "old_note": change.old_note,
            "new_note": change.new_note,
            "source": change.source,
            "reason": change.reason,
            "by_user_id": change.by_user_id,
            "by_name": user.display_name if user else None,
            "at": change.at.isoformat(),
        }
        for change, user in AttendanceService(db).history(viewer, session_id)
    ]


@api.put("/sessions/{session_id}/checkin-window", summary="Open check-in for a session")
def open_window(
    session_id: int,
    data: WindowIn,
    viewer: Viewer = ApiTrainer,
    db: Session = DbSession,
    now: datetime = Now,
) -> dict[str, Any]:
    window = AttendanceService(db).open_checkin(viewer, session_id, data.late_after_minutes, now)
    return {
        "session_id": window.session_id,
        "open": True,
        "late_after_minutes": window.late_after_minutes,
        "opened_at": _iso(window.opened_at),
        "code_url": f"/attendance/sessions/{session_id}/code.json",
    }


@api.delete(
    "/sessions/{session_id}/checkin-window",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Close check-in for a session",
)
def close_window(
    session_id: int, viewer: Viewer = ApiTrainer, db: Session = DbSession, now: datetime = Now
) -> None:
    AttendanceService(db).close_checkin(viewer, session_id, now)


@api.post("/sessions/{session_id}/checkin", summary="Check in with the code on the screen")
def api_checkin(
    session_id: int,
    data: CheckinIn,
    request: Request,
    viewer: Viewer = ApiAnyone,
    db: Session = DbSession,
    now: datetime = Now,
) -> JSONResponse:
    """The signed-in learner checks themselves in; refused (problem+json, with a ``code``
    such as ``code_changed``) for an earlier window's code, another session's code, outside
    the session's hours, a learner of another class, or a device that has just checked in
    someone else. A second check-in of the same learner answers ``already: true``."""
    device, fresh = _device(request)
    result = AttendanceService(db).checkin(viewer, session_id, data.code, device, now)
    response = JSONResponse(
        {
            "session_id": session_id,
            "status": result.status,
            "already": result.already,
            "message": _result_message(request_locale(request), result),
        }
    )
    _remember_device(request, response, fresh)
    return response


@api.get("/classes/{class_id}/scores", summary="Attendance score of each learner of a class")
def get_scores(
    class_id: int, viewer: Viewer = ApiTrainer, db: Session = ReadDbSession
) -> dict[str, Any]:
    """10 × points earned / (points of present × every session of the class): a session not
    held yet, or not marked, counts 0. Points per status come from the module version
    (Moodle's defaults: present 2, late 1, excused 1, absent 0)."""
    sessions, scores = AttendanceService(db).scores(viewer, class_id)
    return {
        "class_id": class_id,
        "sessions": sessions,
        "scores": [
            {
                "enrolment_id": s.enrolment_id,
                "user_id": s.user_id,
                "name": s.name,
                "marks": s.marks,
                "score": None if s.score is None else str(s.score),
            }
            for s in scores
        ],
    }
