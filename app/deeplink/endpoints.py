"""The deep-linking picker: ``GET /deep-link?t=…`` shows the tenant's modules, ``POST`` answers
the platform with an auto-submitting form carrying the signed ``LtiDeepLinkingResponse``.

A deep-linking launch redirects here (see ``app.deeplink.service.deep_link_location``). Only
administrators and core trainers (course teachers) of the launching session may use it; the
settings token must belong to that very session.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.auth.dependencies import DbSession, Viewer, check_csrf, require_roles
from app.core.i18n import gettext
from app.core.state import get_context
from app.core.templating import render, request_locale
from app.deeplink.service import (
    LEVEL_NAMES,
    PICKER_PATH,
    TRACK_NAMES,
    ChoiceRefused,
    DeepLinkGrant,
    DeepLinkService,
    Picker,
    read_deep_link_settings,
)
from app.identity.models import Role

router = APIRouter(tags=["lti"], include_in_schema=False)

Staff = Depends(require_roles(Role.ADMIN, Role.TRAINER))
NO_STORE = {"Cache-Control": "no-store"}


def _grant(request: Request, viewer: Viewer, token: str) -> DeepLinkGrant:
    return read_deep_link_settings(
        get_context(request).secret,
        token,
        session_id=viewer.session_id,
        deployment_id=viewer.deployment_id,
        platform_id=viewer.platform_id,
    )


def _picker_page(
    request: Request,
    viewer: Viewer,
    grant: DeepLinkGrant,
    picker: Picker,
    token: str,
    *,
    errors: Mapping[str, str] | None = None,
    items: Sequence[str] = (),
    class_code: str = "",
    status_code: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "viewer": viewer,
        "settings": grant.settings,
        "picker": picker,
        "token": token,
        "action": PICKER_PATH,
        "errors": dict(errors or {}),
        "form": {"items": list(items), "class_code": class_code},
        "level_names": LEVEL_NAMES,
        "track_names": TRACK_NAMES,
    }
    return render(
        request, "deep_link_pick.html", context, status_code=status_code, headers=NO_STORE
    )


@router.get(PICKER_PATH)
def pick(
    request: Request, t: str = "", viewer: Viewer = Staff, db: Session = DbSession
) -> Response:
    """The picker (or, when the platform accepts no resource links here, why not)."""
    grant = _grant(request, viewer, t)
    picker = DeepLinkService(db).picker(viewer.deployment_id)
    return _picker_page(request, viewer, grant, picker, t)


@router.post(PICKER_PATH)
def respond(
    request: Request,
    t: str = Form(""),
    csrf_token: str = Form(""),
    item: list[str] = Form(default_factory=list),
    class_code: str = Form(""),
    viewer: Viewer = Staff,
    db: Session = DbSession,
) -> Response:
    """Sign the response and hand it to the browser, which posts it to the platform."""
    check_csrf(viewer, csrf_token)
    grant = _grant(request, viewer, t)
    service = DeepLinkService(db)
    picker = service.picker(viewer.deployment_id)
    ctx = get_context(request)
    try:
        signed = service.respond(
            grant,
            picker,
            item,
            class_code.strip(),
            base_url=ctx.settings.public_base_url,
            locale=ctx.settings.default_locale,
        )
    except ChoiceRefused as exc:
        message = gettext(request_locale(request), exc.message, **exc.params)
        return _picker_page(
            request,
            viewer,
            grant,
            picker,
            t,
            errors={exc.field: message},
            items=item,
            class_code=class_code,
            status_code=422,
        )
    return render(
        request,
        "deep_link_return.html",
        {"viewer": viewer, "action": signed.return_url, "jwt": signed.jwt, "items": signed.items},
        headers=NO_STORE,
    )
