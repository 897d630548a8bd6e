"""Nonce and hand-off bookkeeping."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.core.upsert import insert_if_absent, insert_row
from app.launch.models import LaunchHandoff, UsedNonce


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

    def is_used(self, platform_id: int, nonce: str) -> bool:
        stmt = select(UsedNonce.nonce).where(
            UsedNonce.platform_id == platform_id, UsedNonce.nonce == nonce
        )
        return self.session.execute(stmt).first() is not None

    def purge(self, now: datetime) -> int:
        result = self.session.execute(delete(UsedNonce).where(UsedNonce.expires_at < now))
        return int(getattr(result, "rowcount", 0) or 0)


class HandoffRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, handoff_id: str, session_id: str, landing: str, expires_at: datetime) -> None:
        insert_row(
            self.session,
            LaunchHandoff,
            {
                "id": handoff_id,
                "session_id": session_id,
                "landing": landing,
                "expires_at": expires_at,
            },
        )

    def find(self, handoff_id: str, now: datetime) -> tuple[str, str] | None:
        """(session id, landing) of a hand-off that is still usable."""
        stmt = select(LaunchHandoff.session_id, LaunchHandoff.landing).where(
            LaunchHandoff.id == handoff_id, LaunchHandoff.expires_at > now
        )
        row = self.session.execute(stmt).first()
        return None if row is None else (row[0], row[1])

    def take(self, handoff_id: str, now: datetime) -> tuple[str, str] | None:
        """Delete the hand-off and return (session id, landing), or None when it has expired
        or was taken already. One statement: of two concurrent requests, one gets it."""
        stmt = (
            delete(LaunchHandoff)
            .where(LaunchHandoff.id == handoff_id, LaunchHandoff.expires_at > now)
            .returning(LaunchHandoff.session_id, LaunchHandoff.landing)
        )
        row = self.session.execute(stmt).first()
        return None if row is None else (row[0], row[1])

    def discard(self, handoff_id: str) -> None:
        self.session.execute(delete(LaunchHandoff).where(LaunchHandoff.id == handoff_id))

    def purge(self, now: datetime) -> int:
        result = self.session.execute(delete(LaunchHandoff).where(LaunchHandoff.expires_at <= now))
        return int(getattr(result, "rowcount", 0) or 0)
