"""The core trainer's cohort dashboard. Thin: read the request, call a service, render.

Pages (the cohort's core trainer, or an administrator of the deployment):

* ``GET  /cohorts/{id}`` — every learner of the cohort on one screen; sorted and filtered by
  query parameters (``?sort=progress&dir=asc&flag=at_risk&q=…``), so it works without
  JavaScript; ``&open=<enrolment id>`` opens one learner under their row, with forms to mark
  their attendance and grade their hand-ins;
* ``GET  /cohorts/{id}/learners.csv`` — the same learners (same sort and filter) as CSV;
* ``POST /cohorts/{id}/learners/{enrolment id}/attendance`` — ``status-<session id>`` for
  each session to set; back to the dashboard with the learner open;
* ``POST /cohorts/{id}/submissions/{submission id}/grade`` — ``score``, ``feedback``.

Writes go through ``AttendanceService.save_marks`` and ``LearningService.grade``, which
check the viewer again and refresh the learner's result in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.attendance.rules import STATUSES
from app.attendance.service import clock
from app.auth.dependencies import DbSession, ReadDbSession, Viewer, check_form_csrf, require_roles
from app.core.files import content_disposition
from app.core.http import small_form
from app.core.templating import render, request_locale
from app.dashboards.export import (
    FOLLOW_UP_STATUS,
    MARK_NAMES,
    cohort_csv,
    csv_filename,
    flag_text,
)
from app.dashboards.rules import FILTERS, FLAG_CODES, SORTS, RowQuery, row_query
from app.dashboards.service import DashboardService
from app.grading.endpoints import conflict_page, form_base
from app.identity.models import Role
from app.learning.rules import parse_grade
from app.learning.service import GradeChanged

router = APIRouter(prefix="/cohorts", include_in_schema=False)

Follower = Depends(require_roles(Role.TRAINER, Role.ADMIN))
Now = Depends(clock)
MARK_SYMBOLS = {"present": "✓", "late": "◐", "excused": "○", "absent": "✗"}


def _query(request: Request) -> RowQuery:
    p = request.query_params
    return row_query(p.get("sort"), p.get("flag"), p.get("q"), p.get("dir"))


def _form_query(form: FormData) -> RowQuery:
    def text(name: str) -> str | None:
        value = form.get(name)
        return value if isinstance(value, str) else None

    return row_query(text("sort"), text("flag"), text("q"), text("dir"))


def _url(cohort_id: int, query: RowQuery, **extra: object) -> str:
    params = query.params | {k: str(v) for k, v in extra.items() if v is not None}
    return f"/cohorts/{cohort_id}" + (f"?{urlencode(params)}" if params else "")


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 12 else None


@router.get("/{cohort_id}")
def cohort_page(
    cohort_id: int,
    request: Request,
    viewer: Viewer = Follower,
    db: Session = ReadDbSession,
    now: datetime = Now,
) -> Response:
    service = DashboardService(db)
    board = service.cohort(viewer, cohort_id, now)
    query = _query(request)
    opened_id = _int(request.query_params.get("open"))
    opened = service.learner(viewer, board, opened_id, now) if opened_id else None
    locale = request_locale(request)
    saved = request.query_params.get("saved")
    return render(
        request,
        "cohort_dashboard.html",
        {
            "viewer": viewer,
            "board": board,
            "rows": board.select(query),
            "query": query,
            "opened": opened,
            "saved": saved if saved in ("marks", "grade", "support") else None,
            "sorts": SORTS,
            "filters": FILTERS,
            "flag_codes": FLAG_CODES,
            "statuses": STATUSES,
            "mark_names": MARK_NAMES,
            "mark_symbols": MARK_SYMBOLS,
            "follow_up_status": FOLLOW_UP_STATUS,
            "flag_text": lambda flag: flag_text(flag, locale),
            "url": lambda **extra: _url(board.cohort.id, query, **extra),
            "sort_url": lambda key: _url(
                board.cohort.id,
                row_query(
                    key,
                    query.flag,
                    query.q,
                    # A second tap on the current sort reverses it.
                    ("asc" if query.descending else "desc") if key == query.sort else None,
                ),
            ),
            "csv_url": f"/cohorts/{board.cohort.id}/learners.csv"
            + (f"?{urlencode(query.params)}" if query.params else ""),
        },
    )


@router.get("/{cohort_id}/learners.csv")
def cohort_export(
    cohort_id: int,
    request: Request,
    viewer: Viewer = Follower,
    db: Session = ReadDbSession,
    now: datetime = Now,
) -> Response:
    board = DashboardService(db).cohort(viewer, cohort_id, now)
    body = cohort_csv(board.sessions, board.select(_query(request)), board.policy)
    name = csv_filename(board.cls.code, board.cohort.position)
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": content_disposition(name),
            "Cache-Control": "no-store",
        },
    )


@router.post("/{cohort_id}/learners/{enrolment_id}/attendance")
def mark_learner(
    cohort_id: int,
    enrolment_id: int,
    form: FormData = Depends(small_form),
    viewer: Viewer = Follower,
    db: Session = DbSession,
    now: datetime = Now,
) -> Response:
    """Set one learner's marks of the sessions chosen in the form (blank: left as it is)."""
    check_form_csrf(viewer, form)
    statuses: dict[int, str] = {}
    for key, value in form.multi_items():
        name, _sep, session_id = key.partition("-")
        if name == "status" and session_id.isdigit() and isinstance(value, str):
            statuses[int(session_id)] = value
    DashboardService(db).mark(viewer, cohort_id, enrolment_id, statuses, now)
    url = _url(cohort_id, _form_query(form), open=enrolment_id, saved="marks")
    return RedirectResponse(f"{url}#learner-{enrolment_id}", status_code=303)


@router.post("/{cohort_id}/submissions/{submission_id}/grade")
def grade_hand_in(
    cohort_id: int,
    submission_id: int,
    request: Request,
    form: FormData = Depends(small_form),
    viewer: Viewer = Follower,
    db: Session = DbSession,
    now: datetime = Now,
) -> Response:
    check_form_csrf(viewer, form)
    score, feedback = form.get("score"), form.get("feedback")
    query = _form_query(form)
    try:
        enrolment_id = DashboardService(db).grade(
            viewer,
            cohort_id,
            submission_id,
            parse_grade(score if isinstance(score, str) else ""),
            feedback if isinstance(feedback, str) else None,
            now,
            based_on=form_base(form),
        )
    except GradeChanged as conflict:
        opened = conflict.current.enrolment_id
        return conflict_page(
            request,
            viewer,
            conflict,
            action=f"/cohorts/{cohort_id}/submissions/{submission_id}/grade",
            back=_url(cohort_id, query, open=opened)
            + f"#item-{opened}-{conflict.current.item_key}",
            keep=dict(query.params),
        )
    url = _url(cohort_id, query, open=enrolment_id, saved="grade")
    return RedirectResponse(f"{url}#learner-{enrolment_id}", status_code=303)
