"""Programmatic Alembic: ``blend727 db upgrade``, ``serve`` and the tests all come through here."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

import migrations

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def alembic_config(url: str | None = None) -> Config:
    """Built in code so it works from any working directory, installed or editable."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


#: Any number fixed for blend727: the PostgreSQL advisory lock that lets one process at a
#: time migrate (several servers starting at once on a fresh database).
MIGRATION_LOCK = 727_0001


def upgrade(url: str, revision: str = "head") -> None:
    from app.core.db import build_engine, normalise_url

    if not normalise_url(url).startswith("postgresql"):
        command.upgrade(alembic_config(url), revision)
        return
    engine = build_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
            conn.commit()
            try:
                upgrade_connection(conn, revision)
                conn.commit()
            finally:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                conn.commit()
    finally:
        engine.dispose()


def upgrade_connection(connection: Connection, revision: str = "head") -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


@cache
def head_revisions() -> frozenset[str]:
    """The revisions the code expects (read once per process from the migration files)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(connection: Connection) -> frozenset[str]:
    """The revisions the database is at (empty before the first upgrade)."""
    return frozenset(MigrationContext.configure(connection).get_current_heads())
