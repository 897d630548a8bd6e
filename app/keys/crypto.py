"""Encryption at rest of what the database keeps secret: the tool's private signing keys and
its generated secret.

The key-encryption key (KEK) comes from ``BLEND727_KEY_ENCRYPTION_KEY`` or the file named by
``BLEND727_KEY_ENCRYPTION_KEY_FILE``: 32 random bytes in base64 (``openssl rand -base64 32``).
Several keys may be given, separated by commas or new lines: the first encrypts, every one
decrypts, so the KEK itself is rotated by putting the new key first, running
``blend727 keys reencrypt`` and then dropping the old one.

A stored value reads ``enc:v1:<key id>:<Fernet token>`` (AES-128-CBC + HMAC-SHA256, the
``cryptography`` package's authenticated recipe). The key id — 8 hex digits of a hash of the
KEK — says which configured key opens it, so a wrong or missing key is reported as such,
never as garbage. A value without the prefix is plaintext from before encryption was switched
on: it keeps working and is encrypted at the next start-up (or ``blend727 keys encrypt``).

Nothing here ever puts a key or a plaintext into an exception message, a log or a repr.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken

if TYPE_CHECKING:
    from app.config import Settings

PREFIX = "enc:v1:"
ENV_KEY = "BLEND727_KEY_ENCRYPTION_KEY"
ENV_FILE = "BLEND727_KEY_ENCRYPTION_KEY_FILE"
HOW_TO = (
    f"set {ENV_FILE} (or {ENV_KEY}) to 32 random bytes in base64 "
    "(openssl rand -base64 32); see the README, Operations"
)


class KeyEncryptionError(RuntimeError):
    """The stored keys cannot be opened with what is configured (or the configuration is
    malformed). The message names variables and key ids, never key material."""


def key_id(raw: bytes) -> str:
    return hashlib.sha256(b"blend727-kek\x00" + raw).hexdigest()[:8]


def _decode(entry: str, position: int) -> bytes:
    text = entry.strip()
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise KeyEncryptionError(
            f"{ENV_KEY}: key {position} is not 32 bytes in base64; "
            "generate one with: openssl rand -base64 32"
        )
    return raw


class Keyring:
    """The configured KEKs (possibly none). ``seal`` encrypts with the first; ``open`` uses
    the one the stored value names."""

    def __init__(self, keys: list[bytes] | None = None) -> None:
        self._fernets: dict[str, Fernet] = {}
        self.ids: list[str] = []
        for raw in keys or []:
            kid = key_id(raw)
            if kid not in self._fernets:
                self._fernets[kid] = Fernet(base64.urlsafe_b64encode(raw))
                self.ids.append(kid)

    @classmethod
    def parse(cls, text: str) -> Keyring:
        entries = [e for e in re.split(r"[,\s]+", text) if e]
        return cls([_decode(e, i) for i, e in enumerate(entries, start=1)])

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """The keyring the settings name; a malformed or unreadable one is an error."""
        value = settings.key_encryption_key
        path = settings.key_encryption_key_file
        if value is not None and path is not None:
            raise KeyEncryptionError(f"set {ENV_KEY} or {ENV_FILE}, not both")
        if path is not None:
            try:
                text = Path(path).read_text(encoding="ascii")
            except (OSError, UnicodeError) as exc:
                raise KeyEncryptionError(
                    f"{ENV_FILE}: cannot read {path} ({type(exc).__name__})"
                ) from None
            if not text.strip():
                raise KeyEncryptionError(f"{ENV_FILE}: {path} is empty")
            return cls.parse(text)
        if value is not None and value.get_secret_value().strip():
            return cls.parse(value.get_secret_value())
        return cls()

    @property
    def configured(self) -> bool:
        return bool(self.ids)

    @property
    def primary(self) -> str | None:
        return self.ids[0] if self.ids else None

    def __repr__(self) -> str:
        return f"Keyring(ids={self.ids!r})"

    def seal(self, plaintext: str) -> str:
        """Encrypt with the first key; plaintext unchanged when no key is configured."""
        if not self.ids:
            return plaintext
        token = self._fernets[self.ids[0]].encrypt(plaintext.encode("utf-8"))
        return f"{PREFIX}{self.ids[0]}:{token.decode('ascii')}"

    def open(self, stored: str, what: str = "a stored key") -> str:
        """The plaintext of a stored value (plaintext passes through)."""
        if not stored.startswith(PREFIX):
            return stored
        kid, _, token = stored[len(PREFIX) :].partition(":")
        fernet = self._fernets.get(kid)
        if fernet is None:
            if not self.ids:
                raise KeyEncryptionError(
                    f"{what} is encrypted (key id {kid}) but no key-encryption key is "
                    f"configured: {HOW_TO}"
                )
            raise KeyEncryptionError(
                f"{what} is encrypted with key id {kid}, but the configured key-encryption "
                f"key{'s are' if len(self.ids) > 1 else ' is'} {', '.join(self.ids)}: "
                f"set the key it was encrypted with in {ENV_KEY} / {ENV_FILE} (list the new "
                "key first and the old one after it to move to a new key)"
            )
        try:
            return fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            raise KeyEncryptionError(
                f"{what} does not decrypt with key id {kid}: the value is damaged"
            ) from None

    @staticmethod
    def encrypted_with(stored: str) -> str | None:
        """The key id a stored value is encrypted with; ``None`` for plaintext."""
        if not stored.startswith(PREFIX):
            return None
        return stored[len(PREFIX) :].partition(":")[0]

    def is_current(self, stored: str) -> bool:
        """Encrypted with the first key (or no key configured and plaintext)."""
        return self.encrypted_with(stored) == self.primary


# The process's keyring: installed by ``AppContext.build`` and the CLI from the settings.
_installed = Keyring()


def install(keyring: Keyring) -> None:
    global _installed
    _installed = keyring


def installed() -> Keyring:
    return _installed
