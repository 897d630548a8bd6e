"""Test fixtures: a real database whose schema comes from the Alembic migrations, on SQLite
and (when one answers) PostgreSQL, each test rolled back; the app bound to that database;
and an independent LTI 1.3 test platform serving its JWKS over real HTTP.

Every test that uses ``db``, ``app`` or ``client`` runs twice: ``[sqlite]`` and
``[postgresql]``. Without a reachable PostgreSQL the second run is skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from app.config import Settings
from app.core.db import Database, build_engine, normalise_url
from app.core.migrate import upgrade_connection
from app.keys.service import KeyService, SigningKey, generate_rsa_key, public_jwk
from app.main import create_app
from app.platforms.models import Platform
from app.platforms.repository import PlatformRepository
from lti.http import build_session
from lti.services import process_token_cache
from tests.factories import Factories
from tests.helpers import sign_in
from tests.lti_platform import INST_ADMIN, SYS_ADMIN, TestPlatform, platform_server

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TOOL_BASE_URL = "https://tool.test"


def _pg_url() -> str:
    return normalise_url(os.environ.get("BLEND727_TEST_DATABASE_URL") or DEFAULT_PG_URL)


def _pg_unreachable_reason(url: str) -> str | None:
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return (
            f"PostgreSQL not reachable at {url} ({type(exc).__name__}); "
            "set BLEND727_TEST_DATABASE_URL to run the PostgreSQL half of the suite"
        )
    return None


def _seed_signing_key(eng: Engine) -> None:
    """Committed tool keys for the session (the current one and the one published ahead): RSA
    generation is slow, and every app start would otherwise make them inside its rolled-back
    test."""
    with Database(eng).session() as session:
        KeyService(session).prepare()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A migrated database per backend, for the whole session."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "test.db"
        eng = build_engine(f"sqlite:///{path}")
        with eng.begin() as conn:
            upgrade_connection(conn)
        _seed_signing_key(eng)
        yield eng
        eng.dispose()
        return
    url = _pg_url()
    reason = _pg_unreachable_reason(url)
    if reason:
        pytest.skip(reason)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng = build_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    with eng.begin() as conn:
        upgrade_connection(conn)
    _seed_signing_key(eng)
    yield eng
    eng.dispose()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture()
def connection(engine: Engine) -> Iterator[Connection]:
    """One connection in an outer transaction, rolled back after the test."""
    conn = engine.connect()
    trans = conn.begin()
    try:
        yield conn
    finally:
        trans.rollback()
        conn.close()


@pytest.fixture()
def database(connection: Connection) -> Database:
    return Database(connection)


@pytest.fixture()
def db(database: Database) -> Iterator[Session]:
    """A session for arranging and asserting; commits only release a savepoint."""
    session = database.sessionmaker()
    try:
        yield session
    finally:
        session.close()


@pytest.fixture()
def settings() -> Settings:
    return Settings(
        inprocess_worker=False,
        database_url="sqlite://",  # unused: the app gets the test database object
        base_url=TOOL_BASE_URL,
        secret_key="test-secret-" + "x" * 32,
        demo=False,
    )


@pytest.fixture()
def app(settings: Settings, database: Database) -> FastAPI:
    return create_app(settings, database)


@pytest.fixture()
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=TOOL_BASE_URL, follow_redirects=False) as c:
        yield c


@pytest.fixture(scope="session")
def platform_http() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving test platforms' JWKS; yields its base URL."""
    with platform_server() as base:
        yield base


@pytest.fixture()
def factories(db: Session) -> Factories:
    return Factories(db)


@pytest.fixture()
def platform(platform_http: str, factories: Factories) -> TestPlatform:
    """A registered test platform (like Moodle: numeric subs, string aud, 60 s tokens)."""
    p = TestPlatform.create(platform_http, issuer="https://lms.test", client_id="client-1")
    factories.register(p, deployment_ids=["1"])
    return p


@pytest.fixture(autouse=True)
def _fresh_key_caches() -> Iterator[None]:
    """Process-wide caches (parsed tool keys) must not leak between rolled-back tests."""
    from app.keys import crypto
    from app.keys import service as key_service

    key_service._cache.clear()
    yield
    key_service._cache.clear()
    crypto.install(crypto.Keyring())


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def platform_row(platform: TestPlatform, db: Session) -> Platform:
    row = PlatformRepository(db).by_issuer_and_client(platform.issuer, platform.client_id)
    assert row is not None
    return row


@pytest.fixture()
def admin(client: TestClient, platform: TestPlatform) -> dict:
    return sign_in(client, platform, [INST_ADMIN, SYS_ADMIN], "admin-1", "Lê Quản Trị")


# -- LMS services (NRPS, AGS): a tool key of their own, a session, no token leaking ----------


@pytest.fixture(scope="module")
def tool_key() -> SigningKey:
    private_key, pem = generate_rsa_key()
    jwk = public_jwk(private_key)
    return SigningKey(kid=jwk["kid"], private_key=private_key, private_key_pem=pem, public_jwk=jwk)


@pytest.fixture()
def http() -> Iterator[requests.Session]:
    session = build_session(5.0)
    yield session
    session.close()


@pytest.fixture(autouse=True)
def _no_tokens_between_tests() -> Iterator[None]:
    process_token_cache().clear()
    yield
    process_token_cache().clear()
