"""Administrators watch the scores owed to the LMS: waiting, failed and dead letters, with a
retry button; and the same as JSON."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from app.auth.api import ApiAdmin
from app.auth.dependencies import DbSession, ReadDbSession, Viewer, check_csrf, require_roles
from app.core.errors import NotFound
from app.core.templating import render
from app.core.time import utcnow
from app.identity.models import Role
from app.passback.models import OutboxStatus, ScoreOutbox
from app.passback.repository import OutboxRepository

pages = APIRouter(prefix="/admin/passback", include_in_schema=False)
api = APIRouter(prefix="/api/v1/passback", tags=["grades"])

WATCHED = [OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.FAILED, OutboxStatus.DEAD]


def row_out(row: ScoreOutbox) -> dict[str, Any]:
    return {
        "id": row.id,
        "lms_user_id": row.lms_user_id,
        "status": row.status,
        "attempts": row.attempts,
        "score": row.score,
        "timestamp": row.score_timestamp.isoformat(),
        "next_attempt_at": row.next_attempt_at.isoformat(),
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
            "rows": repo.listing(viewer.deployment_id, WATCHED),
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
    if not OutboxRepository(db).retry_now(viewer.deployment_id, row_id, utcnow()):
        raise NotFound()
    return RedirectResponse("/admin/passback", status_code=303)


@api.get("", summary="Scores waiting for, or refused by, the LMS")
def list_outbox(
    status: str | None = None, viewer: Viewer = ApiAdmin, db: Session = ReadDbSession
) -> dict[str, Any]:
    repo = OutboxRepository(db)
    statuses = [status] if status else [s.value for s in WATCHED]
    return {
        "counts": repo.counts(viewer.deployment_id),
        "rows": [row_out(r) for r in repo.listing(viewer.deployment_id, statuses)],
    }


@api.post("/{row_id}/retry", summary="Send a failed or dead score again now")
def retry(row_id: int, viewer: Viewer = ApiAdmin, db: Session = DbSession) -> dict[str, Any]:
    if not OutboxRepository(db).retry_now(viewer.deployment_id, row_id, utcnow()):
        raise NotFound()
    return {"id": row_id, "status": OutboxStatus.PENDING.value}
