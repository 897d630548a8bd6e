"""The administrator's overview, targets and reports: pages and JSON API. Thin: read the
request, call ``ReportService``, render.

Pages (administrators only, their own deployment's data only):

* ``GET  /admin/overview`` — counts by wave, module, level, district and school, charts,
  the targets against what has been achieved, every compliance warning;
* ``GET  /admin/targets``, ``POST /admin/targets``, ``POST /admin/targets/{id}/delete``;
* ``GET  /admin/reports`` — choose a period; the annual report in one click;
* ``GET  /admin/reports/export.xlsx``, ``…/export.csv``, ``…/print`` — the report itself.

A period is ``?from=YYYY-MM-DD&to=YYYY-MM-DD`` or ``?year=YYYY`` (classes by their end
date); none given is the current year. Every route is a plain ``def``: FastAPI runs it in
the thread pool, so building a province-wide report does not hold up other requests.

JSON API under ``/api/v1/reports`` (``X-CSRF-Token`` on writes; RFC 9457 errors).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.admin.pages import (
    FORM,
    N_,
    AdminOnly,
    FormBody,
    _ctx,
    _pydantic_errors,
    _redirect,
    _t,
    _text,
    _today,
    _translated_rules,
)
from app.audit.service import actor_of
from app.auth.api import ApiAdmin
from app.auth.dependencies import DbSession, ReadDbSession, Viewer, check_csrf
from app.classes.endpoints import rule_out
from app.core.errors import ValidationFailed
from app.core.files import content_disposition
from app.core.templating import render, request_locale
from app.grading.rules import COMPLETE, INCOMPLETE, NOT_COMPLETE
from app.reports import export
from app.reports.charts import Bar, BarChart, Part, bar_chart
from app.reports.rules import (
    Counts,
    Period,
    TierColumn,
    classification_codes,
    parse_period,
    plain_decimal,
    share,
)
from app.reports.schemas import TargetCreate
from app.reports.service import Line, Overview, ReportService, TargetView

pages = APIRouter(prefix="/admin", tags=["report pages"], include_in_schema=False)
api = APIRouter(prefix="/api/v1/reports", tags=["reports"])

NOTICES = {
    "target": N_("The target was added."),
    "target_deleted": N_("The target was deleted."),
}
CLASSIFICATION_IDS = {
    INCOMPLETE: N_("Not all components scored"),
    NOT_COMPLETE: N_("Not complete"),
    COMPLETE: N_("Complete"),
}
#: A message per field of the target form, whatever pydantic found wrong with it.
TARGET_FIELD_MESSAGES = {
    "staff_count": N_("Enter the number of staff: a whole number of at least 1."),
    "percent": N_("Enter a percentage above 0 and at most 100, such as 30 or 12.5."),
    "due_on": N_("Enter a valid date between 2000 and 2100."),
    "track": N_("Choose one of the options."),
    "level": N_("Choose one of the options."),
}
TARGET_FIELDS = (
    "name",
    "track",
    "level",
    "district",
    "module_key",
    "staff_count",
    "percent",
    "due_on",
    "note",
)
PERIOD_FIELDS = ("from", "to", "year")


# -- formatting ----------------------------------------------------------------------------


def fmt_int(value: int, locale: str) -> str:
    """1.234 in Vietnamese, 1,234 in English."""
    text = f"{value:,}"
    return text.replace(",", ".") if locale == "vi" else text


def fmt_pct(value: Decimal | None, locale: str) -> str:
    """60,5% in Vietnamese, 60.5% in English (no trailing zeros); "—" with nothing to
    divide."""
    if value is None:
        return "—"
    return fmt_dec(value, locale) + "%"


def fmt_dec(value: Decimal, locale: str) -> str:
    """12,5 in Vietnamese, 12.5 in English, without trailing zeros."""
    text = str(plain_decimal(Decimal(value)))
    return text.replace(".", ",") if locale == "vi" else text


def _helpers(request: Request, tiers: tuple[TierColumn, ...]) -> dict[str, Any]:
    locale = request_locale(request)

    def classification(code: str) -> str:
        if code in CLASSIFICATION_IDS:
            return _t(request, CLASSIFICATION_IDS[code])
        tier = next((t for t in tiers if t.code == code), None)
        return tier.name(locale) if tier is not None else code

    return {
        "num": lambda n: fmt_int(int(n), locale),
        "pct": lambda d: fmt_pct(d, locale),
        "dec": lambda d: fmt_dec(d, locale),
        "share": share,
        "classification": classification,
        "tier_name": lambda tier: tier.name(locale),
    }


def _period(request: Request) -> Period:
    q = request.query_params
    return parse_period(q.get("from"), q.get("to"), q.get("year"), _today())


def _period_form(period: Period | None, request: Request) -> dict[str, str]:
    if period is None:
        return {k: request.query_params.get(k, "") for k in PERIOD_FIELDS}
    return {"from": period.start.isoformat(), "to": period.end.isoformat(), "year": ""}


def _period_error(request: Request, exc: ValidationFailed) -> dict[str, str]:
    field = str(exc.params.get("field") or "from")
    return {field: _t(request, exc.detail, exc.params)}


def _query(period: Period) -> str:
    return f"from={period.start.isoformat()}&to={period.end.isoformat()}"


def _page(
    request: Request,
    viewer: Viewer,
    active: str,
    template: str,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    ctx = _ctx(request, viewer, active, **extra)
    ctx["notice"] = NOTICES.get(request.query_params.get("done", ""))
    return render(request, template, ctx, status_code=status_code)


# -- charts --------------------------------------------------------------------------------


def _tier_key(index: int) -> str:
    return f"tier-{index % 4}"


def classification_chart(
    counts: Counts, tiers: tuple[TierColumn, ...], name: Callable[[str], str], locale: str
) -> BarChart:
    bars = []
    for code in classification_codes(tiers):
        n = counts.of(code)
        key = code if code in CLASSIFICATION_IDS else _tier_key([t.code for t in tiers].index(code))
        label = name(code)
        value = f"{fmt_int(n, locale)} ({fmt_pct(share(n, counts.enrolled), locale)})"
        bars.append(Bar(label, [Part(key, label, n)], value))
    return bar_chart(bars)


def district_chart(lines: list[Line], request: Request, locale: str) -> BarChart:
    done, failed, open_ = (
        _t(request, N_("Completed")),
        _t(request, CLASSIFICATION_IDS[NOT_COMPLETE]),
        _t(request, CLASSIFICATION_IDS[INCOMPLETE]),
    )
    bars = [
        Bar(
            line.name or _t(request, export.NOT_GIVEN),
            [
                Part(COMPLETE, done, line.counts.completed),
                Part(NOT_COMPLETE, failed, line.counts.of(NOT_COMPLETE)),
                Part(INCOMPLETE, open_, line.counts.of(INCOMPLETE)),
            ],
            fmt_pct(line.counts.completion_rate, locale),
        )
        for line in lines
    ]
    return bar_chart(bars)


# -- JSON shapes ---------------------------------------------------------------------------


def counts_out(counts: Counts) -> dict[str, Any]:
    rate = counts.completion_rate
    return counts.as_dict() | {"completion_rate": None if rate is None else str(rate)}


def line_out(line: Line, **names: str) -> dict[str, Any]:
    return {"key": line.key, "name": line.name, **names} | counts_out(line.counts)


def target_out(view: TargetView) -> dict[str, Any]:
    t = view.target
    return {
        "id": t.id,
        "name": t.name,
        "track": t.track,
        "level": t.level,
        "district": t.district,
        "module_key": t.module_key,
        "staff_count": t.staff_count,
        "percent": str(view.progress.percent),
        "due_on": t.due_on.isoformat(),
        "note": t.note,
        "progress": view.progress.as_dict(),
    }


def period_out(period: Period) -> dict[str, str]:
    return {"from": period.start.isoformat(), "to": period.end.isoformat()}


def tiers_out(tiers: tuple[TierColumn, ...]) -> list[dict[str, Any]]:
    return [
        {"code": t.code, "name_vi": t.name_vi, "name_en": t.name_en, "min_score": str(t.min_score)}
        for t in tiers
    ]


def overview_out(request: Request, overview: Overview) -> dict[str, Any]:
    return {
        "period": period_out(overview.period),
        "tiers": tiers_out(overview.tiers),
        "total": counts_out(overview.total),
        "by_wave": [line_out(line) for line in overview.by_wave],
        "by_module": [line_out(line, title=line.detail) for line in overview.by_module],
        "by_level": [line_out(line) for line in overview.by_level],
        "by_district": [line_out(line) for line in overview.by_district],
        "by_school": [line_out(line, district=line.detail) for line in overview.by_school],
        "targets": [target_out(v) for v in overview.targets],
        "warnings": [
            {
                "class_id": w.class_id,
                "class_code": w.class_code,
                "class_name": w.class_name,
                "url": f"/admin/classes/{w.class_id}",
                "rule": rule_out(request, w.rule),
            }
            for w in overview.warnings
        ],
    }


# -- overview ------------------------------------------------------------------------------


@pages.get("/overview")
def overview_page(
    request: Request, viewer: Viewer = AdminOnly, db: Session = ReadDbSession
) -> Response:
    try:
        period = _period(request)
    except ValidationFailed as exc:
        return _page(
            request,
            viewer,
            "overview",
            "admin_overview.html",
            422,
            overview=None,
            form=_period_form(None, request),
            errors=_period_error(request, exc),
        )
    overview = ReportService(db).overview(viewer.deployment_id, period, _today())
    locale = request_locale(request)
    helpers = _helpers(request, overview.tiers)
    warnings = [
        _translated_rules(request, [w.rule])[0]
        | {
            "class_id": w.class_id,
            "class_code": w.class_code,
            "class_name": w.class_name,
            "ends_on": w.ends_on,
        }
        for w in overview.warnings
    ]
    return _page(
        request,
        viewer,
        "overview",
        "admin_overview.html",
        overview=overview,
        form=_period_form(period, request),
        warnings=warnings,
        this_year=_today().year,
        classification_chart=classification_chart(
            overview.total, overview.tiers, helpers["classification"], locale
        ),
        district_chart=district_chart(overview.by_district, request, locale),
        classifications=classification_codes(overview.tiers),
        **helpers,
    )


@api.get("/overview", summary="Counts by wave, module, level, district, school; targets; warnings")
def overview_api(
    request: Request,
    from_: str | None = Query(None, alias="from", description="First end date (YYYY-MM-DD)"),
    to: str | None = Query(None, description="Last end date (YYYY-MM-DD)"),
    year: str | None = Query(None, description="A calendar year instead of from/to"),
    viewer: Viewer = ApiAdmin,
    db: Session = ReadDbSession,
) -> dict[str, Any]:
    period = parse_period(from_, to, year, _today())
    return overview_out(request, ReportService(db).overview(viewer.deployment_id, period, _today()))


# -- targets -------------------------------------------------------------------------------


def _targets_page(
    request: Request,
    viewer: Viewer,
    db: Session,
    *,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    service = ReportService(db)
    today = _today()
    views = service.targets(viewer.deployment_id, today)
    modules = sorted(service.modules(viewer.deployment_id).values(), key=lambda m: m.order)
    return _page(
        request,
        viewer,
        "targets",
        "admin_targets.html",
        status_code,
        targets=views,
        modules=modules,
        districts=service.districts(viewer.deployment_id),
        form=form or {"track": "gvpt", "due_on": date(today.year, 12, 31).isoformat()},
        errors=errors or {},
        **_helpers(request, ()),
    )


@pages.get("/targets")
def targets_page(
    request: Request, viewer: Viewer = AdminOnly, db: Session = ReadDbSession
) -> Response:
    return _targets_page(request, viewer, db)


def _whole_number(text: str) -> str:
    """ "1.200" or "1 200" as people write twelve hundred → "1200"; anything else unchanged."""
    compact = text.replace(" ", "").replace("\u00a0", "")
    parts = compact.replace(",", ".").split(".")
    if (
        len(parts) > 1
        and parts[0].isdigit()
        and all(len(p) == 3 and p.isdigit() for p in parts[1:])
    ):
        return "".join(parts)
    return compact


def _target_errors(request: Request, exc: ValidationError) -> dict[str, str]:
    errors = _pydantic_errors(request, exc)
    for err in exc.errors():
        loc = err.get("loc", ())
        name = str(loc[0]) if loc else FORM
        if name in TARGET_FIELD_MESSAGES and err.get("type") != "missing":
            errors[name] = _t(request, TARGET_FIELD_MESSAGES[name])
    return errors


@pages.post("/targets")
def create_target(
    request: Request, viewer: Viewer = AdminOnly, db: Session = DbSession, form: FormData = FormBody
) -> Response:
    check_csrf(viewer, _text(form, "csrf_token"))
    values = {k: _text(form, k) for k in TARGET_FIELDS}
    payload: dict[str, Any] = {k: v for k, v in values.items() if v}
    if "percent" in payload:
        payload["percent"] = payload["percent"].rstrip("%").strip().replace(",", ".")
    if "staff_count" in payload:
        payload["staff_count"] = _whole_number(payload["staff_count"])
    errors: dict[str, str] = {}
    try:
        data = TargetCreate.model_validate(payload)
    except ValidationError as exc:
        errors = _target_errors(request, exc)
    else:
        try:
            ReportService(db, actor_of(viewer)).create_target(viewer.deployment_id, data)
        except ValidationFailed as exc:
            field = str(exc.params.get("field") or FORM)
            errors[field] = _t(request, exc.detail, exc.params)
    if errors:
        db.rollback()
        return _targets_page(request, viewer, db, form=values, errors=errors, status_code=422)
    return _redirect("/admin/targets?done=target")


@pages.post("/targets/{target_id}/delete")
def delete_target(
    target_id: int, viewer: Viewer = AdminOnly, db: Session = DbSession, form: FormData = FormBody
) -> Response:
    check_csrf(viewer, _text(form, "csrf_token"))
    ReportService(db, actor_of(viewer)).delete_target(viewer.deployment_id, target_id)
    return _redirect("/admin/targets?done=target_deleted")


@api.get("/targets", summary="Targets with what has been achieved and the gap")
def list_targets(viewer: Viewer = ApiAdmin, db: Session = ReadDbSession) -> list[dict[str, Any]]:
    return [target_out(v) for v in ReportService(db).targets(viewer.deployment_id, _today())]


@api.post("/targets", status_code=status.HTTP_201_CREATED, summary="Add a target")
def create_target_api(
    data: TargetCreate, viewer: Viewer = ApiAdmin, db: Session = DbSession
) -> dict[str, Any]:
    service = ReportService(db, actor_of(viewer))
    target = service.create_target(viewer.deployment_id, data)
    view = next(
        v for v in service.targets(viewer.deployment_id, _today()) if v.target.id == target.id
    )
    return target_out(view)


@api.delete(
    "/targets/{target_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a target"
)
def delete_target_api(target_id: int, viewer: Viewer = ApiAdmin, db: Session = DbSession) -> None:
    ReportService(db, actor_of(viewer)).delete_target(viewer.deployment_id, target_id)


# -- reports -------------------------------------------------------------------------------


@pages.get("/reports")
def reports_page(
    request: Request, viewer: Viewer = AdminOnly, db: Session = ReadDbSession
) -> Response:
    year = _today().year
    try:
        period = _period(request)
    except ValidationFailed as exc:
        return _page(
            request,
            viewer,
            "reports",
            "admin_reports.html",
            422,
            report=None,
            form=_period_form(None, request),
            errors=_period_error(request, exc),
            years=[year, year - 1],
        )
    report = ReportService(db).report(viewer.deployment_id, period)
    return _page(
        request,
        viewer,
        "reports",
        "admin_reports.html",
        report=report,
        form=_period_form(period, request),
        query=_query(period),
        years=[year, year - 1],
        **_helpers(request, report.tiers),
    )


@pages.get("/reports/export.xlsx")
def report_xlsx(
    request: Request, viewer: Viewer = AdminOnly, db: Session = ReadDbSession
) -> Response:
    report = ReportService(db).report(viewer.deployment_id, _period(request))
    out = io.BytesIO()
    export.write_xlsx(report, out)
    return Response(
        out.getvalue(),
        media_type=export.XLSX_TYPE,
        headers={
            "Content-Disposition": content_disposition(export.filename(report, "xlsx")),
            "Cache-Control": "no-store",
        },
    )


@pages.get("/reports/export.csv")
def report_csv(
    request: Request, viewer: Viewer = AdminOnly, db: Session = ReadDbSession
) -> Response:
    report = ReportService(db).report(viewer.deployment_id, _period(request))
    return Response(
        export.write_csv(report).encode("utf-8"),
        media_type=export.CSV_TYPE,
        headers={
            "Content-Disposition": content_disposition(export.filename(report, "csv")),
            "Cache-Control": "no-store",
        },
    )


@pages.get("/reports/print")
def report_print(
    request: Request, viewer: Viewer = AdminOnly, db: Session = ReadDbSession
) -> Response:
    report = ReportService(db).report(viewer.deployment_id, _period(request))
    return render(
        request,
        "report_print.html",
        {
            "viewer": viewer,
            "report": report,
            "query": _query(report.period),
            "today": _today(),
            **_helpers(request, report.tiers),
        },
    )


@api.get("/report", summary="The report for the next level up, per school and per district")
def report_api(
    from_: str | None = Query(None, alias="from", description="First end date (YYYY-MM-DD)"),
    to: str | None = Query(None, description="Last end date (YYYY-MM-DD)"),
    year: str | None = Query(None, description="A calendar year instead of from/to"),
    viewer: Viewer = ApiAdmin,
    db: Session = ReadDbSession,
) -> dict[str, Any]:
    report = ReportService(db).report(viewer.deployment_id, parse_period(from_, to, year, _today()))

    def row_out(row: Any) -> dict[str, Any]:
        return {
            "district": row.district,
            "school": row.school,
            "module_key": row.module.key,
            "module": row.module.label,
            "module_title": row.module.title,
            "wave": row.wave,
        } | counts_out(row.counts)

    return {
        "period": period_out(report.period),
        "tiers": tiers_out(report.tiers),
        "schools": [row_out(r) for r in report.schools],
        "districts": [row_out(r) for r in report.districts],
        "total": counts_out(report.total),
    }
