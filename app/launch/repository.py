"""Nonce bookkeeping."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.core.upsert import insert_if_absent
from app.launch.models import UsedNonce


class NonceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def consume(self, platform_id: int, nonce: str, expires_at: datetime) -> bool:
        """Record the nonce as used; False when it already was (a replay). One statement,
        atomic across workers: the primary key decides who consumed it first."""
        return insert_if_absent(
            self.session,
            UsedNonce,
            {"platform_id": platform_id, "nonce": nonce, "expires_at": expires_at},
            conflict=("platform_id", "nonce"),
        )

    def purge(self, now: datetime) -> int:
        result = self.session.execute(delete(UsedNonce).where(UsedNonce.expires_at < now))
        return int(getattr(result, "rowcount", 0) or 0)
