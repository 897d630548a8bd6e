"""A pure ASGI middleware (cheaper than BaseHTTPMiddleware on the launch path) that gives
every request an id, the locale chosen with ``?lang=`` (remembered in a cookie), and the
security headers every response carries."""

from __future__ import annotations

import secrets
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.i18n import SUPPORTED_LOCALES

LANG_COOKIE = "blend727_lang"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
]


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, default_locale: str = "vi", https: bool = False) -> None:
        self.app = app
        self.default_locale = default_locale
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        request_id = secrets.token_hex(8)
        state["request_id"] = request_id

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
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for key, value in SECURITY_HEADERS:
                    if key not in present:
                        headers.append((key, value))
                headers.append((b"x-request-id", request_id.encode()))
                if override:
                    attrs = "Path=/; Max-Age=31536000; HttpOnly"
                    attrs += (
                        "; SameSite=None; Secure; Partitioned" if self.https else "; SameSite=Lax"
                    )
                    headers.append((b"set-cookie", f"{LANG_COOKIE}={override}; {attrs}".encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)
