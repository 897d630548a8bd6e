"""Vietnam's working-day calendar: public holidays, compensatory days off and weekends.

In-person training days must fall on working days (teachers are released from school for
them), so the schedule rules ask this calendar whether a day is a working day.

The shipped holidays are those of the Labour Code 2019 (Bộ luật Lao động 2019, Article 112):

* Tết Dương lịch — 1 January;
* Tết Âm lịch — 5 days: the last day of the old lunar year and lunar days 1–4 of the new
  one. The government fixes the exact days each year (often moving days around weekends
  by decision of the Prime Minister); administrators adjust with ``extra``/``removed``;
* Giỗ Tổ Hùng Vương — 10th day of the 3rd lunar month;
* Ngày Chiến thắng — 30 April;
* Ngày Quốc tế Lao động — 1 May;
* Quốc khánh — 2 September, plus one adjacent day (1 or 3 September) that the government
  chooses each year. 1 September is shipped; an administrator who learns that this year it
  is 3 September removes the 1st and adds the 3rd.

Article 112(3): a public holiday that falls on a weekly day off gives the next working day off
(nghỉ bù, kind ``"compensatory"``). Compensatory days are placed after every holiday of the
year is known, in date order, so that one never lands on another holiday or on a day already
taken by an earlier compensatory day.

Holiday names are data (Vietnamese with an English gloss), not gettext message ids: they are
proper names that an administrator may also type in through ``extra``.

The calendar is built from plain data and answers from a per-year dict, so asking about a day
is a dictionary look-up. Years outside the ones built up front are computed on first use with
the same rules, so a schedule that runs past the end of a planned range never fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from app.schedule.lunar import lunar_to_solar

__all__ = [
    "DEFAULT_WEEKEND",
    "Holiday",
    "HolidayCalendar",
    "HolidayKind",
    "vietnam_public_holidays",
]

HolidayKind = Literal["fixed", "lunar", "compensatory", "custom"]
HOLIDAY_KINDS: frozenset[str] = frozenset({"fixed", "lunar", "compensatory", "custom"})
# Kinds that are public holidays under Article 112 and so earn a compensatory day when they
# fall on a weekend. A "custom" day (a day off an administrator adds, e.g. a swapped working
# day) and a "compensatory" day do not.
STATUTORY_KINDS: frozenset[str] = frozenset({"fixed", "lunar"})

DEFAULT_WEEKEND: frozenset[int] = frozenset({5, 6})
"""Saturday and Sunday, as ``date.weekday()`` numbers (Monday is 0)."""

# How far next_working_day looks before it gives up: a year of days off in a row can only
# be a misconfigured calendar.
_SEARCH_LIMIT_DAYS = 366


@dataclass(frozen=True)
class Holiday:
    """A day off for everyone: a public holiday, a compensatory day or one an administrator
    added."""

    date: date
    name_vi: str
    name_en: str
    kind: HolidayKind = "custom"

    def __post_init__(self) -> None:
        if self.kind not in HOLIDAY_KINDS:
            raise ValueError(f"unknown holiday kind {self.kind!r}")


def vietnam_public_holidays(year: int) -> list[Holiday]:
    """The public holidays of Article 112 in solar ``year``, before compensatory days.

    Lunar holidays are those of the lunar year that starts in the same solar year: Tết is
    always between 21 January and 20 February, so all five Tết days and 10/3 lunar are in
    ``year``. The day next to Quốc khánh is shipped as 1 September; the government decides
    each year whether it is the 1st or the 3rd, and the Tết days likewise, so these are a
    default for administrators to correct, not a prediction.
    """
    tet = lunar_to_solar(1, 1, year)
    holidays = [
        Holiday(date(year, 1, 1), "Tết Dương lịch", "New Year's Day", "fixed"),
        Holiday(
            tet - timedelta(days=1),
            "Tết Nguyên đán (ngày cuối năm âm lịch)",
            "Lunar New Year (last day of the lunar year)",
            "lunar",
        ),
    ]
    holidays += [
        Holiday(
            tet + timedelta(days=n - 1),
            f"Tết Nguyên đán (mùng {n})",
            f"Lunar New Year (day {n})",
            "lunar",
        )
        for n in range(1, 5)
    ]
    holidays += [
        Holiday(
            lunar_to_solar(10, 3, year),
            "Giỗ Tổ Hùng Vương",
            "Hung Kings' Commemoration Day",
            "lunar",
        ),
        Holiday(date(year, 4, 30), "Ngày Chiến thắng", "Victory Day (Reunification)", "fixed"),
        Holiday(date(year, 5, 1), "Ngày Quốc tế Lao động", "International Labour Day", "fixed"),
        Holiday(
            date(year, 9, 1),
            "Quốc khánh (ngày liền kề)",
            "National Day (adjacent day)",
            "fixed",
        ),
        Holiday(date(year, 9, 2), "Quốc khánh", "National Day", "fixed"),
    ]
    return holidays


class HolidayCalendar:
    """Which days are working days, and why the others are not.

    Built from plain data: a function giving the shipped holidays of a year (``shipped``),
    administrators' additions (``extra``, which win over a shipped holiday on the same date)
    and removals (``removed``, which also suppress a compensatory day on that date), and the
    weekly days off (``weekend``, ``date.weekday()`` numbers).
    """

    def __init__(
        self,
        *,
        shipped: Callable[[int], Iterable[Holiday]] | None = None,
        extra: Iterable[Holiday] = (),
        removed: Iterable[date] = (),
        weekend: frozenset[int] = DEFAULT_WEEKEND,
        years: Iterable[int] = (),
    ) -> None:
        weekend = frozenset(weekend)
        if not weekend <= frozenset(range(7)):
            raise ValueError(f"weekend days must be 0 (Monday) to 6 (Sunday), not {weekend}")
        if len(weekend) == 7:
            raise ValueError("a week needs at least one working day")
        self.weekend = weekend
        self._shipped = shipped
        self._extra: dict[int, dict[date, Holiday]] = {}
        for holiday in extra:
            self._extra.setdefault(holiday.date.year, {})[holiday.date] = holiday
        self._removed = frozenset(removed)
        self._base_cache: dict[int, dict[date, Holiday]] = {}
        self._years: dict[int, dict[date, Holiday]] = {}
        for year in years:
            self._year(year)

    @classmethod
    def vietnam(
        cls,
        years: range,
        extra: Iterable[Holiday] = (),
        removed: Iterable[date] = (),
        weekend: frozenset[int] = DEFAULT_WEEKEND,
    ) -> HolidayCalendar:
        """Vietnam's public holidays (Article 112) for ``years``, computed up front, with an
        administrator's additions and removals."""
        return cls(
            shipped=vietnam_public_holidays,
            extra=extra,
            removed=removed,
            weekend=weekend,
            years=years,
        )

    # -- queries -------------------------------------------------------------------------

    def holiday(self, d: date) -> Holiday | None:
        """The holiday on ``d``, if any (weekends are not holidays)."""
        return self._year(d.year).get(d)

    def is_weekend(self, d: date) -> bool:
        return d.weekday() in self.weekend

    def is_working_day(self, d: date) -> bool:
        """Neither a weekly day off nor a holiday."""
        return d.weekday() not in self.weekend and d not in self._year(d.year)

    def next_working_day(self, d: date, include_self: bool = True) -> date:
        """The first working day on or after ``d`` (strictly after it when not
        ``include_self``)."""
        day = d if include_self else d + timedelta(days=1)
        for _ in range(_SEARCH_LIMIT_DAYS):
            if self.is_working_day(day):
                return day
            day += timedelta(days=1)
        raise ValueError(f"no working day within {_SEARCH_LIMIT_DAYS} days of {d}")

    def working_days_from(self, d: date, count: int) -> list[date]:
        """``count`` consecutive working days, the first being the first working day on or
        after ``d``."""
        if count < 0:
            raise ValueError("count must not be negative")
        days: list[date] = []
        day = d
        while len(days) < count:
            day = self.next_working_day(day)
            days.append(day)
            day += timedelta(days=1)
        return days

    def holidays_in(self, year: int) -> list[Holiday]:
        """Every holiday of ``year``, compensatory days included, in date order."""
        return sorted(self._year(year).values(), key=lambda h: h.date)

    # -- building ------------------------------------------------------------------------

    def _base(self, year: int) -> dict[date, Holiday]:
        """Shipped holidays plus additions minus removals, without compensatory days."""
        cached = self._base_cache.get(year)
        if cached is not None:
            return cached
        days: dict[date, Holiday] = {}
        if self._shipped is not None:
            for holiday in self._shipped(year):
                days[holiday.date] = holiday
        days.update(self._extra.get(year, {}))
        for day in self._removed:
            if day.year == year:
                days.pop(day, None)
        self._base_cache[year] = days
        return days

    def _year(self, year: int) -> dict[date, Holiday]:
        """All days off of ``year`` (compensatory days included), built on first use.

        A compensatory day can cross into the next year (a holiday on Saturday
        31 December), so the holidays of the years either side are taken into account.
        """
        cached = self._years.get(year)
        if cached is not None:
            return cached
        taken: dict[date, Holiday] = {}
        for y in (year - 1, year, year + 1):
            taken.update(self._base(y))
        compensatory: dict[date, Holiday] = {}
        for holiday in sorted(taken.values(), key=lambda h: h.date):
            if holiday.kind not in STATUTORY_KINDS or holiday.date.weekday() not in self.weekend:
                continue
            day = holiday.date + timedelta(days=1)
            while day.weekday() in self.weekend or day in taken or day in compensatory:
                day += timedelta(days=1)
            compensatory[day] = Holiday(
                day,
                f"Nghỉ bù {holiday.name_vi}",
                f"Day off in lieu of {holiday.name_en}",
                "compensatory",
            )
        days = dict(self._base(year))
        for day, holiday in compensatory.items():
            if day.year == year and day not in self._removed:
                days[day] = holiday
        self._years[year] = days
        return days
