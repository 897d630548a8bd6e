"""An LTI 1.3 test platform, independent of the tool's code: its own RSA keys, its own
id_token builder, and its JWKS served over real HTTP on 127.0.0.1.

It behaves like Moodle 5.1 by default (numeric ``sub``, ``aud`` a plain string, tokens that
expire 60 seconds after issue, ``CourseSection`` contexts) and lets a test bend any claim,
header or key to try a refused launch.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            # raw UTF-8 on the wire, as PHP sends Moodle's “typographic” quotes
            self.send_header(name, value.encode("utf-8").decode("latin-1"))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@contextmanager
def platform_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
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
        _REQUEST_ROUTES[("POST", f"/{slug}/token")] = platform._serve_token
        _REQUEST_ROUTES[("GET", f"/{slug}/memberships")] = platform._serve_memberships
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

    # -- messages ------------------------------------------------------------------------
    def claims(
        self,
        *,
        nonce: str,
        sub: str = "42",
        roles: list[str] | None = None,
        target_link_uri: str = "https://tool.test/lti/launch",
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
            CLAIM + "target_link_uri": target_link_uri,
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
        assert q["redirect_uri"] == "https://tool.test/lti/launch"
        assert q["nonce"] and q["state"] and q["login_hint"]
        return q

    def login_params(self, **overrides: str) -> dict[str, str]:
        params = {
            "iss": self.issuer,
            "login_hint": "42",
            "target_link_uri": "https://tool.test/lti/launch",
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
