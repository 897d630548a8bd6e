"""An LTI 1.3 test platform, independent of the tool's code: its own RSA keys, its own
id_token builder, and its JWKS served over real HTTP on 127.0.0.1.

It behaves like Moodle 5.1 by default (numeric ``sub``, ``aud`` a plain string, tokens that
expire 60 seconds after issue, ``CourseSection`` contexts) and lets a test bend any claim,
header or key to try a refused launch.
"""

from __future__ import annotations

import base64
import json
import math
import random
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LEARNER = LIS + "membership#Learner"
INSTRUCTOR = LIS + "membership#Instructor"
TA = LIS + "membership/Instructor#TeachingAssistant"
SYS_ADMIN = LIS + "system/person#Administrator"
INST_ADMIN = LIS + "institution/person#Administrator"

NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEMBERSHIP_CONTAINER = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_REQUEST_BYTES = 1024 * 1024

AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
AGS_LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
AGS_LINEITEM_READONLY_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
AGS_RESULT_READONLY_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"
AGS_SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM_MEDIA = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEM_CONTAINER_MEDIA = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_MEDIA = "application/vnd.ims.lis.v1.score+json"
RESULT_CONTAINER_MEDIA = "application/vnd.ims.lis.v2.resultcontainer+json"

DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
DL_SETTINGS = DL_CLAIM + "deep_linking_settings"
DL_CONTENT_ITEMS = DL_CLAIM + "content_items"
DL_DATA = DL_CLAIM + "data"
DL_REQUEST = "LtiDeepLinkingRequest"

LTI_PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
LTI_TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"


class DeepLinkResponseRefused(AssertionError):
    """A deep linking response the platform would not accept; the message says why."""


# path -> handler returning (status, body, content type)
_ROUTES: dict[str, Callable[[], tuple[int, bytes, str]]] = {}
_HITS: dict[str, int] = {}


@dataclass
class PlatformRequest:
    """What a route that looks at the request gets (the LTI Advantage services do)."""

    method: str
    path: str
    raw_query: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def query(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.raw_query, keep_blank_values=True).items()}


@dataclass
class PlatformResponse:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None  # the status line's phrase (Moodle's services put messages there)
    # Faults on the wire: ``drop`` closes the connection without a word; ``cut_short`` declares
    # a longer body than it sends, then closes (a proxy dying mid-answer).
    drop: bool = False
    cut_short: bool = False


@dataclass
class Fault:
    """One misbehaving answer of a platform's service or token endpoint (``misbehave``).

    ``status`` ``None`` leaves the real answer (only ``delay`` applies). ``after_processing``:
    the request is handled first (a score is stored, a token issued), then this answer is
    given instead — the answer is lost, the work is done. ``delay`` seconds pass before the
    answer (after the work when ``after_processing``). ``resource`` limits an AGS fault to
    ``scores``, ``lineitem``, ``lineitems`` or ``results`` (``None``: any).
    """

    status: int | None = 503
    body: bytes = b"<!DOCTYPE html><html><body><h1>Service Unavailable</h1></body></html>"
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    delay: float = 0.0
    after_processing: bool = False
    drop: bool = False
    cut_short: bool = False
    resource: str | None = "scores"
    user_id: str | None = None  # only a score for this user (``userId``) meets the fault

    def response(self) -> PlatformResponse:
        return PlatformResponse(
            0 if self.drop else self.status or 500,  # 0: no answer at all
            self.body,
            self.content_type,
            dict(self.headers),
            self.reason,
            drop=self.drop,
            cut_short=self.cut_short,
        )


# (method, path) -> handler given the request; consulted when ``_ROUTES`` has no match
_REQUEST_ROUTES: dict[tuple[str, str], Callable[[PlatformRequest], PlatformResponse]] = {}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        _HITS[path] = _HITS.get(path, 0) + 1
        route = _ROUTES.get(path)
        if route is None:
            if ("GET", path) in _REQUEST_ROUTES:
                self._serve_request_route("GET", b"")
                return
            status, body, ctype = 404, b"not found", "text/plain"
        else:
            status, body, ctype = route()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        _HITS[path] = _HITS.get(path, 0) + 1
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            self._send(PlatformResponse(413, b"too large", "text/plain"))
            return
        self._serve_request_route("POST", self.rfile.read(length) if length else b"")

    def _serve_request_route(self, method: str, body: bytes) -> None:
        parts = urlsplit(self.path)
        route = _REQUEST_ROUTES.get((method, parts.path))
        if route is None:
            self._send(PlatformResponse(404, b"not found", "text/plain"))
            return
        request = PlatformRequest(
            method=method,
            path=parts.path,
            raw_query=parts.query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        self._send(route(request))

    def _send(self, response: PlatformResponse) -> None:
        if response.drop:
            self.close_connection = True
            return
        self.send_response(response.status, response.reason)
        self.send_header("Content-Type", response.content_type)
        extra = 1000 if response.cut_short else 0
        self.send_header("Content-Length", str(len(response.body) + extra))
        if response.cut_short:
            self.close_connection = True
        for name, value in response.headers.items():
            # raw UTF-8 on the wire, as PHP sends Moodle's “typographic” quotes
            self.send_header(name, value.encode("utf-8").decode("latin-1"))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A tool that gave up waiting (a timeout test) closed the connection: not an error
        # worth a traceback on stderr, where it would land in whatever output is captured.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@contextmanager
def platform_server() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class PlatformKey:
    kid: str
    private: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> PlatformKey:
        return cls(kid=uuid.uuid4().hex[:16], private=rsa.generate_private_key(65537, 2048))

    def jwk(self) -> dict[str, Any]:
        nums = self.private.public_key().public_numbers()
        return {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "e": _b64(nums.e),
            "n": _b64(nums.n),
        }


_KEY_POOL: list[PlatformKey] = []


def _pooled_key(index: int) -> PlatformKey:
    """RSA generation is slow; tests reuse a small pool (each platform still has its own)."""
    while len(_KEY_POOL) <= index:
        _KEY_POOL.append(PlatformKey.generate())
    return _KEY_POOL[index]


_platform_counter = 0


@dataclass
class TestPlatform:
    __test__ = False  # not a pytest class

    server_base: str
    issuer: str
    client_id: str
    slug: str
    keys: list[PlatformKey] = field(default_factory=list)
    deployment_id: str = "1"
    jwks_mode: str = "ok"  # ok | down | garbage | empty
    # The tool's public base URL, as registered in this platform (a real server in
    # tests/test_workers.py; the in-process app's otherwise).
    tool_url: str = "https://tool.test"
    # -- LTI Advantage services: token endpoint (POST) and NRPS (GET) --------------------
    tool_jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    token_audience: str | None = None  # the ``aud`` a client assertion needs; token URL if None
    token_expires_in: int | None = 3600  # None: the answer carries no expires_in
    token_scopes: frozenset[str] = frozenset({NRPS_SCOPE})  # what the tool may ask for
    tokens_issued: int = 0
    token_refusals: list[str] = field(default_factory=list)  # why each refused request failed
    client_assertions: list[dict[str, Any]] = field(default_factory=list)  # verified ones
    members: list[dict[str, Any]] = field(default_factory=list)
    nrps_context: dict[str, Any] = field(
        default_factory=lambda: {"id": "course-1", "label": "M4", "title": "Mô đun 4 — THCS"}
    )
    # ok | revoke_once (401 once: the presented token is revoked) | unauthorized (401 always)
    # | error_500 | garbage (200, not JSON) | loop (``next`` always points to the first page)
    nrps_mode: str = "ok"
    nrps_fail_at: int = 1  # the NRPS request (1-based) from which the mode applies
    link_quotes: str = "typographic"  # typographic (Moodle) | straight | single
    nrps_requests: list[dict[str, Any]] = field(default_factory=list)
    _issued: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    _seen_jti: set[str] = field(default_factory=set, repr=False)
    _revoked_once: bool = field(default=False, repr=False)
    _service_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # -- AGS 2.0 as Moodle 5.1 serves it (mod/lti/service/gradebookservices); ``enable_ags``
    # 0 "Do not use this service" | 1 "Use this service for grade sync only"
    # | 2 "Use this service for grade sync and column management"
    ags_grade_sync: int = 2
    ags_type_id: int = 3  # every service URL carries ?type_id=N, as Moodle's do
    ags_course_id: str = "2"
    ags_resource_links: set[str] = field(default_factory=lambda: {"rl-1"})  # the tool's links
    gradable_users: set[str] | None = None  # users with a gradebook role; None: everyone
    line_items: dict[int, dict[str, Any]] = field(default_factory=dict)
    ags_grades: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    ags_requests: list[dict[str, Any]] = field(default_factory=list)  # every AGS request
    scores_received: list[dict[str, Any]] = field(default_factory=list)  # every score POST
    ags_create_refusal: int | None = None  # answer line item POSTs with this status (403)
    ags_reason_phrases: bool = True  # False: bare status lines (HTTP/2 has no reason phrase)
    ags_filters: bool = True  # False: the container ignores tag/resource_id (some LMSs do)
    # fault modes (``fail_randomly``, ``go_down``, ``throttle``)
    ags_error_rate: float = 0.0
    ags_fail_after_processing: bool = False  # the 500 comes after the score was stored
    ags_down_for: int = 0  # the next N AGS requests get ``ags_down_status``
    ags_down_status: int = 503
    ags_down_retry_after: str | None = None
    ags_throttle_for: int = 0  # the next N AGS requests get 429
    ags_retry_after: str = "30"
    ags_latency_seconds: float = 0.0  # how long each AGS request takes to answer
    # scripted faults (``misbehave``, ``misbehave_token``), each used once, in order
    ags_faults: list[Fault] = field(default_factory=list)
    token_faults: list[Fault] = field(default_factory=list)
    nrps_faults: list[Fault] = field(default_factory=list)
    ags_delay: float = 0.0  # every AGS answer: handled at once, answered this many seconds later
    _ags_rng: random.Random = field(default_factory=lambda: random.Random(727), repr=False)
    _ags_next_item: int = field(default=5, repr=False)
    _ags_routes: bool = field(default=False, repr=False)
    # -- Deep Linking 2.0: responses the tool posted back, verified (``verify_deep_link_response``)
    deep_link_responses: list[dict[str, Any]] = field(default_factory=list)
    # -- Dynamic Registration 1.0, as Moodle 5.1 serves it (``create_registering``) ----------
    product_family_code: str = "moodle"
    openid_mutate: Callable[[dict[str, Any]], None] | None = None  # bend the configuration
    openid_delay: float = 0.0  # seconds before the configuration is served (timeouts)
    registration_answer: PlatformResponse | None = None  # answer every registration with this
    registration_requests: list[dict[str, Any]] = field(default_factory=list)  # all received
    registration_refusals: list[str] = field(default_factory=list)  # why each was refused
    registered_tool: dict[str, Any] | None = None  # the accepted registration request
    tool_types: dict[str, int] = field(default_factory=dict)  # client id -> tool type id
    _next_type_id: int = field(default=7, repr=False)

    @classmethod
    def create(cls, server_base: str, *, issuer: str, client_id: str) -> TestPlatform:
        global _platform_counter
        _platform_counter += 1
        slug = f"p{_platform_counter}"
        platform = cls(
            server_base=server_base,
            issuer=issuer,
            client_id=client_id,
            slug=slug,
            keys=[_pooled_key(_platform_counter % 4)],
        )
        _ROUTES[f"/{slug}/jwks.json"] = platform._serve_jwks
        _REQUEST_ROUTES[("POST", f"/{slug}/token")] = platform._serve_token_or_fault
        _REQUEST_ROUTES[("GET", f"/{slug}/memberships")] = platform._serve_memberships_or_fault
        return platform

    # -- registration data -------------------------------------------------------------
    @property
    def keyset_url(self) -> str:
        return f"{self.server_base}/{self.slug}/jwks.json"

    @property
    def auth_login_url(self) -> str:
        return f"https://lms.test/{self.slug}/auth?type_id=7"

    @property
    def token_url(self) -> str:
        return f"https://lms.test/{self.slug}/token"

    def jwks_hits(self) -> int:
        return _HITS.get(f"/{self.slug}/jwks.json", 0)

    # -- LTI Advantage services ------------------------------------------------------------
    @property
    def served_token_url(self) -> str:
        """The token endpoint this platform really serves (``token_url`` is not served)."""
        return f"{self.server_base}/{self.slug}/token"

    @property
    def memberships_url(self) -> str:
        """The NRPS context membership URL (any query string the test adds is kept)."""
        return f"{self.server_base}/{self.slug}/memberships"

    def trust_tool_jwks(self, jwks: dict[str, Any]) -> None:
        """The tool's public keys, as its /lti/jwks.json serves them."""
        self.tool_jwks = jwks

    def token_hits(self) -> int:
        return _HITS.get(f"/{self.slug}/token", 0)

    def revoke_tokens(self) -> None:
        with self._service_lock:
            for info in self._issued.values():
                info["revoked"] = True

    def _oauth_refusal(self, status: int, error: str, why: str) -> PlatformResponse:
        self.token_refusals.append(why)
        body = json.dumps({"error": error, "error_description": why}).encode()
        return PlatformResponse(status, body)

    # -- faults ----------------------------------------------------------------------------
    def misbehave(self, *faults: Fault) -> None:
        """The next AGS requests (of each fault's ``resource``) get these answers, in order."""
        with self._service_lock:
            self.ags_faults.extend(faults)

    def misbehave_token(self, *faults: Fault) -> None:
        """The next token requests get these answers, in order."""
        with self._service_lock:
            self.token_faults.extend(faults)

    def misbehave_nrps(self, *faults: Fault) -> None:
        """The next NRPS (membership page) requests get these answers, in order."""
        with self._service_lock:
            self.nrps_faults.extend(faults)

    def _serve_memberships_or_fault(self, request: PlatformRequest) -> PlatformResponse:
        fault = self._take_fault(self.nrps_faults, None)
        if fault is None:
            return self._serve_memberships(request)
        if not fault.after_processing:
            time.sleep(fault.delay)
            if fault.status is not None:
                return fault.response()
            return self._serve_memberships(request)
        answer = self._serve_memberships(request)
        time.sleep(fault.delay)
        return fault.response() if fault.status is not None else answer

    def _take_fault(
        self, faults: list[Fault], resource: str | None, user_id: str | None = None
    ) -> Fault | None:
        with self._service_lock:
            for i, fault in enumerate(faults):
                if None not in (fault.resource, resource) and fault.resource != resource:
                    continue
                if fault.user_id is not None and fault.user_id != user_id:
                    continue
                return faults.pop(i)
        return None

    def _serve_token_or_fault(self, request: PlatformRequest) -> PlatformResponse:
        fault = self._take_fault(self.token_faults, None)
        if fault is None:
            return self._serve_token(request)
        if not fault.after_processing:
            time.sleep(fault.delay)
            return fault.response() if fault.status is not None else self._serve_token(request)
        answer = self._serve_token(request)
        time.sleep(fault.delay)
        return fault.response() if fault.status is not None else answer

    def _serve_token(self, request: PlatformRequest) -> PlatformResponse:
        """OAuth 2 client credentials with a JWT client assertion (RFC 7523), as Moodle."""
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("application/x-www-form-urlencoded"):
            return self._oauth_refusal(400, "invalid_request", f"content type {ctype!r}")
        form = {
            k: v[-1]
            for k, v in parse_qs(request.body.decode("utf-8"), keep_blank_values=True).items()
        }
        if form.get("grant_type") != "client_credentials":
            return self._oauth_refusal(400, "unsupported_grant_type", "grant_type")
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            return self._oauth_refusal(400, "invalid_request", "client_assertion_type")
        assertion = form.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as exc:
            return self._oauth_refusal(400, "invalid_request", f"assertion: {exc}")
        if header.get("alg") != "RS256":
            return self._oauth_refusal(401, "invalid_client", f"alg {header.get('alg')!r}")
        jwk = next(
            (k for k in self.tool_jwks.get("keys", []) if k.get("kid") == header.get("kid")),
            None,
        )
        if jwk is None:
            return self._oauth_refusal(401, "invalid_client", f"unknown kid {header.get('kid')!r}")
        try:
            claims = jwt.decode(
                assertion,
                jwt.PyJWK(jwk).key,
                algorithms=["RS256"],
                audience=self.token_audience or self.served_token_url,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as exc:
            return self._oauth_refusal(401, "invalid_client", f"assertion: {exc}")
        if claims["iss"] != self.client_id or claims["sub"] != self.client_id:
            return self._oauth_refusal(401, "invalid_client", "iss/sub is not the client id")
        scopes = form.get("scope", "").split()
        if not scopes or not set(scopes) <= self.token_scopes:
            return self._oauth_refusal(400, "invalid_scope", f"scope {form.get('scope')!r}")
        token = secrets.token_urlsafe(24)
        lifetime = self.token_expires_in or 3600
        with self._service_lock:
            if claims["jti"] in self._seen_jti:
                return self._oauth_refusal(401, "invalid_client", "jti used before")
            self._seen_jti.add(claims["jti"])
            self._issued[token] = {
                "scopes": set(scopes),
                "expires_at": time.time() + lifetime,
                "revoked": False,
            }
            self.tokens_issued += 1
            self.client_assertions.append({"header": header, "claims": claims})
        answer: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "scope": " ".join(scopes),
        }
        if self.token_expires_in is not None:
            answer["expires_in"] = self.token_expires_in
        return PlatformResponse(200, json.dumps(answer).encode())

    def _page_url(self, query: list[tuple[str, str]], limit: int, start: int) -> str:
        kept = [(k, v) for k, v in query if k not in ("limit", "from")]
        return f"{self.memberships_url}?{urlencode([*kept, ('limit', limit), ('from', start)])}"

    def _serve_memberships(self, request: PlatformRequest) -> PlatformResponse:
        """NRPS 2.0 context memberships, paged like Moodle (``limit`` + ``from``, and a
        Link header with first/prev/canonical/next/last in typographic quotes)."""
        with self._service_lock:
            record: dict[str, Any] = {
                "n": len(self.nrps_requests) + 1,
                "raw_query": request.raw_query,
                "query": request.query(),
                "accept": request.headers.get("accept", ""),
            }
            self.nrps_requests.append(record)
            auth = request.headers.get("authorization", "")
            token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
            info = self._issued.get(token)
            failing = record["n"] >= self.nrps_fail_at
            if failing and self.nrps_mode == "revoke_once" and info and not self._revoked_once:
                self._revoked_once = True
                info["revoked"] = True
        record["token"] = token

        def answer(response: PlatformResponse) -> PlatformResponse:
            record["status"] = response.status
            return response

        if (
            info is None
            or info["revoked"]
            or info["expires_at"] < time.time()
            or NRPS_SCOPE not in info["scopes"]
            or (failing and self.nrps_mode == "unauthorized")
        ):
            return answer(PlatformResponse(401, b'{"error": "invalid_token"}'))
        if MEMBERSHIP_CONTAINER not in record["accept"]:
            return answer(PlatformResponse(406, b"not acceptable", "text/plain"))
        if failing and self.nrps_mode == "error_500":
            return answer(PlatformResponse(500, b"<h1>Error</h1>", "text/html"))
        if failing and self.nrps_mode == "garbage":
            return answer(
                PlatformResponse(200, b'{"members": [{"user_id": "1"', MEMBERSHIP_CONTAINER)
            )

        pairs = parse_qsl(request.raw_query, keep_blank_values=True)
        query = dict(pairs)
        total = len(self.members)
        limit = int(query["limit"]) if query.get("limit", "").isdigit() else max(total, 1)
        limit = max(limit, 1)
        start = int(query["from"]) if query.get("from", "").isdigit() else 0
        body = {
            "id": f"{self.memberships_url}?{request.raw_query}",
            "context": self.nrps_context,
            "members": self.members[start : start + limit],
        }
        open_q, close_q = {"typographic": ("“", "”"), "straight": ('"', '"')}.get(
            self.link_quotes, ("'", "'")
        )

        def link(url: str, rel: str) -> str:
            return f"<{url}>; rel={open_q}{rel}{close_q}"

        last_start = ((total - 1) // limit) * limit if total else 0
        links = [link(self._page_url(pairs, limit, 0), "first")]
        if start > 0:
            links.append(link(self._page_url(pairs, limit, max(start - limit, 0)), "prev"))
        links.append(link(self._page_url(pairs, limit, start), "canonical"))
        if self.nrps_mode == "loop" and failing:
            links.append(link(self._page_url(pairs, limit, 0), "next"))
        elif start + limit < total:
            links.append(link(self._page_url(pairs, limit, start + limit), "next"))
        links.append(link(self._page_url(pairs, limit, last_start), "last"))
        return answer(
            PlatformResponse(
                200,
                json.dumps(body).encode(),
                MEMBERSHIP_CONTAINER,
                headers={"Link": ", ".join(links)},
            )
        )

    # -- AGS 2.0, like Moodle 5.1 ----------------------------------------------------------
    def enable_ags(self, grade_sync: int = 2) -> None:
        """Turn the tool's "IMS LTI Assignment and Grade Services" setting to ``grade_sync``
        (1: grade sync only, 2: and column management): the token endpoint grants its
        scopes, and the line items container is served."""
        self.ags_grade_sync = grade_sync
        self.token_scopes = (
            self.token_scopes
            - {
                AGS_LINEITEM_SCOPE,
                AGS_LINEITEM_READONLY_SCOPE,
                AGS_RESULT_READONLY_SCOPE,
                AGS_SCORE_SCOPE,
            }
        ) | set(self.ags_scopes())
        if not self._ags_routes:
            self._ags_routes = True
            path = self._ags_path("lineitems")
            _REQUEST_ROUTES[("GET", path)] = self._ags_route("lineitems", None)
            _REQUEST_ROUTES[("POST", path)] = self._ags_route("lineitems", None)

    def ags_scopes(self) -> list[str]:
        """What Moodle permits (and lists in the claim) for the current setting."""
        if not self.ags_grade_sync:
            return []
        scopes = [AGS_LINEITEM_READONLY_SCOPE, AGS_RESULT_READONLY_SCOPE, AGS_SCORE_SCOPE]
        if self.ags_grade_sync == 2:
            scopes.append(AGS_LINEITEM_SCOPE)
        return scopes

    def _ags_path(self, *parts: str) -> str:
        return "/".join([f"/{self.slug}/mod/lti/services.php/{self.ags_course_id}", *parts])

    @property
    def lineitems_url(self) -> str:
        return f"{self.server_base}{self._ags_path('lineitems')}?type_id={self.ags_type_id}"

    def line_item_url(self, item_id: int) -> str:
        path = self._ags_path("lineitems", str(item_id), "lineitem")
        return f"{self.server_base}{path}?type_id={self.ags_type_id}"

    def item_id(self, line_item_url: str) -> int:
        return int(urlsplit(line_item_url).path.split("/lineitems/")[1].split("/")[0])

    def ags_claim(self, resource_link_id: str = "rl-1") -> dict[str, Any]:
        """The AGS endpoint claim Moodle puts in a launch from ``resource_link_id``: the
        coupled ``lineitem`` only when exactly one line item is coupled to the link."""
        claim: dict[str, Any] = {"scope": self.ags_scopes(), "lineitems": self.lineitems_url}
        coupled = [
            n
            for n, item in self.line_items.items()
            if item["coupled"] and item["resource_link_id"] == resource_link_id
        ]
        if len(coupled) == 1:
            claim["lineitem"] = self.line_item_url(coupled[0])
        return claim

    def add_line_item(
        self,
        *,
        label: str,
        score_maximum: float = 100.0,
        resource_link_id: str | None = None,
        tag: str | None = None,
        resource_id: str | None = None,
        coupled: bool = False,
    ) -> str:
        """A line item as if created earlier (``coupled``: the activity's own grade item,
        as Moodle makes when a teacher lets the tool send grades). Returns its URL."""
        with self._service_lock:
            return self._new_line_item(
                label=label,
                score_maximum=float(score_maximum),
                resource_link_id=resource_link_id,
                tag=tag,
                resource_id=resource_id,
                coupled=coupled,
            )

    def couple_line_item(
        self,
        resource_link_id: str = "rl-1",
        *,
        label: str = "Mô đun 4",
        score_maximum: float = 100.0,
    ) -> str:
        self.ags_resource_links.add(resource_link_id)
        return self.add_line_item(
            label=label,
            score_maximum=score_maximum,
            resource_link_id=resource_link_id,
            coupled=True,
        )

    def _new_line_item(self, **item: Any) -> str:
        item_id = self._ags_next_item
        self._ags_next_item += 1
        self.line_items[item_id] = {"id": item_id, **item}
        base = self._ags_path("lineitems", str(item_id), "lineitem")
        _REQUEST_ROUTES[("GET", base)] = self._ags_route("lineitem", item_id)
        _REQUEST_ROUTES[("POST", base + "/scores")] = self._ags_route("scores", item_id)
        _REQUEST_ROUTES[("GET", base + "/results")] = self._ags_route("results", item_id)
        return self.line_item_url(item_id)

    def grade(self, line_item_url: str, user_id: str) -> dict[str, Any] | None:
        """What the gradebook holds for a user (None: nothing received yet)."""
        return self.ags_grades.get((self.item_id(line_item_url), user_id))

    def applied_scores(
        self, user_id: str | None = None, line_item_url: str | None = None
    ) -> list[dict[str, Any]]:
        """Scores the gradebook took, in order (for "exactly once" assertions)."""
        item = self.item_id(line_item_url) if line_item_url else None
        return [
            r
            for r in self.scores_received
            if r.get("applied")
            and (user_id is None or r["user_id"] == user_id)
            and (item is None or r["line_item"] == item)
        ]

    def fail_randomly(
        self, rate: float, *, seed: int = 727, after_processing: bool = False
    ) -> None:
        """Answer a fraction of AGS requests with 500, drawn from a seeded RNG
        (``after_processing``: the score is stored first, then the answer is lost)."""
        self.ags_error_rate = rate
        self.ags_fail_after_processing = after_processing
        self._ags_rng = random.Random(seed)

    def go_down(self, requests: int, *, status: int = 503, retry_after: str | None = None) -> None:
        """The next ``requests`` AGS requests get ``status`` (a maintenance page)."""
        self.ags_down_for, self.ags_down_status = requests, status
        self.ags_down_retry_after = retry_after

    def throttle(self, requests: int, *, retry_after: str = "30") -> None:
        """The next ``requests`` AGS requests get 429 with ``Retry-After: retry_after``."""
        self.ags_throttle_for, self.ags_retry_after = requests, retry_after

    def _ags_route(
        self, resource: str, item_id: int | None
    ) -> Callable[[PlatformRequest], PlatformResponse]:
        def serve(request: PlatformRequest) -> PlatformResponse:
            body = _json_or_none(request.body)
            user = str(body.get("userId")) if isinstance(body, dict) else None
            fault = self._take_fault(self.ags_faults, resource, user)
            late = fault is None or fault.after_processing
            if fault is not None and not late:
                time.sleep(fault.delay)  # slow before it does anything
            response = self._serve_ags(request, resource, item_id, fault)
            if late:
                time.sleep((fault.delay if fault else 0.0) + self.ags_delay)
            return response

        return serve

    def _moodle_error(
        self, request: PlatformRequest, status: int, reason: str | None = None
    ) -> PlatformResponse:
        """Moodle's ``response::send()`` for an error without a body: the reason in the
        status line and a JSON description."""
        phrase = reason if reason and self.ags_reason_phrases else None
        body = {
            "status": status,
            "reason": reason or "",
            "request": {
                "method": request.method,
                "url": f"{request.path}?{request.raw_query}",
                "accept": request.headers.get("accept", ""),
                "contentType": request.headers.get("content-type", "").split(";")[0],
            },
        }
        return PlatformResponse(
            status, json.dumps(body).encode(), "application/json; charset=utf-8", reason=phrase
        )

    def _score_error(self, status: int, reason: str) -> PlatformResponse:
        """Moodle's scores resource: the message only in the status line, body ``[]``."""
        phrase = reason if self.ags_reason_phrases else None
        return PlatformResponse(status, b"[]", "text/html; charset=UTF-8", reason=phrase)

    def _serve_ags(
        self,
        request: PlatformRequest,
        resource: str,
        item_id: int | None,
        fault: Fault | None = None,
    ) -> PlatformResponse:
        if self.ags_latency_seconds:
            time.sleep(self.ags_latency_seconds)  # a busy LMS (outside the lock: concurrent)
        with self._service_lock:
            auth = request.headers.get("authorization", "")
            record: dict[str, Any] = {
                "n": len(self.ags_requests) + 1,
                "resource": resource,
                "method": request.method,
                "path": request.path,
                "raw_query": request.raw_query,
                "query": request.query(),
                "accept": request.headers.get("accept", ""),
                "content_type": request.headers.get("content-type", ""),
                "token": auth[len("Bearer ") :] if auth.startswith("Bearer ") else "",
                "body": _json_or_none(request.body),
            }
            self.ags_requests.append(record)
            score: dict[str, Any] | None = None
            if resource == "scores":
                body = record["body"]
                score = {
                    "n": len(self.scores_received) + 1,
                    "line_item": item_id,
                    "user_id": str(body.get("userId")) if isinstance(body, dict) else None,
                    "body": body,
                    "raw_body": request.body,
                    "content_type": record["content_type"],
                    "raw_query": request.raw_query,
                    "applied": False,
                }
                self.scores_received.append(score)
            if fault is not None and fault.status is not None and not fault.after_processing:
                response = fault.response()
            else:
                response = self._ags_answer(request, resource, item_id, record, score)
                if fault is not None and fault.status is not None:
                    response = fault.response()  # done, but the answer is lost or garbled
            record["status"], record["reason"] = response.status, response.reason
            if score is not None:
                score["status"], score["reason"] = response.status, response.reason
            return response

    def _ags_answer(
        self,
        request: PlatformRequest,
        resource: str,
        item_id: int | None,
        record: dict[str, Any],
        score: dict[str, Any] | None,
    ) -> PlatformResponse:
        if self.ags_down_for > 0:
            self.ags_down_for -= 1
            headers = (
                {"Retry-After": self.ags_down_retry_after} if self.ags_down_retry_after else {}
            )
            return PlatformResponse(
                self.ags_down_status, b"<h1>Site maintenance</h1>", "text/html", headers
            )
        if self.ags_throttle_for > 0:
            self.ags_throttle_for -= 1
            return PlatformResponse(
                429, b"Too Many Requests", "text/plain", {"Retry-After": self.ags_retry_after}
            )
        # check_tool(): a live token with a scope this resource needs and Moodle permits
        needed = {
            ("lineitems", "GET"): {AGS_LINEITEM_SCOPE, AGS_LINEITEM_READONLY_SCOPE},
            ("lineitems", "POST"): {AGS_LINEITEM_SCOPE},
            ("lineitem", "GET"): {AGS_LINEITEM_SCOPE, AGS_LINEITEM_READONLY_SCOPE},
            ("scores", "POST"): {AGS_SCORE_SCOPE},
            ("results", "GET"): {AGS_RESULT_READONLY_SCOPE},
        }[(resource, request.method)] & set(self.ags_scopes())
        info = self._issued.get(record["token"])
        if (
            info is None
            or info["revoked"]
            or info["expires_at"] < time.time()
            or not needed & info["scopes"]
        ):
            if resource == "scores":
                return self._score_error(401, "This resource does not support POST requests.")
            return self._moodle_error(request, 401)
        if record["query"].get("type_id") != str(self.ags_type_id):
            return self._moodle_error(request, 403, "Invalid tool proxy specified.")
        # services.php picks a resource by the exact media type (no parameters allowed)
        media = {
            ("lineitems", "GET"): LINEITEM_CONTAINER_MEDIA,
            ("lineitems", "POST"): LINEITEM_MEDIA,
            ("lineitem", "GET"): LINEITEM_MEDIA,
            ("scores", "POST"): SCORE_MEDIA,
            ("results", "GET"): RESULT_CONTAINER_MEDIA,
        }[(resource, request.method)]
        if request.method == "GET":
            if record["accept"] not in ("", media):
                return self._moodle_error(request, 400)
        elif record["content_type"] != media:
            return self._moodle_error(request, 400)
        if item_id is not None and item_id not in self.line_items:
            return self._moodle_error(
                request, 404, f"Not Found: Grade item {item_id} doesn't exist."
            )
        fault = self.ags_error_rate > 0 and self._ags_rng.random() < self.ags_error_rate
        if fault and not self.ags_fail_after_processing:
            return PlatformResponse(500, b"<h1>Error writing to database</h1>", "text/html")
        if resource == "lineitems":
            if request.method == "GET":
                response = self._serve_line_item_container(request)
            else:
                response = self._create_line_item(request)
        elif resource == "lineitem":
            assert item_id is not None
            response = PlatformResponse(
                200, json.dumps(self._line_item_json(item_id)).encode(), LINEITEM_MEDIA
            )
        elif resource == "scores":
            assert item_id is not None and score is not None
            response = self._take_score(request, item_id, score)
        else:
            assert item_id is not None
            response = self._serve_results(request, item_id)
        if fault:
            return PlatformResponse(500, b"<h1>Error writing to database</h1>", "text/html")
        return response

    def _line_item_json(self, item_id: int) -> dict[str, Any]:
        """``gradebookservices::item_for_json``: "" for no tag or resource id."""
        item = self.line_items[item_id]
        data: dict[str, Any] = {
            "id": self.line_item_url(item_id),
            "label": item["label"],
            "scoreMaximum": float(item["score_maximum"]),
            "resourceId": item["resource_id"] or "",
            "tag": item["tag"] or "",
        }
        if item["resource_link_id"] is not None:
            data["resourceLinkId"] = data["ltiLinkId"] = item["resource_link_id"]
        return data

    def _link_header(
        self, base: str, pairs: list[tuple[str, str]], limit: int, start: int, total: int
    ) -> str:
        open_q, close_q = {"typographic": ("“", "”"), "straight": ('"', '"')}.get(
            self.link_quotes, ("'", "'")
        )
        kept = [(k, v) for k, v in pairs if k not in ("limit", "from")]

        def link(at: int, rel: str) -> str:
            url = f"{base}?{urlencode([*kept, ('limit', limit), ('from', at)])}"
            return f"<{url}>; rel={open_q}{rel}{close_q}"

        links = [link(0, "first")]
        if start > 0:
            links.append(link(max(start - limit, 0), "prev"))
        links.append(link(start, "canonical"))
        if start + limit < total:
            links.append(link(start + limit, "next"))
        links.append(link(((total - 1) // limit) * limit if total else 0, "last"))
        return ", ".join(links)

    def _serve_line_item_container(self, request: PlatformRequest) -> PlatformResponse:
        """GET: the tool's line items, filtered by ``resource_link_id`` (or ``lti_link_id``),
        ``resource_id`` and ``tag``, paged by ``limit``/``from``."""
        pairs = parse_qsl(request.raw_query, keep_blank_values=True)
        query = dict(pairs)
        link_id = query.get("resource_link_id", query.get("lti_link_id"))
        items = [
            self._line_item_json(n)
            for n, item in sorted(self.line_items.items())
            if not self.ags_filters
            or (
                (link_id is None or item["resource_link_id"] == link_id)
                and ("tag" not in query or item["tag"] == query["tag"])
                and ("resource_id" not in query or item["resource_id"] == query["resource_id"])
            )
        ]
        headers: dict[str, str] = {}
        limit = int(query["limit"]) if query.get("limit", "").isdigit() else 0
        if limit > 0:
            start = int(query["from"]) if query.get("from", "").isdigit() else 0
            total = len(items)
            items = items[start : start + limit]
            base = f"{self.server_base}{request.path}"
            headers["Link"] = self._link_header(base, pairs, limit, start, total)
        return PlatformResponse(
            200, json.dumps(items).encode(), LINEITEM_CONTAINER_MEDIA, headers=headers
        )

    def _create_line_item(self, request: PlatformRequest) -> PlatformResponse:
        """POST: needs ``label`` and a numeric ``scoreMaximum``; a ``resourceLinkId`` must be
        one of the tool's activities in the course."""
        if self.ags_create_refusal is not None:
            return self._moodle_error(request, self.ags_create_refusal, "Not allowed in context")
        data = _json_or_none(request.body)
        if (
            not isinstance(data, dict)
            or data.get("label") is None
            or data.get("scoreMaximum") is None
        ):
            return self._moodle_error(request, 400, "No label or Score Maximum")
        maximum = _php_numeric(data["scoreMaximum"])
        if maximum is None:
            return self._moodle_error(request, 400)
        link_id = data.get("resourceLinkId", data.get("ltiLinkId"))
        if link_id is not None and str(link_id) not in self.ags_resource_links:
            return self._moodle_error(request, 403)
        url = self._new_line_item(
            label=str(data["label"]),
            score_maximum=maximum,
            resource_link_id=None if link_id is None else str(link_id),
            tag=data.get("tag") or None,
            resource_id=data.get("resourceId") or None,
            coupled=False,
        )
        return PlatformResponse(201, json.dumps({**data, "id": url}).encode(), LINEITEM_MEDIA)

    def _take_score(
        self, request: PlatformRequest, item_id: int, record: dict[str, Any]
    ) -> PlatformResponse:
        """``scores::get_json_for_post_request`` and ``save_grade_item``."""
        score = record["body"]
        required = ("userId", "timestamp", "gradingProgress", "activityProgress")
        when = _iso_seconds(score.get("timestamp")) if isinstance(score, dict) else None
        if (
            not isinstance(score, dict)
            or any(score.get(k) is None for k in required)
            or when is None
            or (score.get("scoreGiven") is not None and _php_numeric(score["scoreGiven"]) is None)
            or (
                score.get("scoreMaximum") is not None
                and _php_numeric(score["scoreMaximum"]) is None
            )
            or (self.gradable_users is not None and str(score["userId"]) not in self.gradable_users)
        ):
            return self._score_error(400, "Incorrect score received")
        user_id = str(score["userId"])
        held = self.ags_grades.get((item_id, user_id))
        if held is not None and held["timestamp"] >= when:
            return self._score_error(
                409,
                f"Refusing score with an earlier timestamp for item {item_id} and user {user_id}",
            )
        given = (
            _php_numeric(score.get("scoreGiven")) if score.get("scoreGiven") is not None else None
        )
        if score["gradingProgress"] != "FullyGraded":
            given = None  # Moodle drops it
        maximum = _php_numeric(score.get("scoreMaximum")) or 1.0
        item_max = float(self.line_items[item_id]["score_maximum"])
        final = None
        if given is not None:
            final = given * item_max / maximum if maximum not in (0.0, item_max) else given
        self.ags_grades[(item_id, user_id)] = {
            "timestamp": when,
            "timestamp_sent": score["timestamp"],
            "score_given": given,
            "final_grade": final,  # on the line item's scale; None clears the grade
            "score_maximum": maximum,
            "comment": score.get("comment") or None,
            "activity_progress": score["activityProgress"],
            "grading_progress": score["gradingProgress"],
        }
        record["applied"] = True
        return PlatformResponse(200, b"", SCORE_MEDIA)

    def _serve_results(self, request: PlatformRequest, item_id: int) -> PlatformResponse:
        """``results::get_json_for_get_request``: a grade of 0 has no ``resultScore``."""
        query = request.query()
        user_filter = query.get("user_id", "")
        item_url = self.line_item_url(item_id).split("?")[0]
        results = []
        for (n, user_id), held in sorted(self.ags_grades.items()):
            if n != item_id or (user_filter.isdigit() and user_id != user_filter):
                continue
            result: dict[str, Any] = {
                "id": f"{item_url}/results?type_id={self.ags_type_id}&user_id={user_id}",
                "userId": user_id,
            }
            if held["final_grade"]:  # PHP's !empty(): 0 and null say nothing
                result["resultScore"] = held["final_grade"]
                result["resultMaximum"] = float(self.line_items[item_id]["score_maximum"])
                if held["comment"]:
                    result["comment"] = held["comment"]
                result["scoreOf"] = f"{item_url}?type_id={self.ags_type_id}"
                result["timestamp"] = datetime.fromtimestamp(held["timestamp"], UTC).isoformat()
            results.append(result)
        return PlatformResponse(200, json.dumps(results).encode(), RESULT_CONTAINER_MEDIA)

    def _serve_jwks(self) -> tuple[int, bytes, str]:
        if self.jwks_mode == "down":
            return 503, b"maintenance", "text/plain"
        if self.jwks_mode == "garbage":
            return 200, b"<html>not json", "text/html"
        keys = [] if self.jwks_mode == "empty" else [k.jwk() for k in self.keys]
        return 200, json.dumps({"keys": keys}).encode(), "application/json"

    def rotate_key(self, *, keep_old: bool = True) -> PlatformKey:
        new = PlatformKey.generate()
        self.keys = [new, *self.keys] if keep_old else [new]
        return new

    # -- Dynamic Registration 1.0 (LTI-DR), like Moodle 5.1 ----------------------------------
    @classmethod
    def create_registering(cls, server_base: str) -> TestPlatform:
        """A platform that registers tools itself: its issuer is its own address (like a
        Moodle site's wwwroot), it serves ``mod/lti/openid-configuration.php`` and takes
        registrations at ``mod/lti/openid-registration.php``. It knows no client id until a
        tool registers (``client_id`` and ``deployment_id`` are set then)."""
        platform = cls.create(server_base, issuer="", client_id="")
        platform.issuer = f"{server_base}/{platform.slug}"
        platform.deployment_id = ""
        base = f"/{platform.slug}/mod/lti"
        _REQUEST_ROUTES[("GET", f"{base}/openid-configuration.php")] = platform._serve_openid
        _REQUEST_ROUTES[("POST", f"{base}/openid-registration.php")] = platform._serve_registration
        return platform

    @property
    def openid_configuration_url(self) -> str:
        return f"{self.issuer}/mod/lti/openid-configuration.php"

    @property
    def registration_endpoint(self) -> str:
        return f"{self.issuer}/mod/lti/openid-registration.php"

    def openid_configuration(self) -> dict[str, Any]:
        """``mod/lti/openid-configuration.php`` of Moodle 5.1, with AGS and NRPS on."""
        config: dict[str, Any] = {
            "issuer": self.issuer,
            "token_endpoint": self.served_token_url,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "jwks_uri": self.keyset_url,
            "authorization_endpoint": self.auth_login_url,
            "registration_endpoint": self.registration_endpoint,
            "scopes_supported": [
                AGS_LINEITEM_SCOPE,
                AGS_LINEITEM_READONLY_SCOPE,
                AGS_RESULT_READONLY_SCOPE,
                AGS_SCORE_SCOPE,
                NRPS_SCOPE,
                "https://purl.imsglobal.org/spec/lti-ts/scope/toolsetting",
                "openid",
            ],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "iss", "name", "given_name", "family_name", "email"],
            LTI_PLATFORM_CONFIGURATION: {
                "product_family_code": self.product_family_code,
                "version": "5.1 (Build: 20251006)",
                "messages_supported": ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"],
                "placements": ["AddContentMenu"],
                "variables": ["Context.id", "ResourceLink.id", "User.id", "Person.name.full"],
            },
        }
        if self.openid_mutate:
            self.openid_mutate(config)
        return config

    def registration_token(self, *, lifetime: int = 3600) -> str:
        """A registration token as Moodle makes one (``startltiadvregistration.php``): a JWT
        signed by the platform whose ``sub`` becomes the new tool's client id."""
        now = int(time.time())
        claims = {
            "sub": secrets.token_hex(8)[:15],
            "scope": "reg",
            "iat": now,
            "exp": now + lifetime,
        }
        return self.sign(claims)

    def registration_start_url(self, tool_url: str, token: str | None = None) -> str:
        """Where the platform sends the administrator's browser: the tool's registration URL
        (its own query string kept) with ``openid_configuration`` and ``registration_token``."""
        parts = urlsplit(tool_url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        query.append(("openid_configuration", self.openid_configuration_url))
        query.append(("registration_token", token or self.registration_token()))
        return parts._replace(query=urlencode(query)).geturl()

    def _serve_openid(self, request: PlatformRequest) -> PlatformResponse:
        if self.openid_delay:
            time.sleep(self.openid_delay)
        body = json.dumps(self.openid_configuration(), separators=(",", ":")).encode()
        return PlatformResponse(200, body, "application/json; charset=utf-8")

    def _registration_refusal(
        self, why: str, *, status: int = 400, error: str = "invalid_client_metadata"
    ) -> PlatformResponse:
        """RFC 7591 §3.2.2: 400 with ``error`` and ``error_description`` (401 for a token)."""
        self.registration_refusals.append(why)
        body = json.dumps({"error": error, "error_description": why}).encode()
        return PlatformResponse(status, body)

    def _serve_registration(self, request: PlatformRequest) -> PlatformResponse:
        """Check a registration request against LTI-DR 1.0 and Moodle's
        ``registration_helper`` before creating the tool type; the token works once."""
        body = _json_or_none(request.body)
        record = {"headers": dict(request.headers), "body": body}
        self.registration_requests.append(record)
        if self.registration_answer is not None:
            return self.registration_answer
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return self._registration_refusal(
                "missing_registration_token", status=401, error="invalid_token"
            )
        try:
            token = jwt.decode(
                auth[len("Bearer ") :],
                self.keys[0].private.public_key(),
                algorithms=["RS256"],
                options={"require": ["sub", "exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            return self._registration_refusal(f"token: {exc}", status=401, error="invalid_token")
        if token.get("scope") != "reg":
            return self._registration_refusal("token scope", status=401, error="invalid_token")
        if token["sub"] in self.tool_types:
            return self._registration_refusal(
                "token_already_used", status=401, error="invalid_token"
            )
        why = _registration_problem(
            request.headers.get("content-type", ""), body, self.openid_configuration()
        )
        if why:
            error = "invalid_redirect_uri" if "redirect_uris" in why else "invalid_client_metadata"
            return self._registration_refusal(why, error=error)
        assert isinstance(body, dict)
        type_id = self._next_type_id
        self._next_type_id += 1
        client_id = str(token["sub"])
        self.tool_types[client_id] = type_id
        self.client_id = client_id
        self.deployment_id = str(type_id)
        self.registered_tool = body
        tool_config = body[LTI_TOOL_CONFIGURATION]
        # What ``config_to_registration`` sends back (Moodle echoes the stored tool type).
        answer = {
            "client_id": client_id,
            "response_types": ["id_token"],
            "jwks_uri": body["jwks_uri"],
            "initiate_login_uri": body["initiate_login_uri"],
            "grant_types": ["client_credentials", "implicit"],
            "redirect_uris": body["redirect_uris"],
            "application_type": "web",
            "token_endpoint_auth_method": "private_key_jwt",
            "client_name": body["client_name"],
            "logo_uri": body.get("logo_uri", ""),
            "scope": body.get("scope", ""),
            LTI_TOOL_CONFIGURATION: {
                "version": "1.3.0",
                "deployment_id": str(type_id),
                "target_link_uri": tool_config["target_link_uri"],
                "domain": tool_config["domain"],
                "description": tool_config.get("description", ""),
                "messages": [
                    m for m in tool_config.get("messages", []) if m.get("type") == DL_REQUEST
                ],
                "claims": ["sub", "iss", "name", "family_name", "email"],
            },
        }
        return PlatformResponse(200, json.dumps(answer).encode(), "application/json; charset=utf-8")

    # -- messages ------------------------------------------------------------------------
    def claims(
        self,
        *,
        nonce: str,
        sub: str = "42",
        roles: list[str] | None = None,
        target_link_uri: str | None = None,
        name: str | None = "Nguyễn Văn An",
        email: str | None = "an@example.edu.vn",
        context: dict[str, Any] | None = None,
        with_context: bool = True,
        resource_link_id: str = "rl-1",
        locale: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": sub,
            "iat": now,
            "exp": now + 60,
            "nonce": nonce,
            CLAIM + "deployment_id": self.deployment_id,
            CLAIM + "message_type": "LtiResourceLinkRequest",
            CLAIM + "version": "1.3.0",
            CLAIM + "target_link_uri": target_link_uri or f"{self.tool_url}/lti/launch",
            CLAIM + "roles": [LEARNER] if roles is None else roles,
            CLAIM + "resource_link": {"id": resource_link_id, "title": "Mô đun 4"},
        }
        if with_context:
            claims[CLAIM + "context"] = context or {
                "id": "course-1",
                "label": "M4",
                "title": "Mô đun 4 — THCS",
                "type": [LIS + "course#CourseSection"],
            }
        if name:
            claims["name"] = name
        if email:
            claims["email"] = email
        if locale:
            claims[CLAIM + "launch_presentation"] = {"locale": locale, "document_target": "iframe"}
        claims.update(extra)
        return claims

    def sign(
        self,
        claims: dict[str, Any],
        *,
        key: PlatformKey | None = None,
        headers: dict[str, Any] | None = None,
        algorithm: str = "RS256",
    ) -> str:
        key = key or self.keys[0]
        hdr = {"kid": key.kid} | (headers or {})
        return jwt.encode(claims, key.private, algorithm=algorithm, headers=hdr)

    def authorize(self, location: str) -> dict[str, str]:
        """Check the tool's OIDC auth request like a platform does; return its parameters."""
        parts = urlsplit(location)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == self.auth_login_url.split("?")[0]
        q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        assert q["type_id"] == "7", "the platform's own query string must survive"
        assert q["scope"] == "openid"
        assert q["response_type"] == "id_token"
        assert q["response_mode"] == "form_post"
        assert q["prompt"] == "none"
        assert q["client_id"] == self.client_id
        assert q["redirect_uri"] == f"{self.tool_url}/lti/launch"
        if self.registered_tool is not None:
            assert q["redirect_uri"] in self.registered_tool["redirect_uris"]
        assert q["nonce"] and q["state"] and q["login_hint"]
        return q

    def login_params(self, **overrides: str) -> dict[str, str]:
        params = {
            "iss": self.issuer,
            "login_hint": "42",
            "target_link_uri": f"{self.tool_url}/lti/launch",
            "lti_message_hint": '{"cmid":7,"launchid":"ltilaunch1_1"}',
            "client_id": self.client_id,
            "lti_deployment_id": self.deployment_id,
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def login(self, client: Any, **overrides: str) -> dict[str, str]:
        """Run the OIDC login against the tool; return the auth request's parameters."""
        response = client.get("/lti/login?" + urlencode(self.login_params(**overrides)))
        assert response.status_code == 302, response.text
        return self.authorize(response.headers["location"])

    def launch(
        self,
        client: Any,
        *,
        mutate: Callable[[dict[str, Any]], None] | None = None,
        sign: Callable[[dict[str, Any]], str] | None = None,
        **claim_args: Any,
    ) -> Any:
        """A whole launch: login, authorize, post the id_token. Returns the tool's response."""
        auth = self.login(client)
        claims = self.claims(nonce=auth["nonce"], **claim_args)
        if mutate:
            mutate(claims)
        token = sign(claims) if sign else self.sign(claims)
        return client.post("/lti/launch", data={"id_token": token, "state": auth["state"]})

    # -- Deep Linking 2.0 (Moodle's "Select content") ------------------------------------
    @property
    def deep_link_return_url(self) -> str:
        return f"https://lms.test/{self.slug}/mod/lti/contentitem_return.php?course=2&id=3"

    def deep_linking_settings(self, **overrides: Any) -> dict[str, Any]:
        """``deep_linking_settings`` as Moodle 5.1 sends them (booleans, a string ``data``);
        an override of ``None`` leaves the property out."""
        settings: dict[str, Any] = {
            "accept_types": ["ltiResourceLink"],
            "accept_presentation_document_targets": ["frame", "iframe", "window"],
            "accept_copy_advice": False,
            "accept_multiple": False,
            "accept_unsigned": False,
            "auto_create": False,
            "can_confirm": False,
            "deep_link_return_url": self.deep_link_return_url,
            "title": "",
            "text": "",
            "data": "3:0a1b2c3d4e",
        }
        settings.update(overrides)
        return {k: v for k, v in settings.items() if v is not None}

    def deep_link_launch(
        self,
        client: Any,
        *,
        settings: dict[str, Any] | None = None,
        mutate: Callable[[dict[str, Any]], None] | None = None,
        **claim_args: Any,
    ) -> Any:
        """A whole ``LtiDeepLinkingRequest`` launch (no resource link, as Moodle sends it)."""
        dl_settings = self.deep_linking_settings() if settings is None else settings

        def as_deep_linking(claims: dict[str, Any]) -> None:
            claims[CLAIM + "message_type"] = "LtiDeepLinkingRequest"
            claims.pop(CLAIM + "resource_link", None)
            claims[DL_SETTINGS] = dl_settings
            if mutate:
                mutate(claims)

        return self.launch(client, mutate=as_deep_linking, **claim_args)

    def verify_deep_link_response(
        self, token: str, tool_jwks: dict[str, Any], *, max_lifetime: int = 3600
    ) -> dict[str, Any]:
        """Check an ``LtiDeepLinkingResponse`` as a platform does before it creates anything:
        RS256 signed by a key of the tool's JWKS (by ``kid``), ``iss`` our client id, ``aud``
        us, not expired, a nonce, the message type, version and our deployment id, and a list
        of content items. Returns the claims; raises ``DeepLinkResponseRefused``."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise DeepLinkResponseRefused(f"not a JWT: {exc}") from exc
        if header.get("alg") != "RS256":
            raise DeepLinkResponseRefused(f"alg {header.get('alg')!r}")
        jwk = next(
            (k for k in tool_jwks.get("keys", []) if k.get("kid") == header.get("kid")), None
        )
        if jwk is None:
            raise DeepLinkResponseRefused(f"kid {header.get('kid')!r} not in the tool's JWKS")
        try:
            claims = jwt.decode(
                token,
                jwt.PyJWK(jwk).key,
                algorithms=["RS256"],
                audience=self.issuer,
                issuer=self.client_id,
                options={"require": ["iss", "aud", "exp", "iat", "nonce"]},
            )
        except jwt.PyJWTError as exc:
            raise DeepLinkResponseRefused(f"{type(exc).__name__}: {exc}") from exc
        if claims["exp"] - claims["iat"] > max_lifetime:
            raise DeepLinkResponseRefused("lives too long")
        if not isinstance(claims["nonce"], str) or not claims["nonce"]:
            raise DeepLinkResponseRefused("empty nonce")
        if claims.get(CLAIM + "message_type") != "LtiDeepLinkingResponse":
            raise DeepLinkResponseRefused(f"message type {claims.get(CLAIM + 'message_type')!r}")
        if claims.get(CLAIM + "version") != "1.3.0":
            raise DeepLinkResponseRefused(f"version {claims.get(CLAIM + 'version')!r}")
        if claims.get(CLAIM + "deployment_id") != self.deployment_id:
            raise DeepLinkResponseRefused(
                f"deployment {claims.get(CLAIM + 'deployment_id')!r} is not ours"
            )
        if not isinstance(claims.get(DL_CONTENT_ITEMS, []), list):
            raise DeepLinkResponseRefused("content_items is not a list")
        self.deep_link_responses.append(claims)
        return claims


def _domain(url: Any) -> str | None:
    """Moodle's ``lti_get_domain_from_url``: the host (and port), without ``www.``."""
    if not isinstance(url, str):
        return None
    rest = url.split("://", 1)[-1]
    host = rest.split("/", 1)[0].lower()
    return host[4:] if host.startswith("www.") else host or None


def _url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))


def _registration_problem(ctype: str, body: Any, config: dict[str, Any]) -> str | None:
    """Why a registration request breaks LTI-DR 1.0 §3.6.1 or what Moodle 5.1 demands;
    None when it is acceptable."""
    if not ctype.startswith("application/json"):
        return f"content type {ctype!r}"
    if not isinstance(body, dict):
        return "body is not a JSON object"
    if body.get("application_type") != "web":
        return "invalid_application_type"
    response_types = body.get("response_types")
    if not isinstance(response_types, list) or "id_token" not in response_types:
        return "invalid_response_types"
    grant_types = body.get("grant_types")
    if not isinstance(grant_types, list) or not {"implicit", "client_credentials"} <= set(
        grant_types
    ):
        return "grant_types must include implicit and client_credentials"
    if not _url(body.get("initiate_login_uri")):
        return "missing required attribute initiate_login_uri"
    redirect_uris = body.get("redirect_uris")
    if (
        not isinstance(redirect_uris, list)
        or not redirect_uris
        or not all(_url(u) for u in redirect_uris)
    ):
        return "invalid redirect_uris (an array of URLs)"
    if not isinstance(body.get("client_name"), str) or not body["client_name"].strip():
        return "missing required attribute client_name"
    if not _url(body.get("jwks_uri")):
        return "missing required attribute jwks_uri"
    if body.get("token_endpoint_auth_method") != "private_key_jwt":
        return "invalid_token_endpoint_auth_method"
    scope = body.get("scope", "")
    if not isinstance(scope, str):
        return "scope must be a space-separated string"
    offered = set(config["scopes_supported"])
    unknown = [s for s in scope.split() if s not in offered]
    if unknown:
        return f"scopes not offered: {unknown}"
    tool = body.get(LTI_TOOL_CONFIGURATION)
    if not isinstance(tool, dict):
        return f"missing required attribute {LTI_TOOL_CONFIGURATION}"
    domain = _domain(tool.get("domain"))
    if not domain:
        return "missing_domain"
    if _domain(tool.get("target_link_uri")) != domain:
        return "domain_targetlinkuri_mismatch"
    if "custom_parameters" in tool and not isinstance(tool["custom_parameters"], dict):
        return "custom_parameters must be an object"
    claims = tool.get("claims", [])
    if not isinstance(claims, list) or not all(isinstance(c, str) for c in claims):
        return "claims must be an array of strings"
    supported = {
        m["type"] if isinstance(m, dict) else m
        for m in config[LTI_PLATFORM_CONFIGURATION]["messages_supported"]
    }
    messages = tool.get("messages", [])
    if not isinstance(messages, list):
        return "messages must be an array"
    for message in messages:
        if not isinstance(message, dict) or message.get("type") not in supported:
            return f"message not supported: {message!r}"[:200]
        target = message.get("target_link_uri")
        if target is not None and _domain(target) != domain:
            return "message target_link_uri outside the domain"
    return None


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8")) if body else None
    except (ValueError, RecursionError):
        return None


def _php_numeric(value: Any) -> float | None:
    """PHP's ``is_numeric``: numbers and numeric strings (not booleans)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def _iso_seconds(value: Any) -> int | None:
    """``strtotime()`` of an ISO 8601 timestamp: whole seconds (naive counts as UTC)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return math.floor(parsed.timestamp())
