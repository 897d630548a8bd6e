"""The result of a training module: plain functions over plain data.

A module result combines three component scores on the 10-point scale — self-study (phase 1),
attendance (the in-person days), follow-up (phase 3) — with the weights of the module version,
and classifies it.

Classification (Circular 19/2019/TT-BGDĐT on continuous training): a learner *completes*
(hoàn thành) the module when **every** assessed component scores at least the pass mark
(5 by default). The weighted overall score does not decide completion: an average of 9 with
one component at 4 is *not complete*. A department may add tiers above completion (e.g.
"khá", "giỏi"); a learner who completed gets the highest tier whose ``min_score`` the overall
score reaches. The classification is one of:

* ``"incomplete"`` — an assessed component has no score yet (the result is not final);
* ``"not_complete"`` — every assessed component has a score, one is below the pass mark;
* ``"complete"`` — every assessed component is at or above the pass mark, and no tier reached;
* a tier code — complete, and the overall score reaches that tier.

Arithmetic is :class:`decimal.Decimal` throughout; a ``float`` is refused (``TypeError``).

Rounding: every score — each component and the overall score — is rounded **half-up to 2
decimals** (``ROUND_HALF_UP``, 8.335 → 8.34, 0.625 → 0.63, never the banker's rounding of
Python's ``round``). Components are rounded first, and the pass mark, the weighting and the
tiers all use the rounded components, so the figures a person sees are exactly the ones the
classification used: a learner shown "5.00" has passed that component, one shown "4.99" has
not. Vietnamese reports use 1 or 2 decimals; 2 is chosen because with 1 decimal every score
from 4.95 to 4.99 would be shown as "5.0" next to "not complete" (or, if the rounded figure
were compared, would pass a learner the Circular fails), and a 3-session attendance (8.333…)
or a 0.3/0.2/0.5 weighting needs more than one decimal to read back sensibly.

Components and weights: a component whose weight is 0 is *not assessed* by the module (e.g.
self-study in a 0-2-7 plan): it may have no score and it never blocks completion. Every
component with a positive weight is assessed, and must have a score and pass. Weights are
accepted when they sum to 1 within 10⁻⁶ (the catalogue's tolerance, so that 1/3 written as
0.3333333 is accepted) and are normalised by their sum, so the overall score stays in 0–10.

Messages are English message ids (``MESSAGES``) with ``%(name)s`` placeholders filled from
``params`` after translation (docs/conventions.md). Numbers in ``params`` are Decimals, left
for the page to format in its locale (Vietnamese writes 7,25).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from typing import TYPE_CHECKING, Any, Literal

from app.core.errors import ValidationFailed

if TYPE_CHECKING:
    from modules.catalogue import AssessmentSpec

__all__ = [
    "COMPONENTS",
    "MAX_REASON_CHARS",
    "MESSAGES",
    "MOODLE_ATTENDANCE_POINTS",
    "RESERVED_CLASSIFICATIONS",
    "ActivityProgress",
    "AttendancePoints",
    "AuditEntry",
    "Components",
    "GradeError",
    "GradePolicy",
    "GradingProgress",
    "ModuleResult",
    "Reason",
    "Tier",
    "Weights",
    "apply_override",
    "attendance_score",
    "check_reason",
    "components_from",
    "compute_result",
    "follow_up_score",
    "grading_progress",
    "round_score",
    "self_study_score",
    "to_ags_score",
    "with_override",
]

Component = Literal["self_study", "attendance", "follow_up"]
COMPONENTS: tuple[Component, ...] = ("self_study", "attendance", "follow_up")

Mark = Literal["present", "late", "excused", "absent"]
MARKS: tuple[Mark, ...] = ("present", "late", "excused", "absent")

INCOMPLETE = "incomplete"
NOT_COMPLETE = "not_complete"
COMPLETE = "complete"
#: Classifications every policy knows; a tier code may not be one of them.
RESERVED_CLASSIFICATIONS: tuple[str, ...] = (INCOMPLETE, NOT_COMPLETE, COMPLETE)

#: Longest override reason accepted (characters, after trimming).
MAX_REASON_CHARS = 2000

ZERO = Decimal(0)
TEN = Decimal(10)
CENT = Decimal("0.01")
# Weights are accepted when they sum to 1 within this (as in modules/catalogue.py).
WEIGHT_TOLERANCE = Decimal("0.000001")
# Our own context: the result never depends on a caller's decimal.getcontext().
_CONTEXT = Context(prec=34, rounding=ROUND_HALF_UP)
_TIER_CODE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

MESSAGES: dict[str, str] = {
    # reasons of a result
    "missing_self_study": "Self-study has no score yet",
    "missing_attendance": "Attendance has no score yet",
    "missing_follow_up": "Follow-up has no score yet",
    "not_assessed_self_study": "Self-study is not assessed in this module",
    "not_assessed_attendance": "Attendance is not assessed in this module",
    "not_assessed_follow_up": "Follow-up is not assessed in this module",
    "below_self_study": "Self-study scored %(score)s, below the pass mark of %(threshold)s",
    "below_attendance": "Attendance scored %(score)s, below the pass mark of %(threshold)s",
    "below_follow_up": "Follow-up scored %(score)s, below the pass mark of %(threshold)s",
    "all_pass": "Every component scored at least the pass mark of %(threshold)s",
    "tier_reached": "The overall score %(score)s reaches the tier that starts at %(min_score)s",
    "overridden": "Set by a trainer: %(reason)s",
    # errors
    "no_sessions": "The class has no sessions, so attendance cannot be scored",
    "too_many_marks": "There are %(marks)s attendance marks for only %(sessions)s sessions",
    "unknown_mark": 'Unknown attendance mark "%(mark)s"; use present, late, excused or absent',
    "items_invalid": "Done items (%(done)s) must be from 0 to the number of items (%(total)s)",
    "score_range": "A score must be from 0 to 10; %(field)s is %(value)s",
    "points_invalid": (
        "Attendance points: present must be above 0, and late, excused and absent from 0 to "
        "the points of present"
    ),
    "weights_negative": "A weight must not be negative; %(field)s is %(value)s",
    "weights_sum": "The weights must sum to 1; they sum to %(total)s",
    "tier_code": 'Tier code "%(tier)s" must be lowercase letters, digits and single hyphens',
    "tier_code_reserved": 'Tier code "%(tier)s" is reserved; choose another code',
    "tier_code_repeated": 'Tier code "%(tier)s" is used twice',
    "tier_name": 'Tier "%(tier)s" needs a Vietnamese name',
    "tier_order": "Tiers must be listed from the lowest minimum score up, with no two equal",
    "tier_below_pass": 'Tier "%(tier)s" starts at %(min_score)s, below the pass mark %(threshold)s',
    "reason_required": "Give a reason for the change",
    "reason_too_long": "The reason is longer than %(max)s characters",
    "classification_unknown": 'This module has no result "%(classification)s"',
    "override_score_low": (
        'A result of "%(classification)s" needs an overall score of at least %(min_score)s'
    ),
    "override_no_change": "The change leaves the result as it was",
}
"""English message ids of the reasons and errors, by code (for the translation catalogue)."""


class GradeError(ValidationFailed):
    """Scores or a policy that the rules refuse (HTTP 422 when it reaches a route).

    ``code`` is a key of :data:`MESSAGES`; ``field`` names the input at fault so a form can
    mark it; ``message`` is the English message id, filled from ``params`` (which always
    include ``field``).
    """

    def __init__(self, code: str, field: str, **params: Any) -> None:
        message = MESSAGES[code]
        super().__init__(message, code=code, params={"field": field, **params})
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.code} ({self.field}): {self.message % self.params}"


# -- numbers -------------------------------------------------------------------------------


def _decimal(value: object, what: str) -> Decimal:
    """An exact number: a Decimal or an int. Floats are refused, never converted."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    raise TypeError(f"{what} must be a Decimal or an int, not {type(value).__name__}")


def round_score(value: Decimal) -> Decimal:
    """Half-up to 2 decimals: the one rounding rule of every score (8.335 → 8.34)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP, context=_CONTEXT)


def _score(value: object, field: str) -> Decimal:
    """A score on the 10-point scale, checked and rounded."""
    number = _decimal(value, field)
    if not number.is_finite() or not ZERO <= number <= TEN:
        raise GradeError("score_range", field, value=number)
    return round_score(number)


# -- component scores ----------------------------------------------------------------------


@dataclass(frozen=True)
class AttendancePoints:
    """Points per attendance status; the attendance score is points earned over possible."""

    present: Decimal
    late: Decimal
    excused: Decimal
    absent: Decimal

    def __post_init__(self) -> None:
        values = {name: _decimal(getattr(self, name), name) for name in MARKS}
        for name, value in values.items():
            object.__setattr__(self, name, value)
        present = values["present"]
        if not all(v.is_finite() for v in values.values()) or present <= 0:
            raise GradeError("points_invalid", "present")
        for name in ("late", "excused", "absent"):
            if not ZERO <= values[name] <= present:
                raise GradeError("points_invalid", name)

    def of(self, mark: str | None) -> Decimal:
        """The points of one mark; ``None`` (not held, or not marked) is worth 0."""
        if mark is None:
            return ZERO
        if mark not in MARKS:
            raise GradeError("unknown_mark", "marks", mark=mark)
        value: Decimal = getattr(self, mark)
        return value


#: The defaults of Moodle's Attendance plugin: present 2, late 1, excused 1, absent 0.
MOODLE_ATTENDANCE_POINTS = AttendancePoints(
    present=Decimal(2), late=Decimal(1), excused=Decimal(1), absent=Decimal(0)
)


def attendance_score(
    marks: Sequence[str | None],
    points: AttendancePoints,
    total_sessions: int,
) -> Decimal:
    """10 × points earned / (points of present × every session of the class).

    ``marks`` holds one mark per session recorded so far (``None``: not marked); sessions
    beyond ``len(marks)`` are not held yet. Both earn 0 points and still count in the
    denominator: the score is over every session of the class, so it only reaches 10 when
    the learner was present at all of them. Rounded half-up to 2 decimals.
    """
    if total_sessions < 1:
        raise GradeError("no_sessions", "total_sessions")
    if total_sessions < len(marks):
        raise GradeError(
            "too_many_marks", "total_sessions", marks=len(marks), sessions=total_sessions
        )
    with localcontext(_CONTEXT):
        earned = sum((points.of(mark) for mark in marks), ZERO)
        return round_score(TEN * earned / (points.present * total_sessions))


def self_study_score(done_items: int, total_items: int) -> Decimal | None:
    """10 × the share of self-study items done, rounded half-up to 2 decimals.

    A phase with no items cannot be scored: ``None`` (the result stays ``incomplete`` unless
    the module gives self-study a weight of 0).
    """
    if total_items < 0 or not 0 <= done_items <= max(total_items, 0):
        raise GradeError("items_invalid", "done_items", done=done_items, total=total_items)
    if total_items == 0:
        return None
    with localcontext(_CONTEXT):
        return round_score(TEN * Decimal(done_items) / Decimal(total_items))


def follow_up_score(grade: Decimal | None) -> Decimal | None:
    """The follow-up grade a trainer gave (0–10), rounded half-up to 2 decimals; ``None``
    while it has not been given."""
    return None if grade is None else _score(grade, "follow_up")


@dataclass(frozen=True)
class Components:
    """The three component scores (0–10, ``None``: no score yet), held rounded to 2 decimals."""

    self_study: Decimal | None
    attendance: Decimal | None
    follow_up: Decimal | None

    def __post_init__(self) -> None:
        for name in COMPONENTS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _score(value, name))

    def get(self, name: Component) -> Decimal | None:
        value: Decimal | None = getattr(self, name)
        return value


# -- policy --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Weights:
    """Weights of the components: each ≥ 0, summing to 1 (within 10⁻⁶). 0: not assessed."""

    self_study: Decimal
    attendance: Decimal
    follow_up: Decimal

    def __post_init__(self) -> None:
        for name in COMPONENTS:
            value = _decimal(getattr(self, name), name)
            if not value.is_finite() or value < 0:
                raise GradeError("weights_negative", name, value=value)
            object.__setattr__(self, name, value)
        with localcontext(_CONTEXT):
            off = abs(self.total - 1) > WEIGHT_TOLERANCE
        if off:
            raise GradeError("weights_sum", "weights", total=self.total)

    @property
    def total(self) -> Decimal:
        with localcontext(_CONTEXT):
            return self.self_study + self.attendance + self.follow_up

    def get(self, name: Component) -> Decimal:
        value: Decimal = getattr(self, name)
        return value


@dataclass(frozen=True)
class Tier:
    """A result above plain completion, e.g. ``Tier("gioi", "Giỏi", "Very good", 8.5)``."""

    code: str
    name_vi: str
    name_en: str | None
    min_score: Decimal

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not _TIER_CODE.fullmatch(self.code):
            raise GradeError("tier_code", "tiers", tier=self.code)
        if self.code in RESERVED_CLASSIFICATIONS:
            raise GradeError("tier_code_reserved", "tiers", tier=self.code)
        if not isinstance(self.name_vi, str) or not self.name_vi.strip():
            raise GradeError("tier_name", "tiers", tier=self.code)
        min_score = _decimal(self.min_score, "min_score")
        if not min_score.is_finite() or not ZERO <= min_score <= TEN:
            raise GradeError("score_range", "tiers", value=min_score)
        object.__setattr__(self, "min_score", min_score)


@dataclass(frozen=True)
class GradePolicy:
    """How a module version computes results (``[assessment]`` of a module file)."""

    weights: Weights
    pass_threshold: Decimal = Decimal(5)
    #: Lowest ``min_score`` first, no two equal, none below ``pass_threshold``.
    tiers: tuple[Tier, ...] = ()
    attendance_points: AttendancePoints = MOODLE_ATTENDANCE_POINTS

    def __post_init__(self) -> None:
        threshold = _decimal(self.pass_threshold, "pass_threshold")
        if not threshold.is_finite() or not ZERO <= threshold <= TEN:
            raise GradeError("score_range", "pass_threshold", value=threshold)
        object.__setattr__(self, "pass_threshold", threshold)
        tiers = tuple(self.tiers)
        object.__setattr__(self, "tiers", tiers)
        codes: set[str] = set()
        for i, tier in enumerate(tiers):
            if tier.code in codes:
                raise GradeError("tier_code_repeated", "tiers", tier=tier.code)
            codes.add(tier.code)
            if tier.min_score < threshold:
                raise GradeError(
                    "tier_below_pass",
                    "tiers",
                    tier=tier.code,
                    min_score=tier.min_score,
                    threshold=threshold,
                )
            if i and tier.min_score <= tiers[i - 1].min_score:
                raise GradeError("tier_order", "tiers")

    @classmethod
    def from_assessment(cls, spec: AssessmentSpec) -> GradePolicy:
        """The policy of a catalogue module (``ModuleSpec.assessment``).

        The catalogue stores floats; each becomes the Decimal of its shortest repr (0.3 →
        Decimal("0.3"), never 0.29999…). Tiers are sorted by ``min_score`` (the file may list
        them in any order).
        """

        def dec(value: float) -> Decimal:
            return Decimal(repr(float(value)))

        return cls(
            weights=Weights(
                self_study=dec(spec.weights.self_study),
                attendance=dec(spec.weights.attendance),
                follow_up=dec(spec.weights.follow_up),
            ),
            pass_threshold=dec(spec.pass_threshold),
            tiers=tuple(
                Tier(t.code, t.name_vi, t.name_en, dec(t.min_score))
                for t in sorted(spec.tiers, key=lambda t: t.min_score)
            ),
            attendance_points=AttendancePoints(
                present=dec(spec.attendance_points.present),
                late=dec(spec.attendance_points.late),
                excused=dec(spec.attendance_points.excused),
                absent=dec(spec.attendance_points.absent),
            ),
        )

    @property
    def classifications(self) -> tuple[str, ...]:
        """Every classification a result of this module can have, lowest first."""
        return (*RESERVED_CLASSIFICATIONS, *(t.code for t in self.tiers))

    def tier(self, code: str) -> Tier | None:
        return next((t for t in self.tiers if t.code == code), None)

    def completes(self, classification: str) -> bool:
        """Whether a classification means the learner completed (complete or a tier)."""
        return classification == COMPLETE or self.tier(classification) is not None

    def assessed(self) -> tuple[Component, ...]:
        """The components with a positive weight."""
        return tuple(c for c in COMPONENTS if self.weights.get(c) > 0)


# -- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    """Why a result is what it is: ``code`` (a key of :data:`MESSAGES`), its English message
    id and the ``params`` that fill it."""

    code: str
    message: str
    params: dict[str, Any] = field(default_factory=dict)


def _reason(code: str, **params: Any) -> Reason:
    return Reason(code, MESSAGES[code], params)


@dataclass(frozen=True)
class ModuleResult:
    """A learner's result in a module.

    ``score`` is the weighted overall score (``None`` while ``incomplete``); ``final`` is
    true when every assessed component has a score, or a trainer set the result
    (``overridden``). ``components`` are the rounded scores the result was computed from.
    """

    score: Decimal | None
    classification: str
    final: bool
    reasons: tuple[Reason, ...]
    components: Components
    overridden: bool = False


def compute_result(components: Components, policy: GradePolicy) -> ModuleResult:
    """Weighted score and Circular 19 classification of one learner's components.

    ``incomplete`` when an assessed component has no score (score ``None``, not final);
    otherwise the score is Σ weight × component / Σ weights, rounded half-up to 2 decimals,
    and the learner completes only when every assessed component is at least the pass mark —
    however high the overall score. A completed learner gets the highest tier the overall
    score reaches.
    """
    threshold = policy.pass_threshold
    reasons: list[Reason] = []
    missing = False
    below = False
    for name in COMPONENTS:
        value = components.get(name)
        if policy.weights.get(name) == 0:
            reasons.append(_reason(f"not_assessed_{name}"))
        elif value is None:
            missing = True
            reasons.append(_reason(f"missing_{name}"))
        elif value < threshold:
            below = True
            reasons.append(_reason(f"below_{name}", score=value, threshold=threshold))
    if missing:
        return ModuleResult(None, INCOMPLETE, False, tuple(reasons), components)

    with localcontext(_CONTEXT):
        weighted = sum(
            (policy.weights.get(c) * (components.get(c) or ZERO) for c in policy.assessed()),
            ZERO,
        )
        score = round_score(weighted / policy.weights.total)

    if below:
        return ModuleResult(score, NOT_COMPLETE, True, tuple(reasons), components)
    reasons.append(_reason("all_pass", threshold=threshold))
    reached = [t for t in policy.tiers if score >= t.min_score]
    if not reached:
        return ModuleResult(score, COMPLETE, True, tuple(reasons), components)
    tier = reached[-1]
    reasons.append(_reason("tier_reached", score=score, min_score=tier.min_score, tier=tier.code))
    return ModuleResult(score, tier.code, True, tuple(reasons), components)


# -- overrides -----------------------------------------------------------------------------


def check_reason(reason: object) -> str:
    """The reason a person gives for a change, trimmed; refused when empty or longer than
    :data:`MAX_REASON_CHARS`."""
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise GradeError("reason_required", "reason")
    if len(text) > MAX_REASON_CHARS:
        raise GradeError("reason_too_long", "reason", max=MAX_REASON_CHARS)
    return text


@dataclass(frozen=True)
class AuditEntry:
    """One change of one field of a result, for the append-only audit trail.

    ``old``/``new`` are text as stored: a score as ``"7.25"``, a classification as its code;
    ``None`` for "no value".
    """

    at: datetime
    by_user_id: int
    field: Literal["score", "classification"]
    old: str | None
    new: str | None
    reason: str


def apply_override(
    result: ModuleResult,
    *,
    policy: GradePolicy,
    new_score: Decimal,
    new_classification: str,
    reason: str,
    by_user_id: int,
    at: datetime,
) -> tuple[ModuleResult, tuple[AuditEntry, ...]]:
    """A trainer sets the score and classification of a result, with a reason.

    Returns the new result (``overridden``, ``final``) and one :class:`AuditEntry` per field
    that changed (score first, then classification). Refused: an empty reason or one longer
    than :data:`MAX_REASON_CHARS`; a classification the policy does not know, or
    ``incomplete``; "complete" or a tier with a score below the pass mark or the tier's
    ``min_score``; a change that changes nothing. To keep the score, pass ``result.score``.
    """
    if not isinstance(at, datetime) or at.utcoffset() is None:
        raise ValueError("at must be a timezone-aware datetime")
    text = check_reason(reason)
    score = _score(new_score, "score")
    if new_classification == INCOMPLETE or new_classification not in policy.classifications:
        raise GradeError(
            "classification_unknown", "classification", classification=new_classification
        )
    tier = policy.tier(new_classification)
    floor = tier.min_score if tier else policy.pass_threshold
    if policy.completes(new_classification) and score < floor:
        raise GradeError(
            "override_score_low",
            "score",
            classification=new_classification,
            min_score=floor,
        )

    entries: list[AuditEntry] = []
    if score != result.score:
        old = None if result.score is None else str(result.score)
        entries.append(AuditEntry(at, by_user_id, "score", old, str(score), text))
    if new_classification != result.classification:
        entries.append(
            AuditEntry(
                at, by_user_id, "classification", result.classification, new_classification, text
            )
        )
    if not entries:
        raise GradeError("override_no_change", "score")
    kept = tuple(r for r in result.reasons if r.code != "overridden")
    updated = replace(
        result,
        score=score,
        classification=new_classification,
        final=True,
        reasons=(*kept, _reason("overridden", reason=text, by_user_id=by_user_id)),
        overridden=True,
    )
    return updated, tuple(entries)


# -- LTI Assignment and Grade Services -----------------------------------------------------

ActivityProgress = Literal["Initialized", "Started", "InProgress", "Submitted", "Completed"]
GradingProgress = Literal["FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"]


def grading_progress(
    result: ModuleResult, phase_open: bool
) -> tuple[ActivityProgress, GradingProgress]:
    """``(activityProgress, gradingProgress)`` of an AGS score for this result.

    =================================  ================  ===============
    situation                          activityProgress  gradingProgress
    =================================  ================  ===============
    a phase is still open              ``InProgress``    ``Pending``
    phases over, a component missing   ``Submitted``     ``PendingManual``
    phases over, result final          ``Completed``     ``FullyGraded``
    =================================  ================  ===============

    While a phase is open the scores still move by themselves (items done, sessions held),
    so the grade is ``Pending`` even when the result is already final or overridden. Once the
    phases are over a missing component waits for a person (typically the trainer's
    follow-up grade): ``PendingManual``. ``Initialized``/``Started`` and
    ``Failed``/``NotReady`` are never produced: blend727 has no per-learner start signal, and
    a not-complete result is still ``FullyGraded`` (its classification says it failed).
    """
    if phase_open:
        return "InProgress", "Pending"
    if not result.final:
        return "Submitted", "PendingManual"
    return "Completed", "FullyGraded"


def to_ags_score(result: ModuleResult, score_maximum: Decimal | int = 10) -> Decimal | None:
    """The ``scoreGiven`` to post with ``scoreMaximum = score_maximum``: the overall score
    rescaled from 10, rounded half-up to 2 decimals; ``None`` unless the result is final."""
    maximum = _decimal(score_maximum, "score_maximum")
    if not maximum.is_finite() or maximum <= 0:
        raise ValueError("score_maximum must be above 0")
    if not result.final or result.score is None:
        return None
    if maximum == TEN:
        return result.score
    with localcontext(_CONTEXT):
        return round_score(result.score * maximum / TEN)


# -- components from what learners did -----------------------------------------------------


def components_from(
    *,
    self_study_done: int,
    self_study_total: int,
    manual_self_study: Decimal | None,
    assignment_grades: Sequence[Decimal | None],
    manual_follow_up: Decimal | None,
    attendance: Decimal | None,
) -> Components:
    """The three components of one learner.

    Self-study is the share of the required self-study items done (:func:`self_study_score`)
    when the module has such items, else the score the trainer entered. Follow-up is the mean
    of the grades of the required assignments — ``None`` until every one is graded — when the
    module has assignments, else the score the trainer entered. Attendance is computed by the
    caller over every session of the class (:func:`attendance_score`).
    """
    if self_study_total:
        self_study = self_study_score(self_study_done, self_study_total)
    else:
        self_study = manual_self_study
    if assignment_grades:
        if any(g is None for g in assignment_grades):
            follow_up = None
        else:
            with localcontext(_CONTEXT):
                total = sum(
                    (_score(g, "follow_up") for g in assignment_grades if g is not None), ZERO
                )
                follow_up = round_score(total / len(assignment_grades))
    else:
        follow_up = manual_follow_up
    return Components(self_study=self_study, attendance=attendance, follow_up=follow_up)


def with_override(
    result: ModuleResult,
    *,
    score: Decimal,
    classification: str,
    reason: str,
    by_user_id: int | None,
) -> ModuleResult:
    """``result`` as a trainer set it (already checked by :func:`apply_override` when set):
    the override stands however the components move afterwards, until it is cleared."""
    kept = tuple(r for r in result.reasons if r.code != "overridden")
    return replace(
        result,
        score=round_score(_decimal(score, "score")),
        classification=classification,
        final=True,
        reasons=(*kept, _reason("overridden", reason=reason, by_user_id=by_user_id)),
        overridden=True,
    )
