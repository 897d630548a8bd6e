"""The audit log for administrators: a page, its CSV export and a JSON API. Thin: read the
filters, call ``AuditService``, render.

* ``GET /admin/audit`` — newest first, filters (dates, actor, action, object, class), keyset
  pages ("older" follows ``cursor``);
* ``GET /admin/audit/export.csv`` — every event the filters select, streamed (the export is
  itself logged: ``audit.export``, with the filters);
* ``GET /api/v1/audit`` — the same as JSON (problem+json on a filter that is not valid).

An administrator sees the events of their own platform only; everyone else gets 403.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from app.audit.export import csv_filename, csv_lines
from app.audit.models import AuditEvent
from app.audit.rules import AuditQuery, parse_query
from app.audit.service import AuditService
from app.audit.text import ACTION_GROUPS, OBJECTS, actor_text, describe
from app.auth.api import ApiAdmin
from app.auth.dependencies import ReadDbSession, Viewer, require_roles
from app.classes.repository import ClassRepository
from app.core.errors import ValidationFailed
from app.core.i18n import get_translations
from app.core.state import get_context
from app.core.templating import render, request_locale
from app.core.time import local, utcnow
from app.identity.models import Role

pages = APIRouter(prefix="/admin/audit", include_in_schema=False)
api = APIRouter(prefix="/api/v1/audit", tags=["audit"])

AdminOnly = Depends(require_roles(Role.ADMIN))


def N_(message: str) -> str:
    """Marks an English message id for extraction; translated where it is shown."""
    return message


#: Labels of the filters, for a message that names one (``%(field)s``).
FILTER_LABELS = {
    "from": N_("From"),
    "to": N_("To"),
    "actor": N_("Done by"),
    "action": N_("Action"),
    "object_type": N_("Object type"),
    "object_id": N_("Object id"),
    "class_id": N_("Class"),
    "cursor": N_("Page"),
    "limit": N_("Page"),
}


def _params(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items()}


def event_out(event: AuditEvent, locale: str) -> dict[str, Any]:
    return {
        "id": event.id,
        "occurred_at": event.occurred_at.isoformat(),
        "actor": {
            "user_id": event.actor_user_id,
            "label": actor_text(event.actor_label, event.actor_user_id, locale),
        },
        "action": event.action,
        "object": {"type": event.object_type, "id": event.object_id, "label": event.object_label},
        "class_id": event.class_id,
        "deployment_id": event.deployment_id,
        "before": event.before,
        "after": event.after,
        "reason": event.reason,
        "request_id": event.request_id,
        "text": describe(event, locale),
    }


@pages.get("")
def audit_page(
    request: Request, viewer: Viewer = AdminOnly, db: Session = ReadDbSession
) -> Response:
    locale = request_locale(request)
    raw = _params(request)
    error: str | None = None
    status = 200
    try:
        query = parse_query(raw)
    except ValidationFailed as exc:
        translations = get_translations(locale)
        params = dict(exc.params)
        label = FILTER_LABELS.get(str(params.get("field")))
        if label:
            params["field"] = translations.gettext(label)
        error = translations.gettext(exc.detail) % params
        query, status = AuditQuery(), 422
    found = AuditService(db).search(viewer, query) if error is None else None
    filters = query.params()
    rows = [
        {
            "at": local(e.occurred_at),
            "actor": actor_text(e.actor_label, e.actor_user_id, locale),
            "text": describe(e, locale),
            "action": e.action,
            "request_id": e.request_id,
        }
        for e in (found.events if found else [])
    ]
    return render(
        request,
        "admin_audit.html",
        {
            "viewer": viewer,
            "active": "audit",
            "rows": rows,
            "form": raw,
            "error": error,
            "action_groups": ACTION_GROUPS,
            "object_types": OBJECTS,
            "classes": ClassRepository(db).classes(viewer.deployment_id, None),
            "older": (
                "/admin/audit?" + urlencode({**filters, "cursor": found.next_cursor})
                if found and found.next_cursor
                else None
            ),
            "paged": query.cursor is not None,
            "newest": "/admin/audit?" + urlencode(filters) if filters else "/admin/audit",
            "csv": "/admin/audit/export.csv" + ("?" + urlencode(filters) if filters else ""),
        },
        status_code=status,
    )


@pages.get("/export.csv")
def audit_csv(request: Request, viewer: Viewer = AdminOnly) -> Response:
    """Every event the filters select, streamed a batch at a time from a read-only session
    of its own (the request's session is closed once the response starts). The export is
    logged first (``audit.export``, committed before the first byte) and holds the events
    logged before it."""
    query = parse_query(_params(request))  # refused before the first byte (and the log)
    database = get_context(request).database
    with database.session() as db:
        export_id = AuditService(db).export(viewer, query)

    def body() -> Iterator[bytes]:
        with database.session(readonly=True) as db:
            for chunk in csv_lines(AuditService(db).each(viewer, query, export_id)):
                yield chunk.encode("utf-8")

    name = csv_filename(local(utcnow()).date())
    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@api.get("", summary="The audit log of this LMS, newest first (keyset pages)")
def list_events(
    request: Request, viewer: Viewer = ApiAdmin, db: Session = ReadDbSession
) -> dict[str, Any]:
    """Filters: ``from``/``to`` (dates, Vietnam's days, both included), ``actor`` (part of
    the name), ``action`` (a code such as ``grade.set`` or a group such as ``class``),
    ``object_type``, ``object_id``, ``class_id``; ``limit`` (1–200, 50 by default);
    ``cursor``: the ``next_cursor`` of the previous page. A filter that is not valid is
    refused with 422 (problem+json) naming it."""
    query = parse_query(_params(request))
    found = AuditService(db).search(viewer, query)
    locale = request_locale(request)
    return {
        "events": [event_out(e, locale) for e in found.events],
        "next_cursor": found.next_cursor,
    }


__all__ = ["api", "pages"]
