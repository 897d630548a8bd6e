"""FastAPI dependencies that resolve the viewer and check roles on every page after launch."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.core.errors import Forbidden, Unauthenticated
from app.core.state import AppContext, get_context
from app.core.time import utcnow
from app.identity.models import Course, ResourceLink, Role, User
from app.identity.repository import IdentityRepository
from app.launch.service import session_id_for

SESSION_COOKIE = "blend727_session"


def get_db(request: Request) -> Iterator[Session]:
    """One database session per request, committed once when the endpoint returns."""
    with get_context(request).database.session() as session:
        yield session


DbSession = Depends(get_db, scope="function")


@dataclass(frozen=True)
class Viewer:
    session_id: str
    user: User
    role: Role
    locale: str
    deployment_id: int
    platform_id: int
    course: Course | None
    resource_link: ResourceLink | None
    return_url: str | None
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


def csrf_token_for(secret: str, session_id: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()


def current_viewer(request: Request, db: Session = DbSession) -> Viewer:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 128:
        raise Unauthenticated()
    ctx: AppContext = get_context(request)
    session_id = session_id_for(token)
    web_session = IdentityRepository(db).live_session(session_id, utcnow())
    if web_session is None:
        raise Unauthenticated()
    user = web_session.user
    platform = web_session.deployment.platform
    if user.disabled_at is not None or not platform.active:
        raise Unauthenticated(
            detail="Your access to blend727 has been switched off.",
            advice="Ask your unit's administrator.",
        )
    request.state.locale = request.state.lang_override or web_session.locale
    return Viewer(
        session_id=session_id,
        user=user,
        role=Role(web_session.role),
        locale=request.state.locale,
        deployment_id=web_session.deployment_id,
        platform_id=platform.id,
        course=web_session.course,
        resource_link=web_session.resource_link,
        return_url=web_session.return_url,
        csrf_token=csrf_token_for(ctx.secret, session_id),
    )


def require_roles(*roles: Role) -> Callable[..., Viewer]:
    """Dependency: the viewer, refused with 403 unless their role is one of ``roles``."""

    def dependency(viewer: Viewer = Depends(current_viewer)) -> Viewer:
        if viewer.role not in roles:
            raise Forbidden()
        return viewer

    return dependency


def check_csrf(viewer: Viewer, submitted: str | None) -> None:
    if not submitted or not hmac.compare_digest(submitted, viewer.csrf_token):
        raise Forbidden(
            detail="The form has expired or did not come from blend727.",
            advice="Go back, reload the page and try again.",
            code="csrf_failed",
        )
