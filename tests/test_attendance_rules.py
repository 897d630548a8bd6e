"""Attendance rules as plain functions: rotating check-in codes, session hours in Vietnam
time, the late threshold, and the order in which a check-in is refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from app.attendance.rules import (
    ACCEPTED_WINDOWS,
    REPLAY_LOOKBACK_WINDOWS,
    STEP_SECONDS,
    CheckinFacts,
    CodeCheck,
    Refusal,
    check_code,
    checkin_code,
    decide_checkin,
    device_shared,
    expires_in,
    normalise_code,
    session_period,
    session_state,
    status_at,
    window_of,
)
from app.attendance.service import attendance_points_of, qr_path
from app.grading.rules import MOODLE_ATTENDANCE_POINTS

SECRET = "ab" * 32
DAY = date(2026, 12, 3)
# 07:30 in Hanoi is 00:30 UTC.
MORNING_START = datetime(2026, 12, 3, 0, 30, tzinfo=UTC)


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    """A Vietnam wall-clock time on DAY, as aware UTC."""
    return datetime(2026, 12, 3, hh - 7, mm, ss, tzinfo=UTC)


class TestSessionHours:
    def test_morning_and_afternoon_in_vietnam_time(self) -> None:
        assert session_period(DAY, "morning") == (at(7, 30), at(11, 30))
        assert session_period(DAY, "afternoon") == (at(13, 30), at(17, 0))
        assert at(7, 30) == MORNING_START

    def test_unknown_part_is_an_error(self) -> None:
        with pytest.raises(ValueError):
            session_period(DAY, "evening")

    def test_state_before_during_after(self) -> None:
        start, end = session_period(DAY, "morning")
        assert session_state(at(7, 29), start, end) == "before"
        assert session_state(at(7, 30), start, end) == "during"
        assert session_state(at(11, 30), start, end) == "during"
        assert session_state(at(11, 31), start, end) == "after"

    def test_naive_time_is_refused(self) -> None:
        with pytest.raises(ValueError):
            window_of(datetime(2026, 12, 3, 1, 0))


class TestLateThreshold:
    def test_present_until_the_threshold_then_late(self) -> None:
        assert status_at(at(7, 45), MORNING_START, 15) == "present"
        assert status_at(at(7, 45, 1), MORNING_START, 15) == "late"
        assert status_at(at(7, 31), MORNING_START, 0) == "late"


class TestCodes:
    def test_six_digits_stable_and_different_per_window_session_and_secret(self) -> None:
        w = window_of(at(8, 0))
        code = checkin_code(SECRET, 7, w)
        assert len(code) == 6 and code.isdigit()
        assert checkin_code(SECRET, 7, w) == code
        assert checkin_code(SECRET, 7, w + 1) != code
        assert checkin_code(SECRET, 8, w) != code
        assert checkin_code("cd" * 32, 7, w) != code

    def test_codes_spread_over_the_digits(self) -> None:
        codes = {checkin_code(SECRET, 1, w) for w in range(2000)}
        assert len(codes) > 1990  # no short cycle, leading zeros kept
        assert any(c.startswith("0") for c in codes)

    def test_windows_are_fifteen_seconds(self) -> None:
        assert STEP_SECONDS == 15
        assert window_of(at(8, 0, 0)) == window_of(at(8, 0, 14))
        assert window_of(at(8, 0, 15)) == window_of(at(8, 0, 0)) + 1
        assert expires_in(at(8, 0, 0)) == 15
        assert expires_in(at(8, 0, 14)) == 1

    def test_typed_codes_are_normalised(self) -> None:
        assert normalise_code(" 123 456 ") == "123456"
        assert normalise_code("123-456") == "123456"
        assert normalise_code("12345") is None
        assert normalise_code("12345a") is None
        assert normalise_code("١٢٣٤٥٦") is None  # non-ASCII digits


class TestCodeCheck:
    def test_current_and_previous_window_are_accepted(self) -> None:
        now = at(8, 0, 20)
        w = window_of(now)
        assert check_code(checkin_code(SECRET, 5, w), SECRET, 5, now) == (CodeCheck.CURRENT, w)
        previous = checkin_code(SECRET, 5, w - 1)
        assert check_code(previous, SECRET, 5, now) == (CodeCheck.PREVIOUS, w - 1)
        assert ACCEPTED_WINDOWS == 2

    def test_an_earlier_window_is_a_replay(self) -> None:
        now = at(9, 0)
        w = window_of(now)
        for back in (2, 3, 40, REPLAY_LOOKBACK_WINDOWS):
            replay = checkin_code(SECRET, 5, w - back)
            assert check_code(replay, SECRET, 5, now) == (CodeCheck.EARLIER, w - back)

    def test_another_sessions_code_is_wrong(self) -> None:
        now = at(9, 0)
        other = checkin_code(SECRET, 6, window_of(now))
        assert check_code(other, SECRET, 5, now)[0] is CodeCheck.WRONG
        other_secret = checkin_code("cd" * 32, 5, window_of(now))
        assert check_code(other_secret, SECRET, 5, now)[0] is CodeCheck.WRONG

    def test_malformed(self) -> None:
        assert check_code("abc", SECRET, 5, at(9, 0)) == (CodeCheck.MALFORMED, None)

    def test_replays_are_only_looked_for_since_check_in_opened(self) -> None:
        now = at(9, 0)
        w = window_of(now)
        old = checkin_code(SECRET, 5, w - 10)
        assert check_code(old, SECRET, 5, now, opened_window=w - 20)[0] is CodeCheck.EARLIER
        assert check_code(old, SECRET, 5, now, opened_window=w - 5)[0] is CodeCheck.WRONG


class TestOnePersonPerDevice:
    def test_same_or_next_window_is_the_same_moment(self) -> None:
        assert device_shared([100], 100)
        assert device_shared([100], 101)
        assert device_shared([101], 100)
        assert not device_shared([100], 102)
        assert not device_shared([], 100)


def facts(**overrides: object) -> CheckinFacts:
    base: dict[str, object] = {
        "now": at(7, 40),
        "starts_at": at(7, 30),
        "ends_at": at(11, 30),
        "enrolled": True,
        "opened": True,
        "closed": False,
        "late_after_minutes": 15,
        "code_check": CodeCheck.CURRENT,
        "code_window": 1000,
        "current_status": None,
        "device_windows": (),
    }
    base.update(overrides)
    return CheckinFacts(**base)  # type: ignore[arg-type]


class TestDecision:
    def test_accepted_present_then_late(self) -> None:
        assert decide_checkin(facts()).status == "present"
        assert decide_checkin(facts(now=at(7, 50))).status == "late"
        assert decide_checkin(facts(code_check=CodeCheck.PREVIOUS)).accepted

    @pytest.mark.parametrize(
        ("overrides", "refusal"),
        [
            ({"enrolled": False}, Refusal.NOT_ENROLLED),
            ({"opened": False}, Refusal.NOT_OPEN),
            ({"closed": True}, Refusal.CLOSED),
            ({"now": at(7, 29)}, Refusal.NOT_STARTED),
            ({"now": at(11, 31)}, Refusal.ENDED),
            ({"code_check": CodeCheck.MALFORMED, "code_window": None}, Refusal.MALFORMED),
            ({"code_check": CodeCheck.EARLIER}, Refusal.CODE_CHANGED),
            ({"code_check": CodeCheck.WRONG, "code_window": None}, Refusal.WRONG_CODE),
            ({"device_windows": (999,)}, Refusal.SHARED_DEVICE),
        ],
    )
    def test_refusals(self, overrides: dict[str, object], refusal: Refusal) -> None:
        decision = decide_checkin(facts(**overrides))
        assert decision.refusal is refusal and not decision.accepted

    def test_a_learner_of_another_class_learns_nothing_about_the_code(self) -> None:
        decision = decide_checkin(facts(enrolled=False, code_check=CodeCheck.EARLIER))
        assert decision.refusal is Refusal.NOT_ENROLLED

    def test_already_present_is_idempotent(self) -> None:
        decision = decide_checkin(facts(current_status="late", code_check=CodeCheck.EARLIER))
        assert decision.accepted and decision.already and decision.status == "late"

    def test_a_manual_absent_is_replaced_by_a_check_in(self) -> None:
        decision = decide_checkin(facts(current_status="absent"))
        assert decision.accepted and not decision.already and decision.status == "present"

    def test_the_device_of_a_much_earlier_check_in_is_free_again(self) -> None:
        assert decide_checkin(facts(device_windows=(990,))).accepted


class TestPointsAndQr:
    def test_module_points_or_moodle_defaults(self) -> None:
        assert attendance_points_of({}) == MOODLE_ATTENDANCE_POINTS
        spec = {"assessment": {"attendance_points": {"present": 3.0, "late": 2.0}}}
        points = attendance_points_of(spec)
        assert (points.present, points.late, points.excused) == (3, 2, 1)

    def test_qr_is_one_square_path(self) -> None:
        size, path = qr_path("https://tool.test/attendance/checkin/1?c=123456")
        assert size >= 21 + 8 and path.startswith("M4 4h7")  # finder pattern in the corner
        assert set(path) <= set("0123456789Mhvz- ")

    def test_windows_do_not_depend_on_the_time_zone(self) -> None:
        vn = at(8, 0).astimezone(datetime.now(UTC).astimezone().tzinfo)
        assert window_of(vn) == window_of(at(8, 0))
        assert window_of(at(8, 0) + timedelta(seconds=STEP_SECONDS)) == window_of(at(8, 0)) + 1
