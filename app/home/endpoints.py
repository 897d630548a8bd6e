"""Start pages: the first page each role sees after a launch."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.attendance.service import clock
from app.audit.service import actor_of
from app.auth.dependencies import (
    SESSION_COOKIE,
    DbSession,
    Viewer,
    check_csrf,
    current_viewer,
    require_roles,
    resolve_viewer,
)
from app.classes.repository import ClassRepository
from app.classes.schemas import SupportLogCreate
from app.classes.service import ClassService
from app.core.concurrency import run_read
from app.core.errors import Forbidden, ValidationFailed
from app.core.http import delete_cookie
from app.core.state import get_context
from app.core.templating import render
from app.core.time import local, utcnow
from app.dashboards.export import MARK_NAMES
from app.home.views import learner_timelines, trainer_cohorts
from app.identity.models import Role
from app.identity.repository import IdentityRepository
from app.launch.service import session_id_for

router = APIRouter(tags=["pages"])

TEMPLATES = {
    Role.TEACHER: "home_teacher.html",
    Role.TRAINER: "home_trainer.html",
    Role.ADMIN: "home_admin.html",
    Role.NONE: "home_none.html",
}


@router.get("/", include_in_schema=False)
async def home(request: Request, now: datetime = Depends(clock)) -> Response:
    """The viewer's start page, or a welcome page when nobody is signed in."""
    return await run_read(get_context(request), _home, request, now)


def _home(request: Request, now: datetime) -> Response:
    ctx = get_context(request)
    if not request.cookies.get(SESSION_COOKIE):
        return render(request, "welcome.html", {"demo": ctx.settings.demo})
    with ctx.database.session(readonly=True) as db:  # one transaction for the whole page
        viewer = resolve_viewer(request, db)
        context: dict[str, object] = {"viewer": viewer}
        if viewer.role in (Role.TEACHER, Role.TRAINER):
            context["today"] = local(now).date()
            if viewer.role == Role.TEACHER:
                context["timelines"] = learner_timelines(db, viewer, now)
                context["mark_names"] = MARK_NAMES
                context["calendar_renewed"] = request.query_params.get("calendar") == "renewed"
            else:
                context["cohorts"] = trainer_cohorts(db, viewer.deployment_id, viewer.user.id)
    return render(request, TEMPLATES[viewer.role], context)


@router.post("/trainer/cohorts/{cohort_id}/support", include_in_schema=False)
def log_support(
    cohort_id: int,
    request: Request,
    csrf_token: str = Form(""),
    day: str = Form(""),
    form: str = Form(""),
    periods: str = Form(""),
    note: str = Form(""),
    viewer: Viewer = Depends(require_roles(Role.TRAINER, Role.ADMIN)),
    db: Session = DbSession,
) -> Response:
    """A core trainer logs converted periods of support for one of their cohorts."""
    check_csrf(viewer, csrf_token)
    repo = ClassRepository(db)
    found = next(
        (
            (c, cls)
            for c, cls in repo.cohorts_of_trainer(viewer.deployment_id, viewer.user.id)
            if c.id == cohort_id
        ),
        None,
    )
    if found is None:
        raise Forbidden(detail="Only the cohort's core trainer logs its support periods.")
    cohort, cls = found
    try:
        data = SupportLogCreate(date=day, form=form, periods=periods, note=note or None)  # type: ignore[arg-type]
    except ValidationError as exc:
        field = ".".join(str(p) for p in exc.errors()[0].get("loc", ())) or "periods"
        raise ValidationFailed("%(field)s is not valid", params={"field": field}) from exc
    ClassService(db, actor_of(viewer)).log_support(
        viewer.deployment_id, cls.id, cohort.id, viewer.user.id, data
    )
    return RedirectResponse(f"/cohorts/{cohort.id}?saved=support#support", status_code=303)


@router.post("/logout", include_in_schema=False)
def logout(
    request: Request,
    csrf_token: str = Form(""),
    viewer: Viewer = Depends(current_viewer),
    db: Session = DbSession,
) -> Response:
    check_csrf(viewer, csrf_token)
    IdentityRepository(db).revoke_session(viewer.session_id, utcnow())
    response = render(request, "logged_out.html", {"return_url": viewer.return_url})
    delete_cookie(response, get_context(request).settings, SESSION_COOKIE)
    return response


@router.get("/lang/{locale}", include_in_schema=False)
def switch_language(locale: str, request: Request) -> Response:
    """Switch language; the middleware stores ``?lang`` in a cookie, the session follows."""
    ctx = get_context(request)
    target = locale if locale in ("vi", "en") else ctx.settings.default_locale
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with ctx.database.session() as db:
            IdentityRepository(db).set_session_locale(session_id_for(token), target)
    return RedirectResponse(f"/?lang={target}", status_code=303)
