"""Nonce bookkeeping."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.launch.models import UsedNonce


class NonceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def consume(self, platform_id: int, nonce: str, expires_at: datetime) -> bool:
        """Record the nonce as used; False when it already was (a replay).

        Runs inside a savepoint so that the caller's transaction survives the refusal.
        """
        try:
            with self.session.begin_nested():
                self.session.add(
                    UsedNonce(platform_id=platform_id, nonce=nonce, expires_at=expires_at)
                )
                self.session.flush()
        except IntegrityError:
            return False
        return True

    def purge(self, now: datetime) -> int:
        result = self.session.execute(delete(UsedNonce).where(UsedNonce.expires_at < now))
        return int(getattr(result, "rowcount", 0) or 0)
