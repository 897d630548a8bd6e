"""The module catalogue as data: one TOML file per module and track.

Shipped files live in ``modules/data/`` (Decision 4660/QĐ-BGDĐT modules 2, 3, 4, 5 and 9 for
teachers and for school managers, titles from the District 7 plan); administrators add the
others, and local topics, by importing files of the same format. The format is described
field by field in ``modules/README.md``.

Everything here is plain data and plain functions: no database, no HTTP.

* :func:`load_shipped` — the shipped modules, validated, sorted, cached.
* :func:`parse_module_file` — one file's text → :class:`ModuleSpec`, or
  :class:`CatalogueImportError` listing every :class:`ImportProblem` (line, field, message).
* :func:`parse_many` — all-or-nothing import of several files.
* :meth:`ModuleSpec.to_toml` — export in the format that is imported; round-trips.

Messages are English; the app layer decides how to present them.
"""

from __future__ import annotations

import math
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

__all__ = [
    "IN_TOOL_KINDS",
    "LEVELS",
    "MATERIAL_KINDS",
    "MAX_FILE_CHARS",
    "PHASES",
    "PROGRAMMES",
    "SUBMISSION_KINDS",
    "TRACKS",
    "AssessmentSpec",
    "AttendancePointsSpec",
    "CatalogueImportError",
    "ImportProblem",
    "MaterialSpec",
    "ModuleSpec",
    "PhasePlanSpec",
    "ProgrammeRule",
    "QuestionSpec",
    "TierSpec",
    "WeightsSpec",
    "is_web_address",
    "load_shipped",
    "parse_many",
    "parse_module_file",
]

Track = Literal["gvpt", "cbql"]
Level = Literal["tieu_hoc", "thcs", "thpt"]
Phase = Literal["self_study", "in_person", "follow_up"]
Programme = Literal["etep-7-2-7", "hcmc-digital-skills", "local"]
MaterialKind = Literal[
    "document", "slides", "video", "audio", "quiz", "assignment", "forum", "link", "reflection"
]
SubmissionKind = Literal["text", "link", "file"]
LatePolicy = Literal["accept", "refuse"]

#: Teachers first, then school managers — the order of the source plan; also the sort order.
TRACKS: tuple[str, ...] = get_args(Track)
#: Tiểu học (primary), THCS (lower secondary), THPT (upper secondary), in that order.
LEVELS: tuple[str, ...] = get_args(Level)
PHASES: tuple[str, ...] = get_args(Phase)
MATERIAL_KINDS: tuple[str, ...] = get_args(MaterialKind)
SUBMISSION_KINDS: tuple[str, ...] = get_args(SubmissionKind)
#: Kinds the learner does inside blend727 (so they need no ``url``): a reflection is written
#: here, an assignment is submitted here, a quiz with ``questions`` is taken here.
IN_TOOL_KINDS: tuple[str, ...] = ("quiz", "assignment", "reflection")

#: Longest module file accepted (characters); a real one is about 2 000.
MAX_FILE_CHARS = 100_000

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_NUMBER_LIKE = re.compile(r"m\d+")
_LINE_IN_TOML_ERROR = re.compile(r"line (\d+)")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class ProgrammeRule:
    """What a programme demands of a module's plan and classes (``None``: no rule)."""

    name: str
    #: In-person periods must be strictly more than this share of all periods.
    in_person_share_above: float | None = None
    #: Most learners in one class.
    max_learners_per_class: int | None = None


PROGRAMMES: Mapping[str, ProgrammeRule] = {
    # ETEP (Ministry programme behind the 7-2-7 model): no in-person share rule.
    "etep-7-2-7": ProgrammeRule("etep-7-2-7"),
    # HCMC digital-skills plan 2024–2025: in person > 50% of a topic's content, ≤ 150 per class.
    "hcmc-digital-skills": ProgrammeRule(
        "hcmc-digital-skills", in_person_share_above=0.5, max_learners_per_class=150
    ),
    # A local programme with no rule of its own.
    "local": ProgrammeRule("local"),
}
assert set(PROGRAMMES) == set(get_args(Programme))


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class ImportProblem:
    """One thing wrong with an imported file.

    ``line`` is 1-based, ``field`` a path such as ``assessment.weights`` or
    ``materials[0].url``; either is ``None`` when it cannot be told.
    """

    line: int | None
    field: str | None
    message: str
    file: str | None = None

    def __str__(self) -> str:
        where = [part for part in (self.file, self.line and f"line {self.line}") if part]
        head = ", ".join(str(part) for part in where)
        field = f"{self.field}: " if self.field else ""
        return f"{head}: {field}{self.message}" if head else f"{field}{self.message}"


class CatalogueImportError(ValueError):
    """A module file (or a batch of them) was refused; ``problems`` says why, all of it."""

    def __init__(self, problems: Sequence[ImportProblem]) -> None:
        self.problems: list[ImportProblem] = list(problems)
        count = len(self.problems)
        summary = "; ".join(str(p) for p in self.problems[:5])
        more = f"; … {count - 5} more" if count > 5 else ""
        super().__init__(f"{count} problem{'s' if count != 1 else ''}: {summary}{more}")


def _fail(message: str, *at: str | int) -> PydanticCustomError:
    """A validation error; ``at`` extends the location of the validator that raises it."""
    return PydanticCustomError("catalogue", "{message}", {"message": message, "at": at})


# --------------------------------------------------------------------------- text rules


def is_web_address(value: str) -> bool:
    """An ``http://`` or ``https://`` address with a host, printable and without spaces
    (a material's address, a link a learner hands in)."""
    if not value.isprintable() or " " in value:
        return False
    try:
        parts = urlsplit(value)  # "http://[::1" (a broken IPv6 host) raises
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def _clean_text(value: object) -> object:
    """NFC, whitespace collapsed and trimmed; leaves non-strings to the type check."""
    if not isinstance(value, str):
        return value
    text = " ".join(unicodedata.normalize("NFC", value).split())
    if not text:
        raise _fail("must not be empty")
    return text


def _clean_optional_text(value: object) -> object:
    return None if value is None else _clean_text(value)


def _one_of(value: object, allowed: Iterable[str], what: str) -> object:
    allowed = tuple(allowed)
    if isinstance(value, str) and value not in allowed:
        choices = ", ".join(f'"{a}"' for a in allowed)
        raise _fail(f'unknown {what} "{value}"; use one of {choices}')
    return value


def _slug(value: object, what: str) -> object:
    if isinstance(value, str) and (not _SLUG.fullmatch(value) or len(value) > 40):
        raise _fail(
            f'{what} "{value}" must be 1–40 lowercase letters, digits and single hyphens '
            '(like "ky-nang-so-1")'
        )
    return value


class _Spec(BaseModel):
    model_config = ConfigDict(
        strict=True, extra="forbid", frozen=True, allow_inf_nan=False, validate_default=True
    )


# --------------------------------------------------------------------------- parts


class PhasePlanSpec(_Spec):
    """The default plan: days per phase (7-2-7) and content periods (tiết) per phase."""

    programme: Programme = "etep-7-2-7"
    self_study_days: int = Field(default=7, ge=0)
    in_person_days: int = Field(default=2, ge=1)
    follow_up_days: int = Field(default=7, ge=0)
    self_study_periods: int = Field(default=20, ge=0)
    in_person_periods: int = Field(default=16, ge=0)
    follow_up_periods: int = Field(default=14, ge=0)

    @field_validator("programme", mode="before")
    @classmethod
    def _known_programme(cls, value: object) -> object:
        return _one_of(value, PROGRAMMES, "programme")

    @property
    def pattern(self) -> str:
        """``"7-2-7"``: self-study, in-person and follow-up days."""
        return f"{self.self_study_days}-{self.in_person_days}-{self.follow_up_days}"

    @property
    def total_days(self) -> int:
        return self.self_study_days + self.in_person_days + self.follow_up_days

    @property
    def total_periods(self) -> int:
        return self.self_study_periods + self.in_person_periods + self.follow_up_periods

    @property
    def in_person_share(self) -> float | None:
        """In-person periods over all periods; ``None`` when there are no periods."""
        total = self.total_periods
        return self.in_person_periods / total if total else None

    @model_validator(mode="after")
    def _programme_rule(self) -> PhasePlanSpec:
        share = PROGRAMMES[self.programme].in_person_share_above
        if share is None:
            return self
        total = self.total_periods
        if total == 0 or self.in_person_periods <= share * total:
            actual = f"{self.in_person_periods} of {total} periods"
            raise _fail(
                f'programme "{self.programme}" requires in-person time above '
                f"{share:.0%} of the content; the plan has {actual} in person",
                "in_person_periods",
            )
        return self


class QuestionSpec(_Spec):
    """One multiple-choice question of a self-check quiz taken in blend727."""

    text: str
    choices: list[str] = Field(min_length=2, max_length=8)
    #: The right choice, counted from 1 (as people number them).
    answer: int = Field(ge=1)

    @field_validator("text", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return _clean_text(value)

    @field_validator("choices", mode="before")
    @classmethod
    def _choices(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        cleaned = []
        for i, choice in enumerate(value):
            try:
                cleaned.append(_clean_text(choice))
            except PydanticCustomError:
                raise _fail("a choice must not be empty", i) from None
        return cleaned

    @model_validator(mode="after")
    def _answer_is_a_choice(self) -> QuestionSpec:
        if self.answer > len(self.choices):
            raise _fail(
                f"answer {self.answer} is not one of the {len(self.choices)} choices", "answer"
            )
        return self


class MaterialSpec(_Spec):
    """A learning item of one phase: something to read, watch or open in the LMS (the learner
    marks it done), or something done in blend727 — a self-check quiz, a reflection, an
    assignment — which is recorded as done when it is taken or submitted."""

    phase: Phase
    kind: MaterialKind
    title: str
    #: Required unless the item is done in blend727 (see ``IN_TOOL_KINDS``).
    url: str | None = None
    #: Stable identifier of the item within the module version; default ``<phase>-<n>``.
    key: str | None = None
    description: str | None = None
    #: Due at the end of this day of its phase (1 = the phase's first day); default: the
    #: phase's last day.
    due_day: int | None = Field(default=None, ge=1)
    #: Counted in the phase's progress (and, for assignments, in the follow-up score).
    required: bool = True
    #: A quiz taken in blend727: its questions.
    questions: list[QuestionSpec] = Field(default=[], max_length=50)
    #: An assignment: what the learner may hand in (default: text, a link or a file).
    submission: list[SubmissionKind] = []
    #: An assignment after its due date: ``accept`` (marked late) or ``refuse``.
    late: LatePolicy = "accept"

    @field_validator("phase", mode="before")
    @classmethod
    def _known_phase(cls, value: object) -> object:
        return _one_of(value, PHASES, "phase")

    @field_validator("kind", mode="before")
    @classmethod
    def _known_kind(cls, value: object) -> object:
        return _one_of(value, MATERIAL_KINDS, "kind")

    @field_validator("title", mode="before")
    @classmethod
    def _title(cls, value: object) -> object:
        return _clean_text(value)

    @field_validator("description", mode="before")
    @classmethod
    def _description(cls, value: object) -> object:
        return _clean_optional_text(value)

    @field_validator("key", mode="before")
    @classmethod
    def _key(cls, value: object) -> object:
        return value if value is None else _slug(value, "key")

    @field_validator("submission", mode="before")
    @classmethod
    def _submission(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        for i, kind in enumerate(value):
            if isinstance(kind, str) and kind not in SUBMISSION_KINDS:
                choices = ", ".join(f'"{k}"' for k in SUBMISSION_KINDS)
                raise _fail(f'unknown submission kind "{kind}"; use one of {choices}', i)
        if len(set(map(str, value))) != len(value):
            raise _fail("a submission kind is listed twice")
        return value

    @field_validator("late", mode="before")
    @classmethod
    def _late(cls, value: object) -> object:
        return _one_of(value, get_args(LatePolicy), "late")

    @field_validator("url", mode="before")
    @classmethod
    def _http_url(cls, value: object) -> object:
        if isinstance(value, str) and not is_web_address(value):
            raise _fail(f'"{value}" is not an http:// or https:// address')
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MaterialSpec:
        if self.url is None and self.kind not in IN_TOOL_KINDS:
            raise _fail(f'a "{self.kind}" needs a url', "url")
        if self.kind == "quiz" and self.url is None and not self.questions:
            raise _fail("a quiz needs questions (taken in blend727) or a url", "questions")
        if self.questions and self.kind != "quiz":
            raise _fail("only a quiz has questions", "questions")
        if self.submission and self.kind != "assignment":
            raise _fail("only an assignment has submission kinds", "submission")
        if self.kind == "assignment" and self.phase == "in_person":
            raise _fail("an assignment belongs to self_study or follow_up", "phase")
        return self

    @property
    def submission_kinds(self) -> tuple[str, ...]:
        """What an assignment accepts (all three when the file names none)."""
        return tuple(self.submission) or SUBMISSION_KINDS


class WeightsSpec(_Spec):
    """Weights of the three assessed components; each ≥ 0, summing to 1."""

    self_study: float = Field(default=0.3, ge=0)
    attendance: float = Field(default=0.2, ge=0)
    follow_up: float = Field(default=0.5, ge=0)

    @model_validator(mode="after")
    def _sum_to_one(self) -> WeightsSpec:
        total = self.self_study + self.attendance + self.follow_up
        if not math.isclose(total, 1.0, rel_tol=0, abs_tol=1e-6):
            raise _fail(
                f"the weights self_study + attendance + follow_up must sum to 1; they sum to "
                f"{total:g}"
            )
        return self


class AttendancePointsSpec(_Spec):
    """Points per attendance status (Moodle Attendance defaults)."""

    present: float = Field(default=2.0, gt=0)
    late: float = Field(default=1.0, ge=0)
    excused: float = Field(default=1.0, ge=0)
    absent: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _present_is_most(self) -> AttendancePointsSpec:
        for name in ("late", "excused", "absent"):
            if getattr(self, name) > self.present:
                raise _fail(f"{name} must not be worth more points than present", name)
        return self


class TierSpec(_Spec):
    """A result tier above plain completion (e.g. *good*, *excellent*)."""

    code: str
    name_vi: str
    name_en: str | None = None
    min_score: float = Field(ge=0, le=10)

    @field_validator("code", mode="before")
    @classmethod
    def _code(cls, value: object) -> object:
        return _slug(value, "tier code")

    @field_validator("name_vi", mode="before")
    @classmethod
    def _name_vi(cls, value: object) -> object:
        return _clean_text(value)

    @field_validator("name_en", mode="before")
    @classmethod
    def _name_en(cls, value: object) -> object:
        return _clean_optional_text(value)


class AssessmentSpec(_Spec):
    """How a learner's result is computed (10-point scale, Circular 19/2019/TT-BGDĐT)."""

    weights: WeightsSpec = WeightsSpec()
    #: Complete when every component scores at least this.
    pass_threshold: float = Field(default=5.0, ge=0, le=10)
    tiers: list[TierSpec] = []
    attendance_points: AttendancePointsSpec = AttendancePointsSpec()

    @model_validator(mode="after")
    def _tiers_consistent(self) -> AssessmentSpec:
        codes: set[str] = set()
        scores: set[float] = set()
        for i, tier in enumerate(self.tiers):
            if tier.code in codes:
                raise _fail(f'tier code "{tier.code}" is used twice', "tiers", i, "code")
            if tier.min_score in scores:
                raise _fail(f"two tiers start at {tier.min_score:g}", "tiers", i, "min_score")
            if tier.min_score < self.pass_threshold:
                raise _fail(
                    f"a tier must start at or above the pass threshold {self.pass_threshold:g}",
                    "tiers",
                    i,
                    "min_score",
                )
            codes.add(tier.code)
            scores.add(tier.min_score)
        return self


# --------------------------------------------------------------------------- module


class ModuleSpec(_Spec):
    """One module of one track: titles per level, default plan, materials, assessment."""

    track: Track
    #: Decision 4660/QĐ-BGDĐT module number (1–9); absent for a local topic.
    number: int | None = Field(default=None, ge=1, le=9)
    #: A local topic's code (e.g. HCMC digital-skills themes); absent for modules 1–9.
    local_code: str | None = None
    #: Levels whose title is given in ``titles``.
    levels: list[Level]
    #: Levels the module is meant for but whose title the source does not give.
    unsourced_levels: list[Level] = []
    titles: dict[Level, str]
    title_en: str | None = None
    #: Where the titles come from.
    source: str | None = None
    plan: PhasePlanSpec = PhasePlanSpec()
    materials: list[MaterialSpec] = []
    assessment: AssessmentSpec = AssessmentSpec()

    @field_validator("track", mode="before")
    @classmethod
    def _known_track(cls, value: object) -> object:
        return _one_of(value, TRACKS, "track")

    @field_validator("local_code", mode="before")
    @classmethod
    def _local_code(cls, value: object) -> object:
        if isinstance(value, str) and _NUMBER_LIKE.fullmatch(value):
            raise _fail(f'local_code "{value}" looks like a module number; choose another code')
        return _slug(value, "local_code")

    @field_validator("levels", "unsourced_levels", mode="before")
    @classmethod
    def _known_levels(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        seen: set[object] = set()
        for i, level in enumerate(value):
            if isinstance(level, str) and level not in LEVELS:
                choices = ", ".join(f'"{a}"' for a in LEVELS)
                raise _fail(f'unknown level "{level}"; use one of {choices}', i)
            if level in seen:
                raise _fail(f'level "{level}" is listed twice', i)
            seen.add(level)
        # Canonical order, so that equal modules compare equal.
        return sorted(value, key=lambda v: LEVELS.index(v) if v in LEVELS else len(LEVELS))

    @field_validator("titles", mode="before")
    @classmethod
    def _titles(cls, value: object) -> object:
        if not isinstance(value, dict):
            return value
        cleaned: dict[object, object] = {}
        for level, title in value.items():
            if isinstance(level, str) and level not in LEVELS:
                choices = ", ".join(f'"{a}"' for a in LEVELS)
                raise _fail(f'unknown level "{level}"; use one of {choices}', level)
            try:
                cleaned[level] = _clean_text(title)
            except PydanticCustomError:
                raise _fail("the title must not be empty", level) from None
        return {lv: cleaned[lv] for lv in sorted(cleaned, key=lambda v: LEVELS.index(str(v)))}

    @field_validator("title_en", "source", mode="before")
    @classmethod
    def _optional_text(cls, value: object) -> object:
        return _clean_optional_text(value)

    @model_validator(mode="after")
    def _consistent(self) -> ModuleSpec:
        if self.number is None and self.local_code is None:
            raise _fail(
                "give number (1–9, a Decision 4660 module) or local_code (a local topic)",
                "number",
            )
        if self.number is not None and self.local_code is not None:
            raise _fail("give number or local_code, not both", "local_code")
        if not self.levels:
            raise _fail("list at least one level with a title", "levels")
        for level in self.levels:
            if level not in self.titles:
                raise _fail(
                    f'no title for level "{level}", which is listed in levels', "titles", level
                )
        for level in self.titles:
            if level not in self.levels:
                raise _fail(
                    f'a title is given for level "{level}", which is not listed in levels',
                    "titles",
                    level,
                )
        for i, level in enumerate(self.unsourced_levels):
            if level in self.levels:
                raise _fail(
                    f'level "{level}" is in levels and in unsourced_levels', "unsourced_levels", i
                )
        days = {
            "self_study": self.plan.self_study_days,
            "in_person": self.plan.in_person_days,
            "follow_up": self.plan.follow_up_days,
        }
        keys: set[str] = set()
        for i, key in enumerate(self.item_keys):
            if key in keys:
                raise _fail(f'item key "{key}" is used twice', "materials", i, "key")
            keys.add(key)
            material = self.materials[i]
            if days[material.phase] == 0 and material.phase != "in_person":
                raise _fail(
                    f"the plan has no {material.phase} days for this item", "materials", i, "phase"
                )
            if material.due_day is not None and material.due_day > days[material.phase]:
                raise _fail(
                    f"due_day {material.due_day} is after the last day of its phase "
                    f"({days[material.phase]})",
                    "materials",
                    i,
                    "due_day",
                )
        return self

    @property
    def item_keys(self) -> list[str]:
        """Each material's key: its own, or ``<phase>-<n>`` (n counts within the phase)."""
        counts: dict[str, int] = {}
        out = []
        for material in self.materials:
            counts[material.phase] = counts.get(material.phase, 0) + 1
            default = f"{material.phase.replace('_', '-')}-{counts[material.phase]}"
            out.append(material.key or default)
        return out

    # ---------------------------------------------------------------- derived

    @property
    def slug(self) -> str:
        """``gvpt-m04`` for a Decision 4660 module, ``gvpt-<local_code>`` for a local topic."""
        code = f"m{self.number:02d}" if self.number is not None else self.local_code
        return f"{self.track}-{code}"

    @property
    def filename(self) -> str:
        return f"{self.slug}.toml"

    @property
    def identity(self) -> tuple[str, int | str]:
        """What must be unique in a catalogue: (track, number or local_code)."""
        return (self.track, self.number if self.number is not None else str(self.local_code))

    def title_for(self, level: str) -> str | None:
        """The Vietnamese title for ``level``, or ``None`` when it has none (yet)."""
        return self.titles.get(level)  # type: ignore[call-overload]

    def to_toml(self) -> str:
        """This module in the file format that :func:`parse_module_file` reads."""
        data = self.model_dump(mode="python", exclude_none=True)
        return (
            "# blend727 module file; the format is described in modules/README.md\n"
            + _toml_table(data, ())
        )


def _sort_key(spec: ModuleSpec) -> tuple[int, int, int, str]:
    return (
        TRACKS.index(spec.track),
        0 if spec.number is not None else 1,
        spec.number or 0,
        spec.local_code or "",
    )


# --------------------------------------------------------------------------- TOML writer


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("TOML export of a non-finite number")
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _is_table_array(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _toml_table(data: Mapping[str, Any], path: tuple[str, ...]) -> str:
    """Key/values first, then sub-tables and arrays of tables, in field order."""
    lines: list[str] = []
    nested: list[tuple[str, Any]] = []
    for key, value in data.items():
        if (isinstance(value, dict) and value) or _is_table_array(value):
            nested.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, value in nested:
        sub = (*path, key)
        dotted = ".".join(_toml_key(k) for k in sub)
        if isinstance(value, dict):
            text += f"\n[{dotted}]\n" + _toml_table(value, sub)
        else:
            for item in value:
                text += f"\n[[{dotted}]]\n" + _toml_table(item, sub)
    return text


# --------------------------------------------------------------------------- reading


def _split_dotted(key: str) -> tuple[str, ...]:
    """``a."b.c".d`` → ``("a", "b.c", "d")`` (enough for keys people write by hand)."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([^.\s]+)', key)
    return tuple(next(p for p in groups if p) if any(groups) else "" for groups in parts)


_HEADER = re.compile(r"\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_KEY_LINE = re.compile(rf"\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")


def _key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Where each table and key starts: path (with array-of-tables indexes) → 1-based line.

    A line-oriented scan, good enough for files people write: keys inside multi-line
    strings or arrays may be mistaken for keys, which only risks a wrong line hint.
    """
    found: dict[tuple[str | int, ...], int] = {}
    counts: dict[tuple[str | int, ...], int] = {}
    current: tuple[str | int, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            # A table under an array of tables belongs to its latest element:
            # [[materials.questions]] → ("materials", <n>, "questions").
            names: tuple[str | int, ...] = ()
            for name in _split_dotted(header.group(2)):
                if names in counts:
                    names = (*names, counts[names] - 1)
                names = (*names, name)
            if header.group(1) == "[[":
                index = counts.get(names, 0)
                counts[names] = index + 1
                found.setdefault(names, number)
                current = (*names, index)
            else:
                current = names
            found.setdefault(current, number)
            continue
        key = _KEY_LINE.match(line)
        if key:
            found.setdefault((*current, *_split_dotted(key.group(1))), number)
    return found


def _line_for(loc: tuple[str | int, ...], lines: Mapping[tuple[str | int, ...], int]) -> int | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _field_path(loc: Sequence[str | int]) -> str | None:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or None


_MESSAGES = {
    "extra_forbidden": "unknown key; the format is described in modules/README.md",
    "missing": "required key is missing",
}


def _problems_from(error: ValidationError, text: str, filename: str) -> list[ImportProblem]:
    lines = _key_lines(text)
    problems: list[ImportProblem] = []
    for err in error.errors():
        loc = tuple(part for part in err["loc"] if part != "[key]")
        at = (err.get("ctx") or {}).get("at", ())
        loc = (*loc, *at)
        message = _MESSAGES.get(err["type"], err["msg"])
        if err["type"] == "catalogue":
            message = str(err["ctx"]["message"])
        problems.append(ImportProblem(_line_for(loc, lines), _field_path(loc), message, filename))
    return problems


def parse_module_file(text: str, filename: str) -> ModuleSpec:
    """Read one module file; raise :class:`CatalogueImportError` listing every problem."""
    if len(text) > MAX_FILE_CHARS:
        raise CatalogueImportError(
            [
                ImportProblem(
                    None, None, f"file is longer than {MAX_FILE_CHARS} characters", filename
                )
            ]
        )
    text = text.removeprefix("\ufeff")  # a byte-order mark left by some editors
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _LINE_IN_TOML_ERROR.search(str(exc))
        line = int(found.group(1)) if found else None
        message = f"not valid TOML: {exc}"
        raise CatalogueImportError([ImportProblem(line, None, message, filename)]) from None
    try:
        return ModuleSpec.model_validate(data)
    except ValidationError as exc:
        raise CatalogueImportError(_problems_from(exc, text, filename)) from None


def parse_many(files: Mapping[str, str]) -> list[ModuleSpec]:
    """All-or-nothing: every file valid and no module twice, or one error listing it all.

    ``files`` maps file names to their text. The result is sorted like :func:`load_shipped`.
    """
    problems: list[ImportProblem] = []
    specs: list[ModuleSpec] = []
    first_seen: dict[tuple[str, int | str], str] = {}
    for filename, text in files.items():
        try:
            spec = parse_module_file(text, filename)
        except CatalogueImportError as exc:
            problems.extend(exc.problems)
            continue
        other = first_seen.setdefault(spec.identity, filename)
        if other != filename:
            field = "number" if spec.number is not None else "local_code"
            what = f"module {spec.number}" if spec.number is not None else f'"{spec.local_code}"'
            problems.append(
                ImportProblem(
                    _key_lines(text).get((field,)),
                    field,
                    f"{what} of track {spec.track} is also defined in {other}",
                    filename,
                )
            )
            continue
        specs.append(spec)
    if problems:
        raise CatalogueImportError(problems)
    return sorted(specs, key=_sort_key)


@cache
def _shipped() -> tuple[ModuleSpec, ...]:
    folder = resources.files(__package__ or "modules").joinpath("data")
    files = {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    }
    specs = parse_many(files)
    misnamed = [
        ImportProblem(None, None, f"a shipped file must be named {spec.filename}", None)
        for spec in specs
        if spec.filename not in files
    ]
    if misnamed:
        raise CatalogueImportError(misnamed)
    return tuple(specs)


def load_shipped() -> list[ModuleSpec]:
    """The modules shipped in ``modules/data``, sorted by track (gvpt, cbql) then number."""
    return list(_shipped())
