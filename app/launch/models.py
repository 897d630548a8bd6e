"""Consumed OIDC nonces: single use across every worker sharing the database; and the
one-time hand-offs that carry a cookie-less launch's session into a new window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
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


class LaunchHandoff(Base):
    """A launch whose browser may not keep blend727's cookies inside the LMS's iframe.

    ``/lti/continue?h=…`` in a new window (where the cookie is first-party) exchanges it, once,
    for the session cookie. Only the SHA-256 of the hand-off token is stored, and the session
    token is derived from the hand-off token with the tool's secret (never stored): a leaked
    table signs no one in. Written only on the cookie-less path, never by a normal launch.
    """

    __tablename__ = "lti_handoff"
    __table_args__ = (Index("ix_lti_handoff_expires_at", "expires_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("web_session.id", ondelete="CASCADE"))
    landing: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
