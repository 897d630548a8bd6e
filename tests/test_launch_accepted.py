"""Valid launches, including unusual ones, through the real HTTP flow: each lands on a page
(303 to "/", then 200) that fits the person's role, language and what the LMS told us."""

from __future__ import annotations

import html
import time
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import select, text

from app.auth.dependencies import SESSION_COOKIE
from app.identity.models import Membership, User, WebSession
from lti import platform_keys
from lti.adapters import COOKIE_PREFIX
from tests.lti_platform import (
    CLAIM,
    INST_ADMIN,
    INSTRUCTOR,
    LEARNER,
    SYS_ADMIN,
    TA,
    TestPlatform,
)

TABLES = ("app_user", "course", "resource_link", "membership", "web_session", "lti_used_nonce")
UNKNOWN_ROLE = "http://example.com/vocab/roles#Visitor"


def row_counts(db) -> dict[str, int]:
    return {t: db.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}


def set_cookies(response) -> dict[str, str]:
    """name -> the whole Set-Cookie header."""
    return {h.split("=", 1)[0].strip(): h for h in response.headers.get_list("set-cookie")}


def land(client, platform: TestPlatform, **kwargs: Any) -> str:
    """Launch, follow the 303, return the start page's text (HTML entities decoded)."""
    response = platform.launch(client, **kwargs)
    assert response.status_code == 303, response.text[-800:]
    assert response.headers["location"] == "/"
    assert SESSION_COOKIE in set_cookies(response)
    page = client.get("/")
    assert page.status_code == 200, page.text[-800:]
    return html.unescape(page.text)


def badge(page: str) -> str:
    marker = 'class="badge badge-'
    assert marker in page, "the page shows the viewer's role"
    return page.split(marker, 1)[1].split('"', 1)[0]


def user_row(db, sub: str = "42"):
    return db.execute(select(User.name, User.email, User.locale).where(User.sub == sub)).one()


class FakeClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture()
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(platform_keys, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


class TestRolesLandOnTheirPage:
    @pytest.mark.parametrize(
        ("roles", "role"),
        [
            ([LEARNER], "teacher"),
            ([INSTRUCTOR], "trainer"),
            ([TA], "trainer"),
            ([LEARNER, INSTRUCTOR, TA], "trainer"),
            (["Learner"], "teacher"),
            (["Instructor"], "trainer"),
            (["Learner", "Instructor"], "trainer"),
            ([UNKNOWN_ROLE, LEARNER], "teacher"),
        ],
        ids=[
            "learner",
            "instructor",
            "ta",
            "several",
            "short-learner",
            "short-instructor",
            "short-both",
            "unknown-plus-learner",
        ],
    )
    def test_role(self, client, platform, db, roles, role):
        page = land(client, platform, roles=roles, locale="en")
        assert badge(page) == role
        assert db.execute(select(WebSession.role)).scalar_one() == role
        assert db.execute(select(Membership.role)).scalar_one() == role
        assert db.execute(select(Membership.lti_roles)).scalar_one() == roles

    @pytest.mark.parametrize("roles", [[UNKNOWN_ROLE], []], ids=["unknown-only", "empty"])
    def test_no_usable_role_gets_the_polite_page(self, client, platform, roles):
        page = land(client, platform, roles=roles, locale="en")
        assert badge(page) == "none"
        assert "You are signed in, but the LMS did not give you a role" in page
        assert "What you can do" in page
        assert "Teachers taking a module need the Student (Learner) role" in page
        assert "Core trainers need the Teacher (Instructor)" in page
        assert "enrol you with the right role, then open blend727 again" in page

    def test_polite_page_in_vietnamese(self, client, platform):
        page = land(client, platform, roles=[])
        assert '<html lang="vi">' in page
        assert badge(page) == "none"
        assert "Nguyễn Văn An" in page


MOODLE_ADMIN = (INST_ADMIN, INSTRUCTOR, SYS_ADMIN)  # what Moodle sends for a site admin


class TestMoodleAdministrator:
    def test_admin_start_page_links_to_lti_settings(self, client, platform):
        page = land(client, platform, roles=list(MOODLE_ADMIN), locale="en")
        assert badge(page) == "admin"
        assert 'href="/admin/lti"' in page
        settings = client.get("/admin/lti")
        assert settings.status_code == 200
        assert f"<code>{platform.client_id}</code>" in settings.text
        assert f"<code>{platform.issuer}</code>" in settings.text
        assert "https://tool.test/lti/login" in settings.text

    def test_institution_admin_alone_is_admin(self, client, platform):
        page = land(client, platform, roles=[INST_ADMIN])
        assert badge(page) == "admin"
        assert client.get("/admin/lti").status_code == 200

    @pytest.mark.parametrize(
        "roles", [[LEARNER], [INSTRUCTOR], []], ids=["teacher", "trainer", "none"]
    )
    def test_others_are_refused_the_admin_page(self, client, platform, roles):
        page = land(client, platform, roles=roles, locale="en")
        assert 'href="/admin/lti"' not in page
        response = client.get("/admin/lti")
        assert response.status_code == 403
        assert "<code>forbidden</code>" in response.text
        assert platform.client_id not in response.text

    def test_without_a_launch_the_admin_page_wants_a_sign_in(self, client, platform):
        assert client.get("/admin/lti").status_code == 401


class TestWhatTheLmsWithholds:
    def test_no_name(self, client, platform, db):
        page = land(client, platform, name=None, locale="en")
        assert "Hello, #42" in page
        assert user_row(db).email == "an@example.edu.vn"

    def test_no_email(self, client, platform, db):
        page = land(client, platform, email=None)
        assert "Nguyễn Văn An" in page
        assert user_row(db).email is None

    def test_no_personal_data_at_all(self, client, platform, db):
        page = land(client, platform, name=None, email=None, sub="moodle-7", locale="en")
        assert "Hello, #moodle-7" in page
        row = user_row(db, "moodle-7")
        assert row.name is None and row.email is None

    def test_given_and_family_name_only(self, client, platform):
        page = land(client, platform, name=None, given_name="An", family_name="Nguyễn", locale="en")
        assert "Hello, Nguyễn An" in page

    def test_no_context(self, client, platform, db):
        page = land(client, platform, with_context=False, locale="en")
        assert "This launch did not come from a course." in page
        counts = row_counts(db)
        assert counts["course"] == 0 and counts["membership"] == 0
        assert counts["resource_link"] == 1 and counts["web_session"] == 1

    def test_later_launch_without_name_keeps_the_name(self, client, platform, db):
        land(client, platform)
        page = land(client, platform, name=None, email=None)
        assert "Nguyễn Văn An" in page
        row = user_row(db)
        assert row.name == "Nguyễn Văn An"
        assert row.email == "an@example.edu.vn"


class TestAudience:
    def test_aud_as_a_one_element_list(self, client, platform):
        land(client, platform, mutate=lambda c: c.update(aud=[platform.client_id]))

    def test_aud_string_with_matching_azp(self, client, platform):
        land(client, platform, mutate=lambda c: c.update(azp=platform.client_id))

    @pytest.fixture()
    def second_client(self, platform_http, factories, platform) -> TestPlatform:
        """A second registration (client id) of the same LMS."""
        other = TestPlatform.create(platform_http, issuer=platform.issuer, client_id="client-2")
        factories.register(other, deployment_ids=["1"])
        return other

    def test_two_of_our_client_ids_with_azp(self, client, platform, second_client):
        both = [platform.client_id, second_client.client_id]
        land(client, platform, mutate=lambda c: c.update(aud=both, azp=platform.client_id))

    def test_two_of_our_client_ids_azp_names_the_second(self, client, platform, second_client):
        both = [platform.client_id, second_client.client_id]
        land(client, second_client, mutate=lambda c: c.update(aud=both, azp="client-2"))


class TestLanguage:
    @pytest.mark.parametrize(
        ("locale", "lang"),
        [("en", "en"), ("en-US", "en"), ("vi", "vi"), ("vi_VN", "vi"), ("fr", "vi"), (None, "vi")],
        ids=["en", "en-US", "vi", "vi_VN", "fr", "missing"],
    )
    def test_page_language(self, client, platform, locale, lang):
        page = land(client, platform, locale=locale)
        assert f'<html lang="{lang}">' in page

    def test_english_page_is_in_english(self, client, platform):
        page = land(client, platform, locale="en", roles=[LEARNER])
        assert "You take part in this course as a learner." in page


class TestOneRowPerThing:
    def test_first_launch_creates_one_of_each(self, client, platform, db):
        before = row_counts(db)
        land(client, platform)
        after = row_counts(db)
        assert {t: after[t] - before[t] for t in TABLES} == dict.fromkeys(TABLES, 1)

    def test_second_launch_updates_rather_than_duplicates(self, client, platform, db):
        land(client, platform, roles=[LEARNER])
        land(client, platform, roles=[INSTRUCTOR], name="Nguyễn Văn Bình", email="binh@example.vn")
        counts = row_counts(db)
        assert counts == {
            "app_user": 1,
            "course": 1,
            "resource_link": 1,
            "membership": 1,
            "web_session": 2,  # one per launch
            "lti_used_nonce": 2,
        }
        row = user_row(db)
        assert row.name == "Nguyễn Văn Bình" and row.email == "binh@example.vn"
        assert db.execute(select(Membership.role)).scalar_one() == "trainer"

    def test_second_person_in_the_same_course(self, client, platform, db):
        land(client, platform)
        land(client, platform, sub="43", name="Trần Thị Chi")
        counts = row_counts(db)
        assert counts["app_user"] == 2
        assert counts["course"] == 1 and counts["resource_link"] == 1
        assert counts["membership"] == 2

    def test_expired_within_leeway_is_still_accepted(self, client, platform):
        now = int(time.time())
        land(client, platform, mutate=lambda c: c.update(iat=now - 90, exp=now - 30))


class TestCookies:
    def test_session_cookie_survives_moodle_iframe(self, client, platform):
        response = platform.launch(client)
        assert response.status_code == 303
        header = set_cookies(response)[SESSION_COOKIE]
        attrs = {a.strip().split("=", 1)[0]: a.strip() for a in header.split(";")[1:]}
        assert "Secure" in attrs
        assert "HttpOnly" in attrs
        assert "Partitioned" in attrs
        assert attrs["SameSite"] == "SameSite=None"
        assert attrs["Path"] == "Path=/"
        value = header.split(";", 1)[0].split("=", 1)[1]
        assert len(value) >= 32

    def test_state_cookie_is_prefixed_and_set_by_login(self, client, platform):
        response = client.get("/lti/login?" + urlencode(platform.login_params()))
        assert response.status_code == 302
        auth = platform.authorize(response.headers["location"])
        cookies = set_cookies(response)
        assert list(cookies) == [COOKIE_PREFIX + auth["state"]]
        header = cookies[COOKIE_PREFIX + auth["state"]]
        assert header.startswith(f"{COOKIE_PREFIX}{auth['state']}={auth['state']};")
        for attr in ("Secure", "SameSite=None", "HttpOnly", "Partitioned", "Max-Age=600"):
            assert attr in header
        assert response.headers["cache-control"] == "no-store"

    def test_no_cookie_clashes_with_moodle(self, client, platform):
        login = client.get("/lti/login?" + urlencode(platform.login_params()))
        auth = platform.authorize(login.headers["location"])
        claims = platform.claims(nonce=auth["nonce"])
        launch = client.post(
            "/lti/launch", data={"id_token": platform.sign(claims), "state": auth["state"]}
        )
        assert launch.status_code == 303
        names = [*set_cookies(login), *set_cookies(launch)]
        assert names
        assert "MoodleSession" not in names
        assert all(n.lower().startswith("blend727") for n in names), names
        # The launch deletes the state cookie it no longer needs.
        assert "Max-Age=0" in set_cookies(launch)[COOKIE_PREFIX + auth["state"]]


class TestOidcLogin:
    def test_redirect_keeps_the_platform_query_and_passes_the_hint(self, client, platform):
        params = platform.login_params()
        response = client.get("/lti/login?" + urlencode(params))
        assert response.status_code == 302
        auth = platform.authorize(response.headers["location"])  # checks ?type_id=7 survives
        assert auth["type_id"] == "7"
        assert auth["lti_message_hint"] == params["lti_message_hint"]
        assert auth["login_hint"] == params["login_hint"]
        assert urlsplit(response.headers["location"]).netloc == "lms.test"
        assert len(parse_qs(urlsplit(response.headers["location"]).query)["type_id"]) == 1

    def test_login_by_post_form(self, client, platform):
        response = client.post("/lti/login", data=platform.login_params())
        assert response.status_code == 302
        auth = platform.authorize(response.headers["location"])
        claims = platform.claims(nonce=auth["nonce"])
        launch = client.post(
            "/lti/launch", data={"id_token": platform.sign(claims), "state": auth["state"]}
        )
        assert launch.status_code == 303
        assert client.get("/").status_code == 200

    def test_login_without_optional_parameters(self, client, platform):
        params = platform.login_params(
            lti_message_hint=None, client_id=None, lti_deployment_id=None, target_link_uri=None
        )
        response = client.get("/lti/login?" + urlencode(params))
        assert response.status_code == 302
        auth = platform.authorize(response.headers["location"])
        assert "lti_message_hint" not in auth

    def test_two_logins_in_parallel_tabs_both_complete(self, client, platform):
        first = platform.login(client)
        second = platform.login(client)
        for auth in (second, first):
            token = platform.sign(platform.claims(nonce=auth["nonce"]))
            response = client.post("/lti/launch", data={"id_token": token, "state": auth["state"]})
            assert response.status_code == 303


class TestPlatformKeyRotation:
    def test_new_key_is_fetched_once_and_old_key_still_works(self, client, platform, clock):
        land(client, platform)
        assert platform.jwks_hits() == 1
        old = platform.keys[0]
        new = platform.rotate_key()
        assert platform.keys[0] is new
        clock.offset += platform_keys._MIN_REFETCH_SECONDS + 1
        land(client, platform, sub="43")  # signed with the new key
        assert platform.jwks_hits() == 2, "one refetch on the unknown kid"
        land(client, platform, sub="44", sign=lambda c: platform.sign(c, key=old))
        land(client, platform, sub="45")
        assert platform.jwks_hits() == 2, "both keys now come from the cache"

    def test_cold_cache_after_rotation(self, client, platform):
        old = platform.keys[0]
        platform.rotate_key()
        land(client, platform)
        land(client, platform, sub="43", sign=lambda c: platform.sign(c, key=old))
        assert platform.jwks_hits() == 1


class TestOddButValidClaims:
    def test_custom_and_services_claims(self, client, platform, db):
        extra = {
            CLAIM + "custom": {"module": "4", "nested": {"x": 1}},
            "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
                "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
                "lineitems": "https://lms.test/mod/lti/services.php/2/lineitems",
            },
            CLAIM + "launch_presentation": {"return_url": "javascript:alert(1)", "locale": 5},
        }
        page = land(client, platform, mutate=lambda c: c.update(extra))
        assert "javascript:" not in page
        assert db.execute(text("SELECT custom FROM resource_link")).scalar_one() in (
            {"module": "4"},
            '{"module": "4"}',
        )

    def test_return_url_is_offered(self, client, platform):
        back = "https://lms.test/course/view.php?id=2"
        page = land(
            client,
            platform,
            locale="en",
            mutate=lambda c: c[CLAIM + "launch_presentation"].update(return_url=back),
        )
        assert f'href="{back}"' in page

    def test_nul_and_lone_surrogate_in_free_text_are_cleaned(self, client, platform, db):
        page = land(
            client,
            platform,
            name="Nguyễn\x00 Văn An",
            context={"id": "course-1", "title": "Mô đun 4 \ud800", "label": "M4\x00"},
        )
        assert "Nguyễn Văn An" in page
        assert user_row(db).name == "Nguyễn Văn An"
        assert db.execute(text("SELECT label FROM course")).scalar_one() == "M4"
