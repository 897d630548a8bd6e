"""LTI Advantage Dynamic Registration (1EdTech LTI-DR 1.0) against a platform that behaves
like Moodle 5.1 over real HTTP, approval of what registered itself, one-time invitations,
the published tool configuration, and ``blend727 platform add --from-json``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.core.db import Database
from app.core.time import utcnow
from app.main import create_app
from app.platforms.models import Deployment, Platform, PlatformInvitation, PlatformStatus
from app.platforms.repository import PlatformRepository
from app.platforms.service import (
    DynamicRegistrationService,
    PlatformService,
    invitation_hash,
)
from lti.errors import RegistrationRefused
from lti.http import build_session
from lti.registration import PlatformConfiguration, RegisteredTool
from tests.conftest import TOOL_BASE_URL
from tests.helpers import closed_port_url
from tests.lti_platform import (
    AGS_LINEITEM_READONLY_SCOPE,
    AGS_LINEITEM_SCOPE,
    AGS_RESULT_READONLY_SCOPE,
    AGS_SCORE_SCOPE,
    LTI_PLATFORM_CONFIGURATION,
    LTI_TOOL_CONFIGURATION,
    NRPS_SCOPE,
    PlatformResponse,
    TestPlatform,
    _registration_problem,
)
from tests.test_cli import cli_env, run

USES_FIXTURES = (cli_env,)  # the CLI tests' databases (SQLite and PostgreSQL)

REGISTER = f"{TOOL_BASE_URL}/lti/register"
WANTED_SCOPES = {
    AGS_LINEITEM_SCOPE,
    AGS_LINEITEM_READONLY_SCOPE,
    AGS_RESULT_READONLY_SCOPE,
    AGS_SCORE_SCOPE,
    NRPS_SCOPE,
}


@pytest.fixture()
def settings() -> Settings:
    """The test platform lives on http://127.0.0.1, which only tests and the demo accept."""
    return Settings(
        inprocess_worker=False,
        database_url="sqlite://",
        base_url=TOOL_BASE_URL,
        secret_key="test-secret-" + "x" * 32,
        demo=False,
        registration_allow_http_loopback=True,
    )


@pytest.fixture()
def lms(platform_http: str) -> TestPlatform:
    """A Moodle-like platform that has not met the tool yet."""
    return TestPlatform.create_registering(platform_http)


def counts(db: Session) -> tuple[int, int, int]:
    """Platforms, deployments and used invitations: what a registration may write."""
    db.expire_all()
    used = select(func.count()).select_from(PlatformInvitation)
    return (
        db.scalar(select(func.count()).select_from(Platform)) or 0,
        db.scalar(select(func.count()).select_from(Deployment)) or 0,
        db.scalar(used.where(PlatformInvitation.used_at.is_not(None))) or 0,
    )


def stored(db: Session, lms: TestPlatform) -> Platform:
    db.expire_all()
    row = PlatformRepository(db).by_issuer_and_client(lms.issuer, lms.client_id)
    assert row is not None
    return row


def register(client: TestClient, lms: TestPlatform, *, invite: str | None = None, **kw: Any):
    tool_url = REGISTER + (f"?{urlencode({'invite': invite})}" if invite else "")
    return client.get(lms.registration_start_url(tool_url, **kw))


def refused(response: Any, code: str, status: int) -> None:
    assert response.status_code == status, response.text
    assert code in response.text
    assert "text/html" in response.headers["content-type"]


class TestDynamicRegistration:
    def test_a_registered_platform_waits_for_approval_then_launches(
        self, client: TestClient, db: Session, lms: TestPlatform
    ) -> None:
        before = counts(db)
        page = register(client, lms)
        assert page.status_code == 200, page.text
        assert counts(db) == (before[0] + 1, before[1] + 1, before[2])
        row = stored(db, lms)
        assert row.status == PlatformStatus.PENDING
        assert not row.active
        assert (row.auth_login_url, row.token_url, row.keyset_url) == (
            lms.auth_login_url,
            lms.served_token_url,
            lms.keyset_url,
        )
        assert lms.deployment_id == "7"  # Moodle's tool type id
        assert PlatformRepository(db).deployment(row.id, "7") is not None
        assert f"blend727 platform approve {row.id}" in page.text

        login = client.get("/lti/login?" + urlencode(lms.login_params()))
        refused(login, "platform_pending", 403)

        PlatformService(db).approve(row.id)
        db.commit()
        assert lms.launch(client).status_code == 303
        assert client.get("/").status_code == 200

    def test_the_request_is_what_the_spec_and_moodle_ask_for(
        self, client: TestClient, lms: TestPlatform
    ) -> None:
        token = lms.registration_token()
        assert register(client, lms, token=token).status_code == 200
        request = lms.registration_requests[-1]
        assert request["headers"]["authorization"] == f"Bearer {token}"
        body = request["body"]
        assert body["application_type"] == "web"
        assert body["response_types"] == ["id_token"]
        assert set(body["grant_types"]) == {"implicit", "client_credentials"}
        assert body["initiate_login_uri"] == f"{TOOL_BASE_URL}/lti/login"
        assert body["redirect_uris"] == [f"{TOOL_BASE_URL}/lti/launch"]
        assert body["jwks_uri"] == f"{TOOL_BASE_URL}/lti/jwks.json"
        assert body["token_endpoint_auth_method"] == "private_key_jwt"
        assert body["client_name"] == body["client_name#vi"]
        assert "7-2-7" in body["client_name#en"] and body["client_name#en"] != body["client_name"]
        # AGS with column management and NRPS, not the tool settings Moodle also offers
        assert set(body["scope"].split()) == WANTED_SCOPES
        tool = body[LTI_TOOL_CONFIGURATION]
        assert tool["domain"] == "tool.test"
        assert tool["target_link_uri"] == f"{TOOL_BASE_URL}/lti/launch"
        assert {"iss", "sub", "name", "email"} <= set(tool["claims"])
        messages = {m["type"]: m for m in tool["messages"]}
        assert set(messages) == {"LtiResourceLinkRequest", "LtiDeepLinkingRequest"}
        deep = messages["LtiDeepLinkingRequest"]
        assert deep["target_link_uri"] == f"{TOOL_BASE_URL}/lti/launch"
        assert deep["placements"] == ["AddContentMenu"]  # what this Moodle offers
        assert deep["label"] and deep["label#en"]
        assert lms.registration_refusals == []

    def test_only_what_the_platform_offers_is_requested(
        self, client: TestClient, lms: TestPlatform
    ) -> None:
        def no_column_management(config: dict[str, Any]) -> None:
            config["scopes_supported"] = [AGS_SCORE_SCOPE, NRPS_SCOPE, "openid"]
            config[LTI_PLATFORM_CONFIGURATION]["messages_supported"] = ["LtiResourceLinkRequest"]

        lms.openid_mutate = no_column_management
        assert register(client, lms).status_code == 200
        body = lms.registration_requests[-1]["body"]
        assert body["scope"].split() == [AGS_SCORE_SCOPE, NRPS_SCOPE]
        assert [m["type"] for m in body[LTI_TOOL_CONFIGURATION]["messages"]] == [
            "LtiResourceLinkRequest"
        ]

    def test_messages_supported_as_objects_with_placements(
        self, client: TestClient, lms: TestPlatform
    ) -> None:
        def spec_style(config: dict[str, Any]) -> None:
            lti = config[LTI_PLATFORM_CONFIGURATION]
            lti.pop("placements")
            lti["messages_supported"] = [
                {"type": "LtiResourceLinkRequest"},
                {"type": "LtiDeepLinkingRequest", "placements": ["ContentArea", "RichTextEditor"]},
            ]

        lms.openid_mutate = spec_style
        assert register(client, lms).status_code == 200
        messages = lms.registration_requests[-1]["body"][LTI_TOOL_CONFIGURATION]["messages"]
        deep = next(m for m in messages if m["type"] == "LtiDeepLinkingRequest")
        assert deep["placements"] == ["ContentArea"]

    def test_the_page_says_what_happens_next_and_lets_the_lms_close_it(
        self, client: TestClient, lms: TestPlatform
    ) -> None:
        page = register(client, lms)
        assert page.status_code == 200
        assert "Manage tools" in page.text  # in Moodle the tool stays pending
        assert "<script>" not in page.text
        assert '<script src="/static/lti-register.js"></script>' in page.text
        assert 'data-subject="org.imsglobal.lti.close"' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        script = client.get("/static/lti-register.js")
        assert script.status_code == 200
        assert "postMessage" in script.text and "window.opener || window.parent" in script.text

    def test_the_page_in_english(self, client: TestClient, lms: TestPlatform) -> None:
        page = client.get(lms.registration_start_url(REGISTER + "?lang=en"))
        assert page.status_code == 200
        assert "In Moodle the tool stays pending until a Moodle site administrator" in page.text
        assert "must also approve this connection" in page.text

    def test_registering_again_with_the_same_client_is_an_update(
        self, client: TestClient, db: Session, lms: TestPlatform
    ) -> None:
        assert register(client, lms).status_code == 200
        first = stored(db, lms)
        PlatformService(db).approve(first.id)
        db.commit()
        before = counts(db)
        # The LMS updates the existing tool (Moodle's "reg-update"): same client, same type.
        answer = {
            "client_id": lms.client_id,
            LTI_TOOL_CONFIGURATION: {"deployment_id": lms.deployment_id},
        }
        lms.registration_answer = PlatformResponse(200, json.dumps(answer).encode())
        page = client.get(lms.registration_start_url(REGISTER + "?lang=en"))
        assert page.status_code == 200
        assert "already knew" in page.text
        assert counts(db) == before
        assert stored(db, lms).status == PlatformStatus.ACTIVE  # approval kept


class TestRegistrationInvitations:
    def test_an_invited_platform_is_active_at_once_and_the_invitation_works_once(
        self, client: TestClient, db: Session, lms: TestPlatform, platform_http: str
    ) -> None:
        token, _ = PlatformService(db).invite(name="Moodle Sở GD&ĐT Hà Giang")
        db.commit()
        page = register(client, lms, invite=token)
        assert page.status_code == 200, page.text
        row = stored(db, lms)
        assert row.status == PlatformStatus.ACTIVE
        assert row.name == "Moodle Sở GD&ĐT Hà Giang"
        assert "platform approve" not in page.text
        assert lms.launch(client).status_code == 303

        other = TestPlatform.create_registering(platform_http)
        before = counts(db)
        again = register(client, other, invite=token)
        refused(again, "invitation_invalid", 403)
        assert counts(db) == before
        assert other.registration_requests == []  # refused before anything was sent

    def test_an_expired_or_unknown_invitation_is_refused(
        self, client: TestClient, db: Session, lms: TestPlatform
    ) -> None:
        token, _ = PlatformService(db).invite(expires_hours=1, now=utcnow() - timedelta(hours=2))
        db.commit()
        before = counts(db)
        refused(register(client, lms, invite=token), "invitation_invalid", 403)
        refused(register(client, lms, invite="made-up"), "invitation_invalid", 403)
        assert counts(db) == before
        assert lms.registration_requests == []

    def test_only_a_hash_of_the_invitation_is_kept(self, db: Session) -> None:
        token, invitation = PlatformService(db).invite(name="x")
        assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in {invitation.token_hash, invitation.name}

    def test_two_registrations_racing_for_one_invitation(self, db: Session) -> None:
        token, _ = PlatformService(db).invite()
        service = PlatformService(db)
        first = service.store_registration(_config(), RegisteredTool("c1", "1", ""), invite=token)
        second = service.store_registration(_config(), RegisteredTool("c2", "2", ""), invite=token)
        assert (first.status, first.invited) == (PlatformStatus.ACTIVE, True)
        assert (second.status, second.invitation_taken) == (PlatformStatus.PENDING, True)

    def test_an_invitation_never_enables_a_disabled_platform(self, db: Session) -> None:
        service = PlatformService(db)
        first = service.store_registration(_config(), RegisteredTool("c1", "1", ""))
        service.set_status(first.platform_id, PlatformStatus.DISABLED)
        token, _ = service.invite()
        again = service.store_registration(_config(), RegisteredTool("c1", "2", ""), invite=token)
        assert (again.platform_id, again.created, again.status) == (
            first.platform_id,
            False,
            PlatformStatus.DISABLED,
        )
        assert len(PlatformRepository(db).deployments_of(first.platform_id)) == 2


def _config(**overrides: Any) -> PlatformConfiguration:
    values: dict[str, Any] = {
        "configuration_url": "https://moodle.example.edu.vn/mod/lti/openid-configuration.php",
        "issuer": "https://moodle.example.edu.vn",
        "authorization_endpoint": "https://moodle.example.edu.vn/mod/lti/auth.php",
        "token_endpoint": "https://moodle.example.edu.vn/mod/lti/token.php",
        "jwks_uri": "https://moodle.example.edu.vn/mod/lti/certs.php",
        "registration_endpoint": "https://moodle.example.edu.vn/mod/lti/openid-registration.php",
        "scopes_supported": frozenset(),
        "messages_supported": frozenset({"LtiResourceLinkRequest"}),
        "placements": {},
        "product_family_code": "moodle",
    }
    return PlatformConfiguration(**(values | overrides))


def _set(path: str | tuple[str, ...], value: Any) -> Any:
    """An ``openid_mutate`` that sets (or with ``...`` removes) one configuration field."""

    def mutate(config: dict[str, Any]) -> None:
        target = config
        *parents, key = (path,) if isinstance(path, str) else path
        for parent in parents:
            target = target[parent]
        if value is ...:
            target.pop(key)
        else:
            target[key] = value(config) if callable(value) else value

    return mutate


class TestRegistrationFailures:
    @pytest.mark.parametrize(
        ("mutate", "code"),
        [
            (_set("issuer", lambda c: c["issuer"].rsplit("/", 1)[0] + "/other"), "issuer_mismatch"),
            # a naive "starts with" would accept http://127.0.0.1:N/p1 for …/p12/…
            (_set("issuer", lambda c: c["issuer"][:-1]), "issuer_mismatch"),
            (_set("issuer", lambda c: c["issuer"].replace("http:", "ftp:")), "insecure_url"),
            (_set("id_token_signing_alg_values_supported", ["HS256"]), "unsupported_platform"),
            (_set("token_endpoint_auth_methods_supported", ["client_secret_basic"]),
             "unsupported_platform"),
            (_set("registration_endpoint", ...), "bad_configuration"),
            (_set("jwks_uri", "http://lms.example.edu.vn/certs.php"), "insecure_url"),
            (_set("scopes_supported", ...), "bad_configuration"),
            (_set(LTI_PLATFORM_CONFIGURATION, ...), "bad_configuration"),
            (_set((LTI_PLATFORM_CONFIGURATION, "messages_supported"), ["LtiDeepLinkingRequest"]),
             "unsupported_platform"),
        ],
        ids=[
            "issuer-elsewhere",
            "issuer-prefix-not-at-a-path-boundary",
            "issuer-not-https",
            "no-rs256",
            "no-private-key-jwt",
            "no-registration-endpoint",
            "keyset-over-http",
            "no-scopes-supported",
            "no-lti-platform-configuration",
            "no-resource-link-launches",
        ],
    )  # fmt: skip
    def test_a_configuration_that_breaks_the_spec(
        self, client: TestClient, db: Session, lms: TestPlatform, mutate: Any, code: str
    ) -> None:
        lms.openid_mutate = mutate
        before = counts(db)
        refused(register(client, lms), code, 502)
        assert counts(db) == before
        assert lms.registration_requests == []

    def test_the_platform_refuses_the_registration(
        self, client: TestClient, db: Session, lms: TestPlatform
    ) -> None:
        lms.registration_answer = PlatformResponse(
            400, b'{"error": "invalid_client_metadata", "error_description": "missing_domain"}'
        )
        before = counts(db)
        page = register(client, lms)
        refused(page, "registration_refused", 502)
        assert "missing_domain" in page.text
        assert counts(db) == before

    def test_moodle_style_plain_text_refusal(
        self, client: TestClient, db: Session, lms: TestPlatform
    ) -> None:
        lms.registration_answer = PlatformResponse(400, b"invalid_redirect_uris", "text/html")
        page = register(client, lms)
        refused(page, "registration_refused", 502)
        assert "invalid_redirect_uris" in page.text

    def test_a_used_registration_token_is_refused(
        self, client: TestClient, db: Session, lms: TestPlatform
    ) -> None:
        token = lms.registration_token()
        assert register(client, lms, token=token).status_code == 200
        after_first = counts(db)
        page = register(client, lms, token=token)  # e.g. the page reloaded
        refused(page, "registration_token_refused", 502)
        assert "token_already_used" in page.text
        assert counts(db) == after_first
        assert lms.registration_refusals == ["token_already_used"]

    def test_no_registration_token(self, client: TestClient, db: Session, lms: TestPlatform):
        before = counts(db)
        url = REGISTER + "?" + urlencode({"openid_configuration": lms.openid_configuration_url})
        refused(client.get(url), "registration_token_refused", 502)
        assert counts(db) == before

    def test_an_answer_without_client_id(
        self, client: TestClient, db: Session, lms: TestPlatform
    ) -> None:
        lms.registration_answer = PlatformResponse(200, b'{"client_name": "x"}')
        before = counts(db)
        refused(register(client, lms), "bad_registration_response", 502)
        assert counts(db) == before

    def test_unreachable_platform(self, client: TestClient, db: Session) -> None:
        before = counts(db)
        url = closed_port_url("/mod/lti/openid-configuration.php")
        page = client.get(REGISTER + "?" + urlencode({"openid_configuration": url}))
        refused(page, "platform_unreachable", 502)
        assert counts(db) == before

    def test_opened_without_a_configuration(self, client: TestClient) -> None:
        refused(client.get(REGISTER), "registration_incomplete", 400)
        refused(client.get(REGISTER + "?invite=abc"), "registration_incomplete", 400)

    def test_plain_http_outside_loopback_is_refused_before_any_request(
        self, client: TestClient
    ) -> None:
        url = "http://moodle.example.edu.vn/mod/lti/openid-configuration.php"
        page = client.get(REGISTER + "?" + urlencode({"openid_configuration": url}))
        refused(page, "insecure_url", 400)

    def test_too_many_waiting_registrations(self, database: Database, lms: TestPlatform) -> None:
        http = build_session(2.0)
        service = DynamicRegistrationService(
            database, http, base_url=TOOL_BASE_URL, allow_http_loopback=True, max_pending=0
        )
        with pytest.raises(RegistrationRefused) as caught:
            service.register(
                openid_configuration=lms.openid_configuration_url,
                registration_token=lms.registration_token(),
            )
        assert caught.value.code == "too_many_pending"
        assert lms.registration_requests == []


class TestRegistrationTimeouts:
    @pytest.fixture()
    def slow_client(self, settings: Settings, database: Database) -> Iterator[TestClient]:
        quick = settings.model_copy(update={"http_timeout_seconds": 0.3})
        app: FastAPI = create_app(quick, database)
        with TestClient(app, base_url=TOOL_BASE_URL, follow_redirects=False) as c:
            yield c

    def test_a_platform_that_does_not_answer_in_time(
        self, slow_client: TestClient, db: Session, lms: TestPlatform
    ) -> None:
        lms.openid_delay = 1.0
        before = counts(db)
        refused(register(slow_client, lms), "platform_timeout", 504)
        assert counts(db) == before


class TestHttpOnlyForTestsAndDemo:
    def test_loopback_http_is_refused_in_production(
        self, database: Database, lms: TestPlatform
    ) -> None:
        production = Settings(
            inprocess_worker=False,
            database_url="sqlite://",
            base_url=TOOL_BASE_URL,
            secret_key="test-secret-" + "x" * 32,
        )
        with TestClient(create_app(production, database), base_url=TOOL_BASE_URL) as client:
            refused(register(client, lms), "insecure_url", 400)
        assert lms.registration_requests == []


class TestToolConfiguration:
    def test_config_json_is_a_complete_registration(
        self, client: TestClient, lms: TestPlatform
    ) -> None:
        data = client.get("/lti/config", headers={"accept": "application/json"}).json()
        # everything a registration request carries, acceptable to a Moodle-like platform
        assert _registration_problem("application/json", data, lms.openid_configuration()) is None
        assert set(data["scope"].split()) == WANTED_SCOPES
        assert data[LTI_TOOL_CONFIGURATION]["domain"] == "tool.test"
        # and what an administrator pastes into a manual form
        assert data["registration_url"] == f"{TOOL_BASE_URL}/lti/register"
        assert data["login_url"] == f"{TOOL_BASE_URL}/lti/login"
        assert data["moodle"]["lti_publickeyset"] == f"{TOOL_BASE_URL}/lti/jwks.json"
        assert data["moodle"]["lti_initiatelogin"] == f"{TOOL_BASE_URL}/lti/login"
        assert data["moodle"]["lti_redirectionuris"] == f"{TOOL_BASE_URL}/lti/launch"

    def test_config_page_offers_dynamic_registration(self, client: TestClient) -> None:
        page = client.get("/lti/config")
        assert f"{TOOL_BASE_URL}/lti/register" in page.text


# -- the command line ------------------------------------------------------------------------

MOODLE_DETAILS = {
    "Platform ID": "https://moodle.example.edu.vn",
    "Client ID": "u8Bq1Xk2ZpYt3Rw",
    "Deployment ID": "12",
    "Public keyset URL": "https://moodle.example.edu.vn/mod/lti/certs.php",
    "Access token URL": "https://moodle.example.edu.vn/mod/lti/token.php",
    "Authentication request URL": "https://moodle.example.edu.vn/mod/lti/auth.php",
}


def _write(tmp_path: Path, content: Any) -> str:
    path = tmp_path / "platform.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), "utf-8")
    return str(path)


def _platforms(env: dict[str, str]) -> list[dict[str, Any]]:
    code, out = run(env, "platform", "list", "--json")
    assert code == 0, out
    return json.loads(out)["platforms"]


class TestPlatformAddFromJson:
    def test_our_field_names(self, cli_env: dict[str, str], tmp_path: Path) -> None:
        path = _write(
            tmp_path,
            {
                "issuer": "https://canvas.example.edu.vn",
                "client_id": 10000000000042,
                "deployment_id": ["3", 4],
                "auth_login_url": "https://sso.example.edu.vn/api/lti/authorize_redirect",
                "token_url": "https://sso.example.edu.vn/login/oauth2/token",
                "keyset_url": "https://sso.example.edu.vn/api/lti/security/jwks",
                "auth_audience": "https://sso.example.edu.vn",
                "name": "Canvas",
            },
        )
        code, out = run(cli_env, "platform", "add", "--from-json", path)
        assert code == 0, out
        [row] = _platforms(cli_env)
        assert (row["client_id"], row["deployments"], row["name"]) == (
            "10000000000042",
            ["3", "4"],
            "Canvas",
        )

    def test_moodle_tool_configuration_details(
        self, cli_env: dict[str, str], tmp_path: Path
    ) -> None:
        path = _write(tmp_path, MOODLE_DETAILS)
        code, out = run(cli_env, "platform", "add", "--from-json", path, "--name", "Moodle Sở")
        assert code == 0, out
        [row] = _platforms(cli_env)
        assert row["issuer"] == "https://moodle.example.edu.vn"
        assert row["client_id"] == "u8Bq1Xk2ZpYt3Rw"
        assert row["deployments"] == ["12"]
        assert row["token_url"] == "https://moodle.example.edu.vn/mod/lti/token.php"
        assert row["keyset_url"] == "https://moodle.example.edu.vn/mod/lti/certs.php"
        assert row["auth_login_url"] == "https://moodle.example.edu.vn/mod/lti/auth.php"
        assert (row["name"], row["status"]) == ("Moodle Sở", "active")

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            ("{not json", "not valid JSON"),
            ("[1, 2]", "one JSON object"),
            ({k: v for k, v in MOODLE_DETAILS.items() if k != "Access token URL"},
             "token_url (“Access token URL”) is required"),
            (MOODLE_DETAILS | {"Client ID": ["a"]}, "Client ID must be text"),
            (MOODLE_DETAILS | {"Deployment ID": None}, "Deployment ID is required"),
            (MOODLE_DETAILS | {"Public keyset URL": "ftp://x"}, "keyset_url"),
            (MOODLE_DETAILS | {"issuer": "https://other.example"}, "given twice"),
        ],
        ids=["syntax", "not-an-object", "missing", "wrong-type", "no-deployment", "bad-url",
             "contradiction"],
    )  # fmt: skip
    def test_a_bad_file_names_the_problem_and_writes_nothing(
        self, cli_env: dict[str, str], tmp_path: Path, content: Any, message: str
    ) -> None:
        code, out = run(cli_env, "platform", "add", "--from-json", _write(tmp_path, content))
        assert code == 2
        assert message in out
        assert _platforms(cli_env) == []

    def test_a_missing_file(self, cli_env: dict[str, str], tmp_path: Path) -> None:
        code, out = run(cli_env, "platform", "add", "--from-json", str(tmp_path / "nope.json"))
        assert code == 2
        assert "cannot read" in out


class TestApprovalCommands:
    def _pending(self, env: dict[str, str], client_id: str = "dyn-1") -> int:
        _platforms(env)  # brings the schema up
        database = Database.from_url(env["BLEND727_DATABASE_URL"])
        try:
            with database.session() as session:
                outcome = PlatformService(session).store_registration(
                    _config(), RegisteredTool(client_id, "7", "")
                )
        finally:
            database.engine.dispose()
        return outcome.platform_id

    def test_list_approve_and_reject(self, cli_env: dict[str, str]) -> None:
        pid = self._pending(cli_env)
        code, out = run(cli_env, "platform", "list")
        assert code == 0
        assert "pending" in out and f"blend727 platform approve {pid}" in out
        code, out = run(cli_env, "platform", "approve", str(pid))
        assert code == 0 and "active" in out
        assert run(cli_env, "platform", "approve", str(pid))[0] == 0  # already active
        code, out = run(cli_env, "platform", "reject", str(pid))
        assert code == 2 and "waiting for approval" in out

        other = self._pending(cli_env, "dyn-2")
        code, out = run(cli_env, "platform", "reject", str(other))
        assert code == 0, out
        assert [p["id"] for p in _platforms(cli_env)] == [pid]
        assert run(cli_env, "platform", "approve", "999")[0] == 2

    def test_a_disabled_platform_is_enabled_not_approved(self, cli_env: dict[str, str]) -> None:
        pid = self._pending(cli_env)
        run(cli_env, "platform", "disable", str(pid))
        code, out = run(cli_env, "platform", "approve", str(pid))
        assert code == 2 and "platform enable" in out

    def test_invite_prints_a_one_time_url_and_keeps_only_its_hash(
        self, cli_env: dict[str, str]
    ) -> None:
        code, out = run(
            cli_env, "platform", "invite", "--name", "Moodle Sở", "--expires-hours", "2"
        )
        assert code == 0, out
        url = next(word for word in out.split() if "/lti/register?invite=" in word)
        assert url.startswith("https://blend727.example.edu.vn/lti/register?invite=")
        token = parse_qs(urlsplit(url).query)["invite"][0]
        database = Database.from_url(cli_env["BLEND727_DATABASE_URL"])
        try:
            with database.session() as session:
                [invitation] = session.scalars(select(PlatformInvitation)).all()
                assert invitation.token_hash == invitation_hash(token) != token
                assert invitation.name == "Moodle Sở"
                assert invitation.expires_at - invitation.created_at == timedelta(hours=2)
        finally:
            database.engine.dispose()
        code, out = run(cli_env, "platform", "list")
        assert "Invitation 1 “Moodle Sở”" in out

    def test_invitation_lifetime_is_bounded(self, cli_env: dict[str, str]) -> None:
        assert run(cli_env, "platform", "invite", "--expires-hours", "0")[0] == 2
