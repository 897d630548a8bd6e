"""``INSERT … ON CONFLICT DO UPDATE … RETURNING id`` on SQLite and PostgreSQL alike.

A launch touches four rows; one round trip each (instead of select-then-insert) keeps a
launch fast and makes two simultaneous first launches of one person safe.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session


def upsert_returning(
    session: Session,
    model: Any,
    values: Mapping[str, Any],
    *,
    conflict: Iterable[str],
    update: Iterable[str],
    returning: Iterable[Any],
) -> Row[Any]:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(model).values(**values)
    update_cols = {name: stmt.excluded[name] for name in update}
    stmt = stmt.on_conflict_do_update(index_elements=list(conflict), set_=update_cols)
    return session.execute(stmt.returning(*returning)).one()


def upsert_returning_id(
    session: Session,
    model: Any,
    values: Mapping[str, Any],
    *,
    conflict: Iterable[str],
    update: Iterable[str],
) -> int:
    row = upsert_returning(
        session, model, values, conflict=conflict, update=update, returning=(model.id,)
    )
    return int(row[0])
