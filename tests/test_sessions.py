"""A launch signs a person in for ``BLEND727_SESSION_LIFETIME_SECONDS``, and no longer: the
session is a row (``web_session``) checked on every request, so an expired or signed-out
session is refused by every process, whatever the browser still holds. The cookie itself is
``HttpOnly`` and, over HTTPS, ``Secure; SameSite=None; Partitioned`` (Moodle's iframe).

The clock of the session check is moved with ``monkeypatch`` (``app.auth.dependencies``
reads ``utcnow`` there); the launch itself happens at the real time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

import app.auth.dependencies as auth_dependencies
from app.auth.dependencies import SESSION_COOKIE
from app.config import Settings
from app.core.time import as_utc, utcnow
from app.identity.models import WebSession
from app.launch.service import purge_expired, session_id_for
from tests.conftest import TOOL_BASE_URL
from tests.lti_platform import LEARNER, TestPlatform

LIFETIME = 600


@pytest.fixture()
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"session_lifetime_seconds": LIFETIME})


def cookie_header(response) -> str:
    """The whole ``Set-Cookie`` header of the session cookie."""
    found = [
        h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "=")
    ]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


def attributes(header: str) -> dict[str, str]:
    parts = [p.strip() for p in header.split(";")[1:]]
    return {p.split("=", 1)[0].lower(): (p.split("=", 1)[1] if "=" in p else "") for p in parts}


def launch(client: TestClient, platform: TestPlatform, sub: str = "hv-1") -> tuple[str, str]:
    """Sign in as a learner; (the cookie's token, the session's CSRF token)."""
    client.cookies.clear()
    response = platform.launch(client, roles=[LEARNER], sub=sub, name="Nguyễn Thị Học")
    assert response.status_code == 303, response.text[-400:]
    token = cookie_header(response).split(";", 1)[0].split("=", 1)[1]
    me = client.get("/api/v1/me")
    assert me.status_code == 200, me.text
    return token, me.json()["csrf_token"]


def session_row(db: Session, token: str) -> WebSession:
    db.expire_all()
    row = db.get(WebSession, session_id_for(token))
    assert row is not None
    return row


@pytest.fixture()
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Set the time the session check sees."""

    def set_to(moment: datetime) -> None:
        monkeypatch.setattr(auth_dependencies, "utcnow", lambda: moment)

    return set_to


class TestASessionEndsAfterItsLifetime:
    def test_the_row_and_the_cookie_last_the_configured_lifetime(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        before = utcnow()
        token, _ = launch(client, platform)
        row = session_row(db, token)
        lifetime = as_utc(row.expires_at) - as_utc(row.created_at)
        assert lifetime == timedelta(seconds=LIFETIME)
        assert before <= as_utc(row.created_at) <= utcnow()
        assert row.id != token  # only a hash of the cookie is stored

    def test_valid_until_the_last_second_then_refused_everywhere(
        self,
        client: TestClient,
        platform: TestPlatform,
        db: Session,
        clock: Callable[[datetime], None],
    ) -> None:
        token, csrf = launch(client, platform)
        expires = as_utc(session_row(db, token).expires_at)

        clock(expires - timedelta(seconds=1))
        assert client.get("/api/v1/me").status_code == 200
        assert client.get("/learn").status_code == 200

        clock(expires)
        api = client.get("/api/v1/me")
        assert api.status_code == 401
        assert api.headers["content-type"].startswith("application/problem+json")
        assert api.json()["code"] == "not_signed_in"
        page = client.get("/", headers={"Accept": "text/html"})
        assert page.status_code == 401 and "text/html" in page.headers["content-type"]
        # a write with the session's own form token is refused too, and changes nothing
        logout = client.post("/logout", data={"csrf_token": csrf})
        assert logout.status_code == 401
        assert session_row(db, token).revoked_at is None

    def test_housekeeping_deletes_ended_sessions_only(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        old, _ = launch(client, platform, sub="hv-1")
        fresh, _ = launch(client, platform, sub="hv-2")
        db.execute(
            WebSession.__table__.update()
            .where(WebSession.id == session_id_for(old))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.commit()
        purge_expired(db)
        db.commit()
        assert db.get(WebSession, session_id_for(old)) is None
        assert session_row(db, fresh) is not None


class TestLogoutEndsTheSessionOnTheServer:
    def test_logout_revokes_the_row_and_the_old_cookie_no_longer_works(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        token, csrf = launch(client, platform)
        response = client.post("/logout", data={"csrf_token": csrf})
        assert response.status_code == 200
        assert "text/html" in response.headers["content-type"]
        cleared = attributes(cookie_header(response))
        assert cleared["max-age"] == "0"
        assert cookie_header(response).startswith(f"{SESSION_COOKIE}=;")
        assert session_row(db, token).revoked_at is not None

        # The browser might keep the cookie (or someone copied it): replayed, it is refused.
        replay = TestClient(client.app, base_url=TOOL_BASE_URL, follow_redirects=False)
        replay.cookies.set(SESSION_COOKIE, token)
        assert replay.get("/api/v1/me").status_code == 401
        assert replay.get("/learn").status_code == 401
        assert replay.post("/logout", data={"csrf_token": csrf}).status_code == 401
        headers = {"X-CSRF-Token": csrf}
        sent = replay.put("/api/v1/classes/1/course", json={"course_id": None}, headers=headers)
        assert sent.status_code == 401

    def test_logout_without_the_form_token_is_refused_and_the_session_lives_on(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        token, _ = launch(client, platform)
        for data in ({}, {"csrf_token": "0" * 64}):
            refused = client.post("/logout", data=data)
            assert refused.status_code == 403
            assert SESSION_COOKIE + "=" not in " ".join(refused.headers.get_list("set-cookie"))
        assert session_row(db, token).revoked_at is None
        assert client.get("/api/v1/me").status_code == 200

    def test_logout_is_a_post(self, client: TestClient, platform: TestPlatform) -> None:
        launch(client, platform)
        assert client.get("/logout").status_code == 405
        assert client.get("/api/v1/me").status_code == 200

    def test_only_that_sessions_browser_is_signed_out(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        phone = TestClient(client.app, base_url=TOOL_BASE_URL, follow_redirects=False)
        phone_token, _ = launch(phone, platform)
        _, csrf = launch(client, platform)
        assert client.post("/logout", data={"csrf_token": csrf}).status_code == 200
        assert phone.get("/api/v1/me").status_code == 200
        assert session_row(db, phone_token).revoked_at is None
        count = db.scalar(
            select(func.count()).select_from(WebSession).where(WebSession.revoked_at.is_(None))
        )
        assert count == 1


class TestTheSessionCookie:
    def test_over_https_it_is_httponly_secure_samesite_none_and_partitioned(
        self, client: TestClient, platform: TestPlatform
    ) -> None:
        client.cookies.clear()
        response = platform.launch(client, roles=[LEARNER], sub="hv-1", name="Học")
        header = cookie_header(response)
        attrs = attributes(header)
        assert {"httponly", "secure", "partitioned"} <= set(attrs)
        assert attrs["samesite"] == "None"
        assert attrs["path"] == "/"
        assert attrs["max-age"] == str(LIFETIME)
        assert "domain" not in attrs  # a host-only cookie
        value = header.split(";", 1)[0].split("=", 1)[1]
        assert len(value) >= 32

    def test_the_cookie_that_ends_the_session_has_the_same_attributes(
        self, client: TestClient, platform: TestPlatform
    ) -> None:
        _, csrf = launch(client, platform)
        attrs = attributes(cookie_header(client.post("/logout", data={"csrf_token": csrf})))
        assert {"httponly", "secure", "partitioned"} <= set(attrs)
        assert attrs["samesite"] == "None"

    def test_a_forged_or_oversized_cookie_is_not_a_session(
        self, client: TestClient, platform: TestPlatform
    ) -> None:
        launch(client, platform)
        for value in ("x" * 43, "y" * 500):
            other = TestClient(client.app, base_url=TOOL_BASE_URL, follow_redirects=False)
            other.cookies.set(SESSION_COOKIE, value)
            assert other.get("/api/v1/me").status_code == 401


class TestPlainHttpCookies:
    @pytest.fixture()
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"cross_site_cookies": False})

    def test_without_https_the_cookie_is_httponly_and_lax(
        self, client: TestClient, platform: TestPlatform
    ) -> None:
        client.cookies.clear()
        response = platform.launch(client, roles=[LEARNER], sub="hv-1", name="Học")
        attrs = attributes(cookie_header(response))
        assert "httponly" in attrs and attrs["samesite"] == "Lax"
        assert "secure" not in attrs and "partitioned" not in attrs
