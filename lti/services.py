"""Calling a platform's LTI Advantage services (NRPS now; AGS and groups later).

pylti1p3's ``ServiceConnector`` is subclassed here to close its gaps:

* access tokens are cached per (issuer, client id, sorted scopes) for the whole process —
  the library keys its cache by issuer and scopes only, so two registrations of one issuer
  would share a token — and a token is dropped ``TOKEN_SAFETY_MARGIN_SECONDS`` (at most half
  its lifetime) before it expires, so one is never used after expiry;
* the client assertion carries the ``kid`` that ``/lti/jwks.json`` publishes (the library's
  ``Registration.get_kid()`` is ``None`` unless a public key PEM was also set);
* every request goes through our timeout session and responses are size-capped;
* a 401 from a service re-fetches the token once (the platform may have revoked it);
* ``Link`` headers are parsed properly: several links, ``rel`` lists, and the typographic or
  single quotes some platforms write (Moodle: ``rel=“next”``);
* paging stops after ``DEFAULT_MAX_PAGES`` pages or when a page links back to one already
  read, and never follows a link to another origin (it would carry our bearer token);
* failures are ``ServiceError(kind, status, detail)``; no ``requests``, JSON or pylti1p3
  exception escapes.

``ServiceError`` is not an ``AppError``: it happens in background work (roster sync), whose
caller decides what a person sees. ``detail`` is for the log.
"""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from urllib.parse import urljoin, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pylti1p3.registration import Registration
from pylti1p3.service_connector import ServiceConnector, TServiceConnectorResponse

from app.keys.service import public_jwk
from lti.http import build_session, read_limited

log = logging.getLogger("blend727.lti.services")

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"

TOKEN_SAFETY_MARGIN_SECONDS = 60.0
ASSERTION_LIFETIME_SECONDS = 60
MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
MAX_SERVICE_RESPONSE_BYTES = 16 * 1024 * 1024  # a roster page of 1000 members is ~0.5 MB
DEFAULT_MAX_PAGES = 1000
DEFAULT_TIMEOUT_SECONDS = 10.0

ServiceErrorKind = Literal["token_refused", "forbidden", "not_found", "bad_response", "unreachable"]
SERVICE_ERROR_KINDS: frozenset[str] = frozenset(
    {"token_refused", "forbidden", "not_found", "bad_response", "unreachable"}
)


class ServiceError(Exception):
    """A service call that failed; nothing partial is returned alongside it.

    ``kind``: ``token_refused`` (the token endpoint said no: unknown key, client or scope),
    ``forbidden`` (the service refused our token, even a fresh one), ``not_found``,
    ``bad_response`` (an answer we cannot use: not JSON, wrong shape, paging that loops),
    ``unreachable`` (no answer: connection failure, timeout, 5xx or 429 — try again later).
    ``status`` is the HTTP status when there was one; ``detail`` is for the log only.
    """

    #: Seconds the platform asked us to wait (``Retry-After`` of a 429 or 503), when it did.
    retry_after: float | None = None
    #: The token endpoint failed (every call to this platform would fail the same way).
    at_token_endpoint: bool = False

    def __init__(
        self,
        kind: ServiceErrorKind,
        status: int | None = None,
        detail: str = "",
        *,
        retry_after: float | None = None,
        at_token_endpoint: bool = False,
    ) -> None:
        if kind not in SERVICE_ERROR_KINDS:
            raise ValueError(f"unknown service error kind {kind!r}")
        message = kind + (f" (HTTP {status})" if status is not None else "")
        super().__init__(f"{message}: {detail}" if detail else message)
        self.kind: ServiceErrorKind = kind
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        self.at_token_endpoint = at_token_endpoint

    @property
    def transient(self) -> bool:
        """Worth retrying later without anyone changing anything."""
        return self.kind == "unreachable"


# -- what a caller hands us ---------------------------------------------------------------


class ServiceRegistration(Protocol):
    """What a service call needs of a registration (``PlatformRecord`` fits)."""

    @property
    def issuer(self) -> str: ...
    @property
    def client_id(self) -> str: ...
    @property
    def token_url(self) -> str: ...
    @property
    def auth_audience(self) -> str | None: ...


class ToolSigningKey(Protocol):
    """The tool's current signing key (``app.keys.service.SigningKey`` fits)."""

    @property
    def kid(self) -> str: ...
    @property
    def private_key_pem(self) -> str: ...


@dataclass(frozen=True)
class ServicePlatform:
    """A registration as plain data, for callers without a ``PlatformRecord``."""

    issuer: str
    client_id: str
    token_url: str
    auth_audience: str | None = None


class ToolKeyRegistration(Registration):
    """A pylti1p3 registration that knows the ``kid`` of the tool's key.

    The library's ``get_kid()`` derives a kid from ``get_tool_public_key()``, which
    ``set_tool_private_key()`` does not set, so its client assertions carry no kid at all.
    """

    def __init__(self, *, kid: str, private_key_pem: str, private_key: Any = None) -> None:
        self._kid = kid
        self._parsed_key = private_key
        self.set_tool_private_key(private_key_pem)

    def get_kid(self) -> str | None:
        return self._kid

    def signing_key(self) -> Any:
        """The parsed key when the caller had one (parsing PEM costs tens of ms), else PEM."""
        return self._parsed_key if self._parsed_key is not None else self.get_tool_private_key()


def service_registration(
    platform: ServiceRegistration, tool_key: ToolSigningKey
) -> ToolKeyRegistration:
    parsed = getattr(tool_key, "private_key", None)
    reg = ToolKeyRegistration(
        kid=tool_key.kid,
        private_key_pem=tool_key.private_key_pem,
        private_key=parsed if isinstance(parsed, rsa.RSAPrivateKey) else None,
    )
    reg.set_issuer(platform.issuer).set_client_id(platform.client_id)
    reg.set_auth_token_url(platform.token_url)
    if platform.auth_audience:
        reg.set_auth_audience(platform.auth_audience)
    return reg


@functools.lru_cache(maxsize=16)
def _thumbprint_kid(private_key_pem: str) -> str:
    """The kid ``/lti/jwks.json`` publishes for a key: its RFC 7638 thumbprint."""
    key = serialization.load_pem_private_key(private_key_pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ServiceError("token_refused", None, "the tool's key is not an RSA key")
    return str(public_jwk(key)["kid"])


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds (``120``) or an HTTP-date
    (``Wed, 21 Oct 2015 07:28:00 GMT``, counted from ``now``). ``None`` when unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(int(text)) if len(text) <= 9 else None  # beyond 30 years: nonsense
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" and obsolete forms: RFC 9110 says GMT
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


# -- the token cache ----------------------------------------------------------------------


def usable_lifetime(expires_in: Any, margin: float = TOKEN_SAFETY_MARGIN_SECONDS) -> float | None:
    """Seconds a token may be reused: ``expires_in`` less the margin (at most half of it).
    ``None`` when the platform gave no usable ``expires_in`` (the token is not cached)."""
    if isinstance(expires_in, bool):
        return None
    if isinstance(expires_in, str):
        try:
            expires_in = float(expires_in.strip())
        except ValueError:
            return None
    if not isinstance(expires_in, int | float) or not math.isfinite(expires_in):
        return None
    if expires_in <= 0:
        return None
    return float(expires_in) - min(margin, expires_in / 2)


class TokenCache:
    """Access tokens shared by every thread of the process, each with its own deadline.

    ``clock`` is monotonic seconds (tests pass a fake one). ``fetch_lock(key)`` lets one
    thread fetch a missing token while the others wait for it instead of fetching too.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        margin: float = TOKEN_SAFETY_MARGIN_SECONDS,
    ) -> None:
        self._clock = clock
        self._margin = margin
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}
        self._fetch_locks: dict[str, threading.Lock] = {}

    def now(self) -> float:
        return self._clock()

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._tokens.get(key)
            if entry is None:
                return None
            token, deadline = entry
            if self._clock() >= deadline:
                del self._tokens[key]
                return None
            return token

    def put(
        self, key: str, token: str, expires_in: Any, *, received_at: float | None = None
    ) -> bool:
        """Keep ``token`` until its usable lifetime, counted from ``received_at`` (or now),
        is over. Returns False (and keeps nothing) without a usable ``expires_in``."""
        lifetime = usable_lifetime(expires_in, self._margin)
        if lifetime is None:
            return False
        start = self._clock() if received_at is None else received_at
        with self._lock:
            self._tokens[key] = (token, start + lifetime)
        return True

    def forget(self, key: str, token: str | None = None) -> None:
        """Drop the token for ``key`` (only if it is still ``token``, when given)."""
        with self._lock:
            entry = self._tokens.get(key)
            if entry is not None and (token is None or entry[0] == token):
                del self._tokens[key]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()

    def fetch_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._fetch_locks.setdefault(key, threading.Lock())

    def __len__(self) -> int:
        with self._lock:
            return len(self._tokens)


_PROCESS_TOKEN_CACHE = TokenCache()


def process_token_cache() -> TokenCache:
    """The cache every connector uses unless given another one."""
    return _PROCESS_TOKEN_CACHE


# -- Link headers (RFC 8288), as platforms really write them ------------------------------

# opening quote -> the characters that may close it
_QUOTES: dict[str, str] = {
    '"': '"',
    "'": "'",
    "\u201c": '\u201d\u201c"',  # “…”
    "\u201d": '\u201d\u201c"',  # ”…”
    "\u201e": '\u201c\u201d"',  # „…“
    "\u201f": '\u201d\u201c"',  # ‟…”
    "\u2018": "\u2019\u2018'",  # ‘…’
    "\u2019": "\u2019\u2018'",  # ’…’
    "\u00ab": "\u00bb",  # «…»
    "\u00bb": "\u00ab\u00bb",  # »…«
    "\u2039": "\u203a",  # ‹…›
}


def _repair_mojibake(value: str) -> str:
    """Header bytes are read as Latin-1 (http.client), so Moodle's UTF-8 ``“next”`` arrives
    as ``â\x80\x9cnextâ\x80\x9d``; decode such a header as the UTF-8 it was."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


@dataclass(frozen=True)
class Link:
    url: str
    rels: tuple[str, ...]
    params: dict[str, str] = field(default_factory=dict)


def parse_link_header(value: str | None) -> list[Link]:
    """Every ``<url>; param=value; …`` in a ``Link`` header (several headers joined by commas
    count as one). Parameter names and ``rel`` values are lower-cased; the first ``rel``
    wins (RFC 8288 §3.3). Unparseable stretches are skipped, never raised on."""
    if not value:
        return []
    s = _repair_mojibake(value).replace("\r", " ").replace("\n", " ")
    n = len(s)
    links: list[Link] = []
    i = 0
    while i < n:
        start = s.find("<", i)
        if start < 0:
            break
        end = s.find(">", start + 1)
        if end < 0:
            break
        url = s[start + 1 : end].strip()
        i = end + 1
        params: dict[str, str] = {}
        while True:
            while i < n and s[i].isspace():
                i += 1
            if i >= n or s[i] != ";":
                break
            i += 1
            while i < n and s[i].isspace():
                i += 1
            name_start = i
            while i < n and s[i] not in "=;,<" and not s[i].isspace():
                i += 1
            name = s[name_start:i].lower()
            while i < n and s[i].isspace():
                i += 1
            param_value = ""
            if i < n and s[i] == "=":
                i += 1
                while i < n and s[i].isspace():
                    i += 1
                if i < n and s[i] in _QUOTES:
                    closers = _QUOTES[s[i]]
                    i += 1
                    chars: list[str] = []
                    while i < n and s[i] not in closers:
                        if s[i] == "\\" and closers == '"' and i + 1 < n:
                            i += 1
                        chars.append(s[i])
                        i += 1
                    i += 1  # the closing quote (or past the end)
                    param_value = "".join(chars)
                else:
                    value_start = i
                    while i < n and s[i] not in ";,<" and not s[i].isspace():
                        i += 1
                    param_value = s[value_start:i]
            if name and name not in params:
                params[name] = param_value.strip()
        rels = tuple(r.lower() for r in params.get("rel", "").split())
        if url:
            links.append(Link(url=url, rels=rels, params=params))
        # anything else up to the next link is skipped
    return links


def link_with_rel(value: str | None, rel: str, base_url: str) -> str | None:
    """The (absolute) target of the first link whose ``rel`` list names ``rel``."""
    for link in parse_link_header(value):
        if rel.lower() in link.rels:
            return urljoin(base_url, link.url)
    return None


def next_page_url(value: str | None, base_url: str) -> str | None:
    return link_with_rel(value, "next", base_url)


def header_value(headers: Any, name: str) -> str | None:
    """A header from a plain dict or a case-insensitive mapping."""
    if not headers:
        return None
    direct = headers.get(name)
    if direct is not None:
        return str(direct)
    lowered = name.lower()
    for key, val in headers.items():
        if str(key).lower() == lowered:
            return str(val)
    return None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def paginate(
    fetch_page: Callable[[str], TServiceConnectorResponse],
    url: str,
    *,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> Iterator[tuple[str, TServiceConnectorResponse]]:
    """Pages from ``url`` along ``next_page_url`` — at most ``max_pages``, never one twice,
    never off the first page's origin. Yields (page URL, response)."""
    origin = _origin(url)
    seen: set[str] = set()
    next_url: str | None = url
    while next_url:
        if next_url in seen:
            raise ServiceError("bad_response", None, f"paging loops back to {next_url}")
        if len(seen) >= max_pages:
            raise ServiceError("bad_response", None, f"more than {max_pages} pages from {url}")
        if _origin(next_url) != origin:
            raise ServiceError("bad_response", None, f"next page on another origin: {next_url}")
        seen.add(next_url)
        response = fetch_page(next_url)
        yield next_url, response
        next_url = response["next_page_url"]


# -- the connector ------------------------------------------------------------------------


def _parse_json(body: bytes, what: str, status: int | None) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        raise ServiceError("bad_response", status, f"{what} is not JSON") from None


def _oauth_error(body: bytes) -> str:
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return ""
    if not isinstance(data, dict):
        return ""
    parts = [str(data.get(k))[:200] for k in ("error", "error_description") if data.get(k)]
    return ": " + " — ".join(parts) if parts else ""


def _status_kind(status: int) -> ServiceErrorKind:
    if status in (401, 403):
        return "forbidden"
    if status in (404, 410):
        return "not_found"
    if status == 429 or status >= 500:
        return "unreachable"
    return "bad_response"


class ToolServiceConnector(ServiceConnector):
    """pylti1p3's connector with a process-wide token cache and our error handling.

    Usable as ``service_connector_cls`` of ``MessageLaunch`` (it takes the same two
    arguments); with a plain ``Registration`` the kid is the thumbprint of its private key.
    """

    def __init__(
        self,
        registration: Registration,
        requests_session: requests.Session | None = None,
        *,
        token_cache: TokenCache | None = None,
        max_response_bytes: int = MAX_SERVICE_RESPONSE_BYTES,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        super().__init__(registration, requests_session or build_session(DEFAULT_TIMEOUT_SECONDS))
        self._cache = token_cache if token_cache is not None else process_token_cache()
        self._max_response_bytes = max_response_bytes
        self._max_pages = max_pages
        # a token without a usable expires_in serves this connector (one operation) only
        self._uncached: dict[str, str] = {}

    # -- the cache hooks of pylti1p3 2.0 ------------------------------------------------
    def _scope_key(self, scopes: Any) -> str:
        reg = self._registration
        return json.dumps(
            [reg.get_issuer() or "", reg.get_client_id() or "", sorted(set(scopes))],
            separators=(",", ":"),
        )

    def _get_cached_access_token(self, scope_key: str) -> str | None:
        return self._cache.get(scope_key) or self._uncached.get(scope_key)

    def _cache_access_token(self, scope_key: str, access_token: str, expires_in: Any) -> None:
        if not self._cache.put(scope_key, access_token, expires_in):
            self._uncached[scope_key] = access_token

    def _forget_access_token(self, scope_key: str, access_token: str) -> None:
        self._cache.forget(scope_key, access_token)
        if self._uncached.get(scope_key) == access_token:
            del self._uncached[scope_key]

    # -- tokens ------------------------------------------------------------------------
    def get_access_token(self, scopes: Sequence[str]) -> str:
        scopes = sorted(set(scopes))
        key = self._scope_key(scopes)
        token = self._get_cached_access_token(key)
        if token:
            return token
        with self._cache.fetch_lock(key):
            token = self._get_cached_access_token(key)  # another thread may have fetched it
            if token:
                return token
            asked_at = self._cache.now()
            token, expires_in = self._request_access_token(scopes)
            lifetime = usable_lifetime(expires_in, margin=0.0)
            if lifetime is not None:
                # count the lifetime from when we asked, not from when the answer arrived
                expires_in = lifetime - max(0.0, self._cache.now() - asked_at)
                if expires_in <= 0:
                    return token  # outlived by a slow token endpoint: this request only
            self._cache_access_token(key, token, expires_in)
            return token

    def _signing_material(self) -> tuple[str, Any]:
        reg = self._registration
        pem = reg.get_tool_private_key()
        if not pem:
            raise ServiceError("token_refused", None, "the registration has no tool key")
        try:
            if isinstance(reg, ToolKeyRegistration):
                return reg.get_kid() or _thumbprint_kid(pem), reg.signing_key()
            return _thumbprint_kid(pem), pem
        except (ValueError, TypeError):
            raise ServiceError("token_refused", None, "the tool's key cannot be read") from None

    def client_assertion(self) -> str:
        """A signed JWT saying "I am this client", for the token endpoint (RFC 7523)."""
        reg = self._registration
        client_id, token_url = reg.get_client_id(), reg.get_auth_token_url()
        if not client_id or not token_url:
            raise ServiceError(
                "token_refused", None, "the registration has no client id or token URL"
            )
        kid, key = self._signing_material()
        now = int(time.time())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": reg.get_auth_audience() or token_url,
            "iat": now - 5,
            "exp": now + ASSERTION_LIFETIME_SECONDS,
            "jti": "blend727-" + uuid.uuid4().hex,
        }
        try:
            return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ServiceError(
                "token_refused", None, f"cannot sign the client assertion: {type(exc).__name__}"
            ) from None

    def _request_access_token(self, scopes: Sequence[str]) -> tuple[str, Any]:
        assertion = self.client_assertion()
        token_url = str(self._registration.get_auth_token_url())
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
            "scope": " ".join(scopes),
        }
        try:
            response, body = self._send(
                "POST",
                token_url,
                data=form,
                headers={"Accept": "application/json"},
                limit=MAX_TOKEN_RESPONSE_BYTES,
                what="token endpoint",
            )
        except ServiceError as exc:
            exc.at_token_endpoint = True
            raise
        status = response.status_code
        if not 200 <= status < 300:
            kind: ServiceErrorKind = (
                "unreachable" if status == 429 or status >= 500 else "token_refused"
            )
            raise ServiceError(
                kind,
                status,
                f"token endpoint {token_url}{_oauth_error(body)}",
                retry_after=parse_retry_after(response.headers.get("Retry-After"))
                if kind == "unreachable"
                else None,
                at_token_endpoint=True,
            )

        def unusable(detail: str) -> ServiceError:
            return ServiceError("bad_response", status, detail, at_token_endpoint=True)

        try:
            data = _parse_json(body, "the token response", status)
        except ServiceError as exc:
            raise unusable(exc.detail) from None
        if not isinstance(data, dict):
            raise unusable("the token response is not an object")
        token = data.get("access_token")
        if not isinstance(token, str) or not token.strip():
            raise unusable("the token response has no access_token")
        token_type = data.get("token_type")
        if token_type is not None and str(token_type).lower() != "bearer":
            raise unusable(f"unsupported token_type {token_type!r}")
        log.info(
            "service token for %s (client %s), scopes %s",
            self._registration.get_issuer(),
            self._registration.get_client_id(),
            " ".join(scopes),
        )
        return token, data.get("expires_in")

    # -- requests ------------------------------------------------------------------------
    def _send(
        self, method: str, url: str, *, limit: int, what: str, **kwargs: Any
    ) -> tuple[requests.Response, bytes]:
        """One request through our timeout session; the body read with a size cap."""
        try:
            response = self._requests_session.request(method, url, stream=True, **kwargs)
        except requests.RequestException as exc:
            raise ServiceError("unreachable", None, f"{what} {url}: {type(exc).__name__}") from None
        try:
            body = read_limited(response, limit)
        except requests.RequestException as exc:
            raise ServiceError(
                "unreachable", response.status_code, f"{what} {url}: {type(exc).__name__}"
            ) from None
        except ValueError:
            raise ServiceError(
                "bad_response", response.status_code, f"{what} {url}: larger than {limit} bytes"
            ) from None
        finally:
            response.close()
        return response, body

    def make_service_request(
        self,
        scopes: Sequence[str],
        url: str,
        *,
        is_post: bool = False,
        data: str | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        case_insensitive_headers: bool = False,
    ) -> TServiceConnectorResponse:
        scopes = sorted(set(scopes))
        key = self._scope_key(scopes)
        method = "POST" if is_post else "GET"

        def call(token: str) -> tuple[requests.Response, bytes]:
            headers = {"Authorization": "Bearer " + token, "Accept": accept}
            if is_post:
                headers["Content-Type"] = content_type
            return self._send(
                method,
                url,
                headers=headers,
                data=(data or None) if is_post else None,
                limit=self._max_response_bytes,
                what="service",
            )

        token = self.get_access_token(scopes)
        response, body = call(token)
        if response.status_code == 401:
            # revoked or expired early: one fresh token, one more try
            self._forget_access_token(key, token)
            response, body = call(self.get_access_token(scopes))
        status = response.status_code
        if not 200 <= status < 300:
            raise ServiceError(_status_kind(status), status, f"{method} {url}")
        parsed = _parse_json(body, f"the answer of {url}", status) if body.strip() else None
        headers: Any = response.headers if case_insensitive_headers else dict(response.headers)
        return {
            "headers": headers,
            "body": parsed,
            "next_page_url": next_page_url(response.headers.get("Link"), response.url or url),
        }

    def get_paginated_data(
        self, scopes: Sequence[str], url: str | None, *args: Any, **kwargs: Any
    ) -> Generator[TServiceConnectorResponse, None, None]:
        if not url:
            return
        for _page_url, response in paginate(
            lambda u: self.make_service_request(scopes, u, *args, **kwargs),
            url,
            max_pages=self._max_pages,
        ):
            yield response


def connector_for(
    platform: ServiceRegistration,
    tool_key: ToolSigningKey,
    http: requests.Session,
    *,
    token_cache: TokenCache | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> ToolServiceConnector:
    """A connector for one registration, signing with ``tool_key`` (pass the current one)."""
    return ToolServiceConnector(
        service_registration(platform, tool_key),
        http,
        token_cache=token_cache,
        max_pages=max_pages,
    )
