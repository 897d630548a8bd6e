"""Errors that carry their HTTP status and say, in plain words, what went wrong.

People get an HTML page (translated); API clients (``/api/…`` or ``Accept: application/json``)
get RFC 9457 ``application/problem+json``. Nothing an outsider sends may reach a 500.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """Base of every expected failure.

    ``code`` is a stable machine name (used in logs, metrics and the problem ``type``);
    ``title``/``detail``/``advice`` are English message ids looked up in the translation
    catalogue when rendered, so the same error reads well in Vietnamese and in English.
    ``params`` fill ``%(name)s`` placeholders after translation.
    """

    status_code: int = 400
    code: str = "bad_request"
    title: str = "The request is not valid"
    detail: str = ""
    advice: str = ""

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        title: str | None = None,
        advice: str | None = None,
        params: dict[str, Any] | None = None,
        log_detail: str | None = None,
    ) -> None:
        if detail is not None:
            self.detail = detail
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        if title is not None:
            self.title = title
        if advice is not None:
            self.advice = advice
        self.params = params or {}
        # Technical reason for the log only; never shown to the person.
        self.log_detail = log_detail or self.detail
        super().__init__(self.code)


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    title = "Not found"
    detail = "The page or record you asked for is not here."


class Unauthenticated(AppError):
    status_code = 401
    code = "not_signed_in"
    title = "You are not signed in"
    detail = "Your session has expired or has not started."
    advice = "Open blend727 again from your course in the LMS (Moodle)."


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    title = "Access refused"
    detail = "Your role in this course does not allow this page."
    advice = "If you think this is a mistake, ask your unit's administrator."


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_failed"
    title = "The data is not valid"


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    title = "Conflicting change"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    title = "The request is too large"
    detail = "What was sent is larger than allowed."
