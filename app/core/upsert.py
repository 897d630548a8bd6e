"""Fast single-statement writes for the launch path, on SQLite and PostgreSQL alike.

A launch touches half a dozen rows. Building an ``INSERT … ON CONFLICT … RETURNING`` with
the ORM costs ~300 µs of Python per call; the statements here are built once per shape,
cached, and executed on the session's connection with plain parameters (~20 µs). They run
inside the session's transaction, so the request still commits once at its boundary.
One round trip per row (instead of select-then-insert) also makes two simultaneous first
launches of one person safe.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import case, or_
from sqlalchemy import insert as core_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

_lock = threading.Lock()
_cache: dict[tuple[Any, ...], Any] = {}


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _cached(key: tuple[Any, ...], build: Any) -> Any:
    stmt = _cache.get(key)
    if stmt is None:
        with _lock:
            stmt = _cache.setdefault(key, build())
    return stmt


def upsert_returning(
    session: Session,
    model: Any,
    values: Mapping[str, Any],
    *,
    conflict: Iterable[str],
    update: Iterable[str],
    returning: Iterable[Any],
    owner: str | None = None,
    owned: Iterable[str] = (),
) -> Row[Any]:
    """``owned`` columns (among ``update``) change only while the stored row has no ``owner``
    yet or the same one as ``values``: a row that belongs to one parent keeps what came with
    that parent (a resource link stays in its course, with its course's AGS endpoint)."""
    dialect = _dialect(session)
    conflict, update, returning = tuple(conflict), tuple(update), tuple(returning)
    owned = tuple(owned)
    key: tuple[Any, ...] = ("upsert", dialect, model, tuple(sorted(values)), conflict, update)
    key += (returning, owner, owned)

    def build() -> Any:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = insert(model)
        table = model.__table__
        set_: dict[str, Any] = {name: stmt.excluded[name] for name in update}
        if owner is not None:
            same = or_(table.c[owner].is_(None), table.c[owner] == stmt.excluded[owner])
            for name in owned:
                set_[name] = case((same, stmt.excluded[name]), else_=table.c[name])
        stmt = stmt.on_conflict_do_update(index_elements=list(conflict), set_=set_)
        return stmt.returning(*returning)

    return session.connection().execute(_cached(key, build), dict(values)).one()


def upsert_returning_id(
    session: Session,
    model: Any,
    values: Mapping[str, Any],
    *,
    conflict: Iterable[str],
    update: Iterable[str],
    owner: str | None = None,
    owned: Iterable[str] = (),
) -> int:
    row = upsert_returning(
        session,
        model,
        values,
        conflict=conflict,
        update=update,
        returning=(model.id,),
        owner=owner,
        owned=owned,
    )
    return int(row[0])


def insert_if_absent(
    session: Session, model: Any, values: Mapping[str, Any], *, conflict: Iterable[str]
) -> bool:
    """``INSERT … ON CONFLICT DO NOTHING``; True when the row was inserted."""
    dialect = _dialect(session)
    conflict = tuple(conflict)
    key = ("insert-if-absent", dialect, model, tuple(sorted(values)), conflict)

    def build() -> Any:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        first = getattr(model, conflict[0])
        return insert(model).on_conflict_do_nothing(index_elements=list(conflict)).returning(first)

    return session.connection().execute(_cached(key, build), dict(values)).first() is not None


def insert_row(session: Session, model: Any, values: Mapping[str, Any]) -> None:
    """A plain insert without building ORM state (the row is not needed back)."""
    key = ("insert", model, tuple(sorted(values)))
    session.connection().execute(_cached(key, lambda: core_insert(model)), dict(values))
