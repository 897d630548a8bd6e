"""The tool's signing keys.

Parsing an RSA private key from PEM validates it and costs tens of milliseconds, so parsed key
objects are kept in memory by ``kid``; the database stays the source of truth, so every worker
sees a rotation within ``_REFRESH_SECONDS``.

Rotation publishes ahead: besides the current key, the JWKS always holds the *next* key, so a
platform that cached our JWKS at any time since the previous rotation already knows the key
that signs after the next one. ``rotate`` makes that key current, creates the following one
and keeps the old key published for the retire period. Private keys (and the generated
secret) are encrypted at rest with the process's keyring (app/keys/crypto.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.orm import Session

from app.audit.rules import Actor, Subject
from app.audit.service import AuditLog
from app.core.time import utcnow
from app.keys import crypto
from app.keys.crypto import KeyEncryptionError, Keyring
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
    private_key: rsa.RSAPrivateKey = field(repr=False)
    private_key_pem: str = field(repr=False)
    public_jwk: dict[str, Any] = field(repr=False)


@dataclass
class Rotation:
    """What ``rotate`` did. ``activated`` is ``None`` when nothing changed hands (``reason``
    says why: ``not_due``, ``nothing_published_ahead``, ``published_too_recently``)."""

    reason: str
    activated: ToolKey | None = None
    retired: list[ToolKey] = field(default_factory=list)
    created: ToolKey | None = None  # the key published ahead for the next rotation

    @property
    def rotated(self) -> bool:
        return self.activated is not None


@dataclass(frozen=True)
class KeyState:
    """How the stored keys look at start-up (for the log; nothing secret)."""

    current: str
    next: str
    plaintext: int  # stored values not encrypted although a key-encryption key is configured


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

    def remember(self, kid: str, key: rsa.RSAPrivateKey) -> None:
        with self._lock:
            self._parsed[kid] = key

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
    def __init__(self, session: Session, keyring: Keyring | None = None) -> None:
        self.session = session
        self.repo = KeyRepository(session)
        self.keyring = crypto.installed() if keyring is None else keyring

    def ensure_key(self) -> ToolKey:
        """There is always a current signing key: the one published ahead if there is one
        (platforms already know it), else a new one (the very first)."""
        current = self.repo.current()
        if current is not None:
            return current
        pending = self.repo.pending()
        if pending:
            pending[0].activated_at = utcnow()
            self.session.flush()
            return pending[0]
        return self._create(activate=True)

    def ensure_next(self) -> ToolKey:
        """A key published ahead of the next rotation."""
        pending = self.repo.pending()
        return pending[0] if pending else self._create(activate=False)

    def prepare(self) -> KeyState:
        """At start-up: every stored key opens with the configured keyring (else
        ``KeyEncryptionError``, and the process must not start), a current key and a key
        published ahead exist."""
        self.verify()
        current = self.ensure_key()
        following = self.ensure_next()
        return KeyState(current.kid, following.kid, self.count_unencrypted())

    def rotate(
        self,
        retire_after: timedelta,
        *,
        if_older_than: timedelta | None = None,
        min_published: timedelta | None = None,
    ) -> Rotation:
        """Make the key published ahead current, publish a new one ahead, keep the previous
        key published for ``retire_after``.

        ``if_older_than``: do nothing while the current key is younger (safe to run daily).
        ``min_published``: do nothing while the key published ahead has been in the JWKS for
        less than that (platforms may still hold a JWKS fetched before it appeared). Without
        a key published ahead (a database from before publish-ahead), one is created and
        becomes current at the next rotation.
        """
        now = utcnow()
        current = self.repo.current()
        pending = list(self.repo.pending())
        if (
            if_older_than is not None
            and current is not None
            and now - (current.activated_at or current.created_at) < if_older_than
        ):
            return Rotation("not_due", created=None if pending else self._create(activate=False))
        if not pending:
            if current is None:  # an empty database: nothing is cached anywhere yet
                first = self._create(activate=True)
                return Rotation("rotated", first, [], self._create(activate=False))
            return Rotation("nothing_published_ahead", created=self._create(activate=False))
        following = pending[0]
        if min_published is not None and now - following.created_at < min_published:
            return Rotation("published_too_recently")
        retired = list(self.repo.active())
        for key in retired:
            key.retires_at = now + retire_after
        following.activated_at = now
        self.session.flush()
        created = self._create(activate=False) if len(pending) == 1 else None
        _cache.clear()
        AuditLog(self.session).record(  # the installation's event; key ids are public (JWKS)
            Actor.operator(),
            "keys.rotate",
            Subject("tool_key", following.kid),
            {"current": [k.kid for k in retired]},
            {"current": [following.kid], "next": created.kid if created else None},
        )
        return Rotation("rotated", following, retired, created)

    def _create(self, *, activate: bool) -> ToolKey:
        private_key, pem = generate_rsa_key()
        jwk = public_jwk(private_key)
        row = self.repo.add(
            ToolKey(
                kid=jwk["kid"],
                private_key_pem=self.keyring.seal(pem),
                public_jwk=jwk,
                activated_at=utcnow() if activate else None,
            )
        )
        _cache.remember(row.kid, private_key)
        return row

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        return {"keys": [dict(k.public_jwk) for k in self.repo.published(utcnow())]}

    def signing_key(self) -> SigningKey:
        """The current key, parsed once per process and re-read from the database periodically."""
        cached = _cache._current
        if cached is not None and time.monotonic() - _cache._loaded_at < _REFRESH_SECONDS:
            return cached
        row = self.ensure_key()
        pem = self.keyring.open(row.private_key_pem, f"signing key {row.kid}")
        signing = SigningKey(
            kid=row.kid,
            private_key=_cache.parse(row.kid, pem),
            private_key_pem=pem,
            public_jwk=dict(row.public_jwk),
        )
        _cache._current = signing
        _cache._loaded_at = time.monotonic()
        return signing

    def secret(self, name: str, configured: str | None = None) -> str:
        """A named secret: the configured one, else one generated once and shared via the DB."""
        if configured:
            return configured
        what = f"secret {name}"
        existing = self.repo.get_secret(name)
        if existing:
            return self.keyring.open(existing, what)
        sealed = self.keyring.seal(secrets.token_urlsafe(48))
        return self.keyring.open(self.repo.insert_secret_if_absent(name, sealed), what)

    # -- encryption at rest ------------------------------------------------------------------

    def _stored(self) -> list[tuple[str, Any, str]]:
        """(what, row, attribute) of every stored secret value."""
        rows: list[tuple[str, Any, str]] = [
            (f"signing key {k.kid}", k, "private_key_pem") for k in self.repo.all()
        ]
        rows += [(f"secret {s.name}", s, "value") for s in self.repo.secrets()]
        return rows

    def verify(self) -> None:
        """Raise ``KeyEncryptionError`` unless every stored value opens."""
        for what, row, attr in self._stored():
            self.keyring.open(getattr(row, attr), what)

    def count_unencrypted(self) -> int:
        if not self.keyring.configured:
            return 0
        stored = [getattr(row, attr) for _, row, attr in self._stored()]
        return sum(1 for value in stored if Keyring.encrypted_with(value) is None)

    def encrypt_stored(self, *, reencrypt: bool = False) -> int:
        """Encrypt the plaintext values with the first configured key; ``reencrypt``: also
        those encrypted with another configured key. Returns how many were written."""
        if not self.keyring.configured:
            raise KeyEncryptionError("no key-encryption key is configured: " + crypto.HOW_TO)
        changed = 0
        for what, row, attr in self._stored():
            stored = getattr(row, attr)
            used = Keyring.encrypted_with(stored)
            if used is None or (reencrypt and used != self.keyring.primary):
                setattr(row, attr, self.keyring.seal(self.keyring.open(stored, what)))
                changed += 1
        self.session.flush()
        _cache.clear()
        return changed
