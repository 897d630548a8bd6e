"""Launches whose browser keeps no cookie of blend727's inside the LMS's iframe (issue #6),
through the real HTTP flow with the independent test platform:

* a login offered the platform's storage (``lti_storage_target``), or run in a frame without
  any cookie of ours, answers with the page that stores the state / tests cookies;
* a launch without its state cookie is validated fully but writes nothing, and answers with
  the page that reads the state back from the platform's storage;
* ``/lti/launch/confirm`` completes it once (the nonce is consumed there; a replay, another
  state or a post from another site is refused, writing nothing);
* ``/lti/continue`` goes on when the session cookie came back, otherwise offers a new window
  where its one-time, two-minute hand-off becomes the session cookie.

The common path (state cookie present) is untouched: see ``test_launch_accepted.py``.
"""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import select, text

from app.auth.dependencies import SESSION_COOKIE
from app.core.i18n import gettext
from app.core.time import utcnow
from app.launch.models import LaunchHandoff
from app.launch.service import HANDOFF_SECONDS, purge_expired
from lti.adapters import COOKIE_PREFIX
from lti.errors import ADVICE, REASONS
from lti.login import storage_key
from tests.lti_platform import INSTRUCTOR, PlatformKey, TestPlatform

TABLES = (
    "app_user",
    "course",
    "resource_link",
    "membership",
    "web_session",
    "lti_used_nonce",
    "lti_handoff",
)
FRAMED = {"Sec-Fetch-Dest": "iframe", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
OWN_PAGE = {"Origin": "https://tool.test", "Sec-Fetch-Site": "same-origin"}


def row_counts(db) -> dict[str, int]:
    return {t: db.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


def set_cookie_names(response) -> list[str]:
    return [h.split("=", 1)[0].strip() for h in response.headers.get_list("set-cookie")]


def attribute(page: str, name: str) -> str | None:
    found = re.search(rf'\b{name}="([^"]*)"', page)
    return html.unescape(found.group(1)) if found else None


def hidden(page: str, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)">', page)
    assert found, f"no hidden {name} field"
    return html.unescape(found.group(1))


class Flow:
    """One browser's launch through the test platform, step by step."""

    def __init__(self, client, platform: TestPlatform) -> None:
        self.client = client
        self.platform = platform

    def login(self, *, headers: dict[str, str] | None = None, **overrides: Any):
        query = urlencode(self.platform.login_params(**overrides))
        return self.client.get("/lti/login?" + query, headers=headers or {})

    def storage_login(self, target: str = "_parent") -> dict[str, str]:
        """A login with the platform's storage; returns the authorization request."""
        response = self.login(lti_storage_target=target)
        assert response.status_code == 200, response.text
        next_url = attribute(response.text, "data-next")
        assert next_url
        return self.platform.authorize(next_url)

    def token(self, auth: dict[str, str], **claim_args: Any) -> str:
        return self.platform.sign(self.platform.claims(nonce=auth["nonce"], **claim_args))

    def launch(self, token: str, state: str, *, headers=None, **extra: str):
        data = {"id_token": token, "state": state, **extra}
        return self.client.post("/lti/launch", data=data, headers=headers or {})

    def confirm(self, token: str, state: str, *, headers=None):
        return self.client.post(
            "/lti/launch/confirm",
            data={"id_token": token, "state": state},
            headers=OWN_PAGE if headers is None else headers,
        )

    def cookieless_launch(self) -> tuple[str, str]:
        """Login with storage, then a launch whose state cookie the browser did not keep;
        returns (id_token, state) as the check page would post them."""
        auth = self.storage_login()
        self.client.cookies.clear()
        token = self.token(auth)
        page = self.launch(token, auth["state"], headers=FRAMED)
        assert page.status_code == 200, page.text
        return hidden(page.text, "id_token"), hidden(page.text, "state")

    def handoff(self) -> str:
        token, state = self.cookieless_launch()
        response = self.confirm(token, state)
        assert response.status_code == 303, response.text
        location = response.headers["location"]
        assert location.startswith("/lti/continue?")
        return parse_qs(urlsplit(location).query)["h"][0]


@pytest.fixture()
def flow(client, platform) -> Flow:
    return Flow(client, platform)


@pytest.fixture()
def nothing_written(db):
    """Call with a response: it must be a refusal with ``code`` that wrote nothing."""
    before = row_counts(db)

    def check(response, code: str) -> None:
        status = REASONS[code][0] if code in REASONS else 410
        assert response.status_code == status, response.text[-600:]
        assert f"<code>{code}</code>" in response.text
        assert SESSION_COOKIE not in set_cookie_names(response)
        assert row_counts(db) == before, "a refusal writes nothing"

    return check


# -- login -----------------------------------------------------------------------------------


class TestLoginWithPlatformStorage:
    def test_answers_with_a_page_that_stores_the_state_with_the_platform(self, flow, db):
        before = row_counts(db)
        response = flow.login(lti_storage_target="_parent")
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        page = response.text
        assert '<script src="/static/lti-storage.js"></script>' in page
        assert "<script>" not in page, "no inline script (CSP)"
        state = attribute(page, "data-value")
        assert state and re.fullmatch(r"state-[0-9a-f-]{36}\._parent", state)
        assert attribute(page, "data-mode") == "login"
        assert attribute(page, "data-target") == "_parent"
        # targetOrigin: the origin of the platform's OIDC authorization endpoint
        assert attribute(page, "data-origin") == "https://lms.test"
        assert attribute(page, "data-key") == storage_key(state) == "blend727_" + state
        auth = flow.platform.authorize(attribute(page, "data-next") or "")
        assert auth["state"] == state
        # belt and braces: the state cookie is set all the same
        assert set_cookie_names(response) == [COOKIE_PREFIX + state]
        assert row_counts(db) == before, "a login writes nothing"

    def test_a_named_storage_frame_is_kept(self, flow):
        page = flow.login(lti_storage_target="post_message_forwarding").text
        assert attribute(page, "data-target") == "post_message_forwarding"
        assert (attribute(page, "data-value") or "").endswith(".post_message_forwarding")

    @pytest.mark.parametrize("target", ["", "a b", "<x>", "_parent\u00e9", "t" * 65])
    def test_an_unusable_storage_target_is_ignored(self, flow, target):
        response = flow.login(lti_storage_target=target)
        assert response.status_code == 302, "plain cookie login"
        state = parse_qs(urlsplit(response.headers["location"]).query)["state"][0]
        assert "." not in state

    def test_a_framed_login_without_our_cookies_tests_cookies_first(self, flow):
        response = flow.login(headers=FRAMED, lti_storage_target=None)
        assert response.status_code == 200
        page = response.text
        assert attribute(page, "data-mode") == "login"
        assert attribute(page, "data-target") is None, "no storage offered"
        assert attribute(page, "data-cookie") == "Path=/; Secure; SameSite=None; Partitioned"
        # the last resort starts the same login again, top-level, before the platform has
        # used its lti_message_hint (Moodle accepts each hint once)
        link = re.search(r'<a [^>]*id="lti-new-window"[^>]*>', page)
        assert link and 'target="_blank"' in link.group(0) and 'rel="noopener"' in link.group(0)
        again = attribute(link.group(0), "href") or ""
        assert again.startswith("/lti/login?")
        params = {k: v[0] for k, v in parse_qs(urlsplit(again).query).items()}
        assert params == flow.platform.login_params()

    def test_the_new_window_login_drops_the_storage_target(self, flow):
        page = flow.login(headers=FRAMED, lti_storage_target="_parent").text
        again = attribute(re.search(r'<a [^>]*id="lti-new-window"[^>]*>', page).group(0), "href")
        assert again and "lti_storage_target" not in again

    def test_a_framed_login_that_brought_a_cookie_is_a_plain_redirect(self, flow, client):
        client.cookies.set("blend727_lang", "vi", domain="tool.test")
        assert flow.login(headers=FRAMED).status_code == 302

    def test_a_top_level_login_is_a_plain_redirect(self, flow):
        headers = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "cross-site"}
        assert flow.login(headers=headers).status_code == 302


# -- launch without the state cookie ---------------------------------------------------------


class TestLaunchWithoutStateCookie:
    def test_with_storage_the_launch_is_checked_but_nothing_is_written(self, flow, db):
        auth = flow.storage_login()
        flow.client.cookies.clear()
        token = flow.token(auth)
        before = row_counts(db)
        response = flow.launch(token, auth["state"], headers=FRAMED)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        assert row_counts(db) == before, "the check page writes nothing"
        assert SESSION_COOKIE not in set_cookie_names(response)
        page = response.text
        assert attribute(page, "data-mode") == "check"
        assert attribute(page, "data-target") == "_parent"
        assert attribute(page, "data-origin") == "https://lms.test"
        assert attribute(page, "data-key") == storage_key(auth["state"])
        assert attribute(page, "data-value") == auth["state"]
        assert '<form method="post" action="/lti/launch/confirm"' in page
        assert hidden(page, "id_token") == token and hidden(page, "state") == auth["state"]
        assert "<script>" not in page

    def test_the_storage_frame_the_platform_names_again_wins(self, flow):
        auth = flow.storage_login()
        flow.client.cookies.clear()
        page = flow.launch(
            flow.token(auth), auth["state"], lti_storage_target="post_message_forwarding"
        ).text
        assert attribute(page, "data-target") == "post_message_forwarding"

    def test_the_id_token_is_validated_before_the_check_page(self, flow, nothing_written, stranger):
        auth = flow.storage_login()
        flow.client.cookies.clear()
        claims = flow.platform.claims(nonce=auth["nonce"])
        forged = flow.platform.sign(claims, key=PlatformKey(flow.platform.keys[0].kid, stranger))
        nothing_written(flow.launch(forged, auth["state"]), "bad_signature")

    def test_another_state_is_refused(self, flow, nothing_written):
        auth = flow.storage_login()
        flow.client.cookies.clear()
        other = f"state-{uuid.uuid4()}._parent"
        nothing_written(flow.launch(flow.token(auth), other), "bad_nonce")

    def test_a_framed_launch_without_cookie_or_storage_says_cookies_are_blocked(
        self, flow, nothing_written
    ):
        auth = flow.platform.login(flow.client)
        flow.client.cookies.clear()
        response = flow.launch(flow.token(auth), auth["state"], headers=FRAMED)
        nothing_written(response, "cookies_blocked")
        advice = gettext("vi", ADVICE["cookies_blocked"])
        assert advice in html.unescape(response.text), "it says what to do instead"

    def test_a_launch_with_its_state_cookie_takes_the_usual_path(self, flow, db):
        auth = flow.storage_login()  # the state cookie came back
        response = flow.launch(flow.token(auth), auth["state"], headers=FRAMED)
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        assert SESSION_COOKIE in set_cookie_names(response)
        assert row_counts(db)["lti_handoff"] == 0, "no hand-off on the usual path"


@pytest.fixture(scope="module")
def stranger():
    return PlatformKey.generate().private


# -- confirmation ----------------------------------------------------------------------------


class TestConfirmation:
    def test_completes_the_launch_once_and_leaves_a_hand_off(self, flow, db):
        token, state = flow.cookieless_launch()
        before = row_counts(db)
        response = flow.confirm(token, state)
        assert response.status_code == 303, response.text
        assert response.headers["location"].startswith("/lti/continue?h=")
        assert response.headers["cache-control"] == "no-store"
        assert SESSION_COOKIE in set_cookie_names(response)
        after = row_counts(db)
        assert after["lti_used_nonce"] == before["lti_used_nonce"] + 1
        assert after["web_session"] == before["web_session"] + 1
        assert after["lti_handoff"] == before["lti_handoff"] + 1
        expires = db.scalars(select(LaunchHandoff.expires_at)).one()
        left = (expires - utcnow()).total_seconds()
        assert 0 < left <= HANDOFF_SECONDS

    def test_a_replay_is_refused(self, flow, db):
        token, state = flow.cookieless_launch()
        assert flow.confirm(token, state).status_code == 303
        flow.client.cookies.clear()
        before = row_counts(db)
        again = flow.confirm(token, state)
        assert again.status_code == 401 and "<code>replayed</code>" in again.text
        assert row_counts(db) == before
        # and the check page itself no longer shows for that token
        assert "<code>replayed</code>" in flow.launch(token, state).text

    def test_another_state_is_refused(self, flow, nothing_written):
        token, _state = flow.cookieless_launch()
        nothing_written(flow.confirm(token, f"state-{uuid.uuid4()}._parent"), "bad_nonce")

    @pytest.mark.parametrize(
        "headers",
        [
            {"Origin": "https://evil.test", "Sec-Fetch-Site": "cross-site"},
            {"Origin": "https://tool.test", "Sec-Fetch-Site": "cross-site"},
            {"Origin": "https://evil.test"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "same-site"},
        ],
    )
    def test_a_post_from_another_site_is_refused(self, flow, nothing_written, headers):
        token, state = flow.cookieless_launch()
        nothing_written(flow.confirm(token, state, headers=headers), "storage_unconfirmed")

    def test_a_login_without_storage_cannot_be_confirmed(self, flow, nothing_written):
        auth = flow.platform.login(flow.client)
        flow.client.cookies.clear()
        response = flow.confirm(flow.token(auth), auth["state"])
        nothing_written(response, "storage_unconfirmed")


# -- the hand-off to a new window ------------------------------------------------------------


class TestContinue:
    def test_goes_on_when_the_session_cookie_came_back(self, flow, db):
        handoff = flow.handoff()  # the test client kept the session cookie
        response = flow.client.get(f"/lti/continue?h={handoff}", headers=FRAMED)
        assert response.status_code == 303 and response.headers["location"] == "/"
        assert row_counts(db)["lti_handoff"] == 0, "the hand-off is burnt"
        assert flow.client.get("/").status_code == 200

    def test_without_the_cookie_in_the_frame_it_offers_a_new_window(self, flow, db):
        handoff = flow.handoff()
        flow.client.cookies.clear()
        response = flow.client.get(f"/lti/continue?h={handoff}", headers=FRAMED)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        assert SESSION_COOKIE not in set_cookie_names(response)
        link = re.search(r'<a [^>]*id="lti-new-window"[^>]*>', response.text)
        assert link and 'target="_blank"' in link.group(0) and 'rel="noopener"' in link.group(0)
        assert attribute(link.group(0), "href") == f"/lti/continue?h={handoff}&w=1"
        assert row_counts(db)["lti_handoff"] == 1, "still there for the new window"

    def test_the_new_window_exchanges_it_once_for_the_session(self, flow, db):
        handoff = flow.handoff()
        flow.client.cookies.clear()
        new_window = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "same-origin"}
        response = flow.client.get(f"/lti/continue?h={handoff}&w=1", headers=new_window)
        assert response.status_code == 303 and response.headers["location"] == "/"
        assert SESSION_COOKIE in set_cookie_names(response)
        assert flow.client.get("/").status_code == 200, "signed in in the new window"
        assert row_counts(db)["lti_handoff"] == 0
        # single use: a second exchange (another browser with the same link) fails clearly
        flow.client.cookies.clear()
        again = flow.client.get(f"/lti/continue?h={handoff}&w=1", headers=new_window)
        assert again.status_code == 410
        assert "<code>handoff_invalid</code>" in again.text
        assert SESSION_COOKIE not in set_cookie_names(again)

    def test_an_expired_hand_off_is_refused(self, flow, db):
        handoff = flow.handoff()
        flow.client.cookies.clear()
        db.execute(
            text("UPDATE lti_handoff SET expires_at = :t"),
            {"t": utcnow() - timedelta(seconds=1)},
        )
        for query in (f"h={handoff}&w=1", f"h={handoff}"):
            response = flow.client.get(f"/lti/continue?{query}")
            assert response.status_code == 410, response.text
            assert SESSION_COOKIE not in set_cookie_names(response)
        purge_expired(db)
        assert row_counts(db)["lti_handoff"] == 0, "housekeeping removes it"

    def test_another_site_cannot_exchange_it(self, flow, db):
        handoff = flow.handoff()
        flow.client.cookies.clear()
        cross = {"Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "cross-site"}
        response = flow.client.get(f"/lti/continue?h={handoff}&w=1", headers=cross)
        assert response.status_code == 200, "the page, not the exchange"
        assert SESSION_COOKIE not in set_cookie_names(response)
        assert row_counts(db)["lti_handoff"] == 1

    @pytest.mark.parametrize("query", ["", "h=", "h=nothing-like-it", "h=" + "x" * 200])
    def test_a_wrong_hand_off_is_refused(self, flow, query):
        response = flow.client.get(f"/lti/continue?{query}&w=1")
        assert response.status_code == 410
        assert SESSION_COOKIE not in set_cookie_names(response)

    def test_a_deep_linking_launch_lands_on_the_picker(self, flow):
        auth = flow.storage_login()
        flow.client.cookies.clear()
        claims = flow.platform.claims(nonce=auth["nonce"], roles=[INSTRUCTOR])
        claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] = "LtiDeepLinkingRequest"
        claims.pop("https://purl.imsglobal.org/spec/lti/claim/resource_link", None)
        claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = (
            flow.platform.deep_linking_settings()
        )
        page = flow.launch(flow.platform.sign(claims), auth["state"]).text
        confirmed = flow.confirm(hidden(page, "id_token"), hidden(page, "state"))
        handoff = parse_qs(urlsplit(confirmed.headers["location"]).query)["h"][0]
        flow.client.cookies.clear()
        response = flow.client.get(f"/lti/continue?h={handoff}&w=1")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/deep-link?t=")
        assert flow.client.get(response.headers["location"]).status_code == 200
