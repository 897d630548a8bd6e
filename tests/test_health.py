"""Operations endpoints an administrator or a load balancer relies on."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text, update

from app.config import Settings
from app.core.db import Database
from app.main import create_app


class TestHealth:
    def test_healthy_when_database_answers(self, client: TestClient) -> None:
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.json()["database"] == "ok"

    def test_unhealthy_when_database_does_not_answer(self) -> None:
        dead = Database.from_url("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
        settings = Settings(inprocess_worker=False, database_url="sqlite://", secret_key="k" * 40)
        with TestClient(create_app(settings, dead)) as client:
            response = client.get("/healthz")
        assert response.status_code == 503
        assert response.json()["database"] == "unreachable"


class TestReadiness:
    """/readyz: should a load balancer send this process traffic? /healthz stays liveness."""

    def test_ready_when_database_schema_and_key_are_there(self, client: TestClient) -> None:
        r = client.get("/readyz")
        assert r.status_code == 200
        assert r.json()["status"] == "ready"
        assert r.json()["checks"] == {"database": "ok", "migrations": "ok", "signing_key": "ok"}

    def test_not_ready_when_the_database_does_not_answer(self) -> None:
        dead = Database.from_url("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
        settings = Settings(inprocess_worker=False, database_url="sqlite://", secret_key="k" * 40)
        with TestClient(create_app(settings, dead)) as client:
            r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["failed"] == ["database", "migrations", "signing_key"]
        assert r.json()["checks"]["database"] == "unreachable"

    def test_not_ready_when_the_schema_is_behind_the_code(self, client: TestClient, db) -> None:
        db.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        db.commit()
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["failed"] == ["migrations"]
        assert "run blend727 db upgrade" in r.json()["checks"]["migrations"]
        assert client.get("/healthz").status_code == 200  # alive all the same

    def test_not_ready_without_a_signing_key(self, client: TestClient, db) -> None:
        from app.core.time import utcnow
        from app.keys.models import ToolKey

        db.execute(update(ToolKey).values(retires_at=utcnow()))
        db.commit()
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["failed"] == ["signing_key"]
        assert r.json()["checks"]["signing_key"] == "missing"


class TestRegistrationDetails:
    def test_config_page_shows_the_urls_to_paste(self, client: TestClient) -> None:
        page = client.get("/lti/config")
        assert page.status_code == 200
        for path in ("/lti/login", "/lti/launch", "/lti/jwks.json"):
            assert "https://tool.test" + path in page.text

    def test_config_as_json(self, client: TestClient) -> None:
        data = client.get("/lti/config", headers={"accept": "application/json"}).json()
        assert data["login_url"] == "https://tool.test/lti/login"
        assert data["redirect_uri"] == "https://tool.test/lti/launch"
        assert data["domain"] == "tool.test"

    def test_unknown_page_is_a_friendly_404(self, client: TestClient) -> None:
        page = client.get("/no/such/page")
        assert page.status_code == 404
        assert "not_found" in page.text

    def test_start_page_without_session_welcomes(self, client: TestClient) -> None:
        page = client.get("/")
        assert page.status_code == 200
        assert "/lti/config" in page.text

    def test_expired_or_forged_session_cookie_is_401(self, client: TestClient) -> None:
        client.cookies.set("blend727_session", "forged-token")
        page = client.get("/")
        assert page.status_code == 401
        assert "not_signed_in" in page.text


class TestHousekeeping:
    def test_purge_removes_only_what_has_expired(self, db, platform) -> None:
        from datetime import timedelta

        from app.core.time import utcnow
        from app.launch.models import UsedNonce
        from app.launch.service import purge_expired
        from app.platforms.repository import PlatformRepository

        row = PlatformRepository(db).by_issuer_and_client(platform.issuer, platform.client_id)
        now = utcnow()
        db.add(UsedNonce(platform_id=row.id, nonce="old", expires_at=now - timedelta(minutes=1)))
        db.add(UsedNonce(platform_id=row.id, nonce="live", expires_at=now + timedelta(minutes=1)))
        db.flush()
        nonces, _ = purge_expired(db)
        assert nonces == 1
        assert [n.nonce for n in db.query(UsedNonce).all()] == ["live"]
