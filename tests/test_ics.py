"""The iCalendar feeds as a calendar app reads them: parsed back with ``icalendar``."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from app.schedule.calendar import HolidayCalendar
from app.schedule.ics import (
    PRODID,
    CalendarEvent,
    SessionSlot,
    build_calendar,
    schedule_events,
)
from app.schedule.rules import PhasePlan, schedule_from_in_person, shift_schedule

CALENDAR = HolidayCalendar.vietnam(range(2025, 2027))
PLAN = PhasePlan()
VN = ZoneInfo("Asia/Ho_Chi_Minh")
STAMP = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
MONDAY, TUESDAY = date(2025, 3, 10), date(2025, 3, 11)
CLASS = schedule_from_in_person([MONDAY, TUESDAY], PLAN, CALENDAR)
SESSIONS = [
    SessionSlot(MONDAY, "morning", "Trường THCS Nguyễn Du, phòng 3; tầng 2"),
    SessionSlot(MONDAY, "afternoon", "Trường THCS Nguyễn Du, phòng 3; tầng 2"),
    SessionSlot(TUESDAY, "morning", None, "https://meet.example.vn/abc"),
    SessionSlot(TUESDAY, "afternoon", None, "https://meet.example.vn/abc"),
]


def feed(schedule=CLASS, sessions=SESSIONS, prefix="b727-test-class-42") -> Calendar:
    events = schedule_events(
        schedule, class_name="Mô-đun 2, lớp A", uid_prefix=prefix, sessions=sessions
    )
    return Calendar.from_ical(build_calendar("Lớp A – Mô-đun 2", events, stamp=STAMP))


def by_uid(calendar: Calendar) -> dict[str, object]:
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


class TestClassFeed:
    def test_feed_header(self) -> None:
        calendar = feed()
        assert str(calendar["PRODID"]) == PRODID
        assert str(calendar["VERSION"]) == "2.0"
        assert str(calendar["METHOD"]) == "PUBLISH"
        assert str(calendar["X-WR-CALNAME"]) == "Lớp A – Mô-đun 2"
        assert str(calendar["X-WR-TIMEZONE"]) == "Asia/Ho_Chi_Minh"

    def test_one_event_per_phase_and_session(self) -> None:
        events = by_uid(feed())
        assert sorted(events) == [
            "b727-test-class-42-follow-up",
            "b727-test-class-42-in-person-1-afternoon",
            "b727-test-class-42-in-person-1-morning",
            "b727-test-class-42-in-person-2-afternoon",
            "b727-test-class-42-in-person-2-morning",
            "b727-test-class-42-self-study",
        ]

    def test_online_phases_are_all_day_with_an_exclusive_end(self) -> None:
        events = by_uid(feed())
        self_study = events["b727-test-class-42-self-study"]
        assert self_study.decoded("DTSTART") == date(2025, 3, 3)
        # The last self-study day is Sunday 9 March; RFC 5545 ends all-day events the day after.
        assert self_study.decoded("DTEND") == date(2025, 3, 10)
        assert not isinstance(self_study.decoded("DTEND"), datetime)
        follow_up = events["b727-test-class-42-follow-up"]
        assert (follow_up.decoded("DTSTART"), follow_up.decoded("DTEND")) == (
            date(2025, 3, 12),
            date(2025, 3, 19),
        )
        assert str(self_study["TRANSP"]) == "TRANSPARENT"

    def test_sessions_are_timed_in_vietnam_time(self) -> None:
        calendar = feed()
        morning = by_uid(calendar)["b727-test-class-42-in-person-1-morning"]
        start, end = morning.decoded("DTSTART"), morning.decoded("DTEND")
        assert morning["DTSTART"].params["TZID"] == "Asia/Ho_Chi_Minh"
        assert (start.time(), end.time()) == (time(7, 30), time(11, 30))
        assert start.astimezone(UTC) == datetime(2025, 3, 10, 0, 30, tzinfo=UTC)
        afternoon = by_uid(calendar)["b727-test-class-42-in-person-1-afternoon"]
        assert afternoon.decoded("DTSTART") == datetime(2025, 3, 10, 13, 30, tzinfo=VN)
        assert afternoon.decoded("DTEND") == datetime(2025, 3, 10, 17, 0, tzinfo=VN)
        assert str(morning["TRANSP"]) == "OPAQUE"
        # The zone is defined in the feed, so an app need not know it.
        (zone,) = calendar.walk("VTIMEZONE")
        assert str(zone["TZID"]) == "Asia/Ho_Chi_Minh"
        (standard,) = zone.walk("STANDARD")
        assert standard.decoded("TZOFFSETTO") == timedelta(hours=7)

    def test_place_and_virtual_classroom(self) -> None:
        events = by_uid(feed())
        room = events["b727-test-class-42-in-person-1-morning"]
        assert str(room["LOCATION"]) == "Trường THCS Nguyễn Du, phòng 3; tầng 2"
        online = events["b727-test-class-42-in-person-2-morning"]
        assert str(online["URL"]) == "https://meet.example.vn/abc"
        assert "https://meet.example.vn/abc" in str(online["DESCRIPTION"])
        assert str(online["SUMMARY"]) == "In-person day 2, morning: Mô-đun 2, lớp A"

    def test_an_in_person_day_without_sessions_is_still_in_the_feed(self) -> None:
        events = by_uid(feed(sessions=SESSIONS[:2]))
        day_two = events["b727-test-class-42-in-person-2"]
        assert day_two.decoded("DTSTART") == TUESDAY
        assert day_two.decoded("DTEND") == TUESDAY + timedelta(days=1)
        assert str(day_two["TRANSP"]) == "OPAQUE"
        assert len(events) == 5

    def test_dtstamp_is_utc(self) -> None:
        for event in feed().walk("VEVENT"):
            assert event.decoded("DTSTAMP") == STAMP


class TestSubscribedCalendarsUpdate:
    def test_same_data_same_bytes(self) -> None:
        events = schedule_events(CLASS, class_name="A", uid_prefix="p", sessions=SESSIONS)
        assert build_calendar("A", events, stamp=STAMP) == build_calendar("A", events, stamp=STAMP)

    def test_moved_days_keep_their_uids(self) -> None:
        moved = schedule_from_in_person([date(2025, 3, 17), date(2025, 3, 18)], PLAN, CALENDAR)
        moved_sessions = [
            SessionSlot(s.date + timedelta(days=7), s.part, s.place, s.virtual_url)
            for s in SESSIONS
        ]
        before, after = by_uid(feed()), by_uid(feed(moved, moved_sessions))
        assert before.keys() == after.keys()
        uid = "b727-test-class-42-in-person-1-morning"
        assert after[uid].decoded("DTSTART") == datetime(2025, 3, 17, 7, 30, tzinfo=VN)

    def test_duplicate_uids_are_refused(self) -> None:
        event = CalendarEvent("same", "A", date(2025, 3, 3), date(2025, 3, 3))
        with pytest.raises(ValueError, match="duplicate"):
            build_calendar("A", [event, event])


class TestLearnerFeed:
    def test_a_shifted_learner_gets_own_dates_and_uids(self) -> None:
        mine = shift_schedule(CLASS, delay_days=7, calendar=CALENDAR, plan=PLAN)
        events = by_uid(feed(mine, SESSIONS, prefix="b727-test-enrolment-7"))
        # The class's sessions are on other days, so the learner's days are all-day events.
        assert sorted(events) == [
            "b727-test-enrolment-7-follow-up",
            "b727-test-enrolment-7-in-person-1",
            "b727-test-enrolment-7-in-person-2",
            "b727-test-enrolment-7-self-study",
        ]
        assert events["b727-test-enrolment-7-in-person-1"].decoded("DTSTART") == date(2025, 3, 17)

    def test_titles_go_through_the_translation(self) -> None:
        def shout(message: str, /, **params: object) -> str:
            return (message % params).upper()

        events = schedule_events(
            CLASS, class_name="a", uid_prefix="p", sessions=(), translate=shout
        )
        assert events[0].title == "SELF-STUDY (ONLINE): A"

    def test_zero_day_phases_have_no_event(self) -> None:
        schedule = schedule_from_in_person([MONDAY, TUESDAY], PhasePlan(0, 2, 0), CALENDAR)
        events = schedule_events(schedule, class_name="a", uid_prefix="p", sessions=SESSIONS)
        assert [e.uid for e in events] == [
            "p-in-person-1-morning",
            "p-in-person-1-afternoon",
            "p-in-person-2-morning",
            "p-in-person-2-afternoon",
        ]
        # No timed event without the zone definition, and none with only all-day events.
        only_days = schedule_events(schedule, class_name="a", uid_prefix="p", sessions=())
        assert (
            Calendar.from_ical(build_calendar("a", only_days, stamp=STAMP)).walk("VTIMEZONE") == []
        )


class TestCalendarEvent:
    def test_timed_events_in_another_zone_are_written_in_vietnam_time(self) -> None:
        start = datetime(2025, 3, 10, 0, 30, tzinfo=UTC)
        event = CalendarEvent("u", "t", start, start + timedelta(hours=4))
        parsed = Calendar.from_ical(build_calendar("a", [event], stamp=STAMP))
        (vevent,) = parsed.walk("VEVENT")
        assert vevent["DTSTART"].params["TZID"] == "Asia/Ho_Chi_Minh"
        assert vevent.decoded("DTSTART") == datetime(2025, 3, 10, 7, 30, tzinfo=VN)

    @pytest.mark.parametrize(
        ("start", "end"),
        [
            (date(2025, 3, 3), date(2025, 3, 2)),
            (datetime(2025, 3, 3, 8, tzinfo=VN), datetime(2025, 3, 3, 8, tzinfo=VN)),
            (datetime(2025, 3, 3, 8), datetime(2025, 3, 3, 9)),  # naive
            (date(2025, 3, 3), datetime(2025, 3, 3, 9, tzinfo=VN)),
        ],
    )
    def test_impossible_events_are_refused(self, start: date, end: date) -> None:
        with pytest.raises(ValueError):
            CalendarEvent("u", "t", start, end)

    def test_two_sessions_in_one_slot_are_refused(self) -> None:
        with pytest.raises(ValueError):
            schedule_events(
                CLASS, class_name="a", uid_prefix="p", sessions=[SESSIONS[0], SESSIONS[0]]
            )

    def test_unknown_part_of_day_is_refused(self) -> None:
        with pytest.raises(ValueError):
            SessionSlot(MONDAY, "evening")  # type: ignore[arg-type]
