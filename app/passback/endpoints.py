"""Administrators watch the scores owed to the LMS: waiting, failed and dead letters, with a
retry button; and the same as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from app.audit.service import actor_of
from app.auth.api import ApiAdmin
from app.auth.dependencies import DbSession, ReadDbSession, Viewer, check_csrf, require_roles
from app.core.i18n import gettext
from app.core.templating import render, request_locale
from app.core.time import local, utcnow
from app.identity.models import Role
from app.passback.models import OutboxStatus, ScoreOutbox
from app.passback.repository import OutboxRepository
from app.passback.rules import REASONS, reason_code, split_error
from app.passback.service import OutboxService

pages = APIRouter(prefix="/admin/passback", include_in_schema=False)
api = APIRouter(prefix="/api/v1/passback", tags=["grades"])

WATCHED = [OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.FAILED, OutboxStatus.DEAD]


@dataclass(frozen=True)
class RowView:
    """One score as an administrator reads it: its state, the LMS's answer in plain words
    (``reason``, translated) with what the LMS itself said (``detail``), the next try."""

    row: ScoreOutbox
    state: str  # waiting | sending | failed | dead
    reason_code: str | None
    reason: str | None
    detail: str
    next_try: datetime | None


def view_of(row: ScoreOutbox, locale: str) -> RowView:
    code = reason_code(row.last_error, row.last_http_status)
    reason = None
    if code is not None:
        reason = gettext(locale, REASONS[code]) % {"status": row.last_http_status or "—"}
    state = {
        OutboxStatus.PENDING: "waiting",
        OutboxStatus.SENDING: "sending",
        OutboxStatus.FAILED: "failed",
        OutboxStatus.DEAD: "dead",
    }.get(OutboxStatus(row.status), str(row.status))
    return RowView(
        row=row,
        state=state,
        reason_code=code,
        reason=reason,
        detail=split_error(row.last_error)[1],
        next_try=row.next_attempt_at if row.status == OutboxStatus.PENDING else None,
    )


def row_out(row: ScoreOutbox, locale: str = "en") -> dict[str, Any]:
    view = view_of(row, locale)
    return {
        "id": row.id,
        "lms_user_id": row.lms_user_id,
        "status": row.status,
        "state": view.state,
        "attempts": row.attempts,
        "score": row.score,
        "timestamp": row.score_timestamp.isoformat(),
        "next_attempt_at": row.next_attempt_at.isoformat(),
        "next_try_at": view.next_try.isoformat() if view.next_try else None,
        "reason_code": view.reason_code,
        "reason": view.reason,
        "last_error": row.last_error,
        "last_http_status": row.last_http_status,
        "created_at": row.created_at.isoformat(),
    }


@pages.get("")
def outbox_page(
    request: Request,
    viewer: Viewer = Depends(require_roles(Role.ADMIN)),
    db: Session = ReadDbSession,
) -> Response:
    repo = OutboxRepository(db)
    return render(
        request,
        "admin_passback.html",
        {
            "viewer": viewer,
            "counts": repo.counts(viewer.deployment_id),
            "rows": [
                view_of(r, request_locale(request))
                for r in repo.listing(viewer.deployment_id, WATCHED)
            ],
            "local": local,
        },
    )


@pages.post("/{row_id}/retry")
def retry_page(
    row_id: int,
    csrf_token: str = Form(""),
    viewer: Viewer = Depends(require_roles(Role.ADMIN)),
    db: Session = DbSession,
) -> Response:
    check_csrf(viewer, csrf_token)
    OutboxService(db, actor_of(viewer)).retry(viewer.deployment_id, row_id, utcnow())
    return RedirectResponse("/admin/passback", status_code=303)


@api.get("", summary="Scores waiting for, or refused by, the LMS")
def list_outbox(
    request: Request,
    status: str | None = None,
    viewer: Viewer = ApiAdmin,
    db: Session = ReadDbSession,
) -> dict[str, Any]:
    """``state``: waiting, sending, failed (the LMS refused it) or dead (gave up after three
    days); ``reason``: the LMS's last answer in plain words (in the request's language), with
    ``last_error`` holding what it said; ``next_try_at``: when a waiting score is sent
    again."""
    repo = OutboxRepository(db)
    statuses = [status] if status else [s.value for s in WATCHED]
    locale = request_locale(request)
    return {
        "counts": repo.counts(viewer.deployment_id),
        "rows": [row_out(r, locale) for r in repo.listing(viewer.deployment_id, statuses)],
    }


@api.post("/{row_id}/retry", summary="Send a failed or dead score again now")
def retry(row_id: int, viewer: Viewer = ApiAdmin, db: Session = DbSession) -> dict[str, Any]:
    row = OutboxService(db, actor_of(viewer)).retry(viewer.deployment_id, row_id, utcnow())
    return {"id": row.id, "status": OutboxStatus.PENDING.value}
