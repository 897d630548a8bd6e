"""Administrator pages. An administrator sees their own platform's registration only:
tenants never see each other. Tool-wide operations (every platform) are on the CLI."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.auth.dependencies import ReadDbSession, Viewer, require_roles
from app.core.errors import NotFound
from app.core.state import get_context
from app.core.templating import render
from app.identity.models import Role
from app.platforms.repository import PlatformRepository
from app.platforms.service import lti_endpoints

router = APIRouter(prefix="/admin", tags=["admin"])

AdminOnly = Depends(require_roles(Role.ADMIN))


@router.get("/lti", include_in_schema=False)
def lti_settings(
    request: Request, viewer: Viewer = AdminOnly, db: Session = ReadDbSession
) -> Response:
    repo = PlatformRepository(db)
    platform = repo.get(viewer.platform_id)
    if platform is None:
        raise NotFound()
    deployments = repo.deployments_of(platform.id)
    ctx = get_context(request)
    return render(
        request,
        "admin_lti.html",
        {
            "viewer": viewer,
            "endpoints": lti_endpoints(ctx.settings.public_base_url),
            "platform": platform,
            "deployments": deployments,
        },
    )
