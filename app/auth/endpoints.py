"""Who am I: the signed-in session as the JSON API sees it (and its CSRF token)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.auth.api import ApiAnyone
from app.auth.dependencies import Viewer

router = APIRouter(prefix="/api/v1", tags=["session"])


@router.get("/me", summary="The signed-in person, their role here, and the CSRF token for writes")
def me(viewer: Viewer = ApiAnyone) -> dict[str, Any]:
    return {
        "user_id": viewer.user.id,
        "name": viewer.user.display_name,
        "role": viewer.role.value,
        "locale": viewer.locale,
        "course": None
        if viewer.course is None
        else {"id": viewer.course.id, "title": viewer.course.title, "label": viewer.course.label},
        "csrf_token": viewer.csrf_token,
    }
