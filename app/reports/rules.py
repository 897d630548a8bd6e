"""What the overview, the targets and the reports count: plain functions over plain rows.

The repository hands over *groups* — learners counted by (class wave, module version, level,
district, school, enrolment status, classification, final) — never one row per learner, so
a whole province is a few thousand groups. Here they are added up:

* **enrolled** — the learners of classes in the period, except those who left the class
  without completing (a learner whom the LMS dropped after completing still counts);
* **in progress** — enrolled, still active in the class, and the result not final yet;
* **completed** — the classification completes the module: ``complete`` or one of the
  module version's tiers (``GradePolicy.completes``), whatever the enrolment status now;
* **each classification** — ``incomplete``, ``not_complete``, ``complete`` and every tier;
  together they add up to *enrolled*;
* **left** — left the class without completing.

A period selects classes by their end date (both ends included); by default the current
calendar year in Asia/Ho_Chi_Minh. A target counts the distinct learners of its staff group
who completed in a class that ended by the due date, against the staff count the
administrator entered.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any, TypeVar

from app.core.errors import ValidationFailed
from app.grading.rules import COMPLETE, INCOMPLETE, NOT_COMPLETE, GradePolicy

K = TypeVar("K", bound=Hashable)

TRACKS = ("gvpt", "cbql")
#: The classifications every module knows, in the order they are shown (tiers follow).
BASE_CLASSIFICATIONS = (INCOMPLETE, NOT_COMPLETE, COMPLETE)
#: Earliest and latest dates accepted in a period or as a due date.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)
TENTH = Decimal("0.1")
HUNDRED = Decimal(100)


# -- periods ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Classes whose end date falls between ``start`` and ``end``, both included."""

    start: date
    end: date

    @classmethod
    def year(cls, year: int) -> Period:
        return cls(date(year, 1, 1), date(year, 12, 31))

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    @property
    def calendar_year(self) -> int | None:
        """The year when the period is exactly one calendar year, else ``None``."""
        if self == Period.year(self.start.year):
            return self.start.year
        return None

    @property
    def slug(self) -> str:
        """For file names: ``2025-01-01_2025-12-31``."""
        return f"{self.start.isoformat()}_{self.end.isoformat()}"


def _parse_day(text: str, name: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed("Enter a valid date.", params={"field": name}) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValidationFailed("Enter a date between 2000 and 2100.", params={"field": name})
    return day


def parse_period(start: str | None, end: str | None, year: str | None, today: date) -> Period:
    """The period a request asks for: ``year=2025``, or ``from``/``to`` (ISO dates; a missing
    end defaults to the current year's). Nothing given: the current year."""
    start, end, year = (start or "").strip(), (end or "").strip(), (year or "").strip()
    if year and not (start or end):
        if not year.isdigit() or not FIRST_DAY.year <= int(year) <= LAST_DAY.year:
            raise ValidationFailed("Enter a year between 2000 and 2100.", params={"field": "year"})
        return Period.year(int(year))
    default = Period.year(today.year)
    first = _parse_day(start, "from") if start else default.start
    last = _parse_day(end, "to") if end else default.end
    if first > last:
        raise ValidationFailed(
            "The end of the period comes before its start.", params={"field": "to"}
        )
    return Period(first, last)


# -- sorting names as people expect --------------------------------------------------------

_DIGITS = re.compile(r"(\d+)")


@lru_cache(maxsize=65536)
def name_key(text: str | None) -> tuple[Any, ...]:
    """Sort key for district, school and wave names: letters without their accents first
    (Vietnamese order, roughly), numbers by value ("Quận 2" before "Quận 10"), and a
    missing name last."""
    if not text:
        return (1,)
    folded = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    base = "".join(c for c in folded if not unicodedata.combining(c)).casefold()
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in _DIGITS.split(base) if p)
    return (0, parts, text)


# -- the rows the repository hands over ----------------------------------------------------


@dataclass(frozen=True)
class ModuleInfo:
    key: str  # "gvpt-4"
    track: str  # "gvpt" | "cbql"
    number: int | None
    title: str

    @property
    def label(self) -> str:
        """ "GVPT 4", or the key of a local topic."""
        return f"{self.track.upper()} {self.number}" if self.number is not None else self.key

    @property
    def order(self) -> tuple[Any, ...]:
        track = TRACKS.index(self.track) if self.track in TRACKS else len(TRACKS)
        return (track, self.number if self.number is not None else 10**6, self.key)


@dataclass(frozen=True)
class LearnerGroup:
    """Learners with the same class wave, module version, level, district, school,
    enrolment status, classification and finality; ``count`` of them."""

    version_id: int
    module_key: str
    track: str
    level: str
    wave_id: int | None
    wave: str | None
    district: str  # "" when not given
    school: str  # "" when not given
    active: bool
    classification: str
    final: bool
    count: int


def completion_test(policies: Mapping[int, GradePolicy]) -> Callable[[LearnerGroup], bool]:
    """Whether a group's classification completes its module version (a tier is per
    version); a version without a policy knows only ``complete``."""

    def completes(group: LearnerGroup) -> bool:
        policy = policies.get(group.version_id)
        if policy is None:
            return group.classification == COMPLETE
        return policy.completes(group.classification)

    return completes


# -- counting ------------------------------------------------------------------------------


@dataclass
class Counts:
    enrolled: int = 0
    in_progress: int = 0
    completed: int = 0
    left: int = 0
    classifications: dict[str, int] = field(default_factory=dict)

    def add(self, group: LearnerGroup, completes: bool) -> None:
        n = group.count
        if not completes and not group.active:
            self.left += n
            return
        self.enrolled += n
        self.classifications[group.classification] = (
            self.classifications.get(group.classification, 0) + n
        )
        if completes:
            self.completed += n
        elif not group.final:
            # A completing result is final; an active learner without one is still learning.
            self.in_progress += n

    def merge(self, other: Counts) -> None:
        self.enrolled += other.enrolled
        self.in_progress += other.in_progress
        self.completed += other.completed
        self.left += other.left
        for code, n in other.classifications.items():
            self.classifications[code] = self.classifications.get(code, 0) + n

    def of(self, classification: str) -> int:
        return self.classifications.get(classification, 0)

    @property
    def completion_rate(self) -> Decimal | None:
        """Completed as a percentage of enrolled, to one decimal; ``None`` with nobody."""
        return share(self.completed, self.enrolled)

    def as_dict(self) -> dict[str, Any]:
        return {
            "enrolled": self.enrolled,
            "in_progress": self.in_progress,
            "completed": self.completed,
            "left": self.left,
            "classifications": dict(sorted(self.classifications.items())),
        }


def share(part: int, whole: int) -> Decimal | None:
    """``part`` as a percentage of ``whole``, rounded half-up to one decimal."""
    if whole <= 0:
        return None
    return (Decimal(part) * HUNDRED / Decimal(whole)).quantize(TENTH, rounding=ROUND_HALF_UP)


def total(groups: Iterable[LearnerGroup], completes: Callable[[LearnerGroup], bool]) -> Counts:
    counts = Counts()
    for group in groups:
        counts.add(group, completes(group))
    return counts


def tally(
    groups: Iterable[LearnerGroup],
    completes: Callable[[LearnerGroup], bool],
    key: Callable[[LearnerGroup], K],
) -> dict[K, Counts]:
    """Counts per ``key`` of the groups (in first-seen order; callers sort)."""
    out: dict[K, Counts] = {}
    for group in groups:
        out.setdefault(key(group), Counts()).add(group, completes(group))
    return out


# -- tiers as columns ----------------------------------------------------------------------


@dataclass(frozen=True)
class TierColumn:
    code: str
    name_vi: str
    name_en: str | None
    min_score: Decimal

    def name(self, locale: str) -> str:
        return self.name_vi if locale == "vi" or not self.name_en else self.name_en


def tier_columns(policies: Iterable[GradePolicy]) -> tuple[TierColumn, ...]:
    """Every tier of the given policies, one column per code (the first name met wins),
    lowest minimum score first."""
    seen: dict[str, TierColumn] = {}
    for policy in policies:
        for tier in policy.tiers:
            seen.setdefault(
                tier.code, TierColumn(tier.code, tier.name_vi, tier.name_en, tier.min_score)
            )
    return tuple(sorted(seen.values(), key=lambda t: (t.min_score, t.code)))


def classification_codes(tiers: Sequence[TierColumn]) -> tuple[str, ...]:
    return (*BASE_CLASSIFICATIONS, *(t.code for t in tiers))


# -- the report for the next level up ------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    district: str
    school: str  # "" in the per-district rows
    module: ModuleInfo
    wave: str | None
    counts: Counts


@dataclass(frozen=True)
class Report:
    period: Period
    tiers: tuple[TierColumn, ...]
    schools: list[ReportRow]  # per district, school, module and wave
    districts: list[ReportRow]  # per district, module and wave
    total: Counts


def _module_of(modules: Mapping[str, ModuleInfo], group: LearnerGroup) -> ModuleInfo:
    return modules.get(group.module_key) or ModuleInfo(
        group.module_key, group.track, None, group.module_key
    )


def build_report(
    period: Period,
    groups: Sequence[LearnerGroup],
    completes: Callable[[LearnerGroup], bool],
    modules: Mapping[str, ModuleInfo],
    wave_order: Mapping[int, int],
    tiers: tuple[TierColumn, ...],
) -> Report:
    """Rows per school and per district, each split by module and wave, in reading order:
    district, school, module (teachers' track first, by number), wave."""

    def wave_key(wave_id: int | None) -> tuple[int, int]:
        return (1, 0) if wave_id is None else (0, wave_order.get(wave_id, 10**6))

    by_school = tally(
        groups,
        completes,
        lambda g: (g.district, g.school, g.module_key, g.wave_id, g.wave),
    )
    by_district = tally(
        groups, completes, lambda g: (g.district, "", g.module_key, g.wave_id, g.wave)
    )
    sample = {g.module_key: g for g in groups}

    def rows(
        table: Mapping[tuple[str, str, str, int | None, str | None], Counts],
    ) -> list[ReportRow]:
        ordered = sorted(
            table.items(),
            key=lambda item: (
                name_key(item[0][0]),
                name_key(item[0][1]),
                _module_of(modules, sample[item[0][2]]).order,
                wave_key(item[0][3]),
            ),
        )
        return [
            ReportRow(district, school, _module_of(modules, sample[key]), wave, counts)
            for (district, school, key, _wave_id, wave), counts in ordered
        ]

    return Report(
        period=period,
        tiers=tiers,
        schools=rows(by_school),
        districts=rows(by_district),
        total=total(groups, completes),
    )


# -- targets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetProgress:
    """A target against what has been achieved.

    ``needed`` learners make the target (the percentage of the staff count, rounded up);
    ``gap`` is how many are still missing and ``gap_points`` the same in percentage points.
    """

    staff_count: int
    percent: Decimal
    achieved: int
    needed: int
    achieved_percent: Decimal
    gap: int
    gap_points: Decimal
    met: bool
    overdue: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "staff_count": self.staff_count,
            "percent": str(self.percent),
            "achieved": self.achieved,
            "needed": self.needed,
            "achieved_percent": str(self.achieved_percent),
            "gap": self.gap,
            "gap_points": str(self.gap_points),
            "met": self.met,
            "overdue": self.overdue,
        }


def target_progress(
    staff_count: int, percent: Decimal, achieved: int, due_on: date, today: date
) -> TargetProgress:
    if staff_count <= 0:
        raise ValueError("staff_count must be positive")
    percent = Decimal(percent)
    needed = math.ceil(Decimal(staff_count) * percent / HUNDRED)
    achieved_percent = share(achieved, staff_count) or Decimal(0)
    met = achieved >= needed
    gap_points = max(Decimal(0), percent - achieved_percent)
    return TargetProgress(
        staff_count=staff_count,
        percent=plain_decimal(percent),
        achieved=achieved,
        needed=needed,
        achieved_percent=achieved_percent,
        gap=max(0, needed - achieved),
        gap_points=Decimal(0) if met else gap_points.quantize(TENTH, rounding=ROUND_HALF_UP),
        met=met,
        overdue=not met and today > due_on,
    )


def plain_decimal(value: Decimal) -> Decimal:
    """30.00 → 30, 12.50 → 12.5 (never an exponent)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def completing_tiers(policies: Mapping[int, GradePolicy]) -> dict[int, tuple[str, ...]]:
    """Per module version, the tier codes that complete it (``complete`` always does)."""
    return {vid: tuple(t.code for t in p.tiers) for vid, p in policies.items() if p.tiers}
