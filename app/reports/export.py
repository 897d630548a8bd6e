"""The report for the next level up as XLSX (openpyxl, write-only: rows are streamed into
the file, never held as a sheet in memory) and as CSV (UTF-8 with a BOM, so that Excel reads
the Vietnamese correctly).

Headings are Vietnamese whatever the administrator's language (the report goes to the
department); they are English message ids translated with the Vietnamese catalogue.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from app.core.i18n import get_translations
from app.core.templating import vndate
from app.grading.rules import INCOMPLETE, NOT_COMPLETE
from app.reports.rules import Counts, Report, ReportRow, TierColumn

Translate = Callable[[str], str]

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv; charset=utf-8"
BOM = "\ufeff"


def N_(message: str) -> str:
    """Mark an English message id for extraction; translated where it is written."""
    return message


TITLE = N_("Results of the 7-2-7 in-service training")
PERIOD = N_("Classes that end from %(start)s to %(end)s")
SHEET_SCHOOLS = N_("By school")
SHEET_DISTRICTS = N_("By district")
DISTRICT = N_("District")
SCHOOL = N_("School")
MODULE = N_("Module")
MODULE_TITLE = N_("Module title")
WAVE = N_("Wave")
ENROLLED = N_("Enrolled")
IN_PROGRESS = N_("In progress")
COMPLETED = N_("Completed")
NOT_COMPLETED = N_("Not complete")
NOT_SCORED = N_("Not all components scored")
LEFT = N_("Left the class")
TOTAL = N_("Total")
NOT_GIVEN = N_("(not given)")
NO_WAVE = N_("(no wave)")

_SHEET_UNSAFE = re.compile(r"[\[\]:*?/\\]")


def vietnamese() -> Translate:
    return get_translations("vi").gettext


def filename(report: Report, extension: str) -> str:
    return f"bao-cao-727_{report.period.slug}.{extension}"


def count_headings(tiers: Sequence[TierColumn], t: Translate) -> list[str]:
    """Enrolled, in progress, completed and, of those, each tier; then the other
    classifications and who left."""
    return [
        t(ENROLLED),
        t(IN_PROGRESS),
        t(COMPLETED),
        *(tier.name_vi for tier in tiers),
        t(NOT_COMPLETED),
        t(NOT_SCORED),
        t(LEFT),
    ]


def count_values(counts: Counts, tiers: Sequence[TierColumn]) -> list[int]:
    return [
        counts.enrolled,
        counts.in_progress,
        counts.completed,
        *(counts.of(tier.code) for tier in tiers),
        counts.of(NOT_COMPLETE),
        counts.of(INCOMPLETE),
        counts.left,
    ]


def headings(tiers: Sequence[TierColumn], t: Translate, *, schools: bool) -> list[str]:
    names = [t(DISTRICT), *([t(SCHOOL)] if schools else []), t(MODULE), t(MODULE_TITLE), t(WAVE)]
    return names + count_headings(tiers, t)


def row_values(
    row: ReportRow, tiers: Sequence[TierColumn], t: Translate, *, schools: bool
) -> list[Any]:
    names: list[Any] = [row.district or t(NOT_GIVEN)]
    if schools:
        names.append(row.school or t(NOT_GIVEN))
    names += [row.module.label, row.module.title, row.wave or t(NO_WAVE)]
    return names + count_values(row.counts, tiers)


def total_values(report: Report, t: Translate, *, schools: bool, blank: Any = "") -> list[Any]:
    names = [t(TOTAL)] + [blank] * (4 if schools else 3)
    return names + count_values(report.total, report.tiers)


def rows(report: Report, t: Translate, *, schools: bool) -> Iterator[list[Any]]:
    """Headings, one row per school (or district), module and wave, and the total."""
    yield headings(report.tiers, t, schools=schools)
    for row in report.schools if schools else report.districts:
        yield row_values(row, report.tiers, t, schools=schools)
    yield total_values(report, t, schools=schools)


# -- XLSX ----------------------------------------------------------------------------------


def _sheet_title(text: str) -> str:
    return _SHEET_UNSAFE.sub("-", text)[:31] or "Sheet"


def _bold(ws: WriteOnlyWorksheet, values: Sequence[Any]) -> list[Any]:
    out = []
    for value in values:
        cell = WriteOnlyCell(ws, value=value if value != "" else None)
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        out.append(cell)
    return out


def _write_sheet(wb: Workbook, report: Report, t: Translate, *, schools: bool) -> None:
    ws = wb.create_sheet(_sheet_title(t(SHEET_SCHOOLS if schools else SHEET_DISTRICTS)))
    widths = [18, 28, 10, 40, 22] if schools else [18, 10, 40, 22]
    widths += [12] * len(count_headings(report.tiers, t))
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A4"
    period = report.period
    ws.append(_bold(ws, [t(TITLE)]))
    ws.append([t(PERIOD) % {"start": vndate(period.start), "end": vndate(period.end)}])
    ws.append(_bold(ws, headings(report.tiers, t, schools=schools)))
    for row in report.schools if schools else report.districts:
        ws.append(row_values(row, report.tiers, t, schools=schools))
    ws.append(_bold(ws, total_values(report, t, schools=schools, blank=None)))


def write_xlsx(report: Report, out: IO[bytes], t: Translate | None = None) -> None:
    """Two sheets: per school and per district, each by module and wave, with a total."""
    t = t or vietnamese()
    wb = Workbook(write_only=True)
    _write_sheet(wb, report, t, schools=True)
    _write_sheet(wb, report, t, schools=False)
    wb.save(out)


# -- CSV -----------------------------------------------------------------------------------


def write_csv(report: Report, t: Translate | None = None) -> str:
    """One row per school, module and wave, headings first and the total last."""
    t = t or vietnamese()
    buf = io.StringIO()
    buf.write(BOM)
    writer = csv.writer(buf)
    for line in rows(report, t, schools=True):
        writer.writerow(line)
    return buf.getvalue()
