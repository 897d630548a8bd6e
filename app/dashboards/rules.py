"""Dashboard rules: plain functions over plain data (no database, no HTTP).

Where a learner stands
    :func:`position` places a day in the learner's own schedule (before it, day *n* of a
    phase, between two in-person days, after it); :func:`due` lists the learner's overdue
    items and the next one due; :func:`attendance_progress` is the in-person phase's share of
    sessions attended (present or late).

At-risk flags (:func:`at_risk`)
    A core trainer with 50 learners and little time sees who needs a word, and why. A learner
    may carry several flags; each names its reason as an English message id with ``params``
    (dates are :class:`datetime.date`, scores :class:`decimal.Decimal`: the page formats them
    for its language).

    * ``not_started`` — no self-study item done once the learner's **own** self-study has
      reached day :data:`NOT_STARTED_DAY` (the phase's last day when it is shorter): raised
      from the morning of that day, so the trainer can still nudge the same day. A shifted
      learner is judged on their own dates. A module with no self-study items in blend727
      gives no flag: there is nothing to see.
    * ``missed_session`` — marked absent at an in-person session, one flag per session.
      Excused absences were agreed with the trainer and are not flagged; a session not marked
      yet is the trainer's own to-do, not the learner's risk.
    * ``follow_up_overdue`` — a required follow-up item not done after the end of its due day
      (Vietnam time), one flag per item.
    * ``below_pass`` — the result is below the pass line: every assessed component has a
      score and at least one is below the pass mark (``not_complete``), or a trainer set such
      a result. One flag per component below the pass mark, with its score.

Sorting and filtering (:func:`select_rows`)
    Done on the server from query parameters (``?sort=progress&flag=at_risk&q=…``), so the
    cohort page works without JavaScript. Unknown values fall back to the defaults.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from app.attendance.rules import ATTENDED
from app.grading.rules import INCOMPLETE, MESSAGES, GradePolicy
from app.learning.rules import Item, PhaseProgress, overdue
from app.schedule.rules import Phase, Schedule


def _(message: str) -> str:
    """Marks an English message id for extraction; translated when it is shown."""
    return message


#: The day of their own self-study by which a learner should have started.
NOT_STARTED_DAY = 3

FLAG_CODES: tuple[str, ...] = ("not_started", "missed_session", "follow_up_overdue", "below_pass")

NOT_STARTED = _("Has not started self-study by day %(day)s (%(date)s)")
ABSENT = {
    "morning": _("Absent from the morning session of %(date)s"),
    "afternoon": _("Absent from the afternoon session of %(date)s"),
}
FOLLOW_UP_OVERDUE = _("“%(item)s” was due on %(date)s and is not done")
SET_BELOW_PASS = _("A trainer set the result below the pass line")


@dataclass(frozen=True)
class Flag:
    """One reason to worry about a learner: ``message`` is an English message id."""

    code: str
    message: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionMark:
    """A learner's mark at one session of their class (``None``: not marked)."""

    day: date
    part: str
    status: str | None


@dataclass(frozen=True)
class ResultFacts:
    """The stored module result, as the rules need it."""

    classification: str = INCOMPLETE
    final: bool = False
    score: Decimal | None = None
    self_study: Decimal | None = None
    attendance: Decimal | None = None
    follow_up: Decimal | None = None
    overridden: bool = False

    def component(self, name: str) -> Decimal | None:
        value: Decimal | None = getattr(self, name)
        return value


# -- where a learner stands ------------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    """Where ``today`` falls in a schedule.

    ``state``: ``before`` the first phase, ``in_phase`` (day ``day`` of ``days`` of
    ``phase``), ``between`` two in-person days, or ``after`` the last phase. ``next_phase``
    and ``next_on`` say what comes next (``before`` and ``between``).
    """

    state: Literal["before", "in_phase", "between", "after"]
    phase: Phase | None = None
    day: int = 0
    days: int = 0
    next_phase: Phase | None = None
    next_on: date | None = None
    days_to_next: int = 0


def position(schedule: Schedule, today: date) -> Position:
    phase = schedule.phase_on(today)
    if phase is not None:
        days = schedule.days_in_phase(phase)
        return Position("in_phase", phase, days.index(today) + 1, len(days))
    if today < schedule.start:
        first: Phase = "self_study" if schedule.self_study_start else "in_person"
        return Position(
            "before",
            next_phase=first,
            next_on=schedule.start,
            days_to_next=(schedule.start - today).days,
        )
    upcoming = next((d for d in schedule.in_person_dates if d > today), None)
    if today > schedule.end or upcoming is None:
        return Position("after")
    return Position(
        "between",
        next_phase="in_person",
        next_on=upcoming,
        days_to_next=(upcoming - today).days,
    )


def self_study_day(schedule: Schedule, n: int) -> tuple[int, date] | None:
    """Day ``n`` of the learner's self-study (its last day when shorter): ``(n, date)``."""
    days = schedule.days_in_phase("self_study")
    if not days:
        return None
    index = min(n, len(days))
    return index, days[index - 1]


@dataclass(frozen=True)
class Due:
    """A learner's overdue items (earliest first) and the next item due after now."""

    overdue: tuple[Item, ...]
    next: Item | None


def due(items: Sequence[Item], done: Iterable[str], now: datetime) -> Due:
    """What the learner should do next: required online items not done, by due date."""
    done_keys = set(done)
    pending = sorted(
        (i for i in items if i.tracked and i.key not in done_keys and i.due_at is not None),
        key=lambda i: i.due_at or now,
    )
    late = tuple(i for i in pending if overdue(i, False, now))
    upcoming = next((i for i in pending if not overdue(i, False, now)), None)
    return Due(late, upcoming)


def attendance_progress(marks: Sequence[str | None]) -> PhaseProgress:
    """The in-person phase: sessions attended (present or late) over every session."""
    return PhaseProgress("in_person", sum(1 for m in marks if m in ATTENDED), len(marks))


# -- at-risk flags ---------------------------------------------------------------------------


def not_started(
    schedule: Schedule, items: Sequence[Item], done: Iterable[str], today: date
) -> Flag | None:
    own = [i.key for i in items if i.phase == "self_study"]
    threshold = self_study_day(schedule, NOT_STARTED_DAY)
    if not own or threshold is None or today < threshold[1]:
        return None
    if set(own) & set(done):
        return None
    return Flag("not_started", NOT_STARTED, {"day": threshold[0], "date": threshold[1]})


def missed_sessions(marks: Sequence[SessionMark]) -> list[Flag]:
    return [
        Flag("missed_session", ABSENT.get(m.part, ABSENT["morning"]), {"date": m.day})
        for m in marks
        if m.status == "absent"
    ]


def follow_up_overdue(items: Sequence[Item], done: Iterable[str], now: datetime) -> list[Flag]:
    done_keys = set(done)
    return [
        Flag("follow_up_overdue", FOLLOW_UP_OVERDUE, {"item": i.title, "date": i.due_on})
        for i in items
        if i.phase == "follow_up" and i.tracked and overdue(i, i.key in done_keys, now)
    ]


def below_pass(result: ResultFacts | None, policy: GradePolicy) -> list[Flag]:
    if result is None or result.classification == INCOMPLETE:
        return []
    if policy.completes(result.classification):
        return []
    flags = [
        Flag(
            "below_pass",
            MESSAGES[f"below_{name}"],
            {"score": score, "threshold": policy.pass_threshold},
        )
        for name in policy.assessed()
        if (score := result.component(name)) is not None and score < policy.pass_threshold
    ]
    return flags or [Flag("below_pass", SET_BELOW_PASS)]


def at_risk(
    *,
    schedule: Schedule,
    items: Sequence[Item],
    done: Iterable[str],
    marks: Sequence[SessionMark],
    result: ResultFacts | None,
    policy: GradePolicy,
    today: date,
    now: datetime,
) -> tuple[Flag, ...]:
    """Every flag of one learner, in the order of :data:`FLAG_CODES`."""
    done_keys = frozenset(done)
    flags: list[Flag] = []
    started = not_started(schedule, items, done_keys, today)
    if started is not None:
        flags.append(started)
    flags += missed_sessions(marks)
    flags += follow_up_overdue(items, done_keys, now)
    flags += below_pass(result, policy)
    return tuple(flags)


# -- a cohort's rows -------------------------------------------------------------------------


@dataclass(frozen=True)
class FollowUp:
    """A learner's follow-up assignments: how many, handed in, waiting for a grade, graded,
    overdue; ``to_grade_key`` is the first one waiting (for a link to it)."""

    total: int = 0
    handed_in: int = 0
    to_grade: int = 0
    graded: int = 0
    overdue: int = 0
    to_grade_key: str | None = None

    @property
    def status(self) -> str:
        """One word for the cell: ``none``, ``overdue``, ``to_grade``, ``graded``,
        ``handed_in`` or ``open`` (nothing handed in, nothing overdue yet)."""
        if not self.total:
            return "none"
        if self.overdue:
            return "overdue"
        if self.to_grade:
            return "to_grade"
        if self.graded == self.total:
            return "graded"
        if self.handed_in:
            return "handed_in"
        return "open"


@dataclass(frozen=True)
class LatestHandIn:
    """The newest hand-in of one assignment, and whether its newest grade is of it."""

    submission_id: int
    graded: bool


def follow_up(
    items: Sequence[Item], hand_ins: Mapping[str, LatestHandIn], now: datetime
) -> FollowUp:
    assignments = [i for i in items if i.counts_for_follow_up]
    waiting = [i.key for i in assignments if i.key in hand_ins and not hand_ins[i.key].graded]
    return FollowUp(
        total=len(assignments),
        handed_in=sum(1 for i in assignments if i.key in hand_ins),
        to_grade=len(waiting),
        graded=sum(1 for i in assignments if i.key in hand_ins and hand_ins[i.key].graded),
        overdue=sum(1 for i in assignments if i.key not in hand_ins and overdue(i, False, now)),
        to_grade_key=waiting[0] if waiting else None,
    )


@dataclass(frozen=True)
class LearnerRow:
    """One learner of a cohort, as the core trainer's dashboard shows them."""

    enrolment_id: int
    name: str
    school: str | None
    email: str | None
    schedule: Schedule
    shifted: bool
    progress: Mapping[str, PhaseProgress]  # self_study, in_person, follow_up
    marks: tuple[str | None, ...]  # one per session of the class, in order
    follow_up: FollowUp
    result: ResultFacts | None
    flags: tuple[Flag, ...]

    @property
    def at_risk(self) -> bool:
        return bool(self.flags)

    def has_flag(self, code: str) -> bool:
        return any(f.code == code for f in self.flags)

    @property
    def online_percent(self) -> int | None:
        """Required online items done, both online phases together (whole percent)."""
        done = sum(p.done for k, p in self.progress.items() if k != "in_person")
        total = sum(p.total for k, p in self.progress.items() if k != "in_person")
        return done * 100 // total if total else None


SORTS: tuple[str, ...] = ("name", "school", "progress", "attendance", "follow_up", "score", "risk")
#: Each sort's natural order: the learners who need attention first, names A→Z.
SORT_DESCENDING = {"risk": True}
FILTERS: tuple[str, ...] = ("all", "at_risk", *FLAG_CODES, "to_grade")
MAX_QUERY_CHARS = 100


@dataclass(frozen=True)
class RowQuery:
    sort: str = "name"
    flag: str = "all"
    q: str = ""
    descending: bool = False

    @property
    def params(self) -> dict[str, str]:
        """The query parameters that reproduce this view (defaults left out)."""
        out: dict[str, str] = {}
        if self.sort != "name":
            out["sort"] = self.sort
        if self.descending != SORT_DESCENDING.get(self.sort, False):
            out["dir"] = "desc" if self.descending else "asc"
        if self.flag != "all":
            out["flag"] = self.flag
        if self.q:
            out["q"] = self.q
        return out


def row_query(
    sort: str | None = None,
    flag: str | None = None,
    q: str | None = None,
    order: str | None = None,
) -> RowQuery:
    """Query parameters as given by a browser (``order`` is ``?dir=``); anything unknown
    falls back to the default."""
    key = sort if sort in SORTS else "name"
    default_desc = SORT_DESCENDING.get(key, False)
    descending = {"asc": False, "desc": True}.get(order or "", default_desc)
    return RowQuery(
        sort=key,
        flag=flag if flag in FILTERS else "all",
        q=" ".join((q or "").split())[:MAX_QUERY_CHARS],
        descending=descending,
    )


def fold(text: str | None) -> str:
    """Text for matching and sorting regardless of case and Vietnamese diacritics
    ("Đỗ Thị Học" → "do thi hoc")."""
    if not text:
        return ""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _name_key(row: LearnerRow) -> tuple[str, int]:
    return fold(row.name), row.enrolment_id


def _sort_key(sort: str) -> Any:
    keys: dict[str, Any] = {
        "name": _name_key,
        "school": lambda r: fold(r.school),
        "progress": lambda r: -1 if r.online_percent is None else r.online_percent,
        "attendance": lambda r: r.progress["in_person"].done,
        "follow_up": lambda r: (r.follow_up.handed_in, r.follow_up.graded),
        "score": lambda r: (
            Decimal(-1) if r.result is None or r.result.score is None else r.result.score
        ),
        "risk": lambda r: len(r.flags),
    }
    return keys[sort]


def matches(row: LearnerRow, flag: str, q: str) -> bool:
    if flag == "at_risk" and not row.at_risk:
        return False
    if flag in FLAG_CODES and not row.has_flag(flag):
        return False
    if flag == "to_grade" and not row.follow_up.to_grade:
        return False
    if q:
        wanted = fold(q)
        if wanted not in fold(row.name) and wanted not in fold(row.school):
            return False
    return True


def select_rows(rows: Iterable[LearnerRow], query: RowQuery) -> list[LearnerRow]:
    """The rows a view shows: filtered, then sorted (ties by name)."""
    chosen = sorted((r for r in rows if matches(r, query.flag, query.q)), key=_name_key)
    if query.sort != "name" or query.descending:
        # Stable: learners that tie stay in name order, whichever way the sort goes.
        chosen.sort(key=_sort_key(query.sort), reverse=query.descending)
    return chosen


__all__ = [
    "FILTERS",
    "FLAG_CODES",
    "NOT_STARTED_DAY",
    "SORTS",
    "Due",
    "Flag",
    "FollowUp",
    "LatestHandIn",
    "LearnerRow",
    "Position",
    "ResultFacts",
    "RowQuery",
    "SessionMark",
    "at_risk",
    "attendance_progress",
    "below_pass",
    "due",
    "fold",
    "follow_up",
    "follow_up_overdue",
    "matches",
    "missed_sessions",
    "not_started",
    "position",
    "row_query",
    "select_rows",
    "self_study_day",
]
