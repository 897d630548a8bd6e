"""Leases: which process does a piece of periodic work now, shared through the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.types import UTCDateTime


class Lease(Base):
    """One row per periodic task (``result-sweep``, ``housekeeping``).

    A process may run the task when ``expires_at`` has passed: it takes the row (owner, a
    short hold), does the work, and hands it back with ``expires_at`` set to when the task
    is next due. A process that dies while holding it loses it when the hold runs out.
    """

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
