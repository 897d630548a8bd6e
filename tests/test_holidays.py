"""Vietnam's lunar calendar and holiday calendar on their own: dates in, dates out.

The lunar dates are checked against Tết and Giỗ Tổ Hùng Vương as Vietnam kept them, and
against the years in which Vietnam (UTC+7) and China (UTC+8) disagree.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.schedule.calendar import Holiday, HolidayCalendar, vietnam_public_holidays
from app.schedule.lunar import LunarDate, lunar_to_solar, solar_to_lunar, tet

CHINA = 8.0

# Built once: the calendar is immutable data, and the properties below query it thousands of
# times.
CALENDAR = HolidayCalendar.vietnam(range(2020, 2036))


def d(text: str) -> date:
    return date.fromisoformat(text)


# -- lunar calendar ------------------------------------------------------------------------


class TestTetInVietnam:
    @pytest.mark.parametrize(
        ("year", "expected"),
        [
            (1985, "1985-01-21"),
            (2007, "2007-02-17"),
            (2020, "2020-01-25"),
            (2021, "2021-02-12"),
            (2022, "2022-02-01"),
            (2023, "2023-01-22"),
            (2024, "2024-02-10"),
            (2025, "2025-01-29"),
            (2026, "2026-02-17"),
            (2027, "2027-02-06"),
            (2028, "2028-01-26"),
            # The new moon is at 23:07 on 2 February in Hanoi, 00:07 on the 3rd in Beijing.
            (2030, "2030-02-02"),
        ],
    )
    def test_first_day_of_the_lunar_year(self, year: int, expected: str) -> None:
        assert lunar_to_solar(1, 1, year) == d(expected)
        assert tet(year) == d(expected)
        assert solar_to_lunar(d(expected)) == LunarDate(1, 1, year)

    @pytest.mark.parametrize(
        ("year", "last_day"),
        [(2024, 30), (2025, 29), (2026, 29)],  # "30 Tết" some years, "29 Tết" others
    )
    def test_the_day_before_is_the_last_day_of_the_twelfth_month(
        self, year: int, last_day: int
    ) -> None:
        assert solar_to_lunar(tet(year) - timedelta(days=1)) == LunarDate(last_day, 12, year - 1)


class TestVietnamDiffersFromChina:
    @pytest.mark.parametrize(
        ("year", "vietnam", "china"),
        [
            # A month apart: the leap month falls differently in UTC+7.
            (1985, "1985-01-21", "1985-02-20"),
            (2007, "2007-02-17", "2007-02-18"),
            (2030, "2030-02-02", "2030-02-03"),
        ],
    )
    def test_tet_is_computed_in_vietnam_time(self, year: int, vietnam: str, china: str) -> None:
        assert tet(year) == d(vietnam)
        assert tet(year, tz_hours=CHINA) == d(china)

    def test_most_years_agree(self) -> None:
        assert all(tet(y) == tet(y, tz_hours=CHINA) for y in range(2020, 2030))


class TestLunarDates:
    @pytest.mark.parametrize(
        ("year", "expected"), [(2024, "2024-04-18"), (2025, "2025-04-07"), (2026, "2026-04-26")]
    )
    def test_hung_kings_day_is_10_3_lunar(self, year: int, expected: str) -> None:
        assert lunar_to_solar(10, 3, year) == d(expected)

    @pytest.mark.parametrize(
        ("solar", "lunar"),
        [
            ("2020-05-23", LunarDate(1, 4, 2020, leap=True)),
            ("2023-03-22", LunarDate(1, 2, 2023, leap=True)),
            ("2025-07-25", LunarDate(1, 6, 2025, leap=True)),
            ("2033-12-22", LunarDate(1, 11, 2033, leap=True)),  # the "2033 problem" leap 11
            ("2025-10-06", LunarDate(15, 8, 2025)),  # Tết Trung thu
        ],
    )
    def test_leap_months_and_known_days(self, solar: str, lunar: LunarDate) -> None:
        assert solar_to_lunar(d(solar)) == lunar
        assert lunar_to_solar(lunar.day, lunar.month, lunar.year, lunar.leap) == d(solar)

    def test_a_leap_month_follows_the_month_it_repeats(self) -> None:
        assert lunar_to_solar(1, 4, 2020, leap=True) > lunar_to_solar(1, 4, 2020)
        assert lunar_to_solar(1, 5, 2020) > lunar_to_solar(1, 4, 2020, leap=True)

    @pytest.mark.parametrize(
        "solar", ["2054-05-07", "2062-04-09"]
    )  # where the published algorithm says "day 0"
    def test_last_day_of_a_month_far_from_the_mean_new_moon(self, solar: str) -> None:
        lunar = solar_to_lunar(d(solar))
        assert lunar.day == 30
        assert solar_to_lunar(d(solar) + timedelta(days=1)).day == 1

    @pytest.mark.parametrize(
        ("day", "month", "year", "leap"),
        [
            (1, 2, 2024, True),  # 2024 has no leap month
            (1, 3, 2023, True),  # 2023's leap month is the 2nd
            (30, 12, 2024, False),  # no "30 Tết" in 2025: lunar 12/2024 has 29 days
            (0, 1, 2025, False),
            (1, 13, 2025, False),
        ],
    )
    def test_dates_that_do_not_exist_are_refused(
        self, day: int, month: int, year: int, leap: bool
    ) -> None:
        with pytest.raises(ValueError):
            lunar_to_solar(day, month, year, leap)

    @settings(max_examples=400, deadline=None)
    @given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
    def test_round_trip_solar_lunar_solar(self, day: date) -> None:
        lunar = solar_to_lunar(day)
        assert 1 <= lunar.day <= 30 and 1 <= lunar.month <= 12
        assert lunar_to_solar(lunar.day, lunar.month, lunar.year, lunar.leap) == day

    @settings(max_examples=200, deadline=None)
    @given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 30)))
    def test_the_next_day_is_the_next_lunar_day_or_a_new_month(self, day: date) -> None:
        today, tomorrow = solar_to_lunar(day), solar_to_lunar(day + timedelta(days=1))
        if tomorrow.day == 1:
            assert today.day in (29, 30)
        else:
            assert (tomorrow.day, tomorrow.month, tomorrow.year, tomorrow.leap) == (
                today.day + 1,
                today.month,
                today.year,
                today.leap,
            )


# -- holiday calendar ----------------------------------------------------------------------


def _days_off(calendar: HolidayCalendar, year: int) -> list[tuple[str, str]]:
    return [(h.date.isoformat(), h.kind) for h in calendar.holidays_in(year)]


class TestShippedPublicHolidays:
    def test_2025(self) -> None:
        assert _days_off(CALENDAR, 2025) == [
            ("2025-01-01", "fixed"),
            ("2025-01-28", "lunar"),  # 29 Tết, the last day of Giáp Thìn
            ("2025-01-29", "lunar"),
            ("2025-01-30", "lunar"),
            ("2025-01-31", "lunar"),
            ("2025-02-01", "lunar"),  # mùng 4, a Saturday ...
            ("2025-02-03", "compensatory"),  # ... so Monday is off
            ("2025-04-07", "lunar"),
            ("2025-04-30", "fixed"),
            ("2025-05-01", "fixed"),
            ("2025-09-01", "fixed"),
            ("2025-09-02", "fixed"),
        ]

    def test_eleven_statutory_days_every_year(self) -> None:
        for year in range(2020, 2036):
            statutory = [h for h in CALENDAR.holidays_in(year) if h.kind in ("fixed", "lunar")]
            assert len(statutory) == 11, year

    def test_names_are_vietnamese_with_an_english_gloss(self) -> None:
        hung_kings = CALENDAR.holiday(d("2026-04-26"))
        assert hung_kings == Holiday(
            d("2026-04-26"), "Giỗ Tổ Hùng Vương", "Hung Kings' Commemoration Day", "lunar"
        )
        mung_1 = CALENDAR.holiday(d("2026-02-17"))
        assert mung_1 is not None and "mùng 1" in mung_1.name_vi and "day 1" in mung_1.name_en

    def test_the_shipped_list_is_plain_data(self) -> None:
        holidays = vietnam_public_holidays(2026)
        assert [h.date for h in holidays] == sorted(h.date for h in holidays)
        assert {h.kind for h in holidays} == {"fixed", "lunar"}

    def test_weekends_and_holidays_are_not_working_days(self) -> None:
        assert CALENDAR.is_working_day(d("2025-04-08"))  # Tuesday
        assert not CALENDAR.is_working_day(d("2025-04-07"))  # Giỗ Tổ, Monday
        assert not CALENDAR.is_working_day(d("2025-04-12"))  # Saturday
        assert CALENDAR.holiday(d("2025-04-12")) is None  # a weekend is not a holiday


class TestCompensatoryDays:
    def test_a_sunday_holiday_gives_monday_off(self) -> None:
        # Giỗ Tổ 2026 is on Sunday 26 April.
        day_off = CALENDAR.holiday(d("2026-04-27"))
        assert day_off is not None and day_off.kind == "compensatory"
        assert day_off.name_vi == "Nghỉ bù Giỗ Tổ Hùng Vương"

    def test_compensatory_days_skip_other_holidays(self) -> None:
        # Tết 2024: Fri 9 – Tue 13 Feb; Saturday and Sunday are made up after Tuesday.
        assert [h.date for h in CALENDAR.holidays_in(2024) if h.kind == "compensatory"][:2] == [
            d("2024-02-14"),
            d("2024-02-15"),
        ]
        # 1 September 2024 is a Sunday and 2 September, Monday, is already off.
        assert CALENDAR.holiday(d("2024-09-03")) is not None
        assert not CALENDAR.is_working_day(d("2024-09-03"))

    @settings(max_examples=60, deadline=None)
    @given(st.integers(min_value=1990, max_value=2090))
    def test_every_weekend_holiday_is_made_up_on_a_free_weekday(self, year: int) -> None:
        calendar = HolidayCalendar.vietnam(range(year, year + 1))
        holidays = calendar.holidays_in(year)
        on_weekend = [h for h in holidays if h.kind != "compensatory" and h.date.weekday() >= 5]
        made_up = [h for h in holidays if h.kind == "compensatory"]
        assert len(made_up) == len(on_weekend)
        assert len({h.date for h in holidays}) == len(holidays)
        assert all(h.date.weekday() < 5 for h in made_up)
        for holiday in made_up:
            assert calendar.holiday(holiday.date) == holiday

    def test_a_custom_day_off_on_a_weekend_is_not_made_up(self) -> None:
        saturday = d("2025-11-22")
        calendar = HolidayCalendar.vietnam(
            range(2025, 2026), extra=[Holiday(saturday, "Ngày nghỉ", "Day off", "custom")]
        )
        assert calendar.is_working_day(d("2025-11-24"))

    def test_a_statutory_day_an_administrator_adds_is_made_up(self) -> None:
        # The government moves the adjacent National Day to 3 September in 2028 (Sunday).
        calendar = HolidayCalendar.vietnam(
            range(2028, 2029),
            extra=[Holiday(d("2028-09-03"), "Quốc khánh (ngày liền kề)", "National Day", "fixed")],
            removed=[d("2028-09-01")],
        )
        assert calendar.is_working_day(d("2028-09-01"))
        assert not calendar.is_working_day(d("2028-09-03"))
        compensatory = calendar.holiday(d("2028-09-04"))
        assert compensatory is not None and compensatory.kind == "compensatory"


class TestAdministratorsAdjustments:
    def test_extra_days_off(self) -> None:
        bridge = Holiday(d("2025-05-02"), "Nghỉ hoán đổi", "Swapped day off", "custom")
        calendar = HolidayCalendar.vietnam(range(2025, 2026), extra=[bridge])
        assert calendar.holiday(d("2025-05-02")) == bridge
        assert calendar.next_working_day(d("2025-04-30")) == d("2025-05-05")

    def test_removed_days_are_working_days(self) -> None:
        calendar = HolidayCalendar.vietnam(range(2025, 2026), removed=[d("2025-09-01")])
        assert calendar.is_working_day(d("2025-09-01"))
        assert d("2025-09-01") not in [h.date for h in calendar.holidays_in(2025)]

    def test_removing_a_compensatory_day(self) -> None:
        calendar = HolidayCalendar.vietnam(range(2026, 2027), removed=[d("2026-04-27")])
        assert calendar.is_working_day(d("2026-04-27"))

    def test_an_extra_day_replaces_a_shipped_one_on_the_same_date(self) -> None:
        renamed = Holiday(d("2025-04-30"), "Kỷ niệm 50 năm", "50th anniversary", "fixed")
        calendar = HolidayCalendar.vietnam(range(2025, 2026), extra=[renamed])
        assert calendar.holiday(d("2025-04-30")) == renamed

    def test_a_six_day_week(self) -> None:
        calendar = HolidayCalendar.vietnam(range(2026, 2027), weekend=frozenset({6}))
        assert calendar.is_working_day(d("2026-03-07"))  # Saturday
        # Giỗ Tổ on Sunday 26 April is still made up on Monday.
        assert not calendar.is_working_day(d("2026-04-27"))

    @pytest.mark.parametrize("weekend", [frozenset(range(7)), frozenset({7})])
    def test_impossible_weekends_are_refused(self, weekend: frozenset[int]) -> None:
        with pytest.raises(ValueError):
            HolidayCalendar.vietnam(range(2025, 2026), weekend=weekend)

    def test_unknown_kind_is_refused(self) -> None:
        with pytest.raises(ValueError):
            Holiday(d("2025-01-02"), "x", "x", "religious")  # type: ignore[arg-type]


class TestWorkingDays:
    def test_next_working_day(self) -> None:
        friday, saturday, monday = d("2025-04-04"), d("2025-04-05"), d("2025-04-08")
        assert CALENDAR.next_working_day(friday) == friday
        assert CALENDAR.next_working_day(friday, include_self=False) == monday  # 7/4 Giỗ Tổ
        assert CALENDAR.next_working_day(saturday) == monday

    def test_consecutive_working_days_jump_over_tet(self) -> None:
        assert CALENDAR.working_days_from(d("2026-02-12"), 4) == [
            d("2026-02-12"),
            d("2026-02-13"),
            d("2026-02-23"),  # 16–20 Feb Tết, then a weekend
            d("2026-02-24"),
        ]
        assert CALENDAR.working_days_from(d("2026-02-12"), 0) == []

    def test_years_outside_the_built_range_still_answer(self) -> None:
        calendar = HolidayCalendar.vietnam(range(2025, 2026))
        assert not calendar.is_working_day(tet(2040))
        new_year_off = calendar.holiday(d("2040-01-02"))  # 1/1/2040 is a Sunday
        assert new_year_off is not None and new_year_off.kind == "compensatory"

    def test_a_calendar_without_shipped_holidays(self) -> None:
        plain = HolidayCalendar()
        assert plain.is_working_day(tet(2026))
        assert plain.holidays_in(2026) == []
