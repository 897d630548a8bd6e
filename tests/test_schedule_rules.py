"""The 7-2-7 schedule rules on their own: plans, anchors and a calendar in, dates out."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.errors import ValidationFailed
from app.schedule.calendar import HolidayCalendar
from app.schedule.rules import (
    PHASES,
    PhasePlan,
    Schedule,
    ScheduleError,
    schedule_from_in_person,
    schedule_from_start,
    shift_schedule,
)

CALENDAR = HolidayCalendar.vietnam(range(2023, 2037))
PLAN = PhasePlan()


def d(text: str) -> date:
    return date.fromisoformat(text)


def days(first: str, last: str) -> tuple[date, ...]:
    start, end = d(first), d(last)
    return tuple(start + timedelta(days=n) for n in range((end - start).days + 1))


class TestPhasePlan:
    def test_seven_two_seven_is_the_default(self) -> None:
        assert str(PLAN) == "7-2-7"
        assert PLAN.to_dict() == {"self_study_days": 7, "in_person_days": 2, "follow_up_days": 7}

    @pytest.mark.parametrize("plan", [PhasePlan(5, 3, 5), PhasePlan(0, 2, 7), PhasePlan(7, 1, 0)])
    def test_other_patterns_are_allowed_and_stored_as_plain_data(self, plan: PhasePlan) -> None:
        assert PhasePlan.from_dict(plan.to_dict()) == plan

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"self_study_days": -1}, "self_study_days"),
            ({"in_person_days": 0}, "in_person_days"),
            ({"follow_up_days": -7}, "follow_up_days"),
            ({"follow_up_days": 1000}, "follow_up_days"),
            ({"in_person_days": True}, "in_person_days"),
            ({"self_study_days": 7.5}, "self_study_days"),
        ],
    )
    def test_impossible_plans_name_the_field(self, kwargs: dict[str, object], field: str) -> None:
        with pytest.raises(ScheduleError) as caught:
            PhasePlan(**kwargs)  # type: ignore[arg-type]
        assert caught.value.code == "plan_invalid"
        assert caught.value.field == field


class TestScheduleFromInPersonDays:
    def test_seven_two_seven_around_two_weekdays(self) -> None:
        schedule = schedule_from_in_person([d("2025-03-11"), d("2025-03-10")], PLAN, CALENDAR)
        assert schedule == Schedule(
            self_study_start=d("2025-03-03"),
            self_study_end=d("2025-03-09"),
            in_person_dates=(d("2025-03-10"), d("2025-03-11")),
            follow_up_start=d("2025-03-12"),
            follow_up_end=d("2025-03-18"),
        )
        assert (schedule.start, schedule.end) == (d("2025-03-03"), d("2025-03-18"))

    def test_online_phases_are_calendar_days_even_over_holidays(self) -> None:
        # In person just after Giỗ Tổ 2025 (Mon 7 April): self-study still counts 7 days.
        schedule = schedule_from_in_person([d("2025-04-08"), d("2025-04-09")], PLAN, CALENDAR)
        assert schedule.days_in_phase("self_study") == days("2025-04-01", "2025-04-07")

    def test_in_person_days_need_not_be_consecutive(self) -> None:
        schedule = schedule_from_in_person([d("2025-03-14"), d("2025-03-17")], PLAN, CALENDAR)
        assert schedule.phase_on(d("2025-03-14")) == "in_person"
        assert schedule.phase_on(d("2025-03-15")) is None  # the weekend between
        assert schedule.phase_on(d("2025-03-17")) == "in_person"
        assert schedule.follow_up_start == d("2025-03-18")

    def test_a_phase_with_no_days(self) -> None:
        schedule = schedule_from_in_person(
            [d("2025-03-10"), d("2025-03-11")], PhasePlan(0, 2, 7), CALENDAR
        )
        assert schedule.self_study_start is schedule.self_study_end is None
        assert schedule.days_in_phase("self_study") == ()
        assert schedule.start == d("2025-03-10")

    def test_five_three_five(self) -> None:
        schedule = schedule_from_in_person(
            days("2025-03-10", "2025-03-12"), PhasePlan(5, 3, 5), CALENDAR
        )
        assert schedule.days_in_phase("self_study") == days("2025-03-05", "2025-03-09")
        assert schedule.days_in_phase("follow_up") == days("2025-03-13", "2025-03-17")

    def test_a_weekend_day_is_refused(self) -> None:
        with pytest.raises(ScheduleError) as caught:
            schedule_from_in_person([d("2025-03-14"), d("2025-03-15")], PLAN, CALENDAR)
        error = caught.value
        assert (error.code, error.field) == ("in_person_weekend", "in_person_dates")
        assert error.params["date"] == "2025-03-15"
        assert error.status_code == 422 and isinstance(error, ValidationFailed)
        assert "2025-03-15 falls on a weekend" in str(error)

    def test_a_holiday_is_refused_by_name(self) -> None:
        with pytest.raises(ScheduleError) as caught:
            schedule_from_in_person([d("2025-04-07"), d("2025-04-08")], PLAN, CALENDAR)
        error = caught.value
        assert error.code == "in_person_holiday"
        assert error.params["date"] == "2025-04-07"
        assert error.params["holiday"] == "Giỗ Tổ Hùng Vương"
        assert error.params["holiday_en"] == "Hung Kings' Commemoration Day"

    def test_a_compensatory_day_is_a_holiday_too(self) -> None:
        with pytest.raises(ScheduleError) as caught:
            schedule_from_in_person([d("2026-04-27"), d("2026-04-28")], PLAN, CALENDAR)
        assert caught.value.code == "in_person_holiday"

    def test_the_same_day_twice_is_refused(self) -> None:
        with pytest.raises(ScheduleError) as caught:
            schedule_from_in_person([d("2025-03-10"), d("2025-03-10")], PLAN, CALENDAR)
        assert caught.value.code == "in_person_duplicate"
        assert caught.value.params["date"] == "2025-03-10"

    @pytest.mark.parametrize(
        "given_dates", [["2025-03-10"], ["2025-03-10", "2025-03-11", "2025-03-12"], []]
    )
    def test_the_wrong_number_of_days_is_refused(self, given_dates: list[str]) -> None:
        with pytest.raises(ScheduleError) as caught:
            schedule_from_in_person([d(x) for x in given_dates], PLAN, CALENDAR)
        assert caught.value.code == "in_person_count"
        assert caught.value.params == {
            "field": "in_person_dates",
            "expected": 2,
            "given": len(given_dates),
        }


class TestScheduleFromStart:
    def test_an_ordinary_week(self) -> None:
        schedule = schedule_from_start(d("2025-03-03"), PLAN, CALENDAR)
        assert schedule.in_person_dates == (d("2025-03-10"), d("2025-03-11"))
        assert schedule.days_in_phase("self_study") == days("2025-03-03", "2025-03-09")

    def test_tet_pushes_the_in_person_days_and_self_study_keeps_its_length(self) -> None:
        # Start + 7 days is Monday 16 Feb 2026, the first day off of Tết (16–20 Feb).
        schedule = schedule_from_start(d("2026-02-09"), PLAN, CALENDAR)
        assert schedule.in_person_dates == (d("2026-02-23"), d("2026-02-24"))
        assert schedule.days_in_phase("self_study") == days("2026-02-16", "2026-02-22")
        assert schedule.days_in_phase("follow_up") == days("2026-02-25", "2026-03-03")

    def test_in_person_days_jump_over_a_holiday(self) -> None:
        # Wednesday 17 April 2024, then Giỗ Tổ on the 18th: day two is Friday 19th.
        schedule = schedule_from_start(d("2024-04-10"), PLAN, CALENDAR)
        assert schedule.in_person_dates == (d("2024-04-17"), d("2024-04-19"))
        assert schedule.phase_on(d("2024-04-18")) is None

    def test_no_self_study(self) -> None:
        schedule = schedule_from_start(d("2025-03-08"), PhasePlan(0, 2, 7), CALENDAR)
        assert schedule.in_person_dates == (d("2025-03-10"), d("2025-03-11"))
        assert schedule.start == d("2025-03-10")


class TestLearnerShifts:
    CLASS = schedule_from_in_person([d("2025-03-10"), d("2025-03-11")], PLAN, CALENDAR)

    def test_a_delay_moves_every_phase(self) -> None:
        mine = shift_schedule(self.CLASS, delay_days=7, calendar=CALENDAR, plan=PLAN)
        assert mine.in_person_dates == (d("2025-03-17"), d("2025-03-18"))
        assert mine.start == d("2025-03-10") and mine.end == d("2025-03-25")

    def test_no_delay_is_the_class_schedule(self) -> None:
        assert shift_schedule(self.CLASS, delay_days=0, calendar=CALENDAR, plan=PLAN) == self.CLASS

    def test_a_delay_onto_a_holiday_moves_on_to_working_days(self) -> None:
        class_schedule = schedule_from_in_person([d("2025-03-31"), d("2025-04-01")], PLAN, CALENDAR)
        mine = shift_schedule(class_schedule, delay_days=7, calendar=CALENDAR, plan=PLAN)
        # 7 April is Giỗ Tổ: day one moves to the 8th, day two stays after it.
        assert mine.in_person_dates == (d("2025-04-08"), d("2025-04-09"))

    def test_a_delay_keeps_the_pattern_of_the_class(self) -> None:
        class_schedule = schedule_from_in_person([d("2025-03-10"), d("2025-03-12")], PLAN, CALENDAR)
        mine = shift_schedule(class_schedule, delay_days=2, calendar=CALENDAR, plan=PLAN)
        assert mine.in_person_dates == (d("2025-03-12"), d("2025-03-14"))

    def test_new_in_person_days_with_another_class(self) -> None:
        mine = shift_schedule(
            self.CLASS,
            new_in_person_dates=[d("2025-03-24"), d("2025-03-26")],
            calendar=CALENDAR,
            plan=PLAN,
        )
        assert mine.self_study_start == d("2025-03-17")
        assert mine.follow_up_end == d("2025-04-02")

    def test_never_earlier_than_the_class(self) -> None:
        with pytest.raises(ScheduleError) as caught:
            shift_schedule(
                self.CLASS,
                new_in_person_dates=[d("2025-03-06"), d("2025-03-07")],
                calendar=CALENDAR,
                plan=PLAN,
            )
        assert (caught.value.code, caught.value.field) == ("shift_earlier", "new_in_person_dates")
        with pytest.raises(ScheduleError) as caught:
            shift_schedule(self.CLASS, delay_days=-1, calendar=CALENDAR, plan=PLAN)
        assert (caught.value.code, caught.value.field) == ("shift_earlier", "delay_days")

    def test_the_last_in_person_day_may_not_come_before_the_class_either(self) -> None:
        class_schedule = schedule_from_in_person([d("2025-03-10"), d("2025-03-14")], PLAN, CALENDAR)
        with pytest.raises(ScheduleError) as caught:
            shift_schedule(
                class_schedule,
                new_in_person_dates=[d("2025-03-11"), d("2025-03-12")],
                calendar=CALENDAR,
                plan=PLAN,
            )
        assert caught.value.params["class_date"] == "2025-03-14"

    def test_new_days_are_checked_like_the_class_days(self) -> None:
        with pytest.raises(ScheduleError) as caught:
            shift_schedule(
                self.CLASS,
                new_in_person_dates=[d("2025-03-21"), d("2025-03-22")],
                calendar=CALENDAR,
                plan=PLAN,
            )
        assert caught.value.code == "in_person_weekend"

    @pytest.mark.parametrize("kwargs", [{}, {"delay_days": 1, "new_in_person_dates": []}])
    def test_exactly_one_way_of_shifting(self, kwargs: dict[str, object]) -> None:
        with pytest.raises(ValueError):
            shift_schedule(self.CLASS, calendar=CALENDAR, plan=PLAN, **kwargs)  # type: ignore[arg-type]


class TestScheduleAsData:
    def test_round_trip_through_json_data(self) -> None:
        schedule = schedule_from_start(d("2026-02-16"), PhasePlan(0, 3, 5), CALENDAR)  # Tết
        data = schedule.to_dict()
        assert data["in_person_dates"] == ["2026-02-23", "2026-02-24", "2026-02-25"]
        assert data["self_study_start"] is None
        assert Schedule.from_dict(data) == schedule

    def test_inconsistent_schedules_cannot_be_built(self) -> None:
        with pytest.raises(ValueError):
            Schedule(d("2025-03-03"), d("2025-03-10"), (d("2025-03-10"),), None, None)
        with pytest.raises(ValueError):
            Schedule(None, None, (), None, None)
        with pytest.raises(ValueError):
            Schedule(None, None, (d("2025-03-11"), d("2025-03-10")), None, None)

    def test_phase_on_outside_the_schedule(self) -> None:
        schedule = schedule_from_start(d("2025-03-03"), PLAN, CALENDAR)
        assert schedule.phase_on(d("2025-03-02")) is None
        assert schedule.phase_on(d("2025-03-03")) == "self_study"
        assert schedule.phase_on(d("2025-03-18")) == "follow_up"
        assert schedule.phase_on(d("2025-03-19")) is None
        with pytest.raises(ValueError):
            schedule.days_in_phase("holiday")  # type: ignore[arg-type]


# -- properties ----------------------------------------------------------------------------

plans = st.builds(
    PhasePlan,
    self_study_days=st.integers(min_value=0, max_value=14),
    in_person_days=st.integers(min_value=1, max_value=5),
    follow_up_days=st.integers(min_value=0, max_value=14),
)
starts = st.dates(min_value=date(2024, 1, 1), max_value=date(2035, 12, 31))


@st.composite
def in_person_anchors(draw: st.DrawFn, plan: PhasePlan) -> list[date]:
    """Distinct working days, not necessarily consecutive, in a shuffled order."""
    day = CALENDAR.next_working_day(draw(starts))
    chosen = [day]
    for _ in range(plan.in_person_days - 1):
        day = CALENDAR.next_working_day(day + timedelta(days=draw(st.integers(1, 4))))
        chosen.append(day)
    return draw(st.permutations(chosen))


def assert_well_formed(schedule: Schedule, plan: PhasePlan) -> None:
    """What every schedule promises, whatever the plan and the calendar."""
    in_person = schedule.in_person_dates
    # Exact lengths.
    assert len(in_person) == plan.in_person_days
    assert len(schedule.days_in_phase("self_study")) == plan.self_study_days
    assert len(schedule.days_in_phase("follow_up")) == plan.follow_up_days
    # In person only on working days.
    assert all(CALENDAR.is_working_day(x) for x in in_person)
    # In order, no overlap, each day in exactly the phase that lists it.
    ordered = [x for phase in PHASES for x in schedule.days_in_phase(phase)]
    assert ordered == sorted(set(ordered))
    for phase in PHASES:
        assert all(schedule.phase_on(x) == phase for x in schedule.days_in_phase(phase))
    # Online phases hug the in-person days.
    if plan.self_study_days:
        assert schedule.self_study_end == in_person[0] - timedelta(days=1)
    if plan.follow_up_days:
        assert schedule.follow_up_start == in_person[-1] + timedelta(days=1)
    assert schedule.start == ordered[0] and schedule.end == ordered[-1]


class TestScheduleProperties:
    @settings(max_examples=150, deadline=None)
    @given(plan=plans, start=starts)
    def test_from_start(self, plan: PhasePlan, start: date) -> None:
        schedule = schedule_from_start(start, plan, CALENDAR)
        assert_well_formed(schedule, plan)
        assert schedule.start >= start
        # The earliest possible: the first in-person day is the first working day that fits.
        first = schedule.in_person_dates[0]
        assert first == CALENDAR.next_working_day(start + timedelta(days=plan.self_study_days))
        assert list(schedule.in_person_dates) == CALENDAR.working_days_from(
            first, plan.in_person_days
        )

    @settings(max_examples=150, deadline=None)
    @given(data=st.data(), plan=plans)
    def test_from_in_person_days(self, data: st.DataObject, plan: PhasePlan) -> None:
        anchors = data.draw(in_person_anchors(plan))
        schedule = schedule_from_in_person(anchors, plan, CALENDAR)
        assert_well_formed(schedule, plan)
        assert schedule.in_person_dates == tuple(sorted(anchors))

    @settings(max_examples=150, deadline=None)
    @given(plan=plans, start=starts, delay=st.integers(min_value=0, max_value=60))
    def test_a_delayed_learner_never_starts_earlier(
        self, plan: PhasePlan, start: date, delay: int
    ) -> None:
        class_schedule = schedule_from_start(start, plan, CALENDAR)
        mine = shift_schedule(class_schedule, delay_days=delay, calendar=CALENDAR, plan=plan)
        assert_well_formed(mine, plan)
        assert mine.start >= class_schedule.start
        assert mine.end >= class_schedule.end
        assert all(
            m >= c + timedelta(days=delay)
            for m, c in zip(mine.in_person_dates, class_schedule.in_person_dates, strict=True)
        )

    @settings(max_examples=150, deadline=None)
    @given(data=st.data(), plan=plans, start=starts)
    def test_learner_chosen_days_are_accepted_only_if_not_earlier(
        self, data: st.DataObject, plan: PhasePlan, start: date
    ) -> None:
        class_schedule = schedule_from_start(start, plan, CALENDAR)
        anchors = data.draw(in_person_anchors(plan))
        try:
            mine = shift_schedule(
                class_schedule, new_in_person_dates=anchors, calendar=CALENDAR, plan=plan
            )
        except ScheduleError as error:
            assert error.code == "shift_earlier"
            assert (
                min(anchors) < class_schedule.in_person_dates[0]
                or max(anchors) < class_schedule.in_person_dates[-1]
            )
        else:
            assert_well_formed(mine, plan)
            assert mine.start >= class_schedule.start
            assert mine.in_person_dates[0] >= class_schedule.in_person_dates[0]
