"""FastAPI dependencies that resolve the viewer and check roles on every page after launch."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from app.core.errors import Forbidden, Unauthenticated
from app.core.state import AppContext, get_context
from app.core.time import utcnow
from app.identity.models import Role
from app.identity.repository import IdentityRepository
from app.launch.service import session_id_for
from app.platforms.models import PlatformStatus

SESSION_COOKIE = "blend727_session"


def get_db(request: Request) -> Iterator[Session]:
    """One database session per request, committed once when the endpoint returns."""
    with get_context(request).database.session() as session:
        yield session


def get_read_db(request: Request) -> Iterator[Session]:
    """A read-only session for pages that only read (no write lock on SQLite)."""
    with get_context(request).database.session(readonly=True) as session:
        yield session


DbSession = Depends(get_db, scope="function")
ReadDbSession = Depends(get_read_db, scope="function")


@dataclass(frozen=True)
class ViewerUser:
    id: int
    sub: str
    name: str | None
    given_name: str | None
    family_name: str | None
    email: str | None

    @property
    def display_name(self) -> str:
        """Name as the LMS gave it; Moodle may withhold it, so fall back to the id."""
        if self.name:
            return self.name
        parts = [p for p in (self.family_name, self.given_name) if p]
        return " ".join(parts) if parts else f"#{self.sub}"


@dataclass(frozen=True)
class ViewerCourse:
    id: int
    context_id: str
    label: str | None
    title: str | None


@dataclass(frozen=True)
class ViewerLink:
    id: int
    resource_link_id: str
    title: str | None


@dataclass(frozen=True)
class Viewer:
    """The signed-in person of this request, as plain data (no ORM object escapes)."""

    session_id: str
    user: ViewerUser
    role: Role
    locale: str
    deployment_id: int
    platform_id: int
    course: ViewerCourse | None
    resource_link: ViewerLink | None
    return_url: str | None
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


def csrf_token_for(secret: str, session_id: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()


def current_viewer(request: Request) -> Viewer:
    """Dependency: the signed-in viewer, or 401."""
    return resolve_viewer(request)


def resolve_viewer(request: Request, db: Session | None = None) -> Viewer:
    """Resolve the session cookie to a viewer with one read-only query, or raise 401.

    Pass ``db`` to reuse a session the page opens anyway (one transaction, not two).
    """
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 128:
        raise Unauthenticated()
    ctx: AppContext = get_context(request)
    session_id = session_id_for(token)
    if db is not None:
        row = IdentityRepository(db).viewer_row(session_id, utcnow())
    else:
        with ctx.database.session(readonly=True) as own:
            row = IdentityRepository(own).viewer_row(session_id, utcnow())
    if row is None:
        raise Unauthenticated()
    if row.disabled_at is not None or row.platform_status != PlatformStatus.ACTIVE:
        raise Unauthenticated(
            detail="Your access to blend727 has been switched off.",
            advice="Ask your unit's administrator.",
        )
    request.state.locale = request.state.lang_override or row.locale
    return Viewer(
        session_id=session_id,
        user=ViewerUser(
            id=row.user_id,
            sub=row.sub,
            name=row.name,
            given_name=row.given_name,
            family_name=row.family_name,
            email=row.email,
        ),
        role=Role(row.role),
        locale=request.state.locale,
        deployment_id=row.deployment_id,
        platform_id=row.platform_id,
        course=(
            ViewerCourse(row.course_id, row.context_id, row.course_label, row.course_title)
            if row.course_id is not None
            else None
        ),
        resource_link=(
            ViewerLink(row.link_id, row.resource_link_id, row.link_title)
            if row.link_id is not None
            else None
        ),
        return_url=row.return_url,
        csrf_token=csrf_token_for(ctx.secret, session_id),
    )


def require_roles(*roles: Role) -> Callable[..., Viewer]:
    """Dependency: the viewer, refused with 403 unless their role is one of ``roles``."""

    def dependency(viewer: Viewer = Depends(current_viewer)) -> Viewer:
        if viewer.role not in roles:
            raise Forbidden()
        return viewer

    return dependency


def check_form_csrf(viewer: Viewer, form: FormData) -> None:
    """``check_csrf`` on a posted form's ``csrf_token`` field."""
    token = form.get("csrf_token")
    check_csrf(viewer, token if isinstance(token, str) else None)


def check_csrf(viewer: Viewer, submitted: str | None) -> None:
    if not submitted or not hmac.compare_digest(submitted, viewer.csrf_token):
        raise Forbidden(
            detail="The form has expired or did not come from blend727.",
            advice="Go back, reload the page and try again.",
            code="csrf_failed",
        )
