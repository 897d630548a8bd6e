"""The tool's signing keys.

Parsing an RSA private key from PEM validates it and costs tens of milliseconds, so parsed key
objects are kept in memory by ``kid``; the database stays the source of truth, so every worker
sees a rotation within ``_REFRESH_SECONDS``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.orm import Session

from app.core.time import utcnow
from app.keys.models import ToolKey
from app.keys.repository import KeyRepository

_REFRESH_SECONDS = 30.0


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def public_jwk(private_key: rsa.RSAPrivateKey) -> dict[str, Any]:
    """RFC 7517 JWK of the public half, ``kid`` = RFC 7638 thumbprint (stable, unique)."""
    numbers = private_key.public_key().public_numbers()
    e, n = _b64(numbers.e), _b64(numbers.n)
    thumb_input = json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":"))
    kid = base64.urlsafe_b64encode(hashlib.sha256(thumb_input.encode()).digest()).rstrip(b"=")
    return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid.decode(), "e": e, "n": n}


def generate_rsa_key() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return key, pem


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    private_key_pem: str
    public_jwk: dict[str, Any]


class _KeyCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parsed: dict[str, rsa.RSAPrivateKey] = {}
        self._current: SigningKey | None = None
        self._loaded_at = 0.0

    def clear(self) -> None:
        with self._lock:
            self._current = None
            self._loaded_at = 0.0

    def parse(self, kid: str, pem: str) -> rsa.RSAPrivateKey:
        key = self._parsed.get(kid)
        if key is None:
            loaded = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
            assert isinstance(loaded, rsa.RSAPrivateKey)
            key = loaded
            with self._lock:
                self._parsed[kid] = key
        return key


_cache = _KeyCache()


class KeyService:
    def __init__(self, session: Session) -> None:
        self.repo = KeyRepository(session)

    def ensure_key(self) -> ToolKey:
        """There is always a current signing key: create the first one on demand."""
        current = self.repo.current()
        if current is not None:
            return current
        return self._create()

    def rotate(self, retire_after: timedelta) -> tuple[ToolKey, list[ToolKey]]:
        """A new current key; the previous ones stay published for ``retire_after``."""
        now = utcnow()
        retired = list(self.repo.unretired())
        for key in retired:
            key.retires_at = now + retire_after
        new = self._create()
        _cache.clear()
        return new, retired

    def _create(self) -> ToolKey:
        private_key, pem = generate_rsa_key()
        jwk = public_jwk(private_key)
        row = self.repo.add(ToolKey(kid=jwk["kid"], private_key_pem=pem, public_jwk=jwk))
        _cache.parse(row.kid, pem)
        return row

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {"keys": [dict(k.public_jwk) for k in self.repo.published(utcnow())]}

    def signing_key(self) -> SigningKey:
        """The current key, parsed once per process and re-read from the database periodically."""
        cached = _cache._current
        if cached is not None and time.monotonic() - _cache._loaded_at < _REFRESH_SECONDS:
            return cached
        row = self.ensure_key()
        signing = SigningKey(
            kid=row.kid,
            private_key=_cache.parse(row.kid, row.private_key_pem),
            private_key_pem=row.private_key_pem,
            public_jwk=dict(row.public_jwk),
        )
        _cache._current = signing
        _cache._loaded_at = time.monotonic()
        return signing

    def secret(self, name: str, configured: str | None = None) -> str:
        """A named secret: the configured one, else one generated once and shared via the DB."""
        if configured:
            return configured
        existing = self.repo.get_secret(name)
        if existing:
            return existing
        return self.repo.insert_secret_if_absent(name, secrets.token_urlsafe(48))
