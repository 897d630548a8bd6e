"""An LTI 1.3 test platform, independent of the tool's code: its own RSA keys, its own
id_token builder, and its JWKS served over real HTTP on 127.0.0.1.

It behaves like Moodle 5.1 by default (numeric ``sub``, ``aud`` a plain string, tokens that
expire 60 seconds after issue, ``CourseSection`` contexts) and lets a test bend any claim,
header or key to try a refused launch.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
LEARNER = LIS + "membership#Learner"
INSTRUCTOR = LIS + "membership#Instructor"
TA = LIS + "membership/Instructor#TeachingAssistant"
SYS_ADMIN = LIS + "system/person#Administrator"
INST_ADMIN = LIS + "institution/person#Administrator"

# path -> handler returning (status, body, content type)
_ROUTES: dict[str, Callable[[], tuple[int, bytes, str]]] = {}
_HITS: dict[str, int] = {}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        _HITS[path] = _HITS.get(path, 0) + 1
        route = _ROUTES.get(path)
        if route is None:
            status, body, ctype = 404, b"not found", "text/plain"
        else:
            status, body, ctype = route()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

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
