"""The built-in demonstration platform: a newcomer clicks a persona and lands signed in,
through the real OIDC login, a signed id_token, and every check the tool makes."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.core.db import Database
from app.main import create_app

BASE = "http://127.0.0.1:8727"


@pytest.fixture()
def demo_client(database: Database) -> Iterator[TestClient]:
    settings = Settings(
        inprocess_worker=False,
        database_url="sqlite://",
        base_url=BASE,
        secret_key="s" * 40,
        demo=True,
    )
    with TestClient(create_app(settings, database), base_url=BASE, follow_redirects=False) as c:
        yield c


def _click_through(client: TestClient, persona: str, locale: str = "vi") -> str:
    response = client.get(f"/demo/start/{persona}?locale={locale}")
    assert response.status_code == 302
    response = client.get(response.headers["location"])  # the tool's /lti/login
    assert response.status_code == 302, response.text
    assert response.headers["location"].startswith(BASE + "/demo/auth?")
    response = client.get(response.headers["location"])  # the platform's auth endpoint
    assert response.status_code == 200
    form = dict(re.findall(r'name="(id_token|state)" value="([^"]+)"', response.text))
    response = client.post("/lti/launch", data=form)
    assert response.status_code == 303, response.text
    page = client.get("/")
    assert page.status_code == 200
    return page.text


class TestDemoPersonasLandOnTheirStartPage:
    def test_launcher_lists_the_three_roles(self, demo_client: TestClient) -> None:
        page = demo_client.get("/demo")
        assert page.status_code == 200
        for persona in ("teacher", "trainer", "admin"):
            assert f"/demo/start/{persona}" in page.text

    @pytest.mark.parametrize(
        ("persona", "expected"),
        [
            ("teacher", "Nguyễn Thị Lan"),
            ("trainer", "Trần Văn Minh"),
            ("admin", "/admin/lti"),
            ("anonymous", "#103"),
            ("no-role", "Phạm Quốc Bảo"),
        ],
    )
    def test_persona(self, demo_client: TestClient, persona: str, expected: str) -> None:
        page = _click_through(demo_client, persona)
        assert expected in page
        assert '<html lang="vi">' in page

    def test_english_launch_gives_english_page(self, demo_client: TestClient) -> None:
        page = _click_through(demo_client, "teacher", locale="en")
        assert '<html lang="en">' in page
        assert "Hello, Nguyễn Thị Lan" in page

    def test_admin_reaches_lti_settings(self, demo_client: TestClient) -> None:
        _click_through(demo_client, "admin")
        page = demo_client.get("/admin/lti")
        assert page.status_code == 200
        assert BASE + "/lti/jwks.json" in page.text
        assert "blend727-demo" in page.text

    def test_demo_refuses_a_forged_auth_request(self, demo_client: TestClient) -> None:
        response = demo_client.get(
            "/demo/auth?scope=openid&response_type=id_token&response_mode=form_post&prompt=none"
            "&client_id=blend727-demo&redirect_uri=https://evil.example/steal&nonce=n&state=s"
            "&login_hint=teacher:1&lti_message_hint=teacher|vi"
        )
        assert response.status_code == 400
        assert "redirect_uri" in response.text


class TestDemoIsOffUnlessAsked:
    def test_no_demo_routes_without_demo(self, client: TestClient) -> None:
        assert client.get("/demo").status_code == 404

    def test_demo_platform_cannot_launch_outside_demo(
        self, database: Database, client: TestClient
    ) -> None:
        from app.demo.service import ensure_demo_platform

        with database.session() as session:
            ensure_demo_platform(session, "https://tool.test")
        response = client.get(
            "/lti/login?iss=https://tool.test/demo&login_hint=teacher:1&client_id=blend727-demo"
        )
        assert response.status_code == 400
        assert "unknown_platform" in response.text


class TestDemoHasALiveClass:
    def test_teacher_sees_the_demo_class_and_trainer_the_cohort(
        self, demo_client: TestClient
    ) -> None:
        page = _click_through(demo_client, "teacher")
        assert "Mô đun 4 — THCS — lớp demo" in page
        assert "/ical/learner/" in page
        page = _click_through(demo_client, "trainer")
        assert "Nhóm" in page and "Nguyễn Thị Lan" in page

    def test_admin_sees_the_class_and_its_compliance(self, demo_client: TestClient) -> None:
        _click_through(demo_client, "admin")
        classes = demo_client.get("/admin/classes")
        assert classes.status_code == 200
        assert "M4-THCS-DEMO" in classes.text
