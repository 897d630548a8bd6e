"""iCalendar feeds: one per class, one per learner, behind unguessable tokens so that a
calendar app can subscribe without signing in."""

from __future__ import annotations

import hashlib
from functools import partial
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.classes.models import TrainingClass
from app.classes.repository import ClassRepository
from app.classes.service import ClassService, stored_schedule
from app.core.errors import NotFound
from app.core.i18n import gettext
from app.core.state import get_context
from app.core.templating import request_locale
from app.schedule.ics import SessionSlot, build_calendar, schedule_events

router = APIRouter(prefix="/ical", tags=["calendar"])


def _slots(repo: ClassRepository, cls: TrainingClass) -> list[SessionSlot]:
    slots = []
    for row in repo.sessions(cls.id):
        place = ", ".join(p for p in (row.room, row.venue) if p) or None
        slots.append(
            SessionSlot(date=row.date, part=row.part, place=place, virtual_url=row.virtual_url)  # type: ignore[arg-type]
        )
    return slots


def _feed(request: Request, body: bytes) -> Response:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={
            "ETag": etag,
            "Cache-Control": "private, max-age=300",
            "Content-Disposition": 'inline; filename="blend727.ics"',
        },
    )


def _uid_prefix(request: Request, kind: str, ident: int) -> str:
    host = urlsplit(get_context(request).settings.public_base_url).netloc or "blend727"
    return f"blend727-{kind}-{ident}@{host}"


@router.get("/class/{token}.ics", summary="A class's schedule as an iCalendar feed")
def class_feed(token: str, request: Request) -> Response:
    if len(token) > 64:
        raise NotFound()
    ctx = get_context(request)
    locale = request_locale(request)
    with ctx.database.session(readonly=True) as db:
        repo = ClassRepository(db)
        cls = repo.class_by_ical_token(token)
        if cls is None:
            raise NotFound()
        events = schedule_events(
            stored_schedule(cls),
            class_name=cls.name,
            uid_prefix=_uid_prefix(request, "class", cls.id),
            sessions=_slots(repo, cls),
            translate=partial(gettext, locale),
        )
        body = build_calendar(cls.name, events, stamp=cls.updated_at)
    return _feed(request, body)


@router.get("/learner/{token}.ics", summary="One learner's own dates as an iCalendar feed")
def learner_feed(token: str, request: Request) -> Response:
    if len(token) > 64:
        raise NotFound()
    ctx = get_context(request)
    locale = request_locale(request)
    with ctx.database.session(readonly=True) as db:
        repo = ClassRepository(db)
        enrolment = repo.enrolment_by_ical_token(token)
        if enrolment is None or enrolment.status != "active":
            raise NotFound()
        service = ClassService(db)
        cls = db.get(TrainingClass, enrolment.class_id)
        assert cls is not None
        events = schedule_events(
            service.learner_schedule(cls, enrolment),
            class_name=cls.name,
            uid_prefix=_uid_prefix(request, "enrolment", enrolment.id),
            sessions=_slots(repo, cls),
            translate=partial(gettext, locale),
        )
        body = build_calendar(cls.name, events, stamp=cls.updated_at)
    return _feed(request, body)
