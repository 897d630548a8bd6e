"""LTI Advantage Dynamic Registration: the page an LMS opens to register blend727.

A plain ``def`` route: the exchange with the platform blocks (``requests``), so FastAPI runs
it in the thread pool. A refusal is a ``RegistrationRefused`` rendered by the error handler
as a page with the reason; nothing is stored then.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.core.state import get_context
from app.core.templating import render
from app.platforms.service import DynamicRegistrationService

router = APIRouter(tags=["lti"])

#: The message that tells the LMS the registration window may close (LTI-DR §3.7).
CLOSE_SUBJECT = "org.imsglobal.lti.close"


@router.get("/lti/register", summary="LTI Advantage Dynamic Registration (1EdTech LTI-DR 1.0)")
def register(
    request: Request,
    openid_configuration: str = "",
    registration_token: str = "",
    invite: str = "",
) -> Response:
    ctx = get_context(request)
    service = DynamicRegistrationService(
        ctx.database,
        ctx.http,
        base_url=ctx.settings.public_base_url,
        allow_http_loopback=ctx.settings.registration_allow_http_loopback or ctx.settings.demo,
    )
    outcome = service.register(
        openid_configuration=openid_configuration,
        registration_token=registration_token,
        invite=invite,
    )
    return render(
        request,
        "lti_register_done.html",
        {"outcome": outcome, "close_subject": CLOSE_SUBJECT},
        headers={"Cache-Control": "no-store"},
    )
