"""Certificate pages. Thin: read the request, call ``CertificateService``, render.

* ``GET  /certificates/classes/{class_id}/mine.pdf`` — the signed-in learner's certificate
  (issued on this first request once due; 409 page saying why when not, 404 when not a
  learner of the class);
* ``GET  /certificates/enrolments/{enrolment_id}.pdf`` — a learner's certificate, for the
  core trainer of their cohort or an administrator;
* ``GET  /verify/{code}`` — public, no sign-in: valid / revoked with what the certificate
  says (name, module, dates, result, issuing unit, issue date); an unknown code → 404.
  HTML, or JSON with ``Accept: application/json``;
* ``GET|POST /admin/certificates`` — the issuing unit (form) and the classes with their
  counts of eligible learners and issued certificates;
* ``POST /admin/certificates/classes/{class_id}/zip`` — start building the class's ZIP
  (a background job), then ``GET /admin/certificates/jobs/{job_id}`` (progress, refreshes
  itself) and ``GET /admin/certificates/jobs/{job_id}.zip`` (the file, once done).

PDFs are drawn after the unit of work is committed, so no transaction (and on SQLite no write
lock) is held while the CPU draws.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.attendance.service import clock
from app.audit.service import actor_of
from app.auth.dependencies import (
    ReadDbSession,
    Viewer,
    check_csrf,
    current_viewer,
    require_roles,
)
from app.certificates.jobs import JOBS, build_class_zip
from app.certificates.limits import TooManyGuesses, VerifyLimit, client_key
from app.certificates.models import Certificate
from app.certificates.pdf import render_certificate
from app.certificates.rules import ascii_slug, verify_url
from app.certificates.service import ISSUER_FIELDS, CertificateService
from app.core.errors import Conflict, NotFound
from app.core.files import content_disposition
from app.core.handlers import wants_json
from app.core.i18n import gettext
from app.core.state import get_context
from app.core.templating import render, request_locale
from app.core.time import local, utcnow
from app.identity.models import Role

router = APIRouter(include_in_schema=False)

Now = Depends(clock)
Signed = Depends(current_viewer)
Follower = Depends(require_roles(Role.TRAINER, Role.ADMIN))
AdminOnly = Depends(require_roles(Role.ADMIN))

#: Seconds between two refreshes of a job's progress page.
REFRESH_SECONDS = 2
PUBLIC_HEADERS = {"Cache-Control": "no-cache", "X-Robots-Tag": "noindex, nofollow"}


def N_(message: str) -> str:
    """Marks an English message id for extraction; translated where it is shown."""
    return message


NOTICES = {"saved": N_("The issuing unit was saved. Certificates issued from now on show it.")}


async def _small_form(request: Request) -> AsyncIterator[FormData]:
    form = await request.form(max_files=0, max_fields=50)
    try:
        yield form
    finally:
        await form.close()


SmallForm = Depends(_small_form)


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


# -- PDFs ----------------------------------------------------------------------------------


def _pdf(request: Request, code: str, snapshot: dict[str, Any]) -> Response:
    base = get_context(request).settings.public_base_url
    data = render_certificate(snapshot, code, verify_url(base, code))
    name = f"{ascii_slug(str(snapshot.get('name') or ''))}-{code}.pdf"
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": content_disposition(name, "inline"),
            "Cache-Control": "private, no-store",
        },
    )


def _printable(cert: Certificate) -> tuple[str, dict[str, Any]]:
    return cert.code, dict(cert.snapshot)


@router.get("/certificates/classes/{class_id}/mine.pdf")
def my_certificate(
    class_id: int, request: Request, viewer: Viewer = Signed, now: datetime = Now
) -> Response:
    with get_context(request).database.session() as db:
        code, snapshot = _printable(CertificateService(db).own(viewer, class_id, now))
    return _pdf(request, code, snapshot)


@router.get("/certificates/enrolments/{enrolment_id}.pdf")
def learner_certificate(
    enrolment_id: int, request: Request, viewer: Viewer = Follower, now: datetime = Now
) -> Response:
    with get_context(request).database.session() as db:
        cert = CertificateService(db).for_enrolment(viewer, enrolment_id, now)
        code, snapshot = _printable(cert)
    return _pdf(request, code, snapshot)


# -- public verification -------------------------------------------------------------------


@router.get("/verify/{code}")
def verify(code: str, request: Request) -> Response:
    """Public; guessing is capped per client address (``app/certificates/limits.py``)."""
    ctx = get_context(request)
    client = client_key(request.client.host if request.client else None)
    now = utcnow()
    unknown: NotFound | None = None
    with ctx.database.session(readonly=True) as db:
        wait = VerifyLimit(db).wait_seconds(client, now, ctx.settings.verify_misses_per_minute)
        if wait:
            raise TooManyGuesses(wait)
        try:
            found = CertificateService(db).verify(code)
        except NotFound as exc:
            unknown = exc
    if unknown is not None:
        with ctx.database.session() as db:
            VerifyLimit(db).record_miss(client, now)
        raise unknown
    if wants_json(request):
        return JSONResponse(found.public(), headers=PUBLIC_HEADERS)
    return render(request, "certificate_verify.html", {"v": found}, headers=PUBLIC_HEADERS)


# -- the administrator ---------------------------------------------------------------------


def _admin_page(
    request: Request,
    viewer: Viewer,
    db: Session,
    now: datetime,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    service = CertificateService(db)
    issuer = service.issuer(viewer.deployment_id)
    if form is None:
        form = {
            name: (getattr(issuer, name, None) or "") if issuer is not None else ""
            for name in ISSUER_FIELDS
        }
    return render(
        request,
        "admin_certificates.html",
        {
            "viewer": viewer,
            "active": "certificates",
            "notice": NOTICES.get(request.query_params.get("done", "")),
            "form": form,
            "errors": errors or {},
            "issuer": issuer,
            "limits": ISSUER_FIELDS,
            "rows": service.class_overview(viewer.deployment_id, local(now).date()),
            "jobs": JOBS.recent(get_context(request).database, viewer.deployment_id),
        },
        status_code=status_code,
    )


@router.get("/admin/certificates")
def admin_certificates(
    request: Request, viewer: Viewer = AdminOnly, db: Session = ReadDbSession, now: datetime = Now
) -> Response:
    return _admin_page(request, viewer, db, now)


@router.post("/admin/certificates")
def save_issuer(
    request: Request, viewer: Viewer = AdminOnly, form: FormData = SmallForm, now: datetime = Now
) -> Response:
    check_csrf(viewer, _field(form, "csrf_token"))
    database = get_context(request).database
    with database.session() as db:
        service = CertificateService(db, actor_of(viewer))
        checked = service.check_issuer({name: _field(form, name) for name in ISSUER_FIELDS})
        if not checked.errors:
            service.set_issuer(viewer.deployment_id, checked, now)
    if checked.errors:
        locale = request_locale(request)
        errors = {
            name: gettext(locale, message, max_length=ISSUER_FIELDS[name])
            for name, message in checked.errors.items()
        }
        with database.session(readonly=True) as db:
            return _admin_page(
                request, viewer, db, now, form=checked.values, errors=errors, status_code=422
            )
    return RedirectResponse("/admin/certificates?done=saved", status_code=303)


@router.post("/admin/certificates/classes/{class_id}/zip")
def start_zip(
    class_id: int,
    request: Request,
    background: BackgroundTasks,
    viewer: Viewer = AdminOnly,
    form: FormData = SmallForm,
    now: datetime = Now,
) -> Response:
    check_csrf(viewer, _field(form, "csrf_token"))
    ctx = get_context(request)
    with ctx.database.session(readonly=True) as db:
        cls = CertificateService(db).class_for_zip(
            viewer.deployment_id, class_id, local(now).date()
        )
        code = cls.code
    job, new = JOBS.create(ctx.database, viewer.deployment_id, class_id, code)
    if new:
        # Started once the response is on its way: the job's session never overlaps this
        # request's, and the request does not wait for the work.
        work = build_class_zip(ctx.database, ctx.settings.public_base_url, now)
        background.add_task(JOBS.submit, ctx.database, job, work)
    return RedirectResponse(f"/admin/certificates/jobs/{job.id}", status_code=303)


@router.get("/admin/certificates/jobs/{job_id}.zip")
def job_zip(job_id: str, request: Request, viewer: Viewer = AdminOnly) -> Response:
    database = get_context(request).database
    job = JOBS.get(database, viewer.deployment_id, job_id)
    if job is None:
        raise NotFound()
    data = JOBS.zip_data(database, viewer.deployment_id, job_id) if job.state == "done" else None
    if data is None:
        raise Conflict(
            "The ZIP file is not ready yet.",
            code="certificate_zip_not_ready",
            advice="Wait until the page of the job says it is done.",
        )
    return Response(
        data,
        media_type="application/zip",
        headers={
            "Cache-Control": "private, no-store",
            "Content-Disposition": content_disposition(job.download_name),
        },
    )


@router.get("/admin/certificates/jobs/{job_id}")
def job_page(job_id: str, request: Request, viewer: Viewer = AdminOnly) -> Response:
    job = JOBS.get(get_context(request).database, viewer.deployment_id, job_id)
    if job is None:
        raise NotFound()
    headers = {} if job.finished else {"Refresh": str(REFRESH_SECONDS)}
    return render(
        request,
        "admin_certificate_job.html",
        {
            "viewer": viewer,
            "active": "certificates",
            "notice": None,
            "errors": {},
            "form": {},
            "job": job,
            "refresh": REFRESH_SECONDS,
        },
        headers=headers,
    )


__all__ = ["router"]
