"""Why a login or launch was refused, in words a teacher can pass on to an administrator.

Each reason has a stable code (for logs and metrics), an HTTP status, and a message id in
the translation catalogue. The technical detail goes to the log only.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.core.errors import AppError
from app.platforms.models import PlatformStatus

_ADVICE_ADMIN = (
    "Open blend727 again from your course. If it happens again, send this code to the "
    "administrator of your LMS: %(code)s."
)

REASONS: dict[str, tuple[int, str, str]] = {
    # code: (status, title, detail)
    "missing_parameters": (
        400,
        "The launch is incomplete",
        "The LMS did not send everything blend727 needs to sign you in.",
    ),
    "unknown_platform": (
        400,
        "This LMS is not registered",
        "blend727 does not know the LMS that sent you here, or its registration is incomplete.",
    ),
    "platform_disabled": (
        403,
        "This LMS has been switched off",
        "An administrator of blend727 has disabled the connection with this LMS.",
    ),
    "platform_pending": (
        403,
        "This LMS is waiting for approval",
        "The LMS registered itself with blend727, but an administrator of blend727 has not "
        "approved the connection yet.",
    ),
    "unknown_deployment": (
        403,
        "This installation of the tool is not registered",
        "The LMS sent a deployment that blend727 does not know.",
    ),
    "bad_target": (
        400,
        "The launch points somewhere else",
        "The address this launch was meant for is not blend727's.",
    ),
    "state_mismatch": (
        401,
        "The sign-in could not be matched to this browser",
        "The sign-in started in another window or browser, took too long, was already used "
        "(for example by reloading the page), or your browser blocked blend727's cookies.",
    ),
    "cookies_blocked": (
        401,
        "Your browser blocked blend727's cookies",
        "blend727 is shown inside your LMS's page, and your browser did not give back the "
        "cookie that ties this sign-in to you. Browsers that block third-party cookies do this.",
    ),
    "storage_unconfirmed": (
        401,
        "The sign-in could not be confirmed",
        "Without cookies, blend727 confirms a sign-in through your LMS's storage, from its own "
        "page; this confirmation did not come from that page.",
    ),
    "malformed_token": (
        400,
        "The launch message is damaged",
        "The sign-in message from the LMS could not be read.",
    ),
    "bad_signature": (
        401,
        "The launch message could not be verified",
        "The signature of the sign-in message is not valid for this LMS.",
    ),
    "unknown_key": (
        401,
        "The launch message could not be verified",
        "The LMS signed the message with a key it does not publish.",
    ),
    "keys_unavailable": (
        401,
        "The launch message could not be verified",
        "blend727 could not fetch the LMS's public keys to check the message.",
    ),
    "wrong_audience": (
        401,
        "The launch message was meant for another tool",
        "The message is addressed to a tool other than blend727.",
    ),
    "expired": (
        401,
        "The launch has expired",
        "The sign-in message is too old or not yet valid. Check that the clocks of the LMS "
        "and of blend727 are right.",
    ),
    "replayed": (
        401,
        "This launch has already been used",
        "Each sign-in message works once. Reloading the page after a launch causes this.",
    ),
    "bad_nonce": (
        401,
        "The launch does not belong to this sign-in",
        "The message does not answer the sign-in request this browser started.",
    ),
    "wrong_message_type": (
        400,
        "This kind of launch is not supported",
        "blend727 accepts resource link and deep linking launches.",
    ),
    "wrong_version": (
        400,
        "This LTI version is not supported",
        "blend727 accepts LTI 1.3 launches only.",
    ),
    "missing_claims": (
        400,
        "The launch is missing information",
        "The LMS left out information that every LTI 1.3 launch must carry.",
    ),
    "deep_link_types": (
        400,
        "blend727 cannot provide this kind of content",
        "The LMS asked for content types that blend727 cannot provide: blend727 only "
        "returns LTI resource links (activities).",
    ),
    "too_large": (
        413,
        "The launch is too large",
        "The sign-in message is larger than blend727 accepts.",
    ),
    "user_disabled": (
        403,
        "Your account is disabled in blend727",
        "An administrator of blend727 has disabled your account.",
    ),
    "method_not_allowed": (
        405,
        "Open blend727 from your course",
        "This address only receives sign-ins sent by the LMS.",
    ),
}


def refusal_for_status(status: str) -> str:
    """The reason a platform that is not active refuses a login or launch: one registered
    dynamically and not yet approved is ``platform_pending``, any other ``platform_disabled``."""
    return "platform_pending" if status == PlatformStatus.PENDING else "platform_disabled"


#: Advice for the reasons where "send the code to your administrator" does not help.
ADVICE: dict[str, str] = {
    "cookies_blocked": (
        "Open the activity again from your course: blend727 will offer to open in a new "
        "window. If this keeps happening, allow cookies for blend727 in your browser, or ask "
        "the administrator of your LMS to open blend727 in a new window."
    ),
}


class LaunchRefused(AppError):
    """A login or launch that must not proceed. Nothing has been written when it is raised."""

    def __init__(self, reason: str, log_detail: str = "") -> None:
        status, title, detail = REASONS[reason]
        super().__init__(
            detail,
            code=reason,
            status_code=status,
            title=title,
            advice=ADVICE.get(reason, _ADVICE_ADMIN),
            params={"code": reason},
            log_detail=log_detail or reason,
        )
        self.reason = reason


class RegistrationRefused(AppError):
    """A dynamic registration (LTI-DR) that did not complete. Nothing has been stored when it
    is raised; ``detail`` (a message id) names the cause in words an LMS administrator can act
    on, and ``code`` is a stable name for logs."""

    status_code = 400
    code = "registration_failed"
    title = "The registration did not succeed"
    advice = (
        "Nothing was saved in blend727. Correct the cause, then start the registration again "
        "from your LMS."
    )

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status_code: int = 400,
        params: Mapping[str, object] | None = None,
        log_detail: str = "",
    ) -> None:
        super().__init__(
            detail,
            code=code,
            status_code=status_code,
            params=dict(params or {}),
            log_detail=log_detail or f"{code}: {params or ''}",
        )
