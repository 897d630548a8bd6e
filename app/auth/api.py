"""Authentication of the JSON API: the same signed-in session as the pages, with the CSRF
token in an ``X-CSRF-Token`` header on every request that changes something."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Depends, Request

from app.auth.dependencies import Viewer, current_viewer
from app.core.errors import Forbidden
from app.identity.models import Role

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def api_viewer(request: Request) -> Viewer:
    viewer = current_viewer(request)
    if request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token", "")
        if not sent or not hmac.compare_digest(sent, viewer.csrf_token):
            raise Forbidden(
                detail="Missing or wrong X-CSRF-Token header.",
                code="csrf_failed",
            )
    return viewer


def api_roles(*roles: Role) -> Callable[..., Viewer]:
    def dependency(viewer: Viewer = Depends(api_viewer)) -> Viewer:
        if viewer.role not in roles:
            raise Forbidden()
        return viewer

    return dependency


ApiAdmin = Depends(api_roles(Role.ADMIN))
ApiTrainer = Depends(api_roles(Role.TRAINER, Role.ADMIN))
ApiAnyone = Depends(api_viewer)
