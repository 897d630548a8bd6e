"""What the lines of an imported file mean: the header row, holiday lines, roster lines.

Plain functions over :class:`app.imports.tables.Table`; no database. Every problem is a
:class:`Problem` with the line and column it belongs to and an English message id (with its
params), so that a whole file is checked and every problem listed before anything is written.

The header row is found among the first lines (a department's sheet often starts with a title
and a date): the first line where two known columns are named, or a required one (a cell that
is exactly "Email"), or where every non-empty cell names a column. Headings are compared
without diacritics, case, punctuation or what is in brackets: "Họ và tên (*)", "HO VA TEN"
and "họ  và tên" are one heading. Lines above the header are ignored, and so are lines whose
known columns are all empty (the numbered but empty rows of a template, a total at the
bottom).
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.core.templating import vndate
from app.imports.tables import Line, Table

#: How many lines from the top may come before the header row.
HEADER_SEARCH_LINES = 20
MIN_YEAR, MAX_YEAR = 2000, 2100
MAX_NAME_CHARS = 200
MAX_TEXT_CHARS = 255
MAX_EMAIL_CHARS = 320
#: Longest piece of a cell quoted back in a message.
QUOTE_CHARS = 60


def N_(message: str) -> str:
    """Mark an English message id for extraction; translated where it is shown."""
    return message


# -- problems -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an imported file. ``line`` is the file's line (or the sheet's
    row), ``column`` a column key (``date``, ``email``…); either may be ``None``."""

    line: int | None
    column: str | None
    message: str
    params: Mapping[str, Any] = field(default_factory=dict)


#: Column key → its label (a message id), as problems name it.
COLUMN_LABELS = {
    "date": N_("Date"),
    "kind": N_("Kind"),
    "name": N_("Name"),
    "full_name": N_("Full name"),
    "email": N_("Email"),
    "user_id": N_("LMS user id"),
    "school": N_("School"),
    "district": N_("District"),
    "cohort": N_("Cohort"),
}
#: Params that are message ids themselves (``kind``: "day off").
TRANSLATED_PARAMS = ("kind",)
AT_LINE_COLUMN = N_("Line %(line)s, column %(column)s: %(message)s")
AT_LINE = N_("Line %(line)s: %(message)s")

Translate = Callable[[str], str]


def describe(problem: Problem, translate: Translate) -> str:
    """``Dòng 7, cột Ngày: '31/02/2027' không phải là ngày hợp lệ`` in the reader's language."""
    params = dict(problem.params)
    for key in TRANSLATED_PARAMS:
        if isinstance(params.get(key), str):
            params[key] = translate(params[key])
    message = translate(problem.message)
    with contextlib.suppress(KeyError, ValueError, TypeError):
        message = message % params
    if problem.line is None:
        return message
    if problem.column is None:
        return translate(AT_LINE) % {"line": problem.line, "message": message}
    column = translate(COLUMN_LABELS.get(problem.column, problem.column))
    return translate(AT_LINE_COLUMN) % {
        "line": problem.line,
        "column": column,
        "message": message,
    }


def quoted(text: str) -> str:
    """A cell as quoted back in a message: at most ``QUOTE_CHARS`` characters."""
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"


# -- headings -------------------------------------------------------------------------------

_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def heading_key(text: str) -> str:
    """``"Quận/Huyện (*)"`` → ``"quan huyen"``: no marks, case, brackets or punctuation."""
    plain = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch)).lower()
    plain = _BRACKETS.sub(" ", plain)
    return " ".join(_NOT_WORD.sub(" ", plain).split())


@dataclass(frozen=True)
class Column:
    key: str
    aliases: tuple[str, ...]
    #: The heading an export writes (Vietnamese, as departments keep their sheets).
    heading: str


@dataclass(frozen=True)
class Header:
    line: int
    positions: dict[str, int]  # column key → cell index


#: Headings of columns an import does not read but that a header row often has.
OTHER_HEADINGS = frozenset(
    {"stt", "tt", "so tt", "so thu tu", "no", "ghi chu", "note", "notes", "chuc vu", "mon"}
)
MISSING_HEADER = N_(
    "No header row was found in the first %(lines)s lines: the columns must be named, e.g. "
    "%(headings)s."
)
MISSING_COLUMN = N_("The header row has no column %(column)s.")
TWICE = N_("Two columns of the header row are %(column)s; keep one.")
NO_LINES = N_("The file has a header row but no lines below it.")


def find_header(
    table: Table, columns: Sequence[Column], required: Sequence[str], problems: list[Problem]
) -> Header | None:
    """The header row and where each known column is; problems when none or when it lacks a
    required column (``required``: keys, or ``"a|b"`` for either)."""
    aliases = {alias: c.key for c in columns for alias in c.aliases}
    for line in table.lines[:HEADER_SEARCH_LINES]:
        found: dict[str, list[int]] = {}
        filled = other = 0
        for index, text in enumerate(line.cells):
            if not text:
                continue
            filled += 1
            heading = heading_key(text)
            key = aliases.get(heading)
            if key is not None:
                found.setdefault(key, []).append(index)
            elif heading in OTHER_HEADINGS:
                other += 1
        names_required = any(k in found for need in required for k in need.split("|"))
        if not found or not (len(found) >= 2 or names_required or len(found) + other == filled):
            continue
        header = Header(line.number, {key: where[0] for key, where in found.items()})
        for key, where in found.items():
            if len(where) > 1:
                problems.append(Problem(line.number, None, TWICE, {"column": _label(key)}))
        for need in required:
            if not any(k in found for k in need.split("|")):
                names = " / ".join(_label(k) for k in need.split("|"))
                problems.append(Problem(line.number, None, MISSING_COLUMN, {"column": names}))
        return header
    headings = ", ".join(c.heading for c in columns if c.key in "|".join(required).split("|"))
    problems.append(
        Problem(None, None, MISSING_HEADER, {"lines": HEADER_SEARCH_LINES, "headings": headings})
    )
    return None


def _label(key: str) -> str:
    """A column named inside a message: its Vietnamese heading (files are Vietnamese)."""
    return next((c.heading for c in (*HOLIDAY_COLUMNS, *ROSTER_COLUMNS) if c.key == key), key)


def data_lines(table: Table, header: Header) -> list[Line]:
    """Lines below the header with at least one known column filled in."""
    known = list(header.positions.values())
    return [
        line
        for line in table.lines
        if line.number > header.line and any(line.cell(i) for i in known)
    ]


def _text(line: Line, header: Header, key: str) -> str:
    return line.cell(header.positions.get(key))


def _unformula(text: str) -> str:
    """Undo the apostrophe an export puts before a cell a spreadsheet would run as a formula."""
    if text.startswith("'") and text[1:2] in ("=", "+", "-", "@"):
        return text[1:]
    return text


# -- dates ----------------------------------------------------------------------------------

_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]00:00(?::00(?:\.0+)?)?)?")
_VN = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")

BAD_DATE = N_("'%(value)s' is not a valid date (dd/mm/yyyy)")
DATE_OUT_OF_RANGE = N_("'%(value)s' is outside the years %(first)s–%(last)s")


def parse_day(text: str) -> date | None:
    """``dd/mm/yyyy`` (also with ``-`` or ``.``, day first as in Vietnam) or ISO
    ``yyyy-mm-dd``; ``None`` when it is neither or names no day (31/02)."""
    iso = _ISO.fullmatch(text)
    vn = _VN.fullmatch(text)
    try:
        if iso:
            return date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
        if vn:
            return date(int(vn.group(3)), int(vn.group(2)), int(vn.group(1)))
    except ValueError:
        return None
    return None


# -- holidays -------------------------------------------------------------------------------

HOLIDAY_COLUMNS = (
    Column("date", ("ngay", "date", "ngay thang", "ngay nghi", "ngay thang nam", "day"), "Ngày"),
    Column(
        "kind",
        ("loai", "kind", "type", "loai ngay", "nghi lam bu", "nghi hay lam", "nghi lam"),
        "Loại",
    ),
    Column(
        "name",
        ("ten", "name", "ten ngay", "ten ngay nghi", "ly do", "reason", "noi dung"),
        "Tên",
    ),
)
#: Words for an extra day off and for a working day (compared like headings).
DAY_OFF_WORDS = frozenset(
    {
        "nghi",
        "ngay nghi",
        "nghi le",
        "ngay nghi le",
        "nghi bu",
        "ngay nghi bu",
        "nghi them",
        "off",
        "day off",
        "extra day off",
        "holiday",
    }
)
WORKING_WORDS = frozenset(
    {
        "lam bu",
        "ngay lam bu",
        "di lam bu",
        "lam",
        "lam viec",
        "ngay lam viec",
        "di lam",
        "working",
        "working day",
        "work",
        "workday",
    }
)
#: What an export writes for each kind (and the import reads back).
KIND_WORDS = {"off": "nghỉ", "working": "làm bù"}

REQUIRED = N_("This cell is empty")
BAD_KIND = N_("'%(value)s' is not a kind of day: write “nghỉ” (day off) or “làm bù” (working day)")
TOO_LONG = N_("'%(value)s' is longer than %(max)s characters")
SAME_DATE = N_("%(date)s is already on line %(other)s")


@dataclass(frozen=True)
class HolidayLine:
    line: int
    date: date
    kind: str  # "off" | "working"
    name: str


def parse_kind(text: str) -> str | None:
    key = heading_key(text)
    if key in DAY_OFF_WORDS:
        return "off"
    if key in WORKING_WORDS:
        return "working"
    return None


def parse_holidays(table: Table) -> tuple[list[HolidayLine], list[Problem]]:
    """Every line of a holiday file, or every problem with it (duplicates included)."""
    problems: list[Problem] = []
    header = find_header(table, HOLIDAY_COLUMNS, ("date", "kind", "name"), problems)
    if header is None or problems:
        return [], problems
    lines = data_lines(table, header)
    if not lines:
        return [], [Problem(header.line, None, NO_LINES)]
    out: list[HolidayLine] = []
    seen: dict[date, int] = {}
    for line in lines:
        raw_date = _text(line, header, "date")
        raw_kind = _text(line, header, "kind")
        name = _unformula(_text(line, header, "name"))
        day = parse_day(raw_date) if raw_date else None
        kind = parse_kind(raw_kind) if raw_kind else None
        ok = True
        if not raw_date:
            problems.append(Problem(line.number, "date", REQUIRED))
            ok = False
        elif day is None:
            problems.append(Problem(line.number, "date", BAD_DATE, {"value": quoted(raw_date)}))
            ok = False
        elif not MIN_YEAR <= day.year <= MAX_YEAR:
            problems.append(
                Problem(
                    line.number,
                    "date",
                    DATE_OUT_OF_RANGE,
                    {"value": quoted(raw_date), "first": MIN_YEAR, "last": MAX_YEAR},
                )
            )
            ok = False
        if not raw_kind:
            problems.append(Problem(line.number, "kind", REQUIRED))
            ok = False
        elif kind is None:
            problems.append(Problem(line.number, "kind", BAD_KIND, {"value": quoted(raw_kind)}))
            ok = False
        if not name:
            problems.append(Problem(line.number, "name", REQUIRED))
            ok = False
        elif len(name) > MAX_NAME_CHARS:
            problems.append(
                Problem(
                    line.number, "name", TOO_LONG, {"value": quoted(name), "max": MAX_NAME_CHARS}
                )
            )
            ok = False
        if day is not None and ok:
            if day in seen:
                problems.append(
                    Problem(
                        line.number, "date", SAME_DATE, {"date": vndate(day), "other": seen[day]}
                    )
                )
                continue
            seen[day] = line.number
        if ok and day is not None and kind is not None:
            out.append(HolidayLine(line.number, day, kind, name))
    return out, problems


# -- rosters --------------------------------------------------------------------------------

ROSTER_COLUMNS = (
    Column(
        "full_name",
        (
            "ho ten",
            "ho va ten",
            "ho ten hoc vien",
            "ho va ten hoc vien",
            "ho ten giao vien",
            "ho va ten giao vien",
            "ten hoc vien",
            "ten giao vien",
            "name",
            "full name",
        ),
        "Họ và tên",
    ),
    Column(
        "email",
        (
            "email",
            "e mail",
            "mail",
            "thu dien tu",
            "dia chi email",
            "dia chi e mail",
            "dia chi thu dien tu",
            "email address",
        ),
        "Email",
    ),
    Column(
        "user_id",
        (
            "lms user id",
            "ma lms",
            "id lms",
            "lms id",
            "ma nguoi dung lms",
            "ma nguoi dung",
            "moodle id",
            "id moodle",
            "moodle user id",
            "ma moodle",
            "user id",
            "userid",
        ),
        "Mã LMS",
    ),
    Column(
        "school",
        (
            "truong",
            "ten truong",
            "truong cong tac",
            "don vi",
            "don vi cong tac",
            "co so giao duc",
            "school",
        ),
        "Trường",
    ),
    Column(
        "district",
        ("quan huyen", "quan huyen thi xa", "quan", "huyen", "district"),
        "Quận/Huyện",
    ),
    Column("cohort", ("nhom", "ten nhom", "nhom hoc tap", "cohort", "group"), "Nhóm"),
)

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
NO_IDENTIFIER = N_("Give the person's e-mail or LMS user id")
BAD_EMAIL = N_("'%(value)s' is not an e-mail address")


@dataclass(frozen=True)
class RosterLine:
    line: int
    full_name: str
    email: str | None  # lower case
    user_id: str | None
    school: str | None
    district: str | None
    cohort: str | None


def parse_roster(table: Table) -> tuple[list[RosterLine], list[Problem]]:
    """Every line of a roster file, or every problem found without the database."""
    problems: list[Problem] = []
    header = find_header(table, ROSTER_COLUMNS, ("email|user_id",), problems)
    if header is None or problems:
        return [], problems
    lines = data_lines(table, header)
    if not lines:
        return [], [Problem(header.line, None, NO_LINES)]
    out: list[RosterLine] = []
    for line in lines:
        values = {
            key: _unformula(_text(line, header, key))
            for key in ("full_name", "email", "user_id", "school", "district", "cohort")
        }
        ok = True
        for key, limit in (
            ("full_name", MAX_TEXT_CHARS),
            ("user_id", MAX_TEXT_CHARS),
            ("school", MAX_TEXT_CHARS),
            ("district", MAX_TEXT_CHARS),
            ("cohort", 120),
            ("email", MAX_EMAIL_CHARS),
        ):
            if len(values[key]) > limit:
                params = {"value": quoted(values[key]), "max": limit}
                problems.append(Problem(line.number, key, TOO_LONG, params))
                ok = False
        email = values["email"].lower() or None
        if email is not None and not _EMAIL.fullmatch(email):
            problems.append(Problem(line.number, "email", BAD_EMAIL, {"value": quoted(email)}))
            ok = False
        if not values["email"] and not values["user_id"]:
            column = "email" if "email" in header.positions else "user_id"
            problems.append(Problem(line.number, column, NO_IDENTIFIER))
            ok = False
        if ok:
            out.append(
                RosterLine(
                    line=line.number,
                    full_name=values["full_name"],
                    email=email,
                    user_id=values["user_id"] or None,
                    school=values["school"] or None,
                    district=values["district"] or None,
                    cohort=values["cohort"] or None,
                )
            )
    return out, problems


# -- export ---------------------------------------------------------------------------------


def holiday_rows(overrides: Sequence[Any]) -> list[list[str]]:
    """The administrators' changes of the calendar as the lines an import reads back: a
    header (Ngày, Loại, Tên) then ``dd/mm/yyyy``, ``nghỉ``/``làm bù``, the name."""
    rows = [[c.heading for c in HOLIDAY_COLUMNS]]
    for o in sorted(overrides, key=lambda o: o.date):
        rows.append([vndate(o.date), KIND_WORDS.get(o.kind, o.kind), o.name])
    return rows
