"""Request reading and cookie writing shared by the endpoints."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import Request
from starlette.datastructures import FormData
from starlette.responses import Response

from app.config import Settings
from lti.errors import LaunchRefused

MAX_FIELDS = 100
#: Fields a page form may post (a cohort's marks, a quiz's answers); no files.
MAX_FORM_FIELDS = 200


async def small_form(request: Request) -> FormData:
    """The posted form of a page (no files), read before the sync endpoint runs in the thread
    pool; endpoints check its ``csrf_token`` with ``check_form_csrf``."""
    return await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)


async def read_params(request: Request, max_bytes: int) -> dict[str, str]:
    """Query and urlencoded form parameters, read with a size cap.

    Platforms post ``application/x-www-form-urlencoded`` (OIDC ``form_post``); anything
    larger than ``max_bytes`` is refused before it is parsed.
    """
    params = dict(request.query_params)
    if request.method != "POST":
        _reject_unstorable(params)
        return params
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > max_bytes:
                raise LaunchRefused("too_large", f"content-length {declared}")
        except ValueError as exc:
            raise LaunchRefused("malformed_token", "bad content-length") from exc
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise LaunchRefused("too_large", "body over limit")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not body:
        return params
    if content_type not in ("application/x-www-form-urlencoded", ""):
        raise LaunchRefused("missing_parameters", f"unsupported content type {content_type!r}")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise LaunchRefused("malformed_token", f"form not parseable: {exc}") from exc
    params.update(pairs)
    _reject_unstorable(params)
    return params


def _reject_unstorable(params: dict[str, str]) -> None:
    """NUL characters and lone surrogates cannot reach a database query: refuse them."""
    for key, value in params.items():
        for text in (key, value):
            if "\x00" in text:
                raise LaunchRefused("malformed_token", "NUL character in a parameter")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise LaunchRefused("malformed_token", "invalid Unicode in a parameter") from exc


def set_cookie(
    response: Response, settings: Settings, name: str, value: str, max_age: int | None
) -> None:
    """Cookies that survive Moodle's iframe: ``SameSite=None; Secure; Partitioned`` over HTTPS
    (a cross-site form post must carry them, and CHIPS keeps them when third-party cookies
    are blocked); ``Lax`` over plain HTTP, where browsers refuse ``SameSite=None`` (the demo
    on 127.0.0.1 is same-site, so Lax is enough there).

    ``BLEND727_CROSS_SITE_COOKIES`` forces the first kind on plain HTTP (see ``Settings``).

    Written by hand because the standard library only learns ``Partitioned`` in 3.14.
    """
    parts = [f"{name}={value}", "Path=/", "HttpOnly"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if settings.secure_cookies:
        parts += ["Secure", "SameSite=None", "Partitioned"]
    else:
        parts.append("SameSite=Lax")
    response.headers.append("set-cookie", "; ".join(parts))


def cookie_attributes(settings: Settings) -> str:
    """What ``set_cookie`` adds after the value, for a script that tests whether this kind of
    cookie survives where it runs (``app/static/lti-storage.js``)."""
    if settings.secure_cookies:
        return "Path=/; Secure; SameSite=None; Partitioned"
    return "Path=/; SameSite=Lax"


def delete_cookie(response: Response, settings: Settings, name: str) -> None:
    set_cookie(response, settings, name, "", 0)
