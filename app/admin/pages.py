"""Administrator pages of the 7-2-7 core: catalogue, waves, classes, compliance, holidays.

Server-rendered and usable without JavaScript: forms post back and answer a redirect (303)
on success; a refused form is rendered again with the message next to the field at fault,
the input kept, and nothing written (the session is rolled back before rendering). Every
route is for administrators and scoped to their deployment; they call the same services as
the JSON API (``app/classes/endpoints.py``, ``app/catalogue/endpoints.py``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from app.audit.service import actor_of
from app.auth.dependencies import DbSession, ReadDbSession, Viewer, check_csrf, require_roles
from app.catalogue.models import Module, ModuleVersion
from app.catalogue.repository import CatalogueRepository
from app.catalogue.service import CatalogueService, ImportRefused, spec_of
from app.classes.models import (
    EnrolmentStatus,
    Level,
    TrainingClass,
)
from app.classes.rules import (
    SUPPORT_PERIODS_MIN,
    RuleResult,
    Status,
)
from app.classes.schemas import ClassCreate, FallbackSet, HolidayCreate, WaveCreate
from app.classes.service import ClassService, plan_of, stored_schedule
from app.core.errors import AppError, Conflict, NotFound, ValidationFailed
from app.core.files import MB, cap_request_body
from app.core.i18n import get_translations
from app.core.templating import render, request_locale, vndate
from app.core.time import local, utcnow
from app.identity.models import Role, User
from app.identity.repository import IdentityRepository
from app.imports.endpoints import (
    ImportForm,
    holidays_csv,
    holidays_xlsx,
    problem_list,
    uploaded_table,
)
from app.imports.service import ImportRefused as TableImportRefused
from app.imports.service import ImportService, RosterImportResult
from app.imports.tables import MAX_FILE_BYTES as MAX_TABLE_BYTES
from app.schedule.service import HolidayService, calendar_for
from modules.catalogue import IN_TOOL_KINDS, LEVELS, MATERIAL_KINDS, PHASES, ModuleSpec

router = APIRouter(prefix="/admin", tags=["admin pages"], include_in_schema=False)

AdminOnly = Depends(require_roles(Role.ADMIN))

#: Largest module file accepted by the import form, in bytes (a real one is about 2 KB).
MAX_IMPORT_BYTES = 100 * 1024
MAX_IMPORT_FILES = 20
#: Largest CSV/XLSX a holiday or roster import takes, in MB (shown on the pages).
MAX_TABLE_MB = MAX_TABLE_BYTES // MB
#: Largest body of an administrator's form: every module file at its largest, and the fields.
MAX_FORM_BYTES = MAX_IMPORT_FILES * MAX_IMPORT_BYTES + 512 * 1024
#: Empty material rows offered per phase on the module form.
EMPTY_MATERIAL_ROWS = 2
#: Most people offered in the "add a core trainer" list (trainers of the LMS first).
MAX_PEOPLE = 1000
MAX_PEOPLE_FOUND = 50  # people listed for one search
MIN_PEOPLE_SEARCH = 2
FORM = "_form"  # errors that belong to no single field


def N_(message: str) -> str:
    """Mark an English message id for extraction; it is translated where it is shown."""
    return message


TRACK_NAMES = {"gvpt": N_("GVPT (teachers)"), "cbql": N_("CBQL (school managers)")}
LEVEL_NAMES = {
    "tieu_hoc": N_("Primary school"),
    "thcs": N_("Lower secondary school"),
    "thpt": N_("Upper secondary school"),
}
PHASE_NAMES = {
    "self_study": N_("Self-study"),
    "in_person": N_("In person"),
    "follow_up": N_("Follow-up"),
}
PART_NAMES = {"morning": N_("Morning"), "afternoon": N_("Afternoon")}
KIND_NAMES = {
    "document": N_("Document"),
    "slides": N_("Slides"),
    "video": N_("Video"),
    "audio": N_("Audio"),
    "quiz": N_("Quiz"),
    "assignment": N_("Assignment"),
    "forum": N_("Forum"),
    "link": N_("Link"),
    "reflection": N_("Reflection"),
}
HOLIDAY_KIND_NAMES = {
    "fixed": N_("Public holiday"),
    "lunar": N_("Public holiday (lunar calendar)"),
    "compensatory": N_("Day off in lieu"),
    "custom": N_("Added by an administrator"),
}
STATUS_NAMES = {"pass": N_("Pass"), "fail": N_("Fail"), "pending": N_("Pending")}
#: Labels of the inputs, for messages that name their field (``%(field)s``).
FIELD_LABELS = {
    "code": N_("Class code"),
    "name": N_("Name"),
    "module_id": N_("Module"),
    "level": N_("Level"),
    "wave_id": N_("Wave"),
    "capacity": N_("Capacity"),
    "start_date": N_("Start date"),
    "in_person_dates": N_("In-person dates"),
    "venue": N_("Venue"),
    "room": N_("Room"),
    "year": N_("Year"),
    "description": N_("Description"),
    "url": N_("Virtual classroom link"),
    "reason": N_("Reason"),
    "decided_on": N_("Date of the decision"),
    "date": N_("Date"),
    "kind": N_("Kind"),
    "user_id": N_("Person"),
    "trainer_user_id": N_("Core trainer"),
}
#: ``?done=`` after a redirect → the notice shown on the page.
NOTICES = {
    "imported": N_("The module files were imported."),
    "saved": N_("Saved: a new version of the module was written."),
    "unchanged": N_("Nothing changed, so no new version was written."),
    "wave": N_("The wave was created."),
    "created": N_("The class was created and its schedule computed."),
    "fallback_on": N_("The in-person sessions now take place in the virtual classroom."),
    "fallback_off": N_("The sessions are in person again."),
    "trainer": N_("The core trainer was added to the class."),
    "split": N_("The learners were split into cohorts."),
    "moved": N_("The learner was moved."),
    "cohort_trainer": N_("The cohort's core trainer was changed."),
    "calendar": N_(
        "The class's calendar link was renewed: the old link no longer works. Give the new "
        "one to those who should have it."
    ),
    "holiday": N_("The calendar was updated."),
}

# Pydantic error types → message ids (params from the error's ctx).
_REQUIRED = N_("This field is required.")
_PYDANTIC_MESSAGES = {
    "missing": _REQUIRED,
    "string_too_long": N_("At most %(max_length)s characters."),
    "string_pattern_mismatch": N_("Use only letters, digits and the signs . _ -"),
    "int_parsing": N_("Enter a whole number."),
    "int_type": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."),
    "float_parsing": N_("Enter a number."),
    "float_type": N_("Enter a number."),
    "greater_than_equal": N_("Enter a number of at least %(ge)s."),
    "greater_than": N_("Enter a number above %(gt)s."),
    "less_than_equal": N_("Enter a number of at most %(le)s."),
    "less_than": N_("Enter a number below %(lt)s."),
    "date_parsing": N_("Enter a valid date."),
    "date_from_datetime_parsing": N_("Enter a valid date."),
    "date_from_datetime_inexact": N_("Enter a valid date."),
    "date_type": N_("Enter a valid date."),
    "url_parsing": N_("Enter an address that starts with http:// or https://."),
    "url_scheme": N_("Enter an address that starts with http:// or https://."),
    "url_type": N_("Enter an address that starts with http:// or https://."),
    "url_syntax_violation": N_("Enter an address that starts with http:// or https://."),
    "url_too_long": N_("The address is too long."),
    "literal_error": N_("Choose one of the options."),
    "enum": N_("Choose one of the options."),
    "list_too_long": N_("Too many values."),
}
_INVALID = N_("This value is not valid.")


# -- helpers -------------------------------------------------------------------------------


async def _form(request: Request) -> AsyncIterator[FormData]:
    """The posted form (urlencoded or multipart), closed after the response; its body is
    capped before it is parsed (module files: ``MAX_IMPORT_FILES`` × ``MAX_IMPORT_BYTES``)."""
    cap_request_body(request, MAX_FORM_BYTES, shown_mb=MAX_FORM_BYTES / MB)
    form = await request.form(max_files=MAX_IMPORT_FILES, max_fields=1000)
    try:
        yield form
    finally:
        await form.close()


FormBody = Depends(_form)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _texts(form: FormData, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str)]


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _t(request: Request, message: str, params: Mapping[str, Any] | None = None) -> str:
    """Translate a message id for the request's locale and fill its ``%(name)s``."""
    text = get_translations(request_locale(request)).gettext(message)
    try:
        return text % dict(params or {})
    except (KeyError, ValueError, TypeError):
        return text


def _vn_date_text(value: Any) -> Any:
    """An ISO date in an error's params, shown as dd/mm/yyyy; anything else unchanged."""
    if isinstance(value, str):
        try:
            return vndate(date.fromisoformat(value))
        except ValueError:
            return value
    return value


def _today() -> date:
    return local(utcnow()).date()


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _ctx(request: Request, viewer: Viewer, active: str, **extra: Any) -> dict[str, Any]:
    notice = NOTICES.get(request.query_params.get("done", ""))
    return {
        "viewer": viewer,
        "active": active,
        "notice": notice,
        "track_names": TRACK_NAMES,
        "level_names": LEVEL_NAMES,
        "phase_names": PHASE_NAMES,
        "part_names": PART_NAMES,
        "kind_names": KIND_NAMES,
        "status_names": STATUS_NAMES,
        "errors": {},
        "form": {},
        **extra,
    }


def _pydantic_errors(request: Request, exc: ValidationError) -> dict[str, str]:
    """First error per top-level field, as a translated sentence."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        loc = err.get("loc", ())
        name = str(loc[0]) if loc else FORM
        if name in errors:
            continue
        errors[name] = _t(request, *_pydantic_message(err))
    return errors


def _pydantic_message(err: Any) -> tuple[str, dict[str, Any]]:
    kind = err.get("type", "")
    ctx = dict(err.get("ctx") or {})
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return _REQUIRED, {}
    if kind == "string_too_short":
        return N_("At least %(min_length)s characters."), ctx
    return _PYDANTIC_MESSAGES.get(kind, _INVALID), ctx


def _app_error_text(request: Request, exc: AppError) -> str:
    """An AppError's detail, translated, with field labels and dd/mm/yyyy dates."""
    params = dict(exc.params)
    if "field" in params:
        label = FIELD_LABELS.get(str(params["field"]), str(params["field"]))
        params["field"] = _t(request, label)
    if "date" in params:
        params["date"] = _vn_date_text(params["date"])
    if "holiday_en" in params and request_locale(request) == "en":
        params["holiday"] = params["holiday_en"]
    return _t(request, exc.detail or exc.title, params)


def _error_field(exc: AppError, default: str) -> str:
    value = exc.params.get("field")
    return str(value) if value else default


def _translated_rules(request: Request, results: Sequence[RuleResult]) -> list[dict[str, Any]]:
    return [
        {
            "code": r.code,
            "status": r.status.value,
            "rule": _t(request, r.rule, r.params),
            "detail": _t(request, r.detail, r.params),
        }
        for r in results
    ]


def _title_for(version: ModuleVersion, level: str) -> str:
    """The module's title for a class's level (titles differ by level), else its main one."""
    titles = version.spec.get("titles") or {}
    return str(titles.get(level) or version.title_vi)


def _failures(results: Sequence[RuleResult]) -> int:
    return sum(1 for r in results if r.status == Status.FAIL)


# -- queries the pages need for many rows at once ------------------------------------------
# (Candidates for ClassRepository/IdentityRepository; see the report.)


@dataclass(frozen=True)
class CatalogueRow:
    module: Module
    version: ModuleVersion
    spec: ModuleSpec


def _catalogue(db: Session, deployment_id: int) -> list[CatalogueRow]:
    """The tenant's modules with their current version (seeded on the first visit)."""
    return [CatalogueRow(m, v, spec_of(v)) for m, v in CatalogueService(db).modules(deployment_id)]


@dataclass(frozen=True)
class ModuleRef:
    module: Module
    version: ModuleVersion


def _versions(db: Session, version_ids: set[int]) -> dict[int, ModuleRef]:
    """Module versions by id, with their module, in one query."""
    found = CatalogueRepository(db).versions_with_modules(version_ids)
    return {vid: ModuleRef(m, v) for vid, (m, v) in found.items()}


def _class_module_title(refs: Mapping[int, ModuleRef], cls: TrainingClass) -> str:
    ref = refs.get(cls.module_version_id)
    return _title_for(ref.version, cls.level) if ref else ""


def _compliance_many(
    db: Session, classes: Sequence[TrainingClass], refs: Mapping[int, ModuleRef], today: date
) -> dict[int, list[RuleResult]]:
    """The rules of many classes in a fixed number of queries (see ClassService)."""
    return ClassService(db).compliance_many(classes, today)


def _class_counts(db: Session, deployment_id: int) -> dict[int, int]:
    stmt = (
        select(TrainingClass.wave_id, func.count())
        .where(TrainingClass.deployment_id == deployment_id, TrainingClass.wave_id.is_not(None))
        .group_by(TrainingClass.wave_id)
    )
    return {int(w): int(n) for w, n in db.execute(stmt).all() if w is not None}


def _people(db: Session, viewer: Viewer, search: str) -> list[tuple[User, bool]]:
    """People who can be made core trainers: those with the trainer role in a course of this
    deployment, then — only when the administrator searches — anyone else the tool knows.

    Never the whole platform: at 100,000 users, sorting everyone cost ~80 ms per page view.
    """
    repo = IdentityRepository(db)
    trainers = repo.trainers_of_deployment(viewer.platform_id, viewer.deployment_id, MAX_PEOPLE)
    people = [(user, True) for user in trainers]
    text = search.strip()
    if len(text) >= MIN_PEOPLE_SEARCH:
        seen = {user.id for user in trainers}
        people += [
            (user, False)
            for user in repo.search_people(viewer.platform_id, text[:100], MAX_PEOPLE_FOUND)
            if user.id not in seen
        ]
    return people


# -- module catalogue ----------------------------------------------------------------------


def _modules_page(
    request: Request,
    viewer: Viewer,
    db: Session,
    *,
    problems: Sequence[Mapping[str, Any]] = (),
    status_code: int = 200,
) -> Response:
    rows = _catalogue(db, viewer.deployment_id)
    return render(
        request,
        "admin_modules.html",
        _ctx(request, viewer, "modules", rows=rows, problems=problems, limit_kb=100),
        status_code=status_code,
    )


@router.get("/modules")
def modules_page(request: Request, viewer: Viewer = AdminOnly, db: Session = DbSession) -> Response:
    # Writes on a tenant's first visit: the catalogue is seeded from Decision 4660.
    return _modules_page(request, viewer, db)


def _upload_name(upload: UploadFile) -> str:
    name = (upload.filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    return name.strip()


@router.post("/modules/import")
def import_modules(
    request: Request, viewer: Viewer = AdminOnly, db: Session = DbSession, form: FormData = FormBody
) -> Response:
    check_csrf(viewer, _text(form, "csrf_token"))
    problems: list[dict[str, Any]] = []

    def problem(file: str | None, message: str, **params: Any) -> None:
        text = _t(request, message, params)
        problems.append({"file": file, "line": None, "field": None, "message": text})

    uploads = [v for v in form.getlist("files") if isinstance(v, UploadFile) and _upload_name(v)]
    if not uploads:
        problem(None, N_("Choose at least one .toml module file."))
    files: dict[str, str] = {}
    for upload in uploads:
        name = _upload_name(upload)
        raw = upload.file.read(MAX_IMPORT_BYTES + 1)
        if len(raw) > MAX_IMPORT_BYTES:
            problem(name, N_("The file is larger than %(limit)s KB."), limit=100)
        elif not name.lower().endswith(".toml"):
            problem(name, N_("Only .toml module files can be imported."))
        elif name in files:
            problem(name, N_("Two files have this name; import them one at a time."))
        else:
            try:
                files[name] = raw.decode("utf-8")
            except UnicodeDecodeError:
                problem(name, N_("The file is not UTF-8 text."))
    if not problems:
        try:
            CatalogueService(db, actor_of(viewer)).import_files(
                viewer.deployment_id, files, user_id=viewer.user.id
            )
        except ImportRefused as exc:
            extra = getattr(exc, "problem_extra", {}) or {}
            problems.extend(extra.get("errors", []))
    if problems:
        db.rollback()  # all or nothing
        return _modules_page(request, viewer, db, problems=problems, status_code=422)
    return _redirect("/admin/modules?done=imported")


def _module_form_from_spec(spec: ModuleSpec) -> tuple[dict[str, str], list[dict[str, Any]]]:
    values: dict[str, str] = {f"title_{lv}": spec.titles.get(lv, "") for lv in LEVELS}  # type: ignore[call-overload]
    plan = spec.plan
    for name in _PLAN_FIELDS:
        values[f"plan_{name}"] = str(getattr(plan, name))
    weights = spec.assessment.weights
    for name in _WEIGHT_FIELDS:
        values[f"weight_{name}"] = f"{getattr(weights, name):g}"
    values["pass_threshold"] = f"{spec.assessment.pass_threshold:g}"
    values["note"] = ""
    rows = [
        {"n": i, "src": i, "phase": m.phase, "kind": m.kind, "title": m.title, "url": m.url or ""}
        for i, m in enumerate(spec.materials)
    ]
    return values, _with_empty_rows(rows)


def _with_empty_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    n = max((r["n"] for r in rows), default=-1) + 1
    out = list(rows)
    for phase in PHASES:
        empty = [r for r in rows if r["phase"] == phase and not (r["title"] or r["url"])]
        for _ in range(EMPTY_MATERIAL_ROWS - len(empty)):
            out.append(
                {"n": n, "src": None, "phase": phase, "kind": "link", "title": "", "url": ""}
            )
            n += 1
    return out


_PLAN_FIELDS = (
    "self_study_days",
    "in_person_days",
    "follow_up_days",
    "self_study_periods",
    "in_person_periods",
    "follow_up_periods",
)
_WEIGHT_FIELDS = ("self_study", "attendance", "follow_up")
_ROW_KEY = re.compile(r"material-(\d{1,4})-phase")


@dataclass
class _ModuleEdit:
    values: dict[str, str]
    rows: list[dict[str, Any]]
    errors: dict[str, str] = field(default_factory=dict)
    spec: dict[str, Any] | None = None


def _parse_module_form(request: Request, current: Mapping[str, Any], form: FormData) -> _ModuleEdit:
    """The edited spec from the posted form, or the errors next to their fields."""
    values = {f"title_{lv}": _text(form, f"title_{lv}") for lv in LEVELS}
    values |= {f"plan_{n}": _text(form, f"plan_{n}") for n in _PLAN_FIELDS}
    values |= {f"weight_{n}": _text(form, f"weight_{n}") for n in _WEIGHT_FIELDS}
    values["pass_threshold"] = _text(form, "pass_threshold")
    values["note"] = _text(form, "note")[:500]
    numbers = sorted({int(m.group(1)) for k in form if (m := _ROW_KEY.fullmatch(k))})
    rows: list[dict[str, Any]] = [
        {
            "n": n,
            "phase": _text(form, f"material-{n}-phase"),
            "kind": _text(form, f"material-{n}-kind") or "link",
            "title": _text(form, f"material-{n}-title"),
            "url": _text(form, f"material-{n}-url"),
            "src": _int(_text(form, f"material-{n}-src")),
        }
        for n in numbers
    ]
    edit = _ModuleEdit(values=values, rows=_with_empty_rows(rows))
    errors = edit.errors

    def fail(name: str, message: str, **params: Any) -> None:
        errors.setdefault(name, _t(request, message, params))

    spec = copy.deepcopy(dict(current))
    titles = {lv: values[f"title_{lv}"] for lv in LEVELS if values[f"title_{lv}"]}
    if not titles:
        fail("titles", N_("Give the title for at least one level."))
    spec["titles"] = titles
    spec["levels"] = [lv for lv in LEVELS if lv in titles]
    spec["unsourced_levels"] = [
        lv for lv in current.get("unsourced_levels", []) if lv not in titles
    ]

    plan = dict(spec.get("plan") or {})
    for name in _PLAN_FIELDS:
        number = _int(values[f"plan_{name}"])
        if number is None:
            fail(f"plan_{name}", N_("Enter a whole number."))
        else:
            plan[name] = number
    spec["plan"] = plan

    assessment = dict(spec.get("assessment") or {})
    weights = dict(assessment.get("weights") or {})
    for name in _WEIGHT_FIELDS:
        weight = _float(values[f"weight_{name}"])
        if weight is None:
            fail(f"weight_{name}", N_("Enter a number such as 0.3."))
        else:
            weights[name] = weight
    assessment["weights"] = weights
    threshold = _float(values["pass_threshold"])
    if threshold is None:
        fail("pass_threshold", N_("Enter a number such as 5."))
    else:
        assessment["pass_threshold"] = threshold
    spec["assessment"] = assessment

    materials: list[dict[str, Any]] = []
    row_of: list[int] = []  # index in ``materials`` → row number on the form
    before = list(current.get("materials") or [])
    for row in rows:
        if not (row["title"] or row["url"]):
            continue
        if not row["title"]:
            fail(f"material-{row['n']}-title", _REQUIRED)
        if not row["url"] and row["kind"] not in IN_TOOL_KINDS:
            fail(f"material-{row['n']}-url", _REQUIRED)
        # The form edits phase, kind, title and address; what only a module file can say
        # (questions, due day, hand-in kinds, key…) is kept from the item it came from.
        src = row.get("src")
        material = dict(before[src]) if src is not None and 0 <= src < len(before) else {}
        material.update({k: row[k] for k in ("phase", "kind", "title")})
        material["url"] = row["url"] or None
        materials.append({k: v for k, v in material.items() if v is not None})
        row_of.append(row["n"])
    spec["materials"] = materials
    if errors:
        return edit

    try:
        ModuleSpec.model_validate(spec)
    except ValidationError as exc:
        for err in exc.errors():
            path = tuple(err.get("loc", ())) + tuple((err.get("ctx") or {}).get("at", ()))
            name = _module_field(path, row_of)
            if err.get("type") == "catalogue":
                # The catalogue's own rules speak English (modules/catalogue.py).
                errors.setdefault(name, str((err.get("ctx") or {}).get("message", "")))
            else:
                message, params = _pydantic_message(err)
                fail(name, message, **params)
        return edit
    edit.spec = spec
    return edit


def _float(value: str) -> float | None:
    try:
        number = float(value.replace(",", "."))  # 0,3 as written in Vietnamese
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _module_field(path: tuple[Any, ...], row_of: Sequence[int]) -> str:
    """Where on the module form a validation error of the spec belongs."""
    head = path[0] if path else None
    if head == "titles" and len(path) > 1 and path[1] in LEVELS:
        return f"title_{path[1]}"
    if head in ("titles", "levels", "unsourced_levels"):
        return "titles"
    if head == "plan":
        return f"plan_{path[1]}" if len(path) > 1 and path[1] in _PLAN_FIELDS else "plan"
    if head == "assessment" and len(path) > 1:
        if path[1] == "weights":
            return f"weight_{path[2]}" if len(path) > 2 and path[2] in _WEIGHT_FIELDS else "weights"
        return "pass_threshold"
    if head == "materials" and len(path) > 1 and isinstance(path[1], int) and path[1] < len(row_of):
        attr = (
            path[2] if len(path) > 2 and path[2] in ("title", "url", "kind", "phase") else "title"
        )
        return f"material-{row_of[path[1]]}-{attr}"
    return FORM


def _module_page(
    request: Request,
    viewer: Viewer,
    db: Session,
    module_id: int,
    *,
    edit: _ModuleEdit | None = None,
    status_code: int = 200,
) -> Response:
    service = CatalogueService(db)
    module, version = service.get(viewer.deployment_id, module_id)
    spec = spec_of(version)
    if edit is None:
        values, rows = _module_form_from_spec(spec)
        edit = _ModuleEdit(values=values, rows=rows)
    versions = [
        {"version": v.version, "created_at": local(v.created_at), "note": v.change_note}
        for v in service.versions(viewer.deployment_id, module_id)
    ]
    share = spec.plan.in_person_share
    return render(
        request,
        "admin_module.html",
        _ctx(
            request,
            viewer,
            "modules",
            module=module,
            version=version,
            spec=spec,
            share=None if share is None else f"{share * 100:.1f}",
            levels=LEVELS,
            phases=PHASES,
            material_kinds=MATERIAL_KINDS,
            versions=versions,
            form=edit.values,
            rows=edit.rows,
            errors=edit.errors,
        ),
        status_code=status_code,
    )


@router.get("/modules/{module_id}")
def module_page(
    module_id: int, request: Request, viewer: Viewer = AdminOnly, db: Session = ReadDbSession
) -> Response:
    return _module_page(request, viewer, db, module_id)


@router.post("/modules/{module_id}")
def update_module(
    module_id: int,
    request: Request,
    viewer: Viewer = AdminOnly,
    db: Session = DbSession,
    form: FormData = FormBody,
) -> Response:
    check_csrf(viewer, _text(form, "csrf_token"))
    service = CatalogueService(db, actor_of(viewer))
    _, current = service.get(viewer.deployment_id, module_id)
    edit = _parse_module_form(request, current.spec, form)
    if edit.spec is not None:
        try:
            written = service.update(
                viewer.deployment_id,
                module_id,
                edit.spec,
                user_id=viewer.user.id,
                note=edit.values["note"] or None,
            )
        except ValidationFailed as exc:
            edit.errors[FORM] = _app_error_text(request, exc)
        else:
            done = "unchanged" if written.id == current.id else "saved"
            return _redirect(f"/admin/modules/{module_id}?done={done}")
    db.rollback()
    return _module_page(request, viewer, db, module_id, edit=edit, status_code=422)


# -- waves ---------------------------------------------------------------------------------


def _waves_page(
    request: Request,
    viewer: Viewer,
    db: Session,
    *,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    waves = ClassService(db).repo.waves(viewer.deployment_id)
    return render(
        request,
        "admin_waves.html",
        _ctx(
            request,
            viewer,
            "waves",
            waves=waves,
            counts=_class_counts(db, viewer.deployment_id),
            form=form or {"year": str(_today().year)},
            errors=errors or {},
        ),
        status_code=status_code,
    )


@router.get("/waves")
def waves_page(
    request: Request, viewer: Viewer = AdminOnly, db: Session = ReadDbSession
) -> Response:
    return _waves_page(request, viewer, db)


@router.post("/waves")
def create_wave(
    request: Request, viewer: Viewer = AdminOnly, db: Session = DbSession, form: FormData = FormBody
) -> Response:
    check_csrf(viewer, _text(form, "csrf_token"))
    values = {k: _text(form, k) for k in ("name", "year", "description")}
    payload: dict[str, Any] = {k: v for k, v in values.items() if v}
    try:
        data = WaveCreate.model_validate(payload)
        ClassService(db, actor_of(viewer)).create_wave(viewer.deployment_id, data)
    except ValidationError as exc:
        db.rollback()
        errors = _pydantic_errors(request, exc)
        return _waves_page(request, viewer, db, form=values, errors=errors, status_code=422)
    except (ValidationFailed, Conflict) as exc:
        db.rollback()
        errors = {_error_field(exc, "name"): _app_error_text(request, exc)}
        status = exc.status_code
        return _waves_page(request, viewer, db, form=values, errors=errors, status_code=status)
    return _redirect("/admin/waves?done=wave")


@router.get("/waves/{wave_id}/compliance")
def wave_compliance(
    wave_id: int, request: Request, viewer: Viewer = AdminOnly, db: Session = ReadDbSession
) -> Response:
    service = ClassService(db)
    wave = service.get_wave(viewer.deployment_id, wave_id)
    classes = service.repo.classes(viewer.deployment_id, wave.id)
    refs = _versions(db, {c.module_version_id for c in classes})
    results = _compliance_many(db, classes, refs, _today())
    rows = [
        {
            "cls": cls,
            "ref": refs.get(cls.module_version_id),
            "title": _class_module_title(refs, cls),
            "failures": _failures(results[cls.id]),
            "rules": _translated_rules(request, results[cls.id]),
        }
        for cls in classes
    ]
    return render(
        request,
        "admin_compliance.html",
        _ctx(
            request,
            viewer,
            "waves",
            wave=wave,
            rows=rows,
            failing=sum(1 for r in rows if r["failures"]),
        ),
    )


# -- classes -------------------------------------------------------------------------------


@router.get("/classes")
def classes_page(
    request: Request, viewer: Viewer = AdminOnly, db: Session = ReadDbSession
) -> Response:
    service = ClassService(db)
    waves = service.repo.waves(viewer.deployment_id)
    wave_id = _int(request.query_params.get("wave", ""))
    wave = next((w for w in waves if w.id == wave_id), None)
    classes = service.repo.classes(viewer.deployment_id, wave.id if wave else None)
    refs = _versions(db, {c.module_version_id for c in classes})
    results = _compliance_many(db, classes, refs, _today())
    rows = [
        {
            "cls": cls,
            "ref": refs.get(cls.module_version_id),
            "title": _class_module_title(refs, cls),
            "schedule": stored_schedule(cls),
            "failures": _failures(results[cls.id]),
            "pending": sum(1 for r in results[cls.id] if r.status == Status.PENDING),
        }
        for cls in classes
    ]
    return render(
        request,
        "admin_classes.html",
        _ctx(
            request,
            viewer,
            "classes",
            rows=rows,
            waves=waves,
            wave=wave,
            wave_names={w.id: w.name for w in waves},
        ),
    )


def _new_class_page(
    request: Request,
    viewer: Viewer,
    db: Session,
    *,
    form: Mapping[str, Any],
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    modules = _catalogue(db, viewer.deployment_id)
    chosen = next((m for m in modules if str(m.module.id) == form.get("module_id")), None)
    if chosen is not None:
        slots = chosen.spec.plan.in_person_days
    else:
        slots = max([2, *(m.spec.plan.in_person_days for m in modules)])
    dates = list(form.get("in_person_dates") or [])
    slots = max(slots, len(dates))
    dates += [""] * (slots - len(dates))
    return render(
        request,
        "admin_class_new.html",
        _ctx(
            request,
            viewer,
            "new_class",
            modules=modules,
            waves=ClassService(db).repo.waves(viewer.deployment_id),
            levels=[lv.value for lv in Level],
            form=form,
            dates=dates,
            errors=errors or {},
            max_capacity=ClassCreate.model_fields["capacity"].default,
        ),
        status_code=status_code,
    )


@router.get("/classes/new")
def new_class_page(
    request: Request, viewer: Viewer = AdminOnly, db: Session = DbSession
) -> Response:
    query = request.query_params
    form = {
        "module_id": query.get("module", ""),
        "wave_id": query.get("wave", ""),
        "capacity": str(ClassCreate.model_fields["capacity"].default),
        "anchor": "in_person",
    }
    return _new_class_page(request, viewer, db, form=form)


@router.post("/classes/new")
def create_class(
    request: Request, viewer: Viewer = AdminOnly, db: Session = DbSession, form: FormData = FormBody
) -> Response:
    check_csrf(viewer, _text(form, "csrf_token"))
    names = ("code", "name", "module_id", "level", "wave_id", "capacity", "anchor", "start_date")
    values: dict[str, Any] = {k: _text(form, k) for k in (*names, "venue", "room")}
    values["in_person_dates"] = _texts(form, "in_person_dates")
    anchor = values["anchor"] if values["anchor"] in ("in_person", "start") else "in_person"
    values["anchor"] = anchor
    errors: dict[str, str] = {}
    payload: dict[str, Any] = {
        k: values[k]
        for k in ("code", "name", "module_id", "level", "wave_id", "capacity", "venue", "room")
        if values[k]
    }
    if anchor == "start":
        if values["start_date"]:
            payload["start_date"] = values["start_date"]
        else:
            errors["start_date"] = _t(request, N_("Enter the start date of the self-study."))
    else:
        filled = [d for d in values["in_person_dates"] if d]
        if filled:
            payload["in_person_dates"] = filled
        else:
            errors["in_person_dates"] = _t(request, N_("Enter the in-person dates."))
    data: ClassCreate | None = None
    try:
        data = ClassCreate.model_validate(payload)
    except ValidationError as exc:
        for name, message in _pydantic_errors(request, exc).items():
            errors.setdefault(name, message)
    status = 422
    if data is not None and not errors:
        try:
            cls = ClassService(db, actor_of(viewer)).create_class(viewer.deployment_id, data)
        except (ValidationFailed, Conflict, NotFound) as exc:
            status = exc.status_code if not isinstance(exc, NotFound) else 422
            default = {"duplicate": "code"}.get(exc.code, FORM)
            if isinstance(exc, NotFound):
                default = "wave_id"
            elif "level" in exc.params and "field" not in exc.params:
                default = "level"
            errors[_error_field(exc, default)] = (
                _t(request, N_("Choose one of the options."))
                if isinstance(exc, NotFound)
                else _app_error_text(request, exc)
            )
        else:
            return _redirect(f"/admin/classes/{cls.id}?done=created")
    db.rollback()
    return _new_class_page(request, viewer, db, form=values, errors=errors, status_code=status)


def _class_page(
    request: Request,
    viewer: Viewer,
    db: Session,
    class_id: int,
    *,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    roster_problems: Sequence[Mapping[str, Any]] = (),
    roster_preview: RosterImportResult | None = None,
    status_code: int = 200,
) -> Response:
    service = ClassService(db)
    cls = service.get_class(viewer.deployment_id, class_id)
    version = service.version_of(cls)
    people_search = request.query_params.get("people", "")
    module = service.catalogue.module(viewer.deployment_id, version.module_id)
    wave = service.repo.wave(viewer.deployment_id, cls.wave_id) if cls.wave_id else None
    views = service.cohort_views(cls)
    cohort_names = {v.cohort.id: v.cohort.name for v in views}
    enrolments = sorted(
        service.repo.all_enrolments(cls.id),
        key=lambda eu: (
            eu[0].status != EnrolmentStatus.ACTIVE,
            eu[1].school or "",
            eu[1].name or "",
        ),
    )
    trainers = service.repo.trainers(cls.id)
    trainer_ids = {u.id for _, u in trainers}
    results = service.compliance_many([cls], _today())[cls.id]
    if form is None:
        form = {
            "url": cls.virtual_fallback_url or "",
            "reason": cls.virtual_fallback_reason or "",
            "decided_on": cls.virtual_fallback_decided_on.isoformat()
            if cls.virtual_fallback_decided_on
            else _today().isoformat(),
        }
    return render(
        request,
        "admin_class.html",
        _ctx(
            request,
            viewer,
            "classes",
            cls=cls,
            version=version,
            title=_title_for(version, cls.level),
            module=module,
            wave=wave,
            plan=plan_of(version.spec),
            schedule=stored_schedule(cls),
            sessions=service.repo.sessions(cls.id),
            enrolments=enrolments,
            active_count=sum(1 for e, _ in enrolments if e.status == EnrolmentStatus.ACTIVE),
            cohort_names=cohort_names,
            cohorts=views,
            support_min=int(SUPPORT_PERIODS_MIN),
            trainers=trainers,
            people=[
                (u, t) for u, t in _people(db, viewer, people_search) if u.id not in trainer_ids
            ],
            people_search=people_search,
            rules=_translated_rules(request, results),
            failures=_failures(results),
            form=form,
            errors=errors or {},
            roster_problems=roster_problems,
            roster_preview=roster_preview,
            roster_imported=_counts(request, "enrolled", "already", "updated"),
            limit_mb=MAX_TABLE_MB,
        ),
        status_code=status_code,
    )


@router.get("/classes/{class_id}")
def class_page(
    class_id: int, request: Request, viewer: Viewer = AdminOnly, db: Session = ReadDbSession
) -> Response:
    return _class_page(request, viewer, db, class_id)


def _class_refused(
    request: Request,
    viewer: Viewer,
    db: Session,
    class_id: int,
    errors: Mapping[str, str],
    status_code: int,
    form: Mapping[str, str] | None = None,
) -> Response:
    db.rollback()
    return _class_page(
        request, viewer, db, class_id, form=form, errors=errors, status_code=status_code
    )


@router.post("/classes/{class_id}/fallback")
def set_fallback(
    class_id: int,
    request: Request,
    viewer: Viewer = AdminOnly,
    db: Session = DbSession,
    form: FormData = FormBody,
) -> Response:
    check_csrf(viewer, _text(form, "csrf_token"))
    values = {k: _text(form, k) for k in ("url", "reason", "decided_on")}
    try:
        data = FallbackSet.model_validate({k: v for k, v in values.items() if v})
        ClassService(db, actor_of(viewer)).set_fallback(viewer.deployment_id, class_id, data)
    except ValidationError as exc:
        errors = {f"fallback_{k}": v for k, v in _pydantic_errors(request, exc).items()}
        return _class_refused(request, viewer, db, class_id, errors, 422, values)
    except ValidationFailed as exc:
        errors = {f"fallback_{_error_field(exc, 'url')}": _app_error_text(request, exc)}
        return _class_refused(request, viewer, db, class_id, errors, exc.status_code, values)
    return _redirect(f"/admin/classes/{class_id}?done=fallback_on#fallback")


@router.post("/classes/{class_id}/fallback/clear")
def clear_fallback(
    class_id: int,
    viewer: Viewer = AdminOnly,
    db: Session = DbSession,
    form: FormData = FormBody,
) -> Response:
    check_csrf(viewer, _text(form, "csrf_token"))
    ClassService(db, actor_of(viewer)).clear_fallback(viewer.deployment_id, class_id)
    return _redirect(f"/admin/classes/{class_id}?done=fallback_off#fallback")


@router.post("/classes/{class_id}/trainers")
def add_trainer(
    class_id: int,
    request: Request,
    viewer: Viewer = AdminOnly,
    db: Session = DbSession,
    form: FormData = FormBody,
) -> Response:
    check_csrf(viewer, _text(form, "csrf_token"))
    user_id = _int(_text(form, "user_id"))
    if user_id is None:
        errors = {"trainer_user_id": _t(request, N_("Choose a person from the list."))}
        return _class_refused(request, viewer, db, class_id, errors, 422)
    try:
        ClassService(db, actor_of(viewer)).add_trainer(viewer.deployment_id, class_id, user_id)
    except ValidationFailed as exc:
        errors = {"trainer_user_id": _app_error_text(request, exc)}
        return _class_refused(request, viewer, db, class_id, errors, exc.status_code)
    return _redirect(f"/admin/classes/{class_id}?done=trainer#trainers")


@router.post("/classes/{class_id}/cohorts/split")
def split_cohorts(
    class_id: int,
    viewer: Viewer = AdminOnly,
    db: Session = DbSession,
    form: FormData = FormBody,
) -> Response:
    check_csrf(viewer, _text(form, "csrf_token"))
    ClassService(db, actor_of(viewer)).split_cohorts(viewer.deployment_id, class_id)
    return _redirect(f"/admin/classes/{class_id}?done=split#cohorts")


@router.post("/classes/{class_id}/cohorts/move")
def move_learner(
    class_id: int,
    request: Request,
    viewer: Viewer = AdminOnly,
    db: Session = DbSession,
    form: FormData = FormBody,
) -> Response:
    check_csrf(viewer, _text(form, "csrf_token"))
    enrolment_id = _int(_text(form, "enrolment_id"))
    if enrolment_id is None:
        raise NotFound()
    cohort_id = _int(_text(form, "cohort_id"))
    if cohort_id is None:
        errors = {f"move-{enrolment_id}": _t(request, N_("Choose a cohort."))}
        return _class_refused(request, viewer, db, class_id, errors, 422)
    try:
        ClassService(db, actor_of(viewer)).move(
            viewer.deployment_id, class_id, enrolment_id, cohort_id
        )
    except Conflict as exc:
        errors = {f"move-{enrolment_id}": _app_error_text(request, exc)}
        return _class_refused(request, viewer, db, class_id, errors, exc.status_code)
    return _redirect(f"/admin/classes/{class_id}?done=moved#roster")


@router.post("/classes/{class_id}/cohorts/{cohort_id}/trainer")
def set_cohort_trainer(
    class_id: int,
    cohort_id: int,
    request: Request,
    viewer: Viewer = AdminOnly,
    db: Session = DbSession,
    form: FormData = FormBody,
) -> Response:
    check_csrf(viewer, _text(form, "csrf_token"))
    raw = _text(form, "trainer_user_id")
    trainer_id = _int(raw) if raw else None
    if raw and trainer_id is None:
        raise NotFound()
    try:
        ClassService(db, actor_of(viewer)).set_cohort_trainer(
            viewer.deployment_id, class_id, cohort_id, trainer_id
        )
    except ValidationFailed as exc:
        errors = {f"cohort-{cohort_id}": _app_error_text(request, exc)}
        return _class_refused(request, viewer, db, class_id, errors, exc.status_code)
    return _redirect(f"/admin/classes/{class_id}?done=cohort_trainer#cohorts")


@router.post("/classes/{class_id}/calendar/renew")
def renew_class_feed(
    class_id: int,
    viewer: Viewer = AdminOnly,
    db: Session = DbSession,
    form: FormData = FormBody,
) -> Response:
    """A new address for the class's calendar feed; the old one stops working at once."""
    check_csrf(viewer, _text(form, "csrf_token"))
    ClassService(db, actor_of(viewer)).renew_class_feed(viewer.deployment_id, class_id)
    return _redirect(f"/admin/classes/{class_id}?done=calendar#calendar")


@router.post("/classes/{class_id}/roster/import")
def import_roster(
    class_id: int,
    request: Request,
    viewer: Viewer = AdminOnly,
    db: Session = DbSession,
    form: FormData = ImportForm,
) -> Response:
    """Learners from the department's list (CSV/XLSX): matched to the people the LMS told
    blend727 about, all or nothing; "check only" shows what would happen."""
    check_csrf(viewer, _text(form, "csrf_token"))
    check_only = bool(_text(form, "check_only"))
    ClassService(db).get_class(viewer.deployment_id, class_id)  # 404 before the file is read
    try:
        table = uploaded_table(form)
        result = ImportService(db, actor_of(viewer)).roster(
            viewer.deployment_id, class_id, table, dry_run=check_only
        )
    except TableImportRefused as exc:
        db.rollback()
        problems = problem_list(request, exc.problems)
        return _class_page(
            request, viewer, db, class_id, roster_problems=problems, status_code=exc.status_code
        )
    if check_only:
        db.rollback()
        return _class_page(request, viewer, db, class_id, roster_preview=result)
    return _redirect(
        f"/admin/classes/{class_id}?enrolled={result.enrolled}&already={result.already}"
        f"&updated={result.updated_people}#roster-import"
    )


# -- holidays ------------------------------------------------------------------------------


def _holidays_page(
    request: Request,
    viewer: Viewer,
    db: Session,
    *,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    import_problems: Sequence[Mapping[str, Any]] = (),
    checked: Mapping[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    year = _today().year
    calendar = calendar_for(db, viewer.deployment_id, around=year)
    english = request_locale(request) == "en"
    years = [
        {
            "year": y,
            "days": [
                {
                    "date": h.date,
                    "name": h.name_en if english else h.name_vi,
                    "kind": HOLIDAY_KIND_NAMES.get(h.kind, h.kind),
                }
                for h in calendar.holidays_in(y)
            ],
        }
        for y in (year, year + 1)
    ]
    return render(
        request,
        "admin_holidays.html",
        _ctx(
            request,
            viewer,
            "holidays",
            years=years,
            overrides=ClassService(db).repo.holiday_overrides(viewer.deployment_id),
            form=form or {"kind": "off"},
            errors=errors or {},
            import_problems=import_problems,
            checked=checked,
            imported=_counts(request, "added", "unchanged"),
            limit_mb=MAX_TABLE_MB,
        ),
        status_code=status_code,
    )


def _counts(request: Request, *names: str) -> dict[str, int] | None:
    """Counts a redirect after an import carries (``?added=3&unchanged=1``), or ``None``."""
    values = {n: _int(request.query_params.get(n, "")) for n in names}
    if any(v is None or v < 0 for v in values.values()):
        return None
    return {n: int(v or 0) for n, v in values.items()}


@router.get("/holidays")
def holidays_page(
    request: Request, viewer: Viewer = AdminOnly, db: Session = ReadDbSession
) -> Response:
    return _holidays_page(request, viewer, db)


@router.post("/holidays")
def add_holiday(
    request: Request, viewer: Viewer = AdminOnly, db: Session = DbSession, form: FormData = FormBody
) -> Response:
    check_csrf(viewer, _text(form, "csrf_token"))
    values = {k: _text(form, k) for k in ("date", "kind", "name")}
    try:
        data = HolidayCreate.model_validate({k: v for k, v in values.items() if v})
        HolidayService(db, actor_of(viewer)).add_override(
            viewer.deployment_id, data.date, data.kind, data.name
        )
    except ValidationError as exc:
        db.rollback()
        errors = _pydantic_errors(request, exc)
        return _holidays_page(request, viewer, db, form=values, errors=errors, status_code=422)
    except ValidationFailed as exc:
        db.rollback()
        errors = {_error_field(exc, "date"): _app_error_text(request, exc)}
        return _holidays_page(request, viewer, db, form=values, errors=errors, status_code=422)
    return _redirect("/admin/holidays?done=holiday")


@router.post("/holidays/import")
def import_holidays(
    request: Request,
    viewer: Viewer = AdminOnly,
    db: Session = DbSession,
    form: FormData = ImportForm,
) -> Response:
    """A CSV/XLSX of days off and working days: checked whole, then all or nothing; "check
    only" says what an import would do and writes nothing."""
    check_csrf(viewer, _text(form, "csrf_token"))
    check_only = bool(_text(form, "check_only"))
    try:
        table = uploaded_table(form)
        result = ImportService(db, actor_of(viewer)).holidays(
            viewer.deployment_id, table, dry_run=check_only
        )
    except TableImportRefused as exc:
        db.rollback()
        problems = problem_list(request, exc.problems)
        return _holidays_page(
            request, viewer, db, import_problems=problems, status_code=exc.status_code
        )
    if check_only:
        db.rollback()
        checked = {"added": len(result.added), "unchanged": len(result.unchanged)}
        return _holidays_page(request, viewer, db, checked=checked)
    return _redirect(
        f"/admin/holidays?added={len(result.added)}&unchanged={len(result.unchanged)}#import"
    )


@router.get("/holidays/export.csv")
def export_holidays_csv(viewer: Viewer = AdminOnly, db: Session = ReadDbSession) -> Response:
    """The administrators' changes of the calendar in the import's format (round trip)."""
    return holidays_csv(ClassService(db).repo.holiday_overrides(viewer.deployment_id))


@router.get("/holidays/export.xlsx")
def export_holidays_xlsx(viewer: Viewer = AdminOnly, db: Session = ReadDbSession) -> Response:
    return holidays_xlsx(ClassService(db).repo.holiday_overrides(viewer.deployment_id))
