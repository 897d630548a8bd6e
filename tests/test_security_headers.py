"""Security headers on every response: a Content-Security-Policy without inline scripts whose
``frame-ancestors`` names only the registered LMSs, ``Referrer-Policy`` and ``nosniff``."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.config import Settings
from app.core.framing import FrameAncestors, frame_ancestors, origin_of
from app.main import create_app
from app.platforms.models import PlatformStatus
from app.platforms.service import PlatformService
from tests.conftest import TOOL_BASE_URL
from tests.factories import Factories
from tests.lti_platform import TestPlatform


def _directives(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    policy = response.headers["content-security-policy"]
    pairs = (d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    return {p[0]: (p[1] if len(p) > 1 else "") for p in pairs}


class TestOrigins:
    @pytest.mark.parametrize(
        ("url", "origin"),
        [
            ("https://moodle.sgddt.vn/mod/lti/auth.php?x=1", "https://moodle.sgddt.vn"),
            ("https://Moodle.SGDDT.vn:443/", "https://moodle.sgddt.vn"),
            ("http://10.0.0.5:8080/moodle", "http://10.0.0.5:8080"),
            ("https://[2001:db8::1]:8443/x", "https://[2001:db8::1]:8443"),
        ],
    )
    def test_an_lms_address_gives_its_origin(self, url: str, origin: str) -> None:
        assert origin_of(url) == origin

    @pytest.mark.parametrize(
        "url",
        [
            "",
            "moodle.sgddt.vn",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://",
            "https://a:99999/",
        ],
    )
    def test_anything_else_adds_nothing(self, url: str) -> None:
        assert origin_of(url) is None

    def test_the_value_is_self_and_each_origin_once(self) -> None:
        assert frame_ancestors(["https://b.vn", "https://a.vn", "https://b.vn"]) == (
            "'self' https://a.vn https://b.vn"
        )


class TestEveryResponse:
    def test_pages_errors_api_and_files_carry_the_headers(
        self, app: FastAPI, client: TestClient, platform: TestPlatform, database
    ) -> None:
        app.state.ctx.framing.refresh(database)
        for path in (
            "/",
            "/healthz",
            "/lti/config",
            "/no-such-page",
            "/api/v1/me",
            "/static/app.css",
        ):
            response = client.get(path)
            assert response.headers["x-content-type-options"] == "nosniff", path
            assert response.headers["referrer-policy"] == "same-origin", path
            directives = _directives(response)
            assert directives["script-src"] == "'self'", path  # no inline scripts anywhere
            assert "'unsafe-inline'" not in response.headers["content-security-policy"], path
            assert directives["frame-ancestors"] == "'self' https://lms.test", path


class TestOnlyRegisteredLmssMayFrame:
    def test_a_new_lms_is_allowed_once_registered_and_not_once_disabled(
        self,
        app: FastAPI,
        client: TestClient,
        platform: TestPlatform,
        platform_http: str,
        factories: Factories,
        db: Session,
        database,
    ) -> None:
        framing = app.state.ctx.framing
        framing.refresh(database)
        assert "https://moodle.other.vn" not in _directives(client.get("/"))["frame-ancestors"]

        other = TestPlatform.create(platform_http, issuer="https://moodle.other.vn", client_id="c9")
        row = factories.register(other, deployment_ids=["1"])
        framing.refresh(database)
        # The issuer (the Moodle site) and its authorization endpoint's host.
        assert _directives(client.get("/"))["frame-ancestors"] == (
            "'self' https://lms.test https://moodle.other.vn"
        )

        PlatformService(db).set_status(row.id, PlatformStatus.DISABLED)
        db.commit()
        framing.refresh(database)
        assert _directives(client.get("/"))["frame-ancestors"] == "'self' https://lms.test"

    def test_a_site_named_in_the_settings_is_allowed_too(self, database) -> None:
        framing = FrameAncestors(["https://elearning.sgddt.vn/", "not a url"])
        framing.refresh(database)
        assert framing.value == "'self' https://elearning.sgddt.vn"

    def test_the_registration_page_may_be_framed_by_an_lms_not_yet_registered(
        self, client: TestClient
    ) -> None:
        # Moodle opens /lti/register in its own window before it is registered here.
        response = client.get("/lti/register")
        assert _directives(response)["frame-ancestors"] == "*"
        assert _directives(client.get("/lti/config"))["frame-ancestors"].startswith("'self'")

    def test_the_demo_allows_its_stand_in_lms_on_this_machine(self, database) -> None:
        settings = Settings(
            database_url="sqlite://", base_url=TOOL_BASE_URL, secret_key="s" * 40, demo=True
        )
        app = create_app(settings, database)
        with TestClient(app, base_url=TOOL_BASE_URL) as client:
            ancestors = _directives(client.get("/healthz"))["frame-ancestors"]
        assert "http://127.0.0.1:*" in ancestors and "http://localhost:*" in ancestors
