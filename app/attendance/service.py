"""Attendance operations: the core trainer's marking sheet, check-in windows and their
rotating codes, learners' self check-in, and each learner's attendance score.

Who may do what:

* mark, open or close check-in, see the codes, read the sheet and the scores: the core
  trainer of a cohort in the session's class (for the learners of their cohorts) or an
  administrator (for the whole class); anyone else gets 403;
* check in: a learner enrolled (active) in the session's class, for themselves only.

Every refusal raises before anything is written (the request then commits nothing).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import segno
from sqlalchemy.orm import Session

from app.attendance.models import (
    AttendanceChange,
    AttendanceMark,
    CheckinRecord,
    CheckinWindow,
    MarkSource,
)
from app.attendance.repository import AttendanceRepository
from app.attendance.rules import (
    LATE_AFTER_MAX,
    MAX_NOTE_CHARS,
    STATUSES,
    STEP_SECONDS,
    CheckinFacts,
    CodeCheck,
    Refusal,
    check_code,
    checkin_code,
    decide_checkin,
    expires_in,
    session_period,
    session_state,
    window_of,
)
from app.audit.rules import Actor, Subject
from app.audit.service import AuditLog, actor_of
from app.auth.dependencies import Viewer
from app.classes.models import ClassSession, Enrolment, TrainingClass
from app.classes.repository import ClassRepository
from app.core.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed
from app.core.time import local, utcnow
from app.grading.rules import MOODLE_ATTENDANCE_POINTS, AttendancePoints, attendance_score
from app.identity.models import Role, User

DEVICE_COOKIE = "blend727_device"
DEVICE_COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest browsers keep a cookie


def clock() -> datetime:
    """The current time; a FastAPI dependency so that tests can set the clock."""
    return utcnow()


def device_hash(token: str) -> str:
    return hashlib.sha256(f"device:{token}".encode()).hexdigest()


def new_device_token() -> str:
    return secrets.token_urlsafe(24)


def valid_device_token(token: str | None) -> bool:
    return bool(token) and 16 <= len(token or "") <= 64 and (token or "").isascii()


# -- views ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionInfo:
    session: ClassSession
    cls: TrainingClass
    starts_at: datetime
    ends_at: datetime

    @property
    def virtual(self) -> bool:
        return self.session.virtual_url is not None

    @property
    def local_start(self) -> str:
        return local(self.starts_at).strftime("%H:%M")

    @property
    def local_end(self) -> str:
        return local(self.ends_at).strftime("%H:%M")


def _info(row: ClassSession, cls: TrainingClass) -> SessionInfo:
    starts_at, ends_at = session_period(row.date, row.part)
    return SessionInfo(row, cls, starts_at, ends_at)


@dataclass(frozen=True)
class SheetRow:
    enrolment_id: int
    user_id: int
    name: str
    school: str | None
    status: str | None
    note: str | None
    source: str | None
    marked_at: datetime | None
    checked_in_at: datetime | None


@dataclass(frozen=True)
class Sheet:
    info: SessionInfo
    rows: list[SheetRow]
    sessions: list[ClassSession]
    window: CheckinWindow | None
    whole_class: bool
    state: str
    now: datetime

    @property
    def checkin_open(self) -> bool:
        return self.window is not None and self.window.closed_at is None

    @property
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys((*STATUSES, "unmarked"), 0)
        for row in self.rows:
            out[row.status or "unmarked"] += 1
        return out


@dataclass(frozen=True)
class MarkInput:
    """One learner's mark; ``note`` ``None`` keeps the note there is, ``""`` clears it."""

    enrolment_id: int
    status: str
    note: str | None = None


@dataclass(frozen=True)
class CheckinResult:
    info: SessionInfo
    status: str
    already: bool


@dataclass(frozen=True)
class CodeView:
    info: SessionInfo
    open: bool
    state: str
    code: str | None
    window: int | None
    expires_in: int
    url: str | None
    qr_size: int
    qr_path: str
    checked_in: int
    late_after_minutes: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "session_id": self.info.session.id,
            "open": self.open,
            "state": self.state,
            "code": self.code,
            "window": self.window,
            "step_seconds": STEP_SECONDS,
            "expires_in": self.expires_in,
            "url": self.url,
            "qr": {"size": self.qr_size, "path": self.qr_path},
            "checked_in": self.checked_in,
            "late_after_minutes": self.late_after_minutes,
        }


@dataclass(frozen=True)
class EnrolmentScore:
    enrolment_id: int
    user_id: int
    name: str
    marks: list[str | None]
    score: Decimal | None


@dataclass(frozen=True)
class LearnerSession:
    info: SessionInfo
    open: bool
    state: str
    status: str | None


def qr_path(text: str) -> tuple[int, str]:
    """A QR code of ``text`` as one SVG path (dark modules, a 4-module quiet zone):
    ``(size in modules, path data)``. Drawn into a ``viewBox`` by the page, so it scales to
    any screen without a style sheet."""
    rows = [tuple(r) for r in segno.make(text, error="m").matrix_iter(scale=1, border=4)]
    parts: list[str] = []
    for y, row in enumerate(rows):
        x, width = 0, len(row)
        while x < width:
            if row[x]:
                start = x
                while x < width and row[x]:
                    x += 1
                parts.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    return len(rows), "".join(parts)


def attendance_points_of(spec: Mapping[str, Any]) -> AttendancePoints:
    """The module version's points per status; Moodle's defaults when it names none."""
    raw = (spec.get("assessment") or {}).get("attendance_points")
    if not raw:
        return MOODLE_ATTENDANCE_POINTS

    def dec(name: str) -> Decimal:
        value = raw.get(name, getattr(MOODLE_ATTENDANCE_POINTS, name))
        return Decimal(repr(float(value)))

    return AttendancePoints(
        present=dec("present"), late=dec("late"), excused=dec("excused"), absent=dec("absent")
    )


def checkin_url(base_url: str, session_id: int, code: str) -> str:
    return f"{base_url.rstrip('/')}/attendance/checkin/{session_id}?c={code}"


# -- refusals ------------------------------------------------------------------------------


def refusal_error(refusal: Refusal, info: SessionInfo) -> AppError:
    """The error a learner sees for a refused check-in: what happened and what to do."""
    times = {"start": info.local_start, "end": info.local_end, "seconds": STEP_SECONDS}
    if refusal is Refusal.NOT_ENROLLED:
        return Forbidden(
            title="You are not a learner of this class",
            detail="Only learners enrolled in this class can check in to its sessions.",
            advice="Open blend727 from your own course in the LMS, or ask your core trainer.",
            code=refusal.value,
        )
    if refusal is Refusal.NOT_OPEN:
        return Conflict(
            title="Check-in is not open",
            detail="The core trainer has not opened check-in for this session.",
            advice="Ask your core trainer to show the check-in code.",
            code=refusal.value,
        )
    if refusal is Refusal.CLOSED:
        return Conflict(
            title="Check-in is closed",
            detail="The core trainer has closed check-in for this session.",
            advice="Ask your core trainer to mark your attendance.",
            code=refusal.value,
        )
    if refusal is Refusal.NOT_STARTED:
        return Conflict(
            title="The session has not started",
            detail="Check-in opens when the session starts at %(start)s.",
            advice="Scan the code again once the session has started.",
            code=refusal.value,
            params=times,
        )
    if refusal is Refusal.ENDED:
        return Conflict(
            title="The session has ended",
            detail="Check-in closed when the session ended at %(end)s.",
            advice="Ask your core trainer to mark your attendance.",
            code=refusal.value,
            params=times,
        )
    if refusal is Refusal.MALFORMED:
        return ValidationFailed(
            title="The code is not valid",
            detail="A check-in code has 6 digits.",
            advice="Type the 6 digits shown on the core trainer's screen.",
            code=refusal.value,
            params={"field": "code"},
        )
    if refusal is Refusal.CODE_CHANGED:
        return Conflict(
            title="The code has changed",
            detail=(
                "This code was shown earlier; the code changes every %(seconds)s seconds, "
                "so only the one on the screen now is accepted."
            ),
            advice="Scan the code on the screen again.",
            code=refusal.value,
            params=times,
        )
    if refusal is Refusal.WRONG_CODE:
        return ValidationFailed(
            title="This code is not for this session",
            detail="The code does not belong to this session of this class.",
            advice="Scan the code shown in your own session, or type it again.",
            code=refusal.value,
            params={"field": "code"},
        )
    return Conflict(
        title="This device has just checked in someone else",
        detail=(
            "Each learner checks in from their own device: the same code cannot check in a "
            "second person from the same device."
        ),
        advice="Check in from your own phone, or ask your core trainer to mark you.",
        code=Refusal.SHARED_DEVICE.value,
    )


def _not_a_marker() -> Forbidden:
    return Forbidden(
        detail=(
            "Only the core trainer of a cohort in this class, or an administrator, can take "
            "its attendance."
        )
    )


# -- the service ---------------------------------------------------------------------------


class AttendanceService:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.repo = AttendanceRepository(session)
        self.classes = ClassRepository(session)

    # -- access ----------------------------------------------------------------------------
    def _session(self, viewer: Viewer, session_id: int, *, lock: bool = False) -> SessionInfo:
        found = self.repo.session_and_class(viewer.deployment_id, session_id, lock=lock)
        if found is None:
            raise NotFound()
        return _info(*found)

    def _scope(self, viewer: Viewer, cls: TrainingClass) -> list[int] | None:
        """The cohorts the viewer marks in this class; ``None``: the whole class (admin)."""
        if viewer.role == Role.ADMIN:
            return None
        if viewer.role == Role.TRAINER:
            cohort_ids = self.classes.trainer_cohort_ids(cls.id, viewer.user.id)
            if cohort_ids:
                return cohort_ids
        raise _not_a_marker()

    def default_session(self, viewer: Viewer, class_id: int, now: datetime) -> int:
        """The session a trainer most likely wants: the one running now, else the next one,
        else the last one."""
        cls = self.repo.get_class(viewer.deployment_id, class_id)
        if cls is None:
            raise NotFound()
        self._scope(viewer, cls)
        sessions = list(self.repo.sessions(cls.id))
        if not sessions:
            raise NotFound(detail="This class has no sessions yet.")
        for row in sessions:
            _, ends_at = session_period(row.date, row.part)
            if now <= ends_at:
                return row.id
        return sessions[-1].id

    # -- the marking sheet -----------------------------------------------------------------
    def sheet(self, viewer: Viewer, session_id: int, now: datetime) -> Sheet:
        info = self._session(viewer, session_id)
        scope = self._scope(viewer, info.cls)
        marks = self.repo.marks(info.session.id)
        roster = self.classes.roster(info.cls.id, scope)
        checkins = self.repo.checkins(info.session.id, [e.id for e, _ in roster])
        rows = []
        for enrolment, user in roster:
            mark = marks.get(enrolment.id)
            checkin = checkins.get(enrolment.id)
            rows.append(
                SheetRow(
                    enrolment_id=enrolment.id,
                    user_id=user.id,
                    name=user.display_name,
                    school=user.school,
                    status=mark.status if mark else None,
                    note=mark.note if mark else None,
                    source=mark.source if mark else None,
                    marked_at=mark.marked_at if mark else None,
                    checked_in_at=checkin.at if checkin else None,
                )
            )
        return Sheet(
            info=info,
            rows=rows,
            sessions=list(self.repo.sessions(info.cls.id)),
            window=self.repo.window(info.session.id),
            whole_class=scope is None,
            state=session_state(now, info.starts_at, info.ends_at),
            now=now,
        )

    def save_marks(
        self,
        viewer: Viewer,
        session_id: int,
        entries: Sequence[MarkInput],
        now: datetime,
        *,
        rest: str | None = None,
    ) -> int:
        """Set the marks of learners the viewer is responsible for; ``rest`` marks everyone
        of the sheet who has no mark yet and is not in ``entries``. Returns how many marks
        changed; every change is written to the history."""
        info = self._session(viewer, session_id, lock=True)
        scope = self._scope(viewer, info.cls)
        roster = {e.id: e for e, _ in self.classes.roster(info.cls.id, scope)}
        wanted: dict[int, MarkInput] = {}
        for entry in entries:
            if entry.enrolment_id not in roster:
                raise Forbidden(
                    detail="You can only mark the learners of your own cohort in this class."
                )
            _check_status(entry.status, f"marks[{entry.enrolment_id}].status")
            if entry.note is not None and len(entry.note.strip()) > MAX_NOTE_CHARS:
                raise ValidationFailed(
                    "A note is longer than %(max)s characters",
                    params={"max": MAX_NOTE_CHARS, "field": f"marks[{entry.enrolment_id}].note"},
                )
            wanted[entry.enrolment_id] = entry
        marks = self.repo.marks(info.session.id)
        if rest is not None:
            _check_status(rest, "rest")
            for enrolment_id in roster:
                if enrolment_id not in wanted and enrolment_id not in marks:
                    wanted[enrolment_id] = MarkInput(enrolment_id, rest)
        changed = 0
        touched: list[int] = []
        for entry in wanted.values():
            existing = marks.get(entry.enrolment_id)
            if self._write_mark(
                info.session.id,
                roster[entry.enrolment_id],
                existing,
                status=entry.status,
                note=entry.note,
                source=MarkSource.MANUAL,
                by_user_id=viewer.user.id,
                now=now,
                reason=None,
                actor=actor_of(viewer),
                info=info,
            ):
                changed += 1
                touched.append(entry.enrolment_id)
        self.repo.flush()
        if touched:
            _refresh_results(self.session, info.cls.id, touched, now)
        return changed

    def _write_mark(
        self,
        session_id: int,
        enrolment: Enrolment,
        existing: AttendanceMark | None,
        *,
        status: str,
        note: str | None,
        source: str,
        by_user_id: int,
        now: datetime,
        reason: str | None,
        actor: Actor,
        info: SessionInfo,
    ) -> bool:
        old_note = existing.note if existing else None
        new_note = old_note if note is None else (note.strip() or None)
        if existing is not None and existing.status == status and old_note == new_note:
            return False
        learner = self.session.get(User, enrolment.user_id)
        AuditLog(self.session).record(
            actor,
            "attendance.checkin" if source == MarkSource.CHECKIN else "attendance.mark",
            Subject(
                "enrolment", enrolment.id, learner.display_name if learner else None, info.cls.id
            ),
            {"status": existing.status if existing else None, "note": old_note},
            {"status": status, "note": new_note},
            context={"session": f"{info.session.date.isoformat()} {info.session.part}"},
        )
        self.repo.add(
            AttendanceChange(
                session_id=session_id,
                enrolment_id=enrolment.id,
                old_status=existing.status if existing else None,
                new_status=status,
                old_note=old_note,
                new_note=new_note,
                source=source,
                reason=reason,
                by_user_id=by_user_id,
                at=now,
            )
        )
        if existing is None:
            self.repo.add(
                AttendanceMark(
                    session_id=session_id,
                    enrolment_id=enrolment.id,
                    status=status,
                    note=new_note,
                    source=source,
                    marked_by_user_id=by_user_id,
                    marked_at=now,
                )
            )
        else:
            existing.status = status
            existing.note = new_note
            existing.source = source
            existing.marked_by_user_id = by_user_id
            existing.marked_at = now
        return True

    def history(
        self, viewer: Viewer, session_id: int
    ) -> list[tuple[AttendanceChange, User | None]]:
        info = self._session(viewer, session_id)
        scope = self._scope(viewer, info.cls)
        enrolment_ids = (
            None if scope is None else [e.id for e, _ in self.classes.roster(info.cls.id, scope)]
        )
        return list(self.repo.changes(info.session.id, enrolment_ids))

    # -- check-in windows ------------------------------------------------------------------
    def open_checkin(
        self, viewer: Viewer, session_id: int, late_after_minutes: int, now: datetime
    ) -> CheckinWindow:
        """Open (or reopen) check-in; the secret stays for the session's life, so codes
        shown before a reopening still count as earlier codes."""
        if not 0 <= late_after_minutes <= LATE_AFTER_MAX:
            raise ValidationFailed(
                "The late threshold must be from 0 to %(max)s minutes",
                params={"max": LATE_AFTER_MAX, "field": "late_after_minutes"},
            )
        info = self._session(viewer, session_id, lock=True)
        self._scope(viewer, info.cls)
        if now > info.ends_at:
            raise Conflict(
                title="The session has ended",
                detail="Check-in cannot be opened after the session has ended.",
                advice="Mark the learners on the attendance sheet instead.",
                code="session_ended",
            )
        window = self.repo.window(info.session.id)
        if window is None:
            window = CheckinWindow(
                session_id=info.session.id,
                secret=secrets.token_hex(32),
                late_after_minutes=late_after_minutes,
                opened_by_user_id=viewer.user.id,
                opened_at=now,
            )
            self.repo.add(window)
        else:
            window.late_after_minutes = late_after_minutes
            window.opened_by_user_id = viewer.user.id
            window.closed_at = None
        self.repo.flush()
        return window

    def close_checkin(self, viewer: Viewer, session_id: int, now: datetime) -> None:
        info = self._session(viewer, session_id, lock=True)
        self._scope(viewer, info.cls)
        window = self.repo.window(info.session.id)
        if window is not None and window.closed_at is None:
            window.closed_at = now
            self.repo.flush()

    def code_view(self, viewer: Viewer, session_id: int, now: datetime, base_url: str) -> CodeView:
        """What the trainer's screen shows now: the current code and its QR code."""
        info = self._session(viewer, session_id)
        self._scope(viewer, info.cls)
        window = self.repo.window(info.session.id)
        state = session_state(now, info.starts_at, info.ends_at)
        is_open = window is not None and window.closed_at is None
        code = url = None
        size, path = 0, ""
        current = None
        if window is not None and is_open:
            current = window_of(now)
            code = checkin_code(window.secret, info.session.id, current)
            url = checkin_url(base_url, info.session.id, code)
            size, path = qr_path(url)
        return CodeView(
            info=info,
            open=is_open,
            state=state,
            code=code,
            window=current,
            expires_in=expires_in(now),
            url=url,
            qr_size=size,
            qr_path=path,
            checked_in=self.repo.checked_in_count(info.session.id),
            late_after_minutes=window.late_after_minutes if window else None,
        )

    # -- learners --------------------------------------------------------------------------
    def learner_session(self, viewer: Viewer, session_id: int, now: datetime) -> LearnerSession:
        """A session as a learner sees it before checking in (the check-in form)."""
        info = self._session(viewer, session_id)
        enrolment = self.repo.active_enrolment(info.cls.id, viewer.user.id)
        if enrolment is None:
            raise refusal_error(Refusal.NOT_ENROLLED, info)
        window = self.repo.window(info.session.id)
        mark = self.repo.mark(info.session.id, enrolment.id)
        return LearnerSession(
            info=info,
            open=window is not None and window.closed_at is None,
            state=session_state(now, info.starts_at, info.ends_at),
            status=mark.status if mark else None,
        )

    def learner_sessions_today(self, viewer: Viewer, now: datetime) -> list[LearnerSession]:
        """Today's sessions (Vietnam time) of the classes the viewer is a learner of."""
        out = []
        rows = self.repo.learner_sessions_on(
            viewer.deployment_id, viewer.user.id, local(now).date()
        )
        for row, cls, window in rows:
            info = _info(row, cls)
            enrolment = self.repo.active_enrolment(cls.id, viewer.user.id)
            mark = self.repo.mark(row.id, enrolment.id) if enrolment else None
            out.append(
                LearnerSession(
                    info=info,
                    open=window is not None and window.closed_at is None,
                    state=session_state(now, info.starts_at, info.ends_at),
                    status=mark.status if mark else None,
                )
            )
        return out

    def checkin(
        self, viewer: Viewer, session_id: int, typed_code: str, device: str, now: datetime
    ) -> CheckinResult:
        """A learner checks themselves in with the code on the trainer's screen.

        ``device`` is the hash of the browser's device cookie (see :func:`device_hash`).
        """
        info = self._session(viewer, session_id, lock=True)
        enrolment = self.repo.active_enrolment(info.cls.id, viewer.user.id)
        window = self.repo.window(info.session.id)
        existing = self.repo.mark(info.session.id, enrolment.id) if enrolment else None
        verdict: tuple[CodeCheck, int | None] = (CodeCheck.WRONG, None)
        device_windows: tuple[int, ...] = ()
        if window is not None and enrolment is not None:
            verdict = check_code(
                typed_code[:64], window.secret, info.session.id, now, window_of(window.opened_at)
            )
            device_windows = tuple(self.repo.device_windows(info.session.id, device, enrolment.id))
        decision = decide_checkin(
            CheckinFacts(
                now=now,
                starts_at=info.starts_at,
                ends_at=info.ends_at,
                enrolled=enrolment is not None,
                opened=window is not None,
                closed=window is not None and window.closed_at is not None,
                late_after_minutes=window.late_after_minutes if window else 0,
                code_check=verdict[0],
                code_window=verdict[1],
                current_status=existing.status if existing else None,
                device_windows=device_windows,
            )
        )
        if decision.refusal is not None:
            raise refusal_error(decision.refusal, info)
        assert decision.status is not None and enrolment is not None
        if decision.already:
            return CheckinResult(info, decision.status, already=True)
        assert verdict[1] is not None
        self._write_mark(
            info.session.id,
            enrolment,
            existing,
            status=decision.status,
            note=None,
            source=MarkSource.CHECKIN,
            by_user_id=viewer.user.id,
            now=now,
            reason="check-in",
            actor=actor_of(viewer),
            info=info,
        )
        self.repo.add(
            CheckinRecord(
                session_id=info.session.id,
                enrolment_id=enrolment.id,
                code_window=verdict[1],
                device_hash=device,
                web_session_id=viewer.session_id[:64],
                status=decision.status,
                at=now,
            )
        )
        self.repo.flush()
        _refresh_results(self.session, info.cls.id, [enrolment.id], now)
        return CheckinResult(info, decision.status, already=False)

    # -- scores ----------------------------------------------------------------------------
    def scores(self, viewer: Viewer, class_id: int) -> tuple[int, list[EnrolmentScore]]:
        """Each learner's attendance score over **every** session of the class (a session
        not held or not marked counts 0), with the module version's points per status.
        Returns ``(number of sessions, scores)``; the score is ``None`` without sessions."""
        cls = self.repo.get_class(viewer.deployment_id, class_id)
        if cls is None:
            raise NotFound()
        scope = self._scope(viewer, cls)
        sessions = list(self.repo.sessions(cls.id))
        points = attendance_points_of(self.repo.module_spec(cls.module_version_id))
        by_key = {(s, e): status for s, e, status in self.repo.marks_of_class(cls.id)}
        out = []
        for enrolment, user in self.classes.roster(cls.id, scope):
            marks = [by_key.get((s.id, enrolment.id)) for s in sessions]
            score = attendance_score(marks, points, len(sessions)) if sessions else None
            out.append(
                EnrolmentScore(
                    enrolment_id=enrolment.id,
                    user_id=user.id,
                    name=user.display_name,
                    marks=marks,
                    score=score,
                )
            )
        return len(sessions), out


def _refresh_results(
    session: Session, class_id: int, enrolment_ids: list[int], now: datetime
) -> None:
    """Attendance moves the attendance component: recompute those learners' results (and
    queue their scores) in the same transaction as the marks."""
    from app.grading.service import GradingService

    GradingService(session).refresh(class_id, enrolment_ids, now=now)


def _check_status(value: str, field: str) -> None:
    if value not in STATUSES:
        raise ValidationFailed(
            "Unknown attendance status %(status)s; use present, late, excused or absent",
            params={"status": value, "field": field},
        )
