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
    """An RSA key pair. The newest un-retired key signs; retired keys stay published until
    ``retires_at`` so that platforms holding a cached JWKS still verify what we signed.
    """

    __tablename__ = "tool_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    private_key_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    retires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class ToolSecret(Base):
    """Named random secrets generated on first use (cookie signing, nonce binding)."""

    __tablename__ = "tool_secret"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
