"""The audit log as CSV for the department's spreadsheets, written a row at a time.

Like the cohort CSV (app/dashboards/export.py): Vietnamese headings and sentences whatever the
language of the page, UTF-8 with a byte-order mark (Excel reads the diacritics), comma
separated, times dd/mm/yyyy HH:MM:SS in Vietnam's time. A cell a spreadsheet would read as a
formula (``=``, ``+``, ``-``, ``@``, tab, CR) gets an apostrophe in front: names, labels and
reasons come from people and LMSs and are not trusted.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import date

from app.audit.models import AuditEvent
from app.audit.text import actor_text, describe
from app.core.i18n import gettext
from app.core.time import local


def _(message: str) -> str:
    """Marks an English message id for extraction; translated when it is shown."""
    return message


CSV_LOCALE = "vi"
BOM = "\ufeff"
HEADINGS = (
    _("Time (Vietnam)"),
    _("Done by"),
    _("Action code"),
    _("What happened"),
    _("Object type"),
    _("Object id"),
    _("Object name"),
    _("Class id"),
    _("Before"),
    _("After"),
    _("Reason"),
    _("Request id"),
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _json(value: object) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def headings(locale: str = CSV_LOCALE) -> list[str]:
    return [gettext(locale, h) for h in HEADINGS]


def row_cells(event: AuditEvent, locale: str = CSV_LOCALE) -> list[str]:
    return [
        local(event.occurred_at).strftime("%d/%m/%Y %H:%M:%S"),
        cell(actor_text(event.actor_label, event.actor_user_id, locale)),
        cell(event.action),
        cell(describe(event, locale)),
        cell(event.object_type),
        cell(event.object_id),
        cell(event.object_label),
        "" if event.class_id is None else str(event.class_id),
        cell(_json(event.before)),
        cell(_json(event.after)),
        cell(event.reason),
        cell(event.request_id),
    ]


def csv_lines(events: Iterable[AuditEvent], locale: str = CSV_LOCALE) -> Iterator[str]:
    """The CSV, one chunk per row (the BOM and the headings first); nothing is kept."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def take() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(headings(locale))
    yield BOM + take()
    for event in events:
        writer.writerow(row_cells(event, locale))
        yield take()


def csv_filename(today: date) -> str:
    return f"nhat-ky-thay-doi-{today.isoformat()}.csv"
