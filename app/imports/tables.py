"""Read an uploaded CSV or XLSX file into numbered lines of text cells — safely.

* CSV: UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8"); anything else is
  refused with what to do (never decoded by guesswork: a Windows-1258 file read as Latin-1
  would import wrong names without a word). The separator is the comma, semicolon or tab
  that the first line uses.
* XLSX: the ZIP's own directory is checked before the workbook is opened — number of parts
  and their declared uncompressed size (``zipfile`` never inflates a part past its declared
  size, so the declared sizes bound the work: no zip bomb) — then openpyxl reads the first
  sheet in ``read_only`` mode (XML through defusedxml), values only, at most
  ``MAX_COLUMNS`` columns and ``MAX_ROWS`` rows.
* Every cell becomes trimmed NFC text; a date cell becomes ``yyyy-mm-dd``, a whole number
  ``12345`` (not ``12345.0``). Lines are numbered as the person sees them (the CSV's line, the
  sheet's row). Empty lines are dropped.

A file that cannot be read raises :class:`FileProblem` (an English message id and its
params); nothing here knows what the columns mean (``app/imports/rules.py`` does).
"""

from __future__ import annotations

import csv
import io
import os
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from app.core.files import MB, safe_file_name

#: Largest file accepted (a roster of 150 or a year's calendar is a few KB).
MAX_FILE_BYTES = 5 * MB
#: Lines with data (after the dropped empty ones) and rows of a sheet, empty ones included.
MAX_LINES = 5_000
MAX_ROWS = 50_000
#: Columns read; any further right are ignored.
MAX_COLUMNS = 50
#: An XLSX: most parts in its ZIP and most bytes they may inflate to, all together.
MAX_ZIP_PARTS = 1_000
MAX_UNCOMPRESSED_BYTES = 50 * MB
EXTENSIONS = (".csv", ".xlsx")


def N_(message: str) -> str:
    """Mark an English message id for extraction; translated where it is shown."""
    return message


EMPTY = N_("The file is empty.")
NOT_A_TABLE = N_(
    "Import a .csv or .xlsx file (%(name)s is neither). In Excel use Save as → “Excel "
    "Workbook (.xlsx)” or “CSV UTF-8 (Comma delimited)”."
)
OLD_EXCEL = N_(
    "%(name)s is an old Excel workbook (.xls), an OpenDocument sheet or a workbook protected "
    "by a password. Save it without a password as “Excel Workbook (.xlsx)” or “CSV UTF-8 "
    "(Comma delimited)” and import that file."
)
NOT_UTF8 = N_(
    "The file is not UTF-8 text (line %(line)s). In Excel use Save as → “CSV UTF-8 (Comma "
    "delimited) (*.csv)”, or import the .xlsx workbook itself."
)
UTF16 = N_(
    "The file is UTF-16 text (“Unicode Text”). In Excel use Save as → “CSV UTF-8 (Comma "
    "delimited) (*.csv)”, or import the .xlsx workbook itself."
)
BINARY = N_("The file is not a text file; name it after what it is (.xlsx or .csv).")
MISMATCH = N_("The content of the file does not match its extension (%(ext)s).")
BAD_CSV = N_("Line %(line)s could not be read as CSV: check its quotation marks.")
BROKEN_XLSX = N_("The workbook could not be read: it is damaged or not an Excel workbook.")
ZIP_TOO_BIG = N_(
    "The workbook is too large once unpacked (more than %(max)s MB); import only the sheet "
    "with the list, or save it as CSV UTF-8."
)
NO_SHEET = N_("The workbook has no sheet.")
TOO_MANY_LINES = N_("The file has more than %(max)s lines; split it into several files.")


class FileProblem(ValueError):
    """The whole file was refused; ``message`` is an English message id."""

    def __init__(self, message: str, **params: Any) -> None:
        self.message = message
        self.params = params
        super().__init__(message % params if params else message)


@dataclass(frozen=True)
class Line:
    number: int
    cells: tuple[str, ...]

    def cell(self, index: int | None) -> str:
        if index is None or index >= len(self.cells):
            return ""
        return self.cells[index]


@dataclass(frozen=True)
class Table:
    name: str
    kind: str  # "csv" | "xlsx"
    lines: list[Line] = field(default_factory=list)


# -- cells ----------------------------------------------------------------------------------

_INVISIBLE = dict.fromkeys(map(ord, "\ufeff\u200b\u200c\u200d\u2060\u00ad"), None)


def clean_cell(value: object) -> str:
    """A cell as trimmed NFC text: dates as yyyy-mm-dd, whole numbers without ``.0``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "TRUE" if value else "FALSE"
    elif isinstance(value, datetime):
        text = value.date().isoformat()
    elif isinstance(value, date | time):
        text = value.isoformat()
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    else:
        text = str(value)
    text = unicodedata.normalize("NFC", text.translate(_INVISIBLE))
    text = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in text)
    return " ".join(text.split())


def _line(number: int, values: Any) -> Line | None:
    cells = tuple(clean_cell(v) for v in list(values)[:MAX_COLUMNS])
    while cells and not cells[-1]:
        cells = cells[:-1]
    return Line(number, cells) if cells else None


# -- CSV ------------------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """UTF-8 with or without a byte-order mark; anything else is refused, never guessed."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileProblem(UTF16)
    data = data.removeprefix(b"\xef\xbb\xbf")
    if b"\x00" in data:
        raise FileProblem(BINARY)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileProblem(NOT_UTF8, line=data[: exc.start].count(b"\n") + 1) from None


def _separator(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {sep: first.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def read_csv(data: bytes, name: str = "") -> Table:
    text = decode_text(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_separator(text), strict=True)
    lines: list[Line] = []
    start = 1
    try:
        for record in reader:
            number, start = start, reader.line_num + 1
            line = _line(number, record)
            if line is None:
                continue
            if len(lines) >= MAX_LINES:
                raise FileProblem(TOO_MANY_LINES, max=MAX_LINES)
            lines.append(line)
    except csv.Error:
        raise FileProblem(BAD_CSV, line=start) from None
    return Table(name, "csv", lines)


# -- XLSX -----------------------------------------------------------------------------------


def check_zip(data: bytes) -> None:
    """The ZIP's directory, before anything is inflated: few parts, bounded sizes, no
    encryption."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise FileProblem(BROKEN_XLSX) from None
    if len(parts) > MAX_ZIP_PARTS:
        raise FileProblem(ZIP_TOO_BIG, max=MAX_UNCOMPRESSED_BYTES // MB)
    if sum(p.file_size for p in parts) > MAX_UNCOMPRESSED_BYTES:
        raise FileProblem(ZIP_TOO_BIG, max=MAX_UNCOMPRESSED_BYTES // MB)
    if any(p.flag_bits & 0x1 for p in parts):
        raise FileProblem(BROKEN_XLSX)


def read_xlsx(data: bytes, name: str = "") -> Table:
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise FileProblem(OLD_EXCEL, name=name or ".xls")
    if not data.startswith(b"PK\x03\x04"):
        raise FileProblem(MISMATCH, ext=".xlsx")
    check_zip(data)
    import openpyxl  # imported here: only imports need it

    lines: list[Line] = []
    try:
        workbook = openpyxl.load_workbook(
            io.BytesIO(data), read_only=True, data_only=True, keep_links=False
        )
    except Exception:  # untrusted bytes: any failure of the reader is a damaged file
        raise FileProblem(BROKEN_XLSX) from None
    try:
        if not workbook.worksheets:
            raise FileProblem(NO_SHEET)
        sheet = workbook.worksheets[0]
        rows = sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True)
        for number, values in enumerate(rows, start=1):
            if number > MAX_ROWS:
                raise FileProblem(TOO_MANY_LINES, max=MAX_LINES)
            line = _line(number, values)
            if line is None:
                continue
            if len(lines) >= MAX_LINES:
                raise FileProblem(TOO_MANY_LINES, max=MAX_LINES)
            lines.append(line)
    except FileProblem:
        raise
    except Exception:
        raise FileProblem(BROKEN_XLSX) from None
    finally:
        workbook.close()
    return Table(name, "xlsx", lines)


# -- either ---------------------------------------------------------------------------------


def read_table(filename: str, data: bytes) -> Table:
    """The file's lines, by its extension (checked against its first bytes)."""
    name = safe_file_name(filename)
    ext = os.path.splitext(name)[1].lower()
    if not data:
        raise FileProblem(EMPTY)
    if ext in (".xls", ".ods", ".xlsm", ".xlsb", ".numbers"):
        raise FileProblem(OLD_EXCEL, name=name)
    if ext == ".xlsx":
        return read_xlsx(data, name)
    if ext == ".csv":
        if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
            raise FileProblem(MISMATCH, ext=".csv")
        return read_csv(data, name)
    raise FileProblem(NOT_A_TABLE, name=name or "?")
