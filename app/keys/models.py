"""Signing keys and process-independent secrets, kept in the database so every worker agrees."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.time import utcnow
from app.core.types import UTCDateTime


class ToolKey(Base):
    """An RSA key pair, published at /lti/jwks.json from its creation until ``retires_at``.

    Its life (publish-ahead rotation, app/keys/service.py): *next* (published, not yet
    signing: ``activated_at`` unset) → *current* (the newest activated key that is not
    retiring signs) → *retiring* (``retires_at`` in the future: still published, so platforms
    holding a cached JWKS keep verifying what it signed) → *expired* (no longer published).
    ``private_key_pem`` is encrypted at rest when a key-encryption key is configured
    (app/keys/crypto.py).
    """

    __tablename__ = "tool_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    private_key_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    retires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    def __repr__(self) -> str:  # never the private key
        return f"ToolKey(kid={self.kid!r}, activated_at={self.activated_at!r})"


class ToolSecret(Base):
    """Named random secrets generated on first use (cookie signing, nonce binding); the value
    is encrypted at rest like the signing keys."""

    __tablename__ = "tool_secret"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:  # never the value
        return f"ToolSecret(name={self.name!r})"
