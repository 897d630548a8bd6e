"""Lease queries: one conditional UPDATE (or INSERT of a missing row) decides who holds a
task, on SQLite and PostgreSQL alike. Repositories flush, never commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.ops.models import Lease


class LeaseRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def acquire(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        """Take ``name`` until ``until`` if it is free (never taken, or expired by ``now``)."""
        taken = self.session.execute(
            update(Lease)
            .where(Lease.name == name, Lease.expires_at <= now)
            .values(owner=owner, expires_at=until)
            .returning(Lease.name)
        ).first()
        if taken is not None:
            return True
        insert = (
            pg_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        )
        created = self.session.execute(
            insert(Lease)
            .values(name=name, owner=owner, expires_at=until)
            .on_conflict_do_nothing()
            .returning(Lease.name)
        ).first()
        return created is not None

    def extend(self, name: str, owner: str, until: datetime) -> bool:
        """Keep holding ``name`` until ``until``; False if ``owner`` no longer holds it."""
        row = self.session.execute(
            update(Lease)
            .where(Lease.name == name, Lease.owner == owner)
            .values(expires_at=until)
            .returning(Lease.name)
        ).first()
        return row is not None

    def holder(self, name: str) -> Lease | None:
        return self.session.scalars(select(Lease).where(Lease.name == name)).first()
