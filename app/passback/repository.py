"""Queries of the score outbox. Claiming uses ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
several workers never take the same row; SQLite's single writer gives the same guarantee."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from app.passback.models import OutboxStatus, ScoreOutbox

#: The scores an administrator may send again now.
RETRYABLE = (OutboxStatus.FAILED, OutboxStatus.DEAD, OutboxStatus.PENDING)


class OutboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, row: ScoreOutbox) -> None:
        self.session.add(row)
        self.session.flush()

    def last_timestamp(self, url_hash: str, lms_user_id: str) -> datetime | None:
        stmt = select(func.max(ScoreOutbox.score_timestamp)).where(
            ScoreOutbox.line_item_url_hash == url_hash, ScoreOutbox.lms_user_id == lms_user_id
        )
        value = self.session.scalar(stmt)
        return value if isinstance(value, datetime) else None

    def supersede_pending(self, url_hash: str, lms_user_id: str, before: datetime) -> int:
        """Older unsent scores for the same person and line item are replaced by a newer one:
        only the latest matters to the LMS, and an older timestamp would be refused."""
        result = self.session.execute(
            update(ScoreOutbox)
            .where(
                ScoreOutbox.line_item_url_hash == url_hash,
                ScoreOutbox.lms_user_id == lms_user_id,
                ScoreOutbox.status == OutboxStatus.PENDING,
                ScoreOutbox.score_timestamp < before,
            )
            .values(status=OutboxStatus.SUPERSEDED)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def claim(self, worker: str, now: datetime, lease_until: datetime, limit: int) -> list[int]:
        """Take up to ``limit`` due rows (or rows whose worker died mid-send) for ``worker``."""
        due = (
            select(ScoreOutbox.id)
            .where(
                or_(
                    (ScoreOutbox.status == OutboxStatus.PENDING)
                    & (ScoreOutbox.next_attempt_at <= now),
                    (ScoreOutbox.status == OutboxStatus.SENDING) & (ScoreOutbox.lease_until < now),
                )
            )
            .order_by(ScoreOutbox.next_attempt_at, ScoreOutbox.id)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        ids = list(self.session.scalars(due))
        if not ids:
            return []
        self.session.execute(
            update(ScoreOutbox)
            .where(ScoreOutbox.id.in_(ids))
            .values(
                status=OutboxStatus.SENDING,
                lease_until=lease_until,
                claimed_by=worker,
                attempts=ScoreOutbox.attempts + 1,
            )
        )
        return ids

    def renew(self, ids: Sequence[int], worker: str, lease_until: datetime) -> list[int]:
        """Extend ``worker``'s claim on those of ``ids`` it still holds; returns them."""
        if not ids:
            return []
        held = update(ScoreOutbox).where(
            ScoreOutbox.id.in_(ids),
            ScoreOutbox.claimed_by == worker,
            ScoreOutbox.status == OutboxStatus.SENDING,
        )
        self.session.execute(held.values(lease_until=lease_until))
        stmt = select(ScoreOutbox.id).where(
            ScoreOutbox.id.in_(ids),
            ScoreOutbox.claimed_by == worker,
            ScoreOutbox.status == OutboxStatus.SENDING,
        )
        return list(self.session.scalars(stmt))

    def rows(self, ids: Sequence[int]) -> list[ScoreOutbox]:
        stmt = select(ScoreOutbox).where(ScoreOutbox.id.in_(ids)).order_by(ScoreOutbox.id)
        return list(self.session.scalars(stmt))

    def finish(self, row_id: int, worker: str, **values: object) -> bool:
        """Record an outcome, only if this worker still holds the row (its lease may have
        run out and another worker taken over)."""
        result = self.session.execute(
            update(ScoreOutbox)
            .where(
                ScoreOutbox.id == row_id,
                ScoreOutbox.claimed_by == worker,
                ScoreOutbox.status == OutboxStatus.SENDING,
            )
            .values(lease_until=None, **values)
        )
        return bool(getattr(result, "rowcount", 0))

    def listing(
        self, deployment_id: int, statuses: Sequence[str], limit: int = 200
    ) -> list[ScoreOutbox]:
        stmt = (
            select(ScoreOutbox)
            .where(ScoreOutbox.deployment_id == deployment_id, ScoreOutbox.status.in_(statuses))
            .order_by(ScoreOutbox.created_at.desc(), ScoreOutbox.id.desc())
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def counts(self, deployment_id: int | None = None) -> dict[str, int]:
        stmt = select(ScoreOutbox.status, func.count()).group_by(ScoreOutbox.status)
        if deployment_id is not None:
            stmt = stmt.where(ScoreOutbox.deployment_id == deployment_id)
        return {str(s): int(n) for s, n in self.session.execute(stmt).all()}

    def retryable(self, deployment_id: int, row_id: int) -> ScoreOutbox | None:
        """This deployment's score, if it may be sent again now (locked on PostgreSQL until
        the transaction ends, so the worker cannot claim it in between)."""
        stmt = select(ScoreOutbox).where(
            ScoreOutbox.id == row_id,
            ScoreOutbox.deployment_id == deployment_id,
            ScoreOutbox.status.in_(RETRYABLE),
        )
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt).first()

    def retry_now(self, deployment_id: int, row_id: int, now: datetime) -> bool:
        result = self.session.execute(
            update(ScoreOutbox)
            .where(
                ScoreOutbox.id == row_id,
                ScoreOutbox.deployment_id == deployment_id,
                ScoreOutbox.status.in_(RETRYABLE),
            )
            .values(status=OutboxStatus.PENDING, next_attempt_at=now, window_start=now)
        )
        return bool(getattr(result, "rowcount", 0))
