"""Database engine and sessions.

One engine per process, built from the configured URL. SQLite runs in WAL mode with
``synchronous=NORMAL`` (durable across process crashes, fast enough for a launch in
well under a millisecond of database time); PostgreSQL runs through psycopg 3.

Sessions are opened per request (or per task) and committed once at that boundary:
repositories only ``flush``. See ``docs/conventions.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every model; constraint names are stable for Alembic."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and route them through psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the pysqlite driver, decide where transactions begin, so that
    # SAVEPOINTs and rollbacks behave as on PostgreSQL.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


READONLY = "blend727_readonly"
CONNECT_TIMEOUT_SECONDS = 5


def _sqlite_begin(conn: Connection) -> None:
    # A writing transaction takes the write lock up front (IMMEDIATE): one that reads and
    # then writes can never fail with SQLITE_BUSY halfway, busy_timeout makes the others
    # wait their turn. Read-only sessions begin DEFERRED and never wait for writers (WAL).
    readonly = conn.get_execution_options().get(READONLY, False)
    conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def build_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the settings each backend needs."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 10},
            **kwargs,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # A database that went away must not be waited for forever: connecting gives up after
    # this long (a request then answers 503), and pre-ping drops pooled connections that a
    # restart killed, so requests succeed again as soon as it is back.
    if "connect_timeout" not in parsed.query:
        connect_args = dict(kwargs.pop("connect_args", None) or {})
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
        kwargs["connect_args"] = connect_args
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


class Database:
    """The process's engine and session factory.

    Tests bind it to one connection inside an outer transaction (``join_transaction_mode=
    "create_savepoint"``) so that each test is rolled back whatever the app commits.
    """

    def __init__(self, bind: Engine | Connection) -> None:
        self.bind = bind
        self.engine = bind if isinstance(bind, Engine) else bind.engine
        options: dict[str, Any] = {"expire_on_commit": False, "autoflush": False}
        if isinstance(bind, Connection):
            options["join_transaction_mode"] = "create_savepoint"
            self.sessionmaker = sessionmaker(bind=bind, **options)
            self.read_sessionmaker = self.sessionmaker
        else:
            self.sessionmaker = sessionmaker(bind=bind, **options)
            self.read_sessionmaker = sessionmaker(
                bind=bind.execution_options(**{READONLY: True}), **options
            )

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(build_engine(url))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def ping(self) -> None:
        """Raise unless the database answers ``SELECT 1``."""
        with self.session(readonly=True) as session:
            session.execute(text("SELECT 1"))

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Session]:
        """A unit of work: commit on success, roll back on any error.

        ``readonly`` sessions must not write; on SQLite they do not take the write lock.
        """
        session = (self.read_sessionmaker if readonly else self.sessionmaker)()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
