"""A pure ASGI middleware (cheaper than BaseHTTPMiddleware on the launch path) that gives
every request an id, the locale chosen with ``?lang=`` (remembered in a cookie), and the
security headers every response carries.

The id is the incoming ``X-Request-ID`` when that is short and plain (a proxy's or load
balancer's id, so one request is followed across both logs), else a fresh one; it is set in
``app.core.logs.request_id_var`` for every record logged while the request is handled and
sent back as ``x-request-id``. With ``access_log`` one line per request goes to the
``blend727.access`` logger: method, route (the template, never ids or tokens from the path),
status, milliseconds, client.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.framing import FrameAncestors
from app.core.i18n import SUPPORTED_LOCALES
from app.core.logs import request_id_var

access_log = logging.getLogger("blend727.access")
SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")

LANG_COOKIE = "blend727_lang"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


def _incoming_request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"x-request-id":
            return value.decode("ascii") if SAFE_REQUEST_ID.match(value) else None
    return None


def route_of(scope: Scope) -> str:
    """The matched route's template (``/ical/learner/{token}.ics``), for logs: the path itself
    may carry tokens. An unmatched request logs its path (cut short)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str) and path:
        return path
    return str(scope.get("path", ""))[:200]


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        default_locale: str = "vi",
        https: bool = False,
        access_log: bool = False,
        framing: FrameAncestors | None = None,
    ) -> None:
        self.app = app
        self.framing = framing or FrameAncestors()
        self.default_locale = default_locale
        self.https = https
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})
        request_id = _incoming_request_id(scope.get("headers", [])) or secrets.token_hex(8)
        state["request_id"] = request_id
        # Not reset afterwards: each request runs in a task of its own (a copy of the
        # context), and the error handler outside this middleware still logs with the id.
        request_id_var.set(request_id)
        status = 500

        override: str | None = None
        query = scope.get("query_string", b"")
        if b"lang=" in query:
            value = parse_qs(query.decode("latin-1")).get("lang", [""])[-1]
            if value in SUPPORTED_LOCALES:
                override = value
        cookie_locale: str | None = None
        for name, raw in scope.get("headers", []):
            if name == b"cookie" and LANG_COOKIE.encode() in raw:
                jar: SimpleCookie = SimpleCookie()
                try:
                    jar.load(raw.decode("latin-1"))
                except Exception:
                    jar = SimpleCookie()
                morsel = jar.get(LANG_COOKIE)
                if morsel is not None and morsel.value in SUPPORTED_LOCALES:
                    cookie_locale = morsel.value
        state["lang_override"] = override or cookie_locale
        state["locale"] = override or cookie_locale or self.default_locale

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for key, value in SECURITY_HEADERS:
                    if key not in present:
                        headers.append((key, value))
                if b"content-security-policy" not in present:
                    policy = self.framing.policy_for(scope.get("path", ""))
                    headers.append((b"content-security-policy", policy))
                headers.append((b"x-request-id", request_id.encode()))
                if override:
                    attrs = "Path=/; Max-Age=31536000; HttpOnly"
                    attrs += (
                        "; SameSite=None; Secure; Partitioned" if self.https else "; SameSite=Lax"
                    )
                    headers.append((b"set-cookie", f"{LANG_COOKIE}={override}; {attrs}".encode()))
                message["headers"] = headers
            await send(message)

        if not self.access_log:
            await self.app(scope, receive, send_wrapper)
            return
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            method, route = scope.get("method", ""), route_of(scope)
            client = scope.get("client")
            access_log.info(
                "%s %s %s",
                method,
                route,
                status,
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                    "client": client[0] if client else None,
                },
            )
