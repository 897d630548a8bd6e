"""Refused logins and launches, each through the real HTTP flow (tool /lti/login, platform
authorize, POST /lti/launch).

Every refusal must be a 4xx page (never a 5xx) that names its reason in plain words and
carries the error code and the HTTP status of ``lti.errors.REASONS``; it must write nothing
(no user, course, resource link, membership, web session or consumed nonce) and set no
session cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import logging
import os
import re
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import text

from app.auth.dependencies import SESSION_COOKIE
from app.core.i18n import get_translations
from app.core.time import utcnow
from app.identity.repository import IdentityRepository
from app.platforms.models import PlatformStatus
from app.platforms.repository import PlatformRepository
from app.platforms.service import PlatformService
from lti import platform_keys
from lti.adapters import COOKIE_PREFIX
from lti.errors import REASONS
from tests.lti_platform import CLAIM, PlatformKey, TestPlatform

TABLES = ("app_user", "course", "resource_link", "membership", "web_session", "lti_used_nonce")


# -- helpers -------------------------------------------------------------------------------


def row_counts(db) -> dict[str, int]:
    """Rows per table, read through the test's session (it shares the app's connection)."""
    return {t: db.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


def cookie_names(response) -> list[str]:
    return [h.split("=", 1)[0].strip() for h in response.headers.get_list("set-cookie")]


class RefusalChecker:
    """Snapshots the row counts; checks that a response is a proper refusal that wrote nothing."""

    def __init__(self, db) -> None:
        self.db = db
        self.snapshot()

    def snapshot(self) -> None:
        self.before = row_counts(self.db)

    def __call__(self, response, code: str) -> str:
        status, title, detail = REASONS[code]
        assert response.status_code == status, (
            f"expected {status} {code}, got {response.status_code}: {response.text[-800:]}"
        )
        assert response.headers["content-type"].startswith("text/html")
        page = html.unescape(response.text)
        assert f"<code>{code}</code>" in page
        assert f"HTTP {status}" in page
        lang = re.search(r'<html lang="([a-z]+)"', page)
        assert lang, "the error page is a whole HTML document"
        words = get_translations(lang.group(1))
        assert words.gettext(title) in page, "the page says what went wrong, in plain words"
        assert words.gettext(detail) in page
        assert SESSION_COOKIE not in cookie_names(response), "a refusal signs no one in"
        assert row_counts(self.db) == self.before, "a refusal writes nothing"
        return page


@pytest.fixture()
def refused(db, platform) -> RefusalChecker:
    return RefusalChecker(db)


@pytest.fixture(scope="module")
def stranger() -> PlatformKey:
    """A key the platform never publishes (RSA generation is slow: once per module)."""
    return PlatformKey.generate()


def b64url(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64json(obj: Any) -> str:
    return b64url(json.dumps(obj))


def hs256_with_public_key(platform: TestPlatform, claims: dict[str, Any]) -> str:
    """The classic key-confusion forgery: HMAC keyed with the platform's public key PEM."""
    key = platform.keys[0]
    pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = b64json({"alg": "HS256", "typ": "JWT", "kid": key.kid}) + "." + b64json(claims)
    sig = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def alg_none(platform: TestPlatform, claims: dict[str, Any]) -> str:
    header = {"alg": "none", "typ": "JWT", "kid": platform.keys[0].kid}
    return b64json(header) + "." + b64json(claims) + "."


def tampered(platform: TestPlatform, claims: dict[str, Any]) -> str:
    head, _, sig = platform.sign(claims).split(".")
    return ".".join([head, b64json(claims | {"sub": "1", "roles": ["SysAdmin"]}), sig])


def post_launch(client, token: str, state: str, **kwargs: Any):
    return client.post("/lti/launch", data={"id_token": token, "state": state}, **kwargs)


def platform_row(db, platform: TestPlatform):
    row = PlatformRepository(db).by_issuer_and_client(platform.issuer, platform.client_id)
    assert row is not None
    return row


class FakeClock:
    """Stands in for ``time`` inside lti.platform_keys so a test can let time pass."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture()
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(platform_keys, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


# -- signature and keys --------------------------------------------------------------------


def _now() -> int:
    return int(time.time())


class TestForgedOrUnverifiableTokens:
    def test_signed_by_another_key_under_a_published_kid(self, client, platform, refused, stranger):
        impostor = PlatformKey(kid=platform.keys[0].kid, private=stranger.private)
        response = platform.launch(client, sign=lambda c: platform.sign(c, key=impostor))
        refused(response, "bad_signature")

    def test_tampered_payload(self, client, platform, refused):
        response = platform.launch(client, sign=lambda c: tampered(platform, c))
        refused(response, "bad_signature")

    def test_alg_none(self, client, platform, refused):
        response = platform.launch(client, sign=lambda c: alg_none(platform, c))
        refused(response, "bad_signature")

    def test_hs256_keyed_with_the_public_key(self, client, platform, refused):
        response = platform.launch(client, sign=lambda c: hs256_with_public_key(platform, c))
        refused(response, "bad_signature")

    def test_rs512(self, client, platform, refused):
        response = platform.launch(client, sign=lambda c: platform.sign(c, algorithm="RS512"))
        refused(response, "bad_signature")

    @pytest.mark.parametrize("kid", [None, 7, "", ["k"]], ids=["absent", "int", "empty", "list"])
    def test_kid_missing_or_not_a_string(self, client, platform, refused, kid):
        def sign(claims):
            head, body, sig = platform.sign(claims).split(".")
            header = json.loads(base64.urlsafe_b64decode(head + "=="))
            header.pop("kid")
            if kid is not None:
                header["kid"] = kid
            return ".".join([b64json(header), body, sig])

        refused(platform.launch(client, sign=sign), "unknown_key")

    def test_unknown_kid_on_a_cold_cache_costs_one_fetch(self, client, platform, refused, stranger):
        response = platform.launch(client, sign=lambda c: platform.sign(c, key=stranger))
        refused(response, "unknown_key")
        assert platform.jwks_hits() == 1
        # A flood of forged kids does not make the tool hammer the platform.
        response = platform.launch(client, sign=lambda c: platform.sign(c, key=stranger))
        refused(response, "unknown_key")
        assert platform.jwks_hits() == 1

    def test_unknown_kid_is_refused_after_exactly_one_refetch(
        self, client, platform, db, stranger, clock
    ):
        assert platform.launch(client).status_code == 303
        assert platform.jwks_hits() == 1
        refused = RefusalChecker(db)
        clock.offset += platform_keys._MIN_REFETCH_SECONDS + 1
        response = platform.launch(client, sign=lambda c: platform.sign(c, key=stranger))
        refused(response, "unknown_key")
        assert platform.jwks_hits() == 2, "one refetch on the unknown kid, no more"
        # The known key is still served from the cache.
        refused.snapshot()
        assert platform.launch(client, sub="43").status_code == 303
        assert platform.jwks_hits() == 2

    @pytest.mark.parametrize("mode", ["down", "garbage"])
    def test_jwks_unavailable(self, client, platform, refused, mode):
        platform.jwks_mode = mode
        refused(platform.launch(client), "keys_unavailable")
        assert platform.jwks_hits() == 1

    def test_jwks_without_keys(self, client, platform, refused):
        platform.jwks_mode = "empty"
        refused(platform.launch(client), "unknown_key")


class TestJwksOutage:
    """While a platform's JWKS is down, launches are refused ``keys_unavailable`` and the tool
    asks the platform at most once per throttle window, however long the server has been up
    (``time.monotonic()`` counts from boot)."""

    @pytest.mark.parametrize("uptime", [100.0, 86_400.0], ids=["just-booted", "up-for-a-day"])
    def test_outage_is_throttled_and_reported(self, client, platform, refused, clock, uptime):
        clock.offset = uptime - time.monotonic()
        platform.jwks_mode = "down"
        for _ in range(3):
            refused(platform.launch(client), "keys_unavailable")
        assert platform.jwks_hits() == 1, "one fetch per throttle window"
        platform.jwks_mode = "ok"
        clock.offset += platform_keys._MIN_REFETCH_SECONDS + 1
        assert platform.launch(client).status_code == 303
        assert platform.jwks_hits() == 2

    def test_platform_recovers_after_the_throttle_window(self, client, platform, refused, clock):
        platform.jwks_mode = "down"
        refused(platform.launch(client), "keys_unavailable")
        platform.jwks_mode = "ok"
        clock.offset += platform_keys._MIN_REFETCH_SECONDS + 1
        assert platform.launch(client).status_code == 303


# -- claims --------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(**values: Any) -> Mutation:
    return lambda c: c.update(values)


def _claim(name: str, value: Any) -> Mutation:
    return lambda c: c.__setitem__(CLAIM + name, value)


def _drop(name: str) -> Mutation:
    return lambda c: c.pop(name)


def _drop_resource_link_id(c: dict[str, Any]) -> None:
    c[CLAIM + "resource_link"].pop("id")


def _times(iat: int, exp: int) -> Mutation:
    return lambda c: c.update(iat=_now() + iat, exp=_now() + exp)


CLAIM_CASES: dict[str, tuple[str, Mutation]] = {
    # issuer and audience
    "iss-not-registered": ("unknown_platform", _set(iss="https://evil.test")),
    "aud-another-client": ("wrong_audience", _set(aud="client-2")),
    "aud-list-with-untrusted-extra": (
        "wrong_audience",
        _set(aud=["client-1", "evil-tool"], azp="client-1"),
    ),
    "aud-list-without-azp": ("wrong_audience", _set(aud=["client-1", "evil-tool"])),
    "aud-list-azp-not-in-aud": ("wrong_audience", _set(aud=["client-1", "evil-tool"], azp="x")),
    "azp-not-ours": ("wrong_audience", _set(azp="evil-tool")),
    "aud-empty-list": ("missing_claims", _set(aud=[])),
    # time
    "expired-beyond-leeway": ("expired", _times(iat=-180, exp=-120)),
    "iat-in-the-future": ("expired", _times(iat=600, exp=660)),
    "nbf-in-the-future": ("expired", _set(nbf=_now() + 600)),
    "older-than-max-age": ("expired", _times(iat=-3600 - 60 - 30, exp=60)),
    # nonce, deployment, message
    "nonce-not-for-this-state": ("bad_nonce", _set(nonce="not-the-nonce")),
    "deployment-not-registered": ("unknown_deployment", _claim("deployment_id", "999")),
    "deployment-id-too-long": ("malformed_token", _claim("deployment_id", "9" * 300)),
    "message-type-submission-review": (
        "wrong_message_type",
        _claim("message_type", "LtiSubmissionReviewRequest"),
    ),
    "message-type-garbage": ("wrong_message_type", _claim("message_type", "Hello<script>")),
    "deep-linking-without-settings": (
        "missing_claims",
        _claim("message_type", "LtiDeepLinkingRequest"),
    ),
    "version-1.1": ("wrong_version", _claim("version", "1.1")),
    "version-garbage": ("wrong_version", _claim("version", 1.3)),
    # missing required claims, one at a time
    "no-message_type": ("missing_claims", _drop(CLAIM + "message_type")),
    "no-version": ("missing_claims", _drop(CLAIM + "version")),
    "no-deployment_id": ("missing_claims", _drop(CLAIM + "deployment_id")),
    "no-roles": ("missing_claims", _drop(CLAIM + "roles")),
    "no-sub": ("missing_claims", _drop("sub")),
    "no-resource_link-id": ("missing_claims", _drop_resource_link_id),
    "no-resource_link": ("missing_claims", _drop(CLAIM + "resource_link")),
    "no-target_link_uri": ("missing_claims", _drop(CLAIM + "target_link_uri")),
    "no-nonce": ("missing_claims", _drop("nonce")),
    "no-exp": ("missing_claims", _drop("exp")),
    "no-iat": ("missing_claims", _drop("iat")),
    "no-iss": ("missing_claims", _drop("iss")),
    "no-aud": ("missing_claims", _drop("aud")),
    # claims of the wrong shape
    "roles-not-a-list": ("missing_claims", _claim("roles", "Learner")),
    "sub-empty": ("missing_claims", _set(sub="")),
    "sub-not-a-string": ("malformed_token", _set(sub=42)),  # PyJWT: sub must be a string
    "sub-too-long": ("malformed_token", _set(sub="4" * 256)),
    "context-without-id": ("missing_claims", _claim("context", {"title": "no id"})),
    "context-id-too-long": ("malformed_token", _claim("context", {"id": "c" * 256})),
    "exp-not-a-number": ("malformed_token", _set(exp="tomorrow")),
}


class TestRefusedClaims:
    @pytest.mark.parametrize(("code", "mutate"), CLAIM_CASES.values(), ids=CLAIM_CASES.keys())
    def test_refused(self, client, platform, refused, code, mutate):
        refused(platform.launch(client, mutate=mutate), code)


# -- state, nonce and replay ---------------------------------------------------------------


class TestStateAndReplay:
    def test_state_param_differs_from_cookie(self, client, platform, refused):
        auth = platform.login(client)
        token = platform.sign(platform.claims(nonce=auth["nonce"]))
        refused(post_launch(client, token, "state-" + "0" * 36), "state_mismatch")

    def test_no_state_cookie_at_all(self, client, platform, refused):
        auth = platform.login(client)
        client.cookies.clear()
        token = platform.sign(platform.claims(nonce=auth["nonce"]))
        refused(post_launch(client, token, auth["state"]), "state_mismatch")

    def test_nonce_of_another_login(self, client, platform, refused):
        first = platform.login(client)
        second = platform.login(client)  # both state cookies are present
        token = platform.sign(platform.claims(nonce=first["nonce"]))
        refused(post_launch(client, token, second["state"]), "bad_nonce")

    def test_replay_after_the_tool_deleted_the_state_cookie(self, client, platform, db):
        auth = platform.login(client)
        token = platform.sign(platform.claims(nonce=auth["nonce"]))
        first = post_launch(client, token, auth["state"])
        assert first.status_code == 303
        state_cookie = COOKIE_PREFIX + auth["state"]
        deleted = [h for h in first.headers.get_list("set-cookie") if h.startswith(state_cookie)]
        assert deleted and "Max-Age=0" in deleted[0], "the launch deletes its state cookie"
        assert state_cookie not in client.cookies
        refused = RefusalChecker(db)
        refused(post_launch(client, token, auth["state"]), "state_mismatch")

    def test_replay_with_the_state_cookie_still_present(self, client, platform, db):
        auth = platform.login(client)
        token = platform.sign(platform.claims(nonce=auth["nonce"]))
        assert post_launch(client, token, auth["state"]).status_code == 303
        refused = RefusalChecker(db)
        client.cookies.set(COOKIE_PREFIX + auth["state"], auth["state"], domain="tool.test")
        refused(post_launch(client, token, auth["state"]), "replayed")
        # and again: the refusal itself consumed nothing new
        refused(post_launch(client, token, auth["state"]), "replayed")


# -- request shape -------------------------------------------------------------------------

GARBAGE_TOKENS = {
    "abc": "abc",
    "a.b.c": "a.b.c",
    "two-parts": "abc.def",
    "four-parts": "a.b.c.d",
    "dots-only": "..",
    "random-base64": ".".join(b64url(os.urandom(n)) for n in (24, 180, 256)),
    "non-json-body": b64json({"alg": "RS256", "kid": "k"}) + "." + b64url("not json") + ".c2ln",
    "json-array-body": b64json({"alg": "RS256", "kid": "k"}) + "." + b64json([1, 2]) + ".c2ln",
    "json-null-header": b64json(None) + "." + b64json({"iss": "x"}) + ".c2ln",
    "non-ascii": "é.ü.ß",
    "jwe-like": "eyJhbGciOiJSU0EtT0FFUCJ9." * 4 + "x",
}


class TestMalformedRequests:
    @pytest.mark.parametrize("token", GARBAGE_TOKENS.values(), ids=GARBAGE_TOKENS.keys())
    def test_garbage_id_token(self, client, platform, refused, token):
        auth = platform.login(client)
        refused(post_launch(client, token, auth["state"]), "malformed_token")

    def test_oversized_body(self, client, platform, refused):
        auth = platform.login(client)
        refused(post_launch(client, "x" * (64 * 1024 + 1), auth["state"]), "too_large")

    def test_oversized_id_token(self, client, platform, refused):
        auth = platform.login(client)
        claims = platform.claims(nonce=auth["nonce"], padding="p" * 40_000)
        token = platform.sign(claims)
        assert 48 * 1024 < len(token) < 63 * 1024
        refused(post_launch(client, token, auth["state"]), "too_large")

    def test_missing_id_token(self, client, platform, refused):
        auth = platform.login(client)
        response = client.post("/lti/launch", data={"state": auth["state"]})
        refused(response, "missing_parameters")

    def test_missing_state(self, client, platform, refused):
        auth = platform.login(client)
        token = platform.sign(platform.claims(nonce=auth["nonce"]))
        refused(client.post("/lti/launch", data={"id_token": token}), "missing_parameters")

    def test_empty_post(self, client, platform, refused):
        refused(client.post("/lti/launch"), "missing_parameters")

    def test_json_body_instead_of_a_form(self, client, platform, refused):
        response = client.post("/lti/launch", json={"id_token": "a.b.c", "state": "s"})
        refused(response, "missing_parameters")

    def test_get_on_the_launch_url(self, client, platform, refused):
        refused(client.get("/lti/launch"), "method_not_allowed")

    def test_put_on_the_launch_url(self, client, platform, db):
        before = row_counts(db)
        response = client.put("/lti/launch", data={"id_token": "a.b.c", "state": "s"})
        assert response.status_code == 405
        assert "<code>method_not_allowed</code>" in response.text
        assert row_counts(db) == before


class TestUnstorableCharacters:
    """NUL and lone surrogates cannot be stored (PostgreSQL text, UTF-8): never a 500."""

    def test_nul_in_a_form_parameter(self, client, platform, refused):
        auth = platform.login(client)
        token = platform.sign(platform.claims(nonce=auth["nonce"]))
        refused(post_launch(client, token + "\x00", auth["state"]), "malformed_token")

    def test_nul_in_a_login_parameter(self, client, platform, refused):
        response = client.get("/lti/login?" + urlencode(platform.login_params(login_hint="4\x002")))
        refused(response, "malformed_token")

    @pytest.mark.parametrize(
        "claim_args",
        [
            {"sub": "4\x002", "name": "Mallory"},
            {"context": {"id": "course\x00-1", "title": "Another course"}},
            {"resource_link_id": "rl\x00-1"},
            {"mutate": _claim("deployment_id", "\x001")},
        ],
        ids=["sub", "context-id", "resource-link-id", "deployment-id"],
    )
    def test_identifier_with_nul_is_refused_not_merged(self, client, platform, db, claim_args):
        assert platform.launch(client).status_code == 303  # user 42, course-1, rl-1, deployment 1
        refused = RefusalChecker(db)
        refused(platform.launch(client, **claim_args), "malformed_token")


# -- login ---------------------------------------------------------------------------------

LOGIN_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "no-iss": ("missing_parameters", {"iss": None}),
    "empty-iss": ("missing_parameters", {"iss": " "}),
    "no-login_hint": ("missing_parameters", {"login_hint": None}),
    "foreign-target": ("bad_target", {"target_link_uri": "https://evil.test/lti/launch"}),
    "http-target": ("bad_target", {"target_link_uri": "http://tool.test/lti/launch"}),
    "unregistered-issuer": ("unknown_platform", {"iss": "https://other-lms.test"}),
    "unregistered-client": ("unknown_platform", {"client_id": "client-9"}),
    "unknown-deployment": ("unknown_deployment", {"lti_deployment_id": "999"}),
    "deployment-too-long": ("unknown_deployment", {"lti_deployment_id": "9" * 300}),
}


class TestRefusedLogin:
    @pytest.mark.parametrize(("code", "overrides"), LOGIN_CASES.values(), ids=LOGIN_CASES.keys())
    def test_refused(self, client, platform, refused, code, overrides):
        query = urlencode(platform.login_params(**overrides))
        response = client.get("/lti/login?" + query)
        refused(response, code)
        assert not any(n.startswith(COOKIE_PREFIX) for n in cookie_names(response))

    def test_refused_by_post_too(self, client, platform, refused):
        response = client.post("/lti/login", data=platform.login_params(iss=None))
        refused(response, "missing_parameters")


class TestDisabledPlatform:
    def _disable(self, db, platform):
        PlatformService(db).set_status(platform_row(db, platform).id, PlatformStatus.DISABLED)
        db.commit()

    def test_login_refused(self, client, platform, db, refused):
        self._disable(db, platform)
        response = client.get("/lti/login?" + urlencode(platform.login_params()))
        refused(response, "platform_disabled")

    def test_existing_sessions_close(self, client, platform, db):
        assert platform.launch(client).status_code == 303
        assert client.get("/").status_code == 200
        self._disable(db, platform)
        assert client.get("/").status_code == 401

    def test_launch_in_flight_refused(self, client, platform, db, refused):
        auth = platform.login(client)
        self._disable(db, platform)
        token = platform.sign(platform.claims(nonce=auth["nonce"]))
        refused(post_launch(client, token, auth["state"]), "platform_disabled")


class TestDisabledUser:
    def test_new_launch_refused_and_old_session_closed(self, client, platform, db):
        assert platform.launch(client).status_code == 303
        assert client.get("/").status_code == 200
        user = IdentityRepository(db).set_user_disabled(
            platform_row(db, platform).id, "42", utcnow(), "left the programme"
        )
        assert user is not None
        db.commit()
        refused = RefusalChecker(db)
        refused(platform.launch(client), "user_disabled")
        assert client.get("/").status_code == 401

    def test_other_users_still_launch(self, client, platform, db):
        assert platform.launch(client).status_code == 303
        IdentityRepository(db).set_user_disabled(
            platform_row(db, platform).id, "42", utcnow(), None
        )
        db.commit()
        assert platform.launch(client, sub="43").status_code == 303


# -- for programs, and for the log ---------------------------------------------------------


class TestRefusalForApiClients:
    def test_problem_json(self, client, platform, db, settings):
        before = row_counts(db)
        auth = platform.login(client)
        response = client.post(
            "/lti/launch",
            data={"id_token": "a.b.c", "state": auth["state"]},
            headers={"Accept": "application/json"},
        )
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert body["status"] == 400
        assert body["code"] == "malformed_token"
        assert body["type"].endswith("/malformed_token")
        assert body["title"] == get_translations(settings.default_locale).gettext(
            REASONS["malformed_token"][1]
        )
        assert body["detail"]
        assert row_counts(db) == before

    def test_problem_json_for_a_bad_signature(self, client, platform, db, stranger):
        before = row_counts(db)
        impostor = PlatformKey(kid=platform.keys[0].kid, private=stranger.private)
        auth = platform.login(client)
        token = platform.sign(platform.claims(nonce=auth["nonce"]), key=impostor)
        response = post_launch(client, token, auth["state"], headers={"Accept": "application/json"})
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "bad_signature"
        assert SESSION_COOKIE not in cookie_names(response)
        assert row_counts(db) == before

    def test_a_browser_asking_for_html_and_json_gets_the_page(self, client, platform, refused):
        auth = platform.login(client)
        response = post_launch(
            client, "a.b.c", auth["state"], headers={"Accept": "text/html,application/json"}
        )
        refused(response, "malformed_token")


class TestRefusalIsLogged:
    def test_logged_with_its_code_and_detail_kept_off_the_page(
        self, client, platform, caplog, stranger, refused
    ):
        caplog.set_level(logging.WARNING, logger="blend727.errors")
        response = platform.launch(client, sign=lambda c: platform.sign(c, key=stranger))
        page = refused(response, "unknown_key")
        records = [r for r in caplog.records if r.name == "blend727.errors"]
        assert records, "the refusal is logged"
        assert all(r.levelno == logging.WARNING for r in records)
        logged = " ".join(r.getMessage() for r in records)
        assert "unknown_key" in logged
        assert stranger.kid in logged and platform.keyset_url in logged
        # The technical detail is for the log only.
        assert stranger.kid not in page and platform.keyset_url not in page
