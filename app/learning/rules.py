"""Learning items, due dates, progress per phase, quizzes and submissions: plain functions over
plain data (no database, no HTTP).

Items are the ``materials`` of the module version a class runs. Each gets a due date from the
learner's own schedule: ``due_day`` n of its phase is the phase's n-th calendar day (clamped
to the phase's last day, which is also the default), and an item is due at the end of that
day in Asia/Ho_Chi_Minh. Progress counts the *required* items of the two online phases
(self-study and follow-up); in-person materials are resources for the sessions, whose
attendance is taken separately.

How an item gets done:

* ``manual`` — reading, slides, video, audio, forum, an LMS activity link, a quiz in the LMS:
  the learner marks it done (and may unmark it); blend727 cannot see inside the LMS;
* ``quiz`` — a self-check quiz with questions, taken in blend727: done when taken, whatever
  the score (it is a self-check; the best score is shown);
* ``reflection`` — written in blend727: done when handed in;
* ``assignment`` — handed in (text, a link or a file) and graded by the core trainer; done
  when handed in, graded 0–10. Resubmission is allowed until it is graded. After the due date
  a hand-in is marked late, or refused when the item says ``late = "refuse"``.

Component scores for the module result (:mod:`app.grading.rules`): self-study is the share of
required non-assignment items done in both online phases; follow-up is the mean of the grades
of the required assignments. A module with no such items has its component entered by the
trainer instead (``manual``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from app.core.errors import Conflict, ValidationFailed
from app.core.time import VN_TZ, local
from app.schedule.rules import Schedule

ONLINE_PHASES: tuple[str, ...] = ("self_study", "follow_up")
MANUAL_KINDS = frozenset({"document", "slides", "video", "audio", "forum", "link"})
Mode = Literal["manual", "quiz", "reflection", "assignment"]

#: Longest text a learner may hand in (characters) — a lesson plan pasted in fits.
MAX_TEXT_CHARS = 50_000
MAX_URL_CHARS = 2_000


@dataclass(frozen=True)
class Question:
    text: str
    choices: tuple[str, ...]
    answer: int  # 1-based


@dataclass(frozen=True)
class Item:
    """One learning item of a class, as one learner sees it (with their due date)."""

    key: str
    phase: str
    kind: str
    title: str
    url: str | None
    description: str | None
    required: bool
    due_on: date | None
    due_at: datetime | None
    questions: tuple[Question, ...]
    submission_kinds: tuple[str, ...]
    late_policy: str

    @property
    def mode(self) -> Mode:
        if self.kind == "assignment":
            return "assignment"
        if self.kind == "reflection":
            return "reflection"
        if self.kind == "quiz" and self.questions:
            return "quiz"
        return "manual"

    @property
    def tracked(self) -> bool:
        """Counted in a phase's progress: required, and in an online phase."""
        return self.required and self.phase in ONLINE_PHASES

    @property
    def counts_for_self_study(self) -> bool:
        return self.tracked and self.mode != "assignment"

    @property
    def counts_for_follow_up(self) -> bool:
        return self.required and self.mode == "assignment"


def end_of_day(day: date) -> datetime:
    """The last second of ``day`` in Vietnam, in UTC (what "due on 12/3" means)."""
    return datetime.combine(day, time(23, 59, 59), VN_TZ).astimezone(UTC)


def _due_on(schedule: Schedule, phase: str, due_day: int | None) -> date | None:
    days = schedule.days_in_phase(phase)  # type: ignore[arg-type]
    if not days:
        return None
    if due_day is None:
        return days[-1]
    return days[min(due_day, len(days)) - 1]


def items_of(spec: Mapping[str, Any], schedule: Schedule) -> list[Item]:
    """The items of a module version (its stored spec) with due dates from ``schedule``."""
    materials: Sequence[Mapping[str, Any]] = spec.get("materials") or []
    counts: dict[str, int] = {}
    out: list[Item] = []
    for material in materials:
        phase = str(material["phase"])
        counts[phase] = counts.get(phase, 0) + 1
        key = material.get("key") or f"{phase.replace('_', '-')}-{counts[phase]}"
        due_on = _due_on(schedule, phase, material.get("due_day"))
        kinds = tuple(material.get("submission") or ()) or ("text", "link", "file")
        out.append(
            Item(
                key=str(key),
                phase=phase,
                kind=str(material["kind"]),
                title=str(material["title"]),
                url=material.get("url"),
                description=material.get("description"),
                required=bool(material.get("required", True)),
                due_on=due_on,
                due_at=end_of_day(due_on) if due_on else None,
                questions=tuple(
                    Question(str(q["text"]), tuple(q["choices"]), int(q["answer"]))
                    for q in material.get("questions") or ()
                ),
                submission_kinds=kinds,
                late_policy=str(material.get("late") or "accept"),
            )
        )
    return out


def find_item(items: Iterable[Item], key: str) -> Item | None:
    return next((i for i in items if i.key == key), None)


# -- progress ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseProgress:
    phase: str
    done: int
    total: int

    @property
    def percent(self) -> int | None:
        """Whole percent of the required items done (rounded down, so 100 means all);
        ``None`` when the phase has no required items."""
        if not self.total:
            return None
        return self.done * 100 // self.total


def progress(items: Sequence[Item], done_keys: Iterable[str]) -> dict[str, PhaseProgress]:
    """Progress of the online phases: required items done over required items."""
    done = set(done_keys)
    out: dict[str, PhaseProgress] = {}
    for phase in ONLINE_PHASES:
        tracked = [i for i in items if i.phase == phase and i.tracked]
        out[phase] = PhaseProgress(phase, sum(1 for i in tracked if i.key in done), len(tracked))
    return out


def overdue(item: Item, done: bool, now: datetime) -> bool:
    """Past its due date and not done: only for the items a learner is asked to do (required,
    online); optional items and in-person resources have nothing to be late for."""
    return item.tracked and not done and item.due_at is not None and now > item.due_at


# -- quizzes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuizOutcome:
    answers: tuple[int | None, ...]
    correct: int
    total: int

    @property
    def score(self) -> Decimal:
        """On the 10-point scale, half-up to 2 decimals."""
        return (Decimal(10) * self.correct / self.total).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )


def grade_quiz(questions: Sequence[Question], answers: Mapping[int, int]) -> QuizOutcome:
    """Grade a self-check quiz. ``answers`` maps question index (0-based) → chosen choice
    (1-based). An unanswered question counts as wrong; an answer outside a question's choices
    or for a question that does not exist is refused (a tampered form)."""
    for index, choice in answers.items():
        if not 0 <= index < len(questions):
            raise ValidationFailed("%(field)s is not valid", params={"field": f"q{index}"})
        if not 1 <= choice <= len(questions[index].choices):
            raise ValidationFailed("%(field)s is not valid", params={"field": f"q{index}"})
    given = tuple(answers.get(i) for i in range(len(questions)))
    correct = sum(1 for q, a in zip(questions, given, strict=True) if a == q.answer)
    return QuizOutcome(given, correct, len(questions))


# -- submissions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HandIn:
    """What a learner hands in, already read from the form (a file by its size and name)."""

    text: str | None = None
    link_url: str | None = None
    file_name: str | None = None
    file_size: int | None = None


def check_takes_hand_in(item: Item) -> None:
    """Only reflections and assignments are handed in; anything else is marked done."""
    if item.mode not in ("assignment", "reflection"):
        raise Conflict(
            title="This item takes no hand-in",
            detail="Mark it done on the list of items instead.",
            code="no_hand_in",
        )


def check_hand_in(item: Item, hand_in: HandIn, *, graded: bool, now: datetime) -> bool:
    """Whether a hand-in is accepted; returns whether it is late. Raises the error the
    learner sees otherwise (nothing is written then)."""
    check_takes_hand_in(item)
    if graded:
        raise Conflict(
            title="Already graded",
            detail="Your core trainer has graded this work, so it cannot be changed any more.",
            advice="Ask your core trainer if something must still change.",
            code="already_graded",
        )
    kinds = ("text",) if item.mode == "reflection" else item.submission_kinds
    text = (hand_in.text or "").strip()
    given = {
        "text": bool(text),
        "link": bool(hand_in.link_url),
        "file": hand_in.file_name is not None,
    }
    for kind, present in given.items():
        if present and kind not in kinds:
            raise ValidationFailed(
                "This work cannot be handed in as %(kind)s",
                params={"field": kind, "kind": kind},
            )
    if not any(given.values()):
        raise ValidationFailed(
            "Write a text, give a link or choose a file before handing in",
            params={"field": kinds[0]},
        )
    if len(text) > MAX_TEXT_CHARS:
        raise ValidationFailed(
            "The text is longer than %(max)s characters",
            params={"field": "text", "max": MAX_TEXT_CHARS},
        )
    late = item.due_at is not None and now > item.due_at
    if late and item.late_policy == "refuse":
        raise Conflict(
            title="The deadline has passed",
            detail="This work was due on %(due)s and the module accepts no late work.",
            advice="Ask your core trainer.",
            code="deadline_passed",
            params={"due": item.due_on.strftime("%d/%m/%Y") if item.due_on else ""},
        )
    return late


def due_date_text(day: date | None) -> str:
    return day.strftime("%d/%m/%Y") if day else ""


def parse_grade(value: str) -> Decimal:
    """A grade typed by a trainer: 0–10, a comma or a point as decimal separator, at most two
    decimals (7,5 → 7.50)."""
    text = value.strip().replace(",", ".")
    try:
        number = Decimal(text)
    except ArithmeticError:
        number = Decimal("NaN")
    if (
        not text
        or not number.is_finite()
        or not Decimal(0) <= number <= Decimal(10)
        or number != number.quantize(Decimal("0.01"))
    ):
        raise ValidationFailed(
            "A grade is a number from 0 to 10 with at most two decimals",
            params={"field": "score"},
        )
    # copy_abs: "-0" is a valid 0, but must not be stored or shown as "-0.00".
    return number.quantize(Decimal("0.01")).copy_abs()


def today_in_vietnam(now: datetime) -> date:
    return local(now).date()


def phase_open(schedule: Schedule, today: date) -> bool:
    """Whether the learner's module is still running (any phase not over yet)."""
    return today <= schedule.end


__all__ = [
    "MAX_TEXT_CHARS",
    "MAX_URL_CHARS",
    "ONLINE_PHASES",
    "HandIn",
    "Item",
    "PhaseProgress",
    "Question",
    "QuizOutcome",
    "check_hand_in",
    "check_takes_hand_in",
    "due_date_text",
    "end_of_day",
    "find_item",
    "grade_quiz",
    "items_of",
    "overdue",
    "parse_grade",
    "phase_open",
    "progress",
    "today_in_vietnam",
]


@dataclass(frozen=True)
class GradeBase:
    """The grade a trainer's form (or API call) was based on: ``grade_id`` of the newest
    grade it showed, ``None`` when it showed none. Grading with a base that is no longer the
    newest grade is refused (``GradeChanged``, 409) instead of silently replacing it."""

    grade_id: int | None


#: What a form or an ``If-Match`` says when it showed no grade.
NO_GRADE = "none"


def parse_grade_base(value: str | int | None) -> GradeBase | None:
    """``expected_grade_id`` of a grade form or the API: a grade's id, ``"none"`` (or "" or
    JSON null) for "no grade yet"; ``None`` when absent (nothing is checked).
    Also takes an ``If-Match`` ETag: ``"grade-12"`` or ``"grade-none"`` (weak or not)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return GradeBase(value) if value > 0 else GradeBase(None)
    text = str(value).strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    text = text.removeprefix("grade-")
    if text in ("", NO_GRADE, "null"):
        return GradeBase(None)
    if text.isascii() and text.isdigit() and len(text) < 12:
        return GradeBase(int(text))
    raise ValidationFailed("%(field)s is not valid", params={"field": "expected_grade_id"})


def grade_etag(grade_id: int | None) -> str:
    """The ``ETag`` of a hand-in's grade, for ``If-Match`` on the next grade."""
    return f'"grade-{grade_id if grade_id is not None else NO_GRADE}"'
