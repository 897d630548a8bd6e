"""Queries for tool keys and secrets."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.keys.models import ToolKey, ToolSecret


class KeyRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def current(self) -> ToolKey | None:
        """The signing key: the newest activated key that is not retiring."""
        stmt = (
            select(ToolKey)
            .where(ToolKey.retires_at.is_(None), ToolKey.activated_at.is_not(None))
            .order_by(ToolKey.activated_at.desc(), ToolKey.id.desc())
            .limit(1)
        )
        return self.session.scalars(stmt).first()

    def pending(self) -> Sequence[ToolKey]:
        """Keys published ahead, oldest first: the first becomes current at the next rotation."""
        stmt = (
            select(ToolKey)
            .where(ToolKey.retires_at.is_(None), ToolKey.activated_at.is_(None))
            .order_by(ToolKey.created_at, ToolKey.id)
        )
        return self.session.scalars(stmt).all()

    def published(self, now: datetime) -> Sequence[ToolKey]:
        stmt = (
            select(ToolKey)
            .where(or_(ToolKey.retires_at.is_(None), ToolKey.retires_at > now))
            .order_by(ToolKey.created_at.desc(), ToolKey.id.desc())
        )
        return self.session.scalars(stmt).all()

    def all(self) -> Sequence[ToolKey]:
        return self.session.scalars(select(ToolKey).order_by(ToolKey.id)).all()

    def active(self) -> Sequence[ToolKey]:
        """Activated keys that are not retiring (one, unless two workers raced)."""
        stmt = select(ToolKey).where(
            ToolKey.retires_at.is_(None), ToolKey.activated_at.is_not(None)
        )
        return self.session.scalars(stmt).all()

    def secrets(self) -> Sequence[ToolSecret]:
        return self.session.scalars(select(ToolSecret).order_by(ToolSecret.name)).all()

    def add(self, key: ToolKey) -> ToolKey:
        self.session.add(key)
        self.session.flush()
        return key

    def get_secret(self, name: str) -> str | None:
        row = self.session.get(ToolSecret, name)
        return row.value if row else None

    def insert_secret_if_absent(self, name: str, value: str) -> str:
        """Insert-or-keep, safe when two workers start at once; returns the winning value."""
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = insert(ToolSecret).values(name=name, value=value).on_conflict_do_nothing()
        self.session.execute(stmt)
        self.session.flush()
        stored = self.get_secret(name)
        assert stored is not None
        return stored
