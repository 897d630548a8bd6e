"""Attendance rules: plain functions over plain data, tested without HTTP or a database.

Statuses
    ``present``, ``late``, ``excused``, ``absent`` — the marks of Moodle's Attendance plugin,
    scored by :func:`app.grading.rules.attendance_score`.

Session hours
    A session is the morning (07:30–11:30) or the afternoon (13:30–17:00) of an in-person
    day, in Asia/Ho_Chi_Minh. Check-in is accepted only inside those hours *and* while the
    core trainer has check-in open for the session.

Check-in codes (TOTP-like, RFC 6238 with a 15-second step)
    Each session that opens check-in gets a random secret. Time is cut into windows of
    :data:`STEP_SECONDS`; the code of window ``w`` is 6 decimal digits taken from
    ``HMAC-SHA256(secret, f"{session_id}:{w}")`` by RFC 4226 dynamic truncation. The
    trainer's screen shows the code of the current window (as digits and as a QR code of
    ``/attendance/checkin/{session_id}?c=<code>``).

    Accepted: the code of the **current** window, and of the **previous** one — a learner
    who scans in the last second of a window still needs a moment to load the page and tap
    "Check in", so a code lives between 15 and 30 seconds. Refused, with distinct reasons:
    a code of an earlier window of the same session ("the code has changed": replayed,
    photographed or forwarded), and any other code (another session's or class's, or a typo).

One person per device at a time
    A check-in records the device (a long-lived cookie of the browser, independent of the
    launch) and the code's window. A second *person* checking in from the same device with
    a code of the same moment (the same window, or the one next to it) is refused: that is
    one phone passing the code round. The same person again is idempotent ("already").
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from app.core.time import VN_TZ

STEP_SECONDS = 15
CODE_DIGITS = 6
#: The current window and the one before it (scan and page-load delay).
ACCEPTED_WINDOWS = 2
#: How far back a code is still recognised as "an earlier code of this session" (4 hours).
REPLAY_LOOKBACK_WINDOWS = 4 * 3600 // STEP_SECONDS
#: The late threshold a trainer may set, in minutes after the session starts.
LATE_AFTER_DEFAULT = 15
LATE_AFTER_MAX = 240
MAX_NOTE_CHARS = 500

SESSION_HOURS: dict[str, tuple[time, time]] = {
    "morning": (time(7, 30), time(11, 30)),
    "afternoon": (time(13, 30), time(17, 0)),
}


class Status(StrEnum):
    PRESENT = "present"
    LATE = "late"
    EXCUSED = "excused"
    ABSENT = "absent"


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
#: Statuses that mean the learner was in the room (a check-in changes nothing then).
ATTENDED: frozenset[str] = frozenset({Status.PRESENT, Status.LATE})


class CodeCheck(StrEnum):
    CURRENT = "current"
    PREVIOUS = "previous"
    EARLIER = "earlier"
    WRONG = "wrong"
    MALFORMED = "malformed"


class Refusal(StrEnum):
    """Why a check-in is refused; each has its own message (see the service)."""

    NOT_ENROLLED = "not_enrolled"
    NOT_OPEN = "checkin_not_open"
    CLOSED = "checkin_closed"
    NOT_STARTED = "session_not_started"
    ENDED = "session_ended"
    MALFORMED = "code_malformed"
    CODE_CHANGED = "code_changed"
    WRONG_CODE = "code_wrong"
    SHARED_DEVICE = "shared_device"


# -- time ----------------------------------------------------------------------------------


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now


def session_period(day: date, part: str) -> tuple[datetime, datetime]:
    """Start and end of a session as aware UTC datetimes (hours in Asia/Ho_Chi_Minh)."""
    try:
        start, end = SESSION_HOURS[part]
    except KeyError:
        raise ValueError(f"unknown session part {part!r}") from None
    return (
        datetime.combine(day, start, VN_TZ).astimezone(UTC),
        datetime.combine(day, end, VN_TZ).astimezone(UTC),
    )


def window_of(now: datetime) -> int:
    """The number of the 15-second window ``now`` falls in (Unix time // step)."""
    return int(_aware(now).timestamp()) // STEP_SECONDS


def expires_in(now: datetime) -> int:
    """Whole seconds until the current window ends (1 to :data:`STEP_SECONDS`)."""
    elapsed = _aware(now).timestamp() % STEP_SECONDS
    return max(1, int(STEP_SECONDS - elapsed + 0.999))


def status_at(now: datetime, starts_at: datetime, late_after_minutes: int) -> Status:
    """``late`` once more than the threshold has passed since the start, else ``present``."""
    if now > starts_at + timedelta(minutes=late_after_minutes):
        return Status.LATE
    return Status.PRESENT


# -- codes ---------------------------------------------------------------------------------


def checkin_code(secret: str, session_id: int, window: int) -> str:
    """The 6-digit code of one window of one session (RFC 4226 dynamic truncation)."""
    digest = hmac.new(
        secret.encode("ascii"), f"{session_id}:{window}".encode("ascii"), hashlib.sha256
    ).digest()
    offset = digest[-1] & 0x0F
    number = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(number % 10**CODE_DIGITS).zfill(CODE_DIGITS)


def normalise_code(typed: str) -> str | None:
    """The code as 6 digits (spaces and dashes people type are dropped), or ``None``."""
    digits = "".join(ch for ch in typed if ch not in " -\u00a0\t")
    if len(digits) != CODE_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits


def check_code(
    typed: str, secret: str, session_id: int, now: datetime, opened_window: int | None = None
) -> tuple[CodeCheck, int | None]:
    """Which window a typed code belongs to: ``(verdict, code window)``.

    ``CURRENT``/``PREVIOUS`` are accepted. ``EARLIER``: a code this session showed before
    (since it opened, at most :data:`REPLAY_LOOKBACK_WINDOWS` back). ``WRONG``: any other
    six digits. ``MALFORMED``: not six digits.
    """
    code = normalise_code(typed)
    if code is None:
        return CodeCheck.MALFORMED, None
    current = window_of(now)
    for verdict, window in ((CodeCheck.CURRENT, current), (CodeCheck.PREVIOUS, current - 1)):
        if hmac.compare_digest(code, checkin_code(secret, session_id, window)):
            return verdict, window
    oldest = current - REPLAY_LOOKBACK_WINDOWS
    if opened_window is not None:
        oldest = max(oldest, opened_window - 1)
    for window in range(current - 2, oldest - 1, -1):
        if hmac.compare_digest(code, checkin_code(secret, session_id, window)):
            return CodeCheck.EARLIER, window
    return CodeCheck.WRONG, None


def same_moment(window_a: int, window_b: int) -> bool:
    """Two code windows close enough to be the same code on the screen."""
    return abs(window_a - window_b) < ACCEPTED_WINDOWS


def device_shared(other_people_windows: Iterable[int], window: int) -> bool:
    """Whether this device checked in someone else with a code of the same moment."""
    return any(same_moment(w, window) for w in other_people_windows)


# -- decisions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckinFacts:
    """Everything a check-in decision needs, gathered by the service."""

    now: datetime
    starts_at: datetime
    ends_at: datetime
    enrolled: bool
    opened: bool
    closed: bool
    late_after_minutes: int
    code_check: CodeCheck
    code_window: int | None
    current_status: str | None
    #: Code windows of the check-ins of *other* people from this device, this session.
    device_windows: tuple[int, ...] = ()


@dataclass(frozen=True)
class CheckinDecision:
    refusal: Refusal | None = None
    #: The status to record (``present``/``late``), or the one already held when ``already``.
    status: str | None = None
    already: bool = False

    @property
    def accepted(self) -> bool:
        return self.refusal is None


def decide_checkin(facts: CheckinFacts) -> CheckinDecision:
    """Accept or refuse a check-in. Checked in this order: enrolment, check-in open, session
    hours, already present (idempotent), the code, one person per device at a time."""
    now = _aware(facts.now)
    if not facts.enrolled:
        return CheckinDecision(Refusal.NOT_ENROLLED)
    if not facts.opened:
        return CheckinDecision(Refusal.NOT_OPEN)
    if facts.closed:
        return CheckinDecision(Refusal.CLOSED)
    if now < facts.starts_at:
        return CheckinDecision(Refusal.NOT_STARTED)
    if now > facts.ends_at:
        return CheckinDecision(Refusal.ENDED)
    if facts.current_status in ATTENDED:
        return CheckinDecision(status=facts.current_status, already=True)
    if facts.code_check is CodeCheck.MALFORMED:
        return CheckinDecision(Refusal.MALFORMED)
    if facts.code_check is CodeCheck.EARLIER:
        return CheckinDecision(Refusal.CODE_CHANGED)
    if facts.code_check is CodeCheck.WRONG or facts.code_window is None:
        return CheckinDecision(Refusal.WRONG_CODE)
    if device_shared(facts.device_windows, facts.code_window):
        return CheckinDecision(Refusal.SHARED_DEVICE)
    return CheckinDecision(status=status_at(now, facts.starts_at, facts.late_after_minutes))


def session_state(now: datetime, starts_at: datetime, ends_at: datetime) -> str:
    """``before``, ``during`` or ``after`` the session's hours."""
    now = _aware(now)
    if now < starts_at:
        return "before"
    if now > ends_at:
        return "after"
    return "during"
