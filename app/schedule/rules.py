"""The 7-2-7 dates of a class and of one learner: plain functions over plain data.

A training module runs in three phases: self-study on the LMS, in-person days, then
follow-up work on the LMS. The usual plan is 7-2-7 (seven calendar days, two in-person
working days, seven calendar days), but provinces also run e.g. 5-3-5 or 0-2-7.

The in-person days are the anchor. They need a room, trainers and teachers released from
school, so they must be working days; the online phases are calendar days, because teachers
study in the evenings and at weekends too. Self-study is the ``self_study_days`` days just
before the first in-person day, follow-up the ``follow_up_days`` days just after the last
one, so each online phase always has exactly its planned length whatever the calendar does.
In-person days need not be consecutive (a class may meet on Friday and Monday); the days
between them belong to no phase.

Errors name the field and the date at fault. Their messages are English message ids with
``%(name)s`` placeholders filled from ``params`` after translation (docs/conventions.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from app.core.errors import ValidationFailed
from app.schedule.calendar import HolidayCalendar

__all__ = [
    "PHASES",
    "Phase",
    "PhasePlan",
    "Schedule",
    "ScheduleError",
    "schedule_from_in_person",
    "schedule_from_start",
    "shift_schedule",
]

Phase = Literal["self_study", "in_person", "follow_up"]
PHASES: tuple[Phase, ...] = ("self_study", "in_person", "follow_up")

# A phase longer than a year is a typing mistake, and would make the searches below slow.
MAX_PHASE_DAYS = 366


class ScheduleError(ValidationFailed):
    """Dates or a plan that the rules refuse (HTTP 422 when it reaches a route).

    ``code`` is a stable machine name (``in_person_weekend``, ``in_person_holiday``,
    ``in_person_duplicate``, ``in_person_count``, ``shift_earlier``, ``plan_invalid``);
    ``field`` names the input at fault so a form can mark it; ``message`` is an English
    message id, filled from ``params`` (which always include ``field`` and, for a bad date,
    ``date``).

    No ``title``/``detail`` class attributes on purpose: the inherited title is already
    translated, and the messages are passed per instance.
    """

    def __init__(
        self,
        code: str,
        message: str,
        field: str,
        *,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, params={"field": field, **(params or {})})
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.code} ({self.field}): {self.message % self.params}"


@dataclass(frozen=True)
class PhasePlan:
    """How many days each phase has: calendar days online, working days in person."""

    self_study_days: int = 7
    in_person_days: int = 2
    follow_up_days: int = 7

    def __post_init__(self) -> None:
        for name, minimum in (
            ("self_study_days", 0),
            ("in_person_days", 1),
            ("follow_up_days", 0),
        ):
            value = getattr(self, name)
            # bool is an int in Python, and True days is surely a mistake.
            if not isinstance(value, int) or isinstance(value, bool):
                raise ScheduleError(
                    "plan_invalid", "The number of days must be a whole number.", name
                )
            if not minimum <= value <= MAX_PHASE_DAYS:
                raise ScheduleError(
                    "plan_invalid",
                    "The number of days must be between %(minimum)s and %(maximum)s.",
                    name,
                    params={"minimum": minimum, "maximum": MAX_PHASE_DAYS, "value": value},
                )

    def __str__(self) -> str:
        return f"{self.self_study_days}-{self.in_person_days}-{self.follow_up_days}"

    def to_dict(self) -> dict[str, int]:
        """JSON-ready, for a ``plan`` column."""
        return {
            "self_study_days": self.self_study_days,
            "in_person_days": self.in_person_days,
            "follow_up_days": self.follow_up_days,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PhasePlan:
        """The inverse of ``to_dict``; missing keys take the 7-2-7 defaults."""
        return cls(
            **{
                k: data[k]
                for k in ("self_study_days", "in_person_days", "follow_up_days")
                if k in data
            }
        )


@dataclass(frozen=True)
class Schedule:
    """The dates of one class or one learner. Ranges are inclusive; a phase with no days
    has ``None`` for both ends."""

    self_study_start: date | None
    self_study_end: date | None
    in_person_dates: tuple[date, ...]
    follow_up_start: date | None
    follow_up_end: date | None

    def __post_init__(self) -> None:
        # A Schedule is only ever built by the functions below or read back from storage;
        # an inconsistent one is a bug, so these are plain ValueErrors.
        if not self.in_person_dates:
            raise ValueError("a schedule has at least one in-person day")
        if list(self.in_person_dates) != sorted(set(self.in_person_dates)):
            raise ValueError("in-person dates must be distinct and in order")
        for start, end in (
            (self.self_study_start, self.self_study_end),
            (self.follow_up_start, self.follow_up_end),
        ):
            if (start is None) != (end is None) or (start and end and start > end):
                raise ValueError(f"bad phase range {start}–{end}")
        if self.self_study_end is not None and self.self_study_end >= self.in_person_dates[0]:
            raise ValueError("self-study must end before the first in-person day")
        if self.follow_up_start is not None and self.follow_up_start <= self.in_person_dates[-1]:
            raise ValueError("follow-up must start after the last in-person day")

    @property
    def start(self) -> date:
        """The first day of the first phase."""
        return self.self_study_start or self.in_person_dates[0]

    @property
    def end(self) -> date:
        """The last day of the last phase."""
        return self.follow_up_end or self.in_person_dates[-1]

    def phase_on(self, d: date) -> Phase | None:
        """The phase ``d`` belongs to; None before, after, or between in-person days."""
        if d in self.in_person_dates:
            return "in_person"
        online: tuple[tuple[Phase, date | None, date | None], ...] = (
            ("self_study", self.self_study_start, self.self_study_end),
            ("follow_up", self.follow_up_start, self.follow_up_end),
        )
        for phase, start, end in online:
            if start is not None and end is not None and start <= d <= end:
                return phase
        return None

    def days_in_phase(self, phase: Phase) -> tuple[date, ...]:
        """Every date of ``phase``, in order (its length is the phase's number of days)."""
        if phase == "in_person":
            return self.in_person_dates
        if phase == "self_study":
            return _days(self.self_study_start, self.self_study_end)
        if phase == "follow_up":
            return _days(self.follow_up_start, self.follow_up_end)
        raise ValueError(f"unknown phase {phase!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (ISO dates), for the schedule columns or a learner's ``own_schedule``."""
        return {
            "self_study_start": _iso(self.self_study_start),
            "self_study_end": _iso(self.self_study_end),
            "in_person_dates": [d.isoformat() for d in self.in_person_dates],
            "follow_up_start": _iso(self.follow_up_start),
            "follow_up_end": _iso(self.follow_up_end),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schedule:
        """The inverse of ``to_dict``."""
        return cls(
            self_study_start=_from_iso(data.get("self_study_start")),
            self_study_end=_from_iso(data.get("self_study_end")),
            in_person_dates=tuple(date.fromisoformat(d) for d in data["in_person_dates"]),
            follow_up_start=_from_iso(data.get("follow_up_start")),
            follow_up_end=_from_iso(data.get("follow_up_end")),
        )


def _days(start: date | None, end: date | None) -> tuple[date, ...]:
    if start is None or end is None:
        return ()
    return tuple(start + timedelta(days=n) for n in range((end - start).days + 1))


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _from_iso(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


# -- building a schedule -------------------------------------------------------------------


def _around(in_person: Sequence[date], plan: PhasePlan) -> Schedule:
    """Self-study just before the first in-person day, follow-up just after the last."""
    first, last = in_person[0], in_person[-1]
    self_study = (
        (first - timedelta(days=plan.self_study_days), first - timedelta(days=1))
        if plan.self_study_days
        else (None, None)
    )
    follow_up = (
        (last + timedelta(days=1), last + timedelta(days=plan.follow_up_days))
        if plan.follow_up_days
        else (None, None)
    )
    return Schedule(
        self_study_start=self_study[0],
        self_study_end=self_study[1],
        in_person_dates=tuple(in_person),
        follow_up_start=follow_up[0],
        follow_up_end=follow_up[1],
    )


def _check_in_person(
    dates: Iterable[date], plan: PhasePlan, calendar: HolidayCalendar, field: str
) -> list[date]:
    """The in-person dates in order, or the first reason they cannot be used."""
    given = list(dates)
    seen: set[date] = set()
    for d in given:
        params: dict[str, Any] = {"date": d.isoformat(), "weekday": d.isoweekday()}
        if d in seen:
            raise ScheduleError(
                "in_person_duplicate",
                "%(date)s is given more than once as an in-person day.",
                field,
                params=params,
            )
        seen.add(d)
        holiday = calendar.holiday(d)
        if holiday is not None:
            raise ScheduleError(
                "in_person_holiday",
                "%(date)s is a public holiday (%(holiday)s); in-person days must be working days.",
                field,
                params={**params, "holiday": holiday.name_vi, "holiday_en": holiday.name_en},
            )
        if calendar.is_weekend(d):
            raise ScheduleError(
                "in_person_weekend",
                "%(date)s falls on a weekend; in-person days must be working days.",
                field,
                params=params,
            )
    if len(given) != plan.in_person_days:
        raise ScheduleError(
            "in_person_count",
            "The plan has %(expected)s in-person days, but %(given)s dates were given.",
            field,
            params={"expected": plan.in_person_days, "given": len(given)},
        )
    return sorted(given)


def schedule_from_in_person(
    dates: Iterable[date], plan: PhasePlan, calendar: HolidayCalendar
) -> Schedule:
    """The schedule around in-person days an administrator chose.

    The dates must be exactly ``plan.in_person_days`` distinct working days, in any order
    and not necessarily consecutive.
    """
    in_person = _check_in_person(dates, plan, calendar, "in_person_dates")
    return _around(in_person, plan)


def schedule_from_start(start: date, plan: PhasePlan, calendar: HolidayCalendar) -> Schedule:
    """The earliest schedule whose self-study starts no earlier than ``start``.

    The first in-person day is the first working day once the full self-study fits, then
    the next consecutive working days. If holidays push the in-person days later, the
    self-study moves with them rather than growing: it always has its planned length and
    ends the day before the first in-person day.
    """
    first = calendar.next_working_day(start + timedelta(days=plan.self_study_days))
    return _around(calendar.working_days_from(first, plan.in_person_days), plan)


def shift_schedule(
    class_schedule: Schedule,
    *,
    new_in_person_dates: Iterable[date] | None = None,
    delay_days: int | None = None,
    calendar: HolidayCalendar,
    plan: PhasePlan,
) -> Schedule:
    """One learner's own dates (sick leave, late enrolment), never earlier than the class's.

    Give exactly one of:

    * ``new_in_person_dates`` — the in-person days the learner will attend instead (e.g.
      with another class), checked like the class's own;
    * ``delay_days`` — move the learner's dates that many days later. Each in-person day
      moves by the delay and then, if needed, on to the next working day (keeping the days
      distinct and in order), so the class's pattern is kept where the calendar allows.

    The online phases follow the new in-person days with their planned lengths. "Not
    earlier" means no phase boundary of the learner's comes before the class's: the first
    and the last in-person day, the start and the end are each on or after the class's.
    """
    if (new_in_person_dates is None) == (delay_days is None):
        raise ValueError("give exactly one of new_in_person_dates and delay_days")
    if delay_days is not None:
        field = "delay_days"
        if delay_days < 0:
            raise ScheduleError(
                "shift_earlier",
                "A learner's dates can only move later than the class's, not %(delay)s days "
                "earlier.",
                field,
                params={"delay": -delay_days},
            )
        in_person: list[date] = []
        for d in class_schedule.in_person_dates:
            candidate = d + timedelta(days=delay_days)
            if in_person and candidate <= in_person[-1]:
                candidate = in_person[-1] + timedelta(days=1)
            in_person.append(calendar.next_working_day(candidate))
        in_person = _check_in_person(in_person, plan, calendar, field)
    else:
        assert new_in_person_dates is not None  # for mypy; checked above
        field = "new_in_person_dates"
        in_person = _check_in_person(new_in_person_dates, plan, calendar, field)

    shifted = _around(in_person, plan)
    for mine, theirs in (
        (shifted.start, class_schedule.start),
        (shifted.in_person_dates[0], class_schedule.in_person_dates[0]),
        (shifted.in_person_dates[-1], class_schedule.in_person_dates[-1]),
        (shifted.end, class_schedule.end),
    ):
        if mine < theirs:
            raise ScheduleError(
                "shift_earlier",
                "%(date)s is earlier than the class's %(class_date)s; a learner's dates can "
                "only move later.",
                field,
                params={"date": mine.isoformat(), "class_date": theirs.isoformat()},
            )
    return shifted
