"""Consumed OIDC nonces: single use across every worker sharing the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.types import UTCDateTime


class UsedNonce(Base):
    """Written only after the id_token's signature is verified; the primary key refuses a replay.

    Rows can be purged once ``expires_at`` (the token's ``exp`` plus leeway) has passed: a
    replayed token would then fail its own expiry check.
    """

    __tablename__ = "lti_used_nonce"
    __table_args__ = (Index("ix_lti_used_nonce_expires_at", "expires_at"),)

    platform_id: Mapped[int] = mapped_column(
        ForeignKey("platform.id", ondelete="CASCADE"), primary_key=True
    )
    nonce: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
