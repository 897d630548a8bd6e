"""Imports as JSON API (the pages in ``app/admin/pages.py`` call the same functions).

* ``POST /api/v1/holidays/import`` — multipart, one ``file`` (.csv or .xlsx);
* ``POST /api/v1/classes/{class_id}/roster/import`` — the same for a class's learners.

``?dry_run=true`` checks the file and says what would happen, writing nothing. A refused file
is a 422 problem (``import_refused``) whose ``errors`` list every problem with its ``line``,
``field`` (the column) and translated ``message``; nothing is written. The body is capped
before it is parsed (``Content-Length`` and while it streams).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from app.audit.service import actor_of
from app.auth.api import ApiAdmin
from app.auth.dependencies import DbSession, Viewer
from app.classes.models import HolidayOverride
from app.classes.service import ClassService
from app.core.files import MB, cap_request_body, content_disposition, safe_file_name, too_large
from app.core.i18n import get_translations
from app.core.templating import request_locale
from app.imports.rules import COLUMN_LABELS, Problem, describe, holiday_rows
from app.imports.service import ImportRefused, ImportService, refused_file
from app.imports.tables import EMPTY, MAX_FILE_BYTES, FileProblem, Table, read_table

router = APIRouter(prefix="/api/v1", tags=["imports"])

#: Room for the form's other fields and the multipart framing around the file.
FORM_OVERHEAD = 64 * 1024
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BOM = "\ufeff"
HOLIDAYS_FILE = "lich-nghi-bo-sung"
SHEET_NAME = "Ngày nghỉ"  # Vietnamese whatever the page's language, like the headings


def N_(message: str) -> str:
    """Mark an English message id for extraction; translated where it is shown."""
    return message


NO_FILE = N_("Choose a .csv or .xlsx file.")


# -- reading the upload ---------------------------------------------------------------------


async def import_form(request: Request) -> AsyncIterator[FormData]:
    """The posted form with at most one file, its body capped before it is parsed."""
    cap_request_body(request, MAX_FILE_BYTES + FORM_OVERHEAD, shown_mb=MAX_FILE_BYTES / MB)
    form = await request.form(max_files=1, max_fields=20)
    try:
        yield form
    finally:
        await form.close()


ImportForm = Depends(import_form)


def uploaded_table(form: FormData, field: str = "file") -> Table:
    """The uploaded file read as a table, or :class:`ImportRefused` saying why not."""
    upload = form.get(field)
    if not isinstance(upload, UploadFile) or not safe_file_name(upload.filename):
        raise ImportRefused([Problem(None, None, NO_FILE)])
    data = upload.file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise too_large(MAX_FILE_BYTES / MB)
    if not data:
        raise ImportRefused([Problem(None, None, EMPTY)])
    try:
        return read_table(upload.filename or "", data)
    except FileProblem as exc:
        raise refused_file(exc) from None


def problem_list(request: Request, problems: Sequence[Problem]) -> list[dict[str, Any]]:
    """Problems as the API and the pages show them, in the reader's language."""
    translate = get_translations(request_locale(request)).gettext
    return [
        {
            "line": p.line,
            "field": p.column,
            "column": translate(COLUMN_LABELS[p.column]) if p.column in COLUMN_LABELS else None,
            "message": describe(p, translate),
        }
        for p in problems
    ]


def _refusal(request: Request, exc: ImportRefused) -> ImportRefused:
    exc.problem_extra = {"errors": problem_list(request, exc.problems)}  # type: ignore[attr-defined]
    return exc


def _dry_run(request: Request) -> bool:
    return request.query_params.get("dry_run", "").lower() in ("1", "true", "yes")


# -- the API --------------------------------------------------------------------------------


#: The body of both imports in the API's description: a form with one file.
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    },
    "parameters": [
        {
            "name": "dry_run",
            "in": "query",
            "required": False,
            "schema": {"type": "boolean", "default": False},
            "description": "Check the file and say what would happen; write nothing.",
        }
    ],
}


@router.post(
    "/holidays/import",
    summary="Import days off and working days (CSV/XLSX: Ngày, Loại, Tên), all or nothing",
    openapi_extra=UPLOAD_BODY,
)
def import_holidays(
    request: Request,
    viewer: Viewer = ApiAdmin,
    form: FormData = ImportForm,
    db: Session = DbSession,
) -> JSONResponse:
    dry_run = _dry_run(request)
    try:
        table = uploaded_table(form)
        result = ImportService(db, actor_of(viewer)).holidays(
            viewer.deployment_id, table, dry_run=dry_run
        )
    except ImportRefused as exc:
        raise _refusal(request, exc) from None
    return JSONResponse(result.as_dict(), status_code=200 if dry_run else 201)


@router.post(
    "/classes/{class_id}/roster/import",
    summary="Enrol a class's learners from a CSV/XLSX list, all or nothing",
    openapi_extra=UPLOAD_BODY,
)
def import_roster(
    class_id: int,
    request: Request,
    viewer: Viewer = ApiAdmin,
    form: FormData = ImportForm,
    db: Session = DbSession,
) -> dict[str, Any]:
    ClassService(db).get_class(viewer.deployment_id, class_id)  # 404 before the file
    try:
        table = uploaded_table(form)
        result = ImportService(db, actor_of(viewer)).roster(
            viewer.deployment_id, class_id, table, dry_run=_dry_run(request)
        )
    except ImportRefused as exc:
        raise _refusal(request, exc) from None
    return result.as_dict()


# -- the calendar as a file -----------------------------------------------------------------


def _formula_safe(text: str) -> str:
    return "'" + text if text.startswith(("=", "+", "-", "@")) else text


def holidays_csv(overrides: Sequence[HolidayOverride]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in holiday_rows(overrides):
        writer.writerow([_formula_safe(cell) for cell in row])
    return Response(
        (BOM + out.getvalue()).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": content_disposition(f"{HOLIDAYS_FILE}.csv"),
            "Cache-Control": "no-store",
        },
    )


def holidays_xlsx(overrides: Sequence[HolidayOverride]) -> Response:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = SHEET_NAME
    rows = holiday_rows(overrides)
    sheet.append(rows[0])
    for override in sorted(overrides, key=lambda o: o.date):
        line = sheet.max_row + 1
        sheet.cell(line, 1, override.date).number_format = "DD/MM/YYYY"
        for column, text in ((2, rows[line - 1][1]), (3, rows[line - 1][2])):
            cell = sheet.cell(line, column, text)
            cell.data_type = "s"  # never a formula, whatever the name starts with
    for letter, width in (("A", 14), ("B", 10), ("C", 60)):
        sheet.column_dimensions[letter].width = width
    out = io.BytesIO()
    book.save(out)
    return Response(
        out.getvalue(),
        media_type=XLSX_TYPE,
        headers={
            "Content-Disposition": content_disposition(f"{HOLIDAYS_FILE}.xlsx"),
            "Cache-Control": "no-store",
        },
    )
