"""Queries of the audit log. Append and read: there is no update and no delete."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Select, func, or_, select, tuple_
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.audit.rules import AuditQuery


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, event: AuditEvent) -> AuditEvent:
        self.session.add(event)
        return event

    def _filtered(self, platform_id: int | None, query: AuditQuery) -> Select[Any]:
        stmt = select(AuditEvent)
        stmt = stmt.where(
            AuditEvent.platform_id.is_(None)
            if platform_id is None
            else AuditEvent.platform_id == platform_id
        )
        if query.starts_at is not None:
            stmt = stmt.where(AuditEvent.occurred_at >= query.starts_at)
        if query.ends_before is not None:
            stmt = stmt.where(AuditEvent.occurred_at < query.ends_before)
        if query.actor:
            stmt = stmt.where(
                func.lower(AuditEvent.actor_label).contains(query.actor.lower(), autoescape=True)
            )
        if query.action:
            stmt = stmt.where(
                or_(
                    AuditEvent.action == query.action,
                    AuditEvent.action.startswith(query.action + ".", autoescape=True),
                )
            )
        if query.object_type:
            stmt = stmt.where(AuditEvent.object_type == query.object_type)
        if query.object_id:
            stmt = stmt.where(AuditEvent.object_id == query.object_id)
        if query.class_id is not None:
            stmt = stmt.where(AuditEvent.class_id == query.class_id)
        return stmt

    def page(
        self,
        platform_id: int | None,
        query: AuditQuery,
        limit: int | None = None,
        below_id: int | None = None,
    ) -> Sequence[AuditEvent]:
        """Newest first, from ``query.cursor`` on (keyset: no OFFSET, as fast on the last page
        of millions of rows as on the first); with ``below_id``, only events written before
        that one."""
        stmt = self._filtered(platform_id, query)
        if below_id is not None:
            stmt = stmt.where(AuditEvent.id < below_id)
        if query.cursor is not None:
            at, event_id = query.cursor
            stmt = stmt.where(tuple_(AuditEvent.occurred_at, AuditEvent.id) < tuple_(at, event_id))
        stmt = stmt.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        return self.session.scalars(stmt.limit(limit or query.limit)).all()

    def each(
        self,
        platform_id: int | None,
        query: AuditQuery,
        batch: int = 1000,
        below_id: int | None = None,
    ) -> Iterator[AuditEvent]:
        """Every matching row, newest first, a batch at a time (for exports)."""
        cursor = query.cursor
        while True:
            rows = self.page(platform_id, replace(query, cursor=cursor), batch, below_id)
            yield from rows
            if len(rows) < batch:
                return
            cursor = (rows[-1].occurred_at, rows[-1].id)
            self.session.expunge_all()
