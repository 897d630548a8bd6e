"""Text of the dashboards outside templates: flag reasons in the reader's language, and the
cohort as CSV for a spreadsheet.

The CSV is for the department's spreadsheets: Vietnamese headings and values whatever the
language of the page, UTF-8 with a byte-order mark (so Excel reads the diacritics), comma
separated, scores with a decimal comma as Vietnamese write them (7,25), dates dd/mm/yyyy.
A cell that a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@``, tab, CR) is
prefixed with an apostrophe: names come from the LMS and are not trusted.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from app.classes.models import ClassSession
from app.core.i18n import gettext
from app.core.templating import score_text, vndate
from app.dashboards.rules import Flag, LearnerRow
from app.grading.rules import GradePolicy
from app.grading.service import classification_name


def _(message: str) -> str:
    """Marks an English message id for extraction; translated when it is shown."""
    return message


CSV_LOCALE = "vi"
BOM = "\ufeff"

MARK_NAMES = {
    "present": _("Present"),
    "late": _("Late"),
    "excused": _("Excused"),
    "absent": _("Absent"),
}
FOLLOW_UP_STATUS = {
    "none": _("No follow-up assignment"),
    "open": _("Not handed in yet"),
    "handed_in": _("Handed in"),
    "to_grade": _("Waiting for a grade"),
    "graded": _("Graded"),
    "overdue": _("Overdue"),
}
SESSION_HEADING = {
    "morning": _("Morning of %(date)s"),
    "afternoon": _("Afternoon of %(date)s"),
}
HEADINGS_BEFORE = (
    _("Row number"),
    _("Full name"),
    _("School"),
    _("Email"),
    _("Self-study (%)"),
)
HEADINGS_AFTER = (
    _("Sessions attended"),
    _("Follow-up (%)"),
    _("Follow-up"),
    _("Self-study score"),
    _("Attendance score"),
    _("Follow-up score"),
    _("Overall score"),
    _("Result"),
    _("At risk"),
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def param_text(value: object, locale: str) -> str:
    if isinstance(value, date):
        return vndate(value)
    if isinstance(value, Decimal):
        return score_text(value, locale)
    return str(value)


def flag_text(flag: Flag, locale: str) -> str:
    """A flag's reason in ``locale``, its dates and scores written as that language does."""
    return gettext(
        locale, flag.message, **{k: param_text(v, locale) for k, v in flag.params.items()}
    )


def headings(sessions: Sequence[ClassSession], locale: str = CSV_LOCALE) -> list[str]:
    session_columns = [
        gettext(
            locale, SESSION_HEADING.get(s.part, SESSION_HEADING["morning"]), date=vndate(s.date)
        )
        for s in sessions
    ]
    return [
        *(gettext(locale, h) for h in HEADINGS_BEFORE),
        *session_columns,
        *(gettext(locale, h) for h in HEADINGS_AFTER),
    ]


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _percent(value: int | None) -> str:
    return "" if value is None else str(value)


def _score(value: Decimal | None, locale: str) -> str:
    return "" if value is None else score_text(value, locale)


def row_cells(
    number: int, row: LearnerRow, policy: GradePolicy, locale: str = CSV_LOCALE
) -> list[str]:
    result = row.result
    return [
        str(number),
        _cell(row.name),
        _cell(row.school),
        _cell(row.email),
        _percent(row.progress["self_study"].percent),
        *(gettext(locale, MARK_NAMES[m]) if m in MARK_NAMES else "" for m in row.marks),
        str(row.progress["in_person"].done),
        _percent(row.progress["follow_up"].percent),
        gettext(locale, FOLLOW_UP_STATUS[row.follow_up.status]),
        _score(result.self_study if result else None, locale),
        _score(result.attendance if result else None, locale),
        _score(result.follow_up if result else None, locale),
        _score(result.score if result else None, locale),
        classification_name(policy, result.classification if result else "incomplete", locale),
        _cell("; ".join(flag_text(f, locale) for f in row.flags)),
    ]


def cohort_csv(
    sessions: Sequence[ClassSession],
    rows: Sequence[LearnerRow],
    policy: GradePolicy,
    locale: str = CSV_LOCALE,
) -> str:
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headings(sessions, locale))
    for number, row in enumerate(rows, start=1):
        writer.writerow(row_cells(number, row, policy, locale))
    return out.getvalue()


def csv_filename(class_code: str, cohort_position: int) -> str:
    """An ASCII file name: ``nhom-<class code>-<cohort number>.csv``."""
    code = re.sub(r"[^A-Za-z0-9._-]+", "-", class_code).strip("-") or "lop"
    return f"nhom-{code}-{cohort_position}.csv"
