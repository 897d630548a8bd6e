"""iCalendar (RFC 5545) feeds of a class's or a learner's schedule.

Teachers subscribe to the feed's address in Google Calendar, Outlook or their phone, so the
feed must behave well when fetched again and again:

* every event has a UID that depends only on its place in the schedule (``class-42``'s
  "in-person day 1, morning"), never on its date, so a session that moves is updated in the
  subscribed calendar instead of appearing twice;
* online phases are all-day events (``VALUE=DATE``; RFC 5545 makes ``DTEND`` exclusive, so a
  phase ending on the 7th has ``DTEND`` on the 8th) and marked free (``TRANSP:TRANSPARENT``):
  teachers still teach during them; in-person time is marked busy;
* in-person sessions are timed, in Asia/Ho_Chi_Minh with a ``VTIMEZONE``, so a calendar
  app anywhere shows 07:30 as 07:30 Vietnam time;
* ``METHOD:PUBLISH``, ``X-WR-CALNAME``/``NAME`` and a refresh hint of six hours.

``build_calendar`` is the only function that knows iCalendar; ``schedule_events`` turns a
``Schedule`` into plain ``CalendarEvent`` values. Output is byte-for-byte the same for the
same input and ``stamp``, so an endpoint can send an ETag.

Event titles are English message ids (``MESSAGES``) filled through the ``translate``
callable the caller passes, e.g. ``functools.partial(app.core.i18n.gettext, "vi")``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal, Protocol

from icalendar import Calendar, Event, Timezone, TimezoneStandard, vDuration

from app.core.time import VN_TZ, as_utc, utcnow
from app.schedule.rules import Schedule

__all__ = [
    "MESSAGES",
    "PRODID",
    "SESSION_TIMES",
    "CalendarEvent",
    "SessionSlot",
    "build_calendar",
    "schedule_events",
]

PRODID = "-//blend727//7-2-7 schedule feed//EN"
TZID = "Asia/Ho_Chi_Minh"
# How often subscribed calendars should fetch the feed again (RFC 7986 and Outlook's hint).
REFRESH = timedelta(hours=6)

Part = Literal["morning", "afternoon"]
SESSION_TIMES: dict[str, tuple[time, time]] = {
    "morning": (time(7, 30), time(11, 30)),
    "afternoon": (time(13, 30), time(17, 0)),
}
"""Local (Vietnam) start and end of each half-day in-person session."""

MESSAGES: dict[str, str] = {
    "self_study": "Self-study (online): %(class_name)s",
    "in_person_day": "In-person day %(day)s: %(class_name)s",
    "morning": "In-person day %(day)s, morning: %(class_name)s",
    "afternoon": "In-person day %(day)s, afternoon: %(class_name)s",
    "follow_up": "Follow-up (online): %(class_name)s",
    "online_meeting": "Online meeting: %(url)s",
}
"""English message ids of the event texts (for the translation catalogue)."""


class Translate(Protocol):
    """Looks up a message id and fills its ``%(name)s`` placeholders."""

    def __call__(self, message: str, /, **params: object) -> str: ...


def _english(message: str, /, **params: object) -> str:
    return message % params if params else message


@dataclass(frozen=True)
class CalendarEvent:
    """One event of a feed.

    All-day when ``start`` and ``end`` are dates: ``end`` is then the event's last day
    (inclusive, like the schedule's ranges; ``build_calendar`` writes the exclusive DTEND).
    Timed when both are timezone-aware datetimes: ``end`` is the moment it ends.
    ``busy`` marks the time as taken in the subscriber's calendar (TRANSP:OPAQUE): true for
    in-person training, false for online phases that fit around a teacher's work.
    """

    uid: str
    title: str
    start: date | datetime
    end: date | datetime
    description: str | None = None
    location: str | None = None
    url: str | None = None
    busy: bool = False

    def __post_init__(self) -> None:
        if not self.uid:
            raise ValueError("an event needs a UID")
        start, end = self.start, self.end
        if isinstance(start, datetime) and isinstance(end, datetime):
            if start.tzinfo is None or end.tzinfo is None:
                raise ValueError("timed events need timezone-aware datetimes")
            if end <= start:
                raise ValueError(f"event {self.uid} ends before it starts")
        elif isinstance(start, datetime) or isinstance(end, datetime):
            raise ValueError("start and end must both be dates or both be datetimes")
        elif end < start:
            raise ValueError(f"event {self.uid} ends before it starts")

    @property
    def all_day(self) -> bool:
        return not isinstance(self.start, datetime)


@dataclass(frozen=True)
class SessionSlot:
    """A half day of in-person training, with where it happens."""

    date: date
    part: Part
    place: str | None = None
    virtual_url: str | None = None

    def __post_init__(self) -> None:
        if self.part not in SESSION_TIMES:
            raise ValueError(f"part must be 'morning' or 'afternoon', not {self.part!r}")


def schedule_events(
    schedule: Schedule,
    *,
    class_name: str,
    uid_prefix: str,
    sessions: Sequence[SessionSlot] = (),
    url: str | None = None,
    translate: Translate = _english,
) -> list[CalendarEvent]:
    """The events of one schedule, in date order.

    ``uid_prefix`` must be unique to the feed's owner across every blend727 installation
    (e.g. ``blend727-<host>-class-42`` or ``…-enrolment-7``); each UID adds the event's role
    to it. A session slot gives a timed event; an in-person day without slots gets an
    all-day event, so it is never missing. Slots on days that are not in-person days of
    ``schedule`` are ignored, so a learner's feed can be given the class's sessions.
    ``url`` (e.g. the class page) is attached to the online phases.
    """
    events: list[CalendarEvent] = []
    if schedule.self_study_start and schedule.self_study_end:
        events.append(
            CalendarEvent(
                uid=f"{uid_prefix}-self-study",
                title=translate(MESSAGES["self_study"], class_name=class_name),
                start=schedule.self_study_start,
                end=schedule.self_study_end,
                url=url,
            )
        )
    slots: dict[tuple[date, str], SessionSlot] = {}
    for slot in sessions:
        if (slot.date, slot.part) in slots:
            raise ValueError(f"two sessions on the {slot.part} of {slot.date}")
        slots[(slot.date, slot.part)] = slot
    for number, day in enumerate(schedule.in_person_dates, start=1):
        day_slots = [slots[(day, part)] for part in SESSION_TIMES if (day, part) in slots]
        if not day_slots:
            events.append(
                CalendarEvent(
                    uid=f"{uid_prefix}-in-person-{number}",
                    title=translate(MESSAGES["in_person_day"], day=number, class_name=class_name),
                    start=day,
                    end=day,
                    busy=True,
                )
            )
        for slot in day_slots:
            begins, ends = SESSION_TIMES[slot.part]
            events.append(
                CalendarEvent(
                    uid=f"{uid_prefix}-in-person-{number}-{slot.part}",
                    title=translate(MESSAGES[slot.part], day=number, class_name=class_name),
                    start=datetime.combine(day, begins, tzinfo=VN_TZ),
                    end=datetime.combine(day, ends, tzinfo=VN_TZ),
                    description=(
                        translate(MESSAGES["online_meeting"], url=slot.virtual_url)
                        if slot.virtual_url
                        else None
                    ),
                    location=slot.place or slot.virtual_url,
                    url=slot.virtual_url,
                    busy=True,
                )
            )
    if schedule.follow_up_start and schedule.follow_up_end:
        events.append(
            CalendarEvent(
                uid=f"{uid_prefix}-follow-up",
                title=translate(MESSAGES["follow_up"], class_name=class_name),
                start=schedule.follow_up_start,
                end=schedule.follow_up_end,
                url=url,
            )
        )
    return events


def _vietnam_timezone() -> Timezone:
    """Asia/Ho_Chi_Minh as a VTIMEZONE: UTC+7 without daylight saving since 13 June 1975.

    Written by hand rather than generated from the tz database so that the feed does not
    change with the installed tzdata version (and stays short).
    """
    zone = Timezone()
    zone.add("tzid", TZID)
    zone.add("x-lic-location", TZID)
    standard = TimezoneStandard()
    standard.add("dtstart", datetime(1975, 6, 13))
    standard.add("tzoffsetfrom", timedelta(hours=7))
    standard.add("tzoffsetto", timedelta(hours=7))
    standard.add("tzname", "+07")
    zone.add_component(standard)
    return zone


def _event(item: CalendarEvent, stamp: datetime) -> Event:
    event = Event()
    event.add("uid", item.uid)
    event.add("dtstamp", stamp)
    if item.all_day:
        event.add("dtstart", item.start)
        event.add("dtend", item.end + timedelta(days=1))  # exclusive (RFC 5545 §3.6.1)
    else:
        assert isinstance(item.start, datetime) and isinstance(item.end, datetime)
        event.add("dtstart", item.start.astimezone(VN_TZ))
        event.add("dtend", item.end.astimezone(VN_TZ))
    event.add("transp", "OPAQUE" if item.busy else "TRANSPARENT")
    event.add("summary", item.title)
    if item.description:
        event.add("description", item.description)
    if item.location:
        event.add("location", item.location)
    if item.url:
        event.add("url", item.url)
    return event


def build_calendar(
    name: str, events: Iterable[CalendarEvent], *, stamp: datetime | None = None
) -> bytes:
    """The feed ``name`` with ``events``, as iCalendar bytes (CRLF lines, UTF-8).

    ``stamp`` is written as every event's DTSTAMP (in UTC, as RFC 5545 requires). Pass when
    the schedule last changed (e.g. the class's ``updated_at``) so that unchanged data gives
    identical bytes; the default is now. Timed events are written in Vietnam time whatever
    zone they came in, so the feed needs one VTIMEZONE only.
    """
    stamp = as_utc(stamp or utcnow())
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("name", name)
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", TZID)
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH).to_ical().decode())

    items = list(events)
    uids = [item.uid for item in items]
    if len(set(uids)) != len(uids):
        duplicates = sorted({uid for uid in uids if uids.count(uid) > 1})
        raise ValueError(f"duplicate event UIDs {duplicates}")
    if any(not item.all_day for item in items):
        calendar.add_component(_vietnam_timezone())
    for item in items:
        calendar.add_component(_event(item, stamp))
    return calendar.to_ical()
