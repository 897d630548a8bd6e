"""Deep Linking 2.0: from Moodle's "Select content" a course teacher or administrator picks a
module and level (and a class), and the platform receives a signed ``LtiDeepLinkingResponse``
that it verifies against the tool's ``/lti/jwks.json``.

Driven like Moodle and a browser: a deep-linking launch from the test platform, the picker
page, its form posted, and the auto-submitting form the browser would post back to the LMS.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import itsdangerous.timed
import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.dependencies import SESSION_COOKIE
from app.config import Settings
from app.core.db import Database
from app.core.i18n import get_translations
from app.deeplink.endpoints import router as deeplink_router
from app.deeplink.service import (
    LINE_ITEM_TAG,
    PICKER_PATH,
    deep_link_location,
    read_deep_link_settings,
    sign_deep_link_settings,
)
from app.identity.models import WebSession
from app.keys.service import KeyService
from app.launch.models import UsedNonce
from app.launch.service import session_id_for
from app.main import create_app
from app.platforms.models import Deployment
from lti.deep_linking import (
    DeepLinkSettings,
    RefusedItems,
    ResourceLinkItem,
    ResponsePlatform,
    UnusableSettings,
    sign_response,
)
from lti.errors import REASONS
from tests.helpers import new_class
from tests.helpers import sign_in as api_sign_in
from tests.lti_platform import (
    DL_CONTENT_ITEMS,
    DL_DATA,
    INST_ADMIN,
    INSTRUCTOR,
    LEARNER,
    SYS_ADMIN,
    DeepLinkResponseRefused,
    TestPlatform,
)

ADMIN = [INST_ADMIN, SYS_ADMIN]
TOOL_LAUNCH_URL = "https://tool.test/lti/launch"
M4_THCS = "gvpt-4:thcs"
M4_TH = "gvpt-4:tieu_hoc"
M4_THCS_TITLE = (
    "Xây dựng kế hoạch dạy học và giáo dục theo hướng phát triển phẩm chất, năng lực học sinh "
    "trung học cơ sở"
)


@pytest.fixture()
def app(settings: Settings, database: Database) -> FastAPI:
    application = create_app(settings, database)
    if not any(getattr(r, "path", None) == PICKER_PATH for r in application.routes):
        application.include_router(deeplink_router)  # until app.main includes it
    return application


# -- a small browser -------------------------------------------------------------------------


class _Forms(HTMLParser):
    """Forms of a page: action, id and their inputs (hidden ones included); script tags."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action"), "id": a.get("id"), "inputs": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["inputs"].setdefault(a["name"], []).append(a.get("value"))
        elif tag == "script":
            self.scripts.append(a)


def forms_of(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    return parser


def picker_form(html: str) -> dict[str, Any]:
    return next(f for f in forms_of(html).forms if f["action"] == PICKER_PATH)


def session_location(client: TestClient, db: Session, settings: dict) -> str:
    """The picker address for the browser's current session, signed as the launch does."""
    session_id = session_id_for(client.cookies[SESSION_COOKIE])
    row = db.get(WebSession, session_id)
    assert row is not None and row.message_type == "LtiDeepLinkingRequest"
    deployment = db.get(Deployment, row.deployment_id)
    assert deployment is not None
    secret = client.app.state.ctx.secret  # type: ignore[attr-defined]
    return deep_link_location(
        secret,
        settings,
        deployment_id=deployment.id,
        platform_id=deployment.platform_id,
        session_id=session_id,
    )


def picker_url(client: TestClient, db: Session, launch_response: Any, settings: dict) -> str:
    """Where the launch sent the browser; until the launch endpoint redirects to the picker,
    the address it will build (same function, same session)."""
    assert launch_response.status_code == 303, launch_response.text
    location = launch_response.headers["location"]
    if location.startswith(PICKER_PATH):
        return location
    return session_location(client, db, settings)


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["t"][0]


def open_picker(
    client: TestClient,
    platform: TestPlatform,
    db: Session,
    roles: list[str],
    *,
    sub: str = "admin-1",
    name: str = "Lê Quản Trị",
    **settings_overrides: Any,
) -> tuple[str, Any]:
    """A deep-linking launch, then the page it leads to. Returns (picker URL, response)."""
    client.cookies.clear()
    settings = platform.deep_linking_settings(**settings_overrides)
    launched = platform.deep_link_launch(client, settings=settings, roles=roles, sub=sub, name=name)
    url = picker_url(client, db, launched, settings)
    return url, client.get(url)


def choose(client: TestClient, page_html: str, items: list[str], class_code: str = "") -> Any:
    form = picker_form(page_html)
    data = {
        "t": form["inputs"]["t"][0],
        "csrf_token": form["inputs"]["csrf_token"][0],
        "item": items,
        "class_code": class_code,
    }
    return client.post(PICKER_PATH, data=data)


def returned_form(response: Any) -> tuple[str, str]:
    """(action, JWT) of the auto-submitting form that goes back to the platform."""
    assert response.status_code == 200, response.text
    parsed = forms_of(response.text)
    form = next(f for f in parsed.forms if f["id"] == "lti-form")
    return unescape(form["action"]), form["inputs"]["JWT"][0]


def no_inline_script(html: str) -> bool:
    return all(s.get("src") for s in forms_of(html).scripts)


def jwks(client: TestClient) -> dict[str, Any]:
    return client.get("/lti/jwks.json").json()


# -- the whole round trip --------------------------------------------------------------------


class TestTheLaunchLeadsToThePicker:
    def test_a_deep_linking_launch_redirects_to_the_picker_with_its_settings(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        settings = platform.deep_linking_settings()
        launched = platform.deep_link_launch(client, settings=settings, roles=ADMIN)
        assert launched.status_code == 303, launched.text
        location = launched.headers["location"]
        if location == "/":
            pytest.skip("app/launch/endpoints.py does not redirect deep-linking launches yet")
        assert location.startswith(PICKER_PATH + "?t=")
        session_id = session_id_for(client.cookies[SESSION_COOKIE])
        grant = read_deep_link_settings(
            client.app.state.ctx.secret,  # type: ignore[attr-defined]
            token_of(location),
            session_id=session_id,
        )
        assert grant.settings.return_url == platform.deep_link_return_url
        assert grant.settings.data == settings["data"]
        assert client.get(location).status_code == 200

    def test_a_resource_link_launch_still_goes_home(
        self, client: TestClient, platform: TestPlatform
    ) -> None:
        launched = platform.launch(client, roles=ADMIN)
        assert launched.status_code == 303
        assert launched.headers["location"] == "/"


class TestAdministratorPlacesAModule:
    def test_module_4_thcs_reaches_the_platform_as_a_verified_resource_link(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        _, page = open_picker(client, platform, db, ADMIN)
        assert page.status_code == 200, page.text
        assert page.headers["cache-control"] == "no-store"
        assert M4_THCS in page.text and M4_TH in page.text

        response = choose(client, page.text, [M4_THCS])
        action, token = returned_form(response)
        assert action == platform.deep_link_return_url
        assert response.headers["cache-control"] == "no-store"
        assert no_inline_script(response.text)
        assert '<script src="/static/autosubmit.js"></script>' in response.text

        claims = platform.verify_deep_link_response(token, jwks(client))
        header = jwt.get_unverified_header(token)
        assert header["alg"] == "RS256"
        assert header["kid"] == KeyService(db).signing_key().kid
        assert claims["iss"] == platform.client_id
        assert claims["aud"] == platform.issuer
        assert claims["exp"] - claims["iat"] == 300
        assert abs(claims["iat"] - time.time()) < 60
        assert claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] == "1"
        assert claims[DL_DATA] == "3:0a1b2c3d4e"

        [item] = claims[DL_CONTENT_ITEMS]
        assert item["type"] == "ltiResourceLink"
        assert item["url"] == TOOL_LAUNCH_URL
        assert item["title"] == f"Mô đun 4 · Trung học cơ sở — {M4_THCS_TITLE}"
        assert item["custom"] == {"module_key": "gvpt-4", "level": "thcs"}
        assert item["lineItem"] == {
            "scoreMaximum": 10,
            "label": item["title"],
            "resourceId": "gvpt-4",
            "tag": LINE_ITEM_TAG,
        }

    def test_each_response_has_its_own_nonce(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        _, page = open_picker(client, platform, db, ADMIN)
        nonces = set()
        for _ in range(2):
            _, token = returned_form(choose(client, page.text, [M4_THCS]))
            nonces.add(platform.verify_deep_link_response(token, jwks(client))["nonce"])
        assert len(nonces) == 2

    def test_signed_with_the_current_key_after_a_rotation(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        _, page = open_picker(client, platform, db, ADMIN)
        old_kid = KeyService(db).signing_key().kid
        new = KeyService(db).rotate(timedelta(days=2)).activated
        assert new is not None
        db.commit()
        _, token = returned_form(choose(client, page.text, [M4_THCS]))
        published = jwks(client)
        assert {k["kid"] for k in published["keys"]} >= {old_kid, new.kid}
        assert jwt.get_unverified_header(token)["kid"] == new.kid
        platform.verify_deep_link_response(token, published)

    def test_a_platform_without_our_key_refuses_the_response(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        _, page = open_picker(client, platform, db, ADMIN)
        _, token = returned_form(choose(client, page.text, [M4_THCS]))
        with pytest.raises(DeepLinkResponseRefused, match="not in the tool's JWKS"):
            platform.verify_deep_link_response(token, {"keys": []})

    def test_data_is_echoed_exactly_and_left_out_when_absent(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        data = {"cmid": 7, "nested": ["ư", None, True], "s": "a&b<c>"}
        _, page = open_picker(client, platform, db, ADMIN, data=data)
        _, token = returned_form(choose(client, page.text, [M4_THCS]))
        assert platform.verify_deep_link_response(token, jwks(client))[DL_DATA] == data

        _, page = open_picker(client, platform, db, ADMIN, data=None)
        _, token = returned_form(choose(client, page.text, [M4_THCS]))
        assert DL_DATA not in platform.verify_deep_link_response(token, jwks(client))


class TestCourseTeacherPlacesAModule:
    def test_instructor_links_the_activity_to_a_class(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        api_sign_in(client, platform, ADMIN, "admin-1", "Lê Quản Trị")
        new_class(client, code="M4-THCS-01")
        client.headers.pop("X-CSRF-Token", None)

        _, page = open_picker(client, platform, db, [INSTRUCTOR], sub="gv-7", name="Trần Bình")
        assert page.status_code == 200, page.text
        assert "M4-THCS-01" in page.text
        _, token = returned_form(choose(client, page.text, [M4_THCS], "M4-THCS-01"))
        claims = platform.verify_deep_link_response(token, jwks(client))
        [item] = claims[DL_CONTENT_ITEMS]
        assert item["custom"] == {
            "module_key": "gvpt-4",
            "level": "thcs",
            "class_code": "M4-THCS-01",
        }
        assert item["lineItem"]["scoreMaximum"] == 10

    def test_a_class_of_another_level_is_refused_on_the_form(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        api_sign_in(client, platform, ADMIN, "admin-1", "Lê Quản Trị")
        new_class(client, code="M4-THCS-01")
        client.headers.pop("X-CSRF-Token", None)

        _, page = open_picker(client, platform, db, [INSTRUCTOR], sub="gv-7", name="Trần Bình")
        response = choose(client, page.text, [M4_TH], "M4-THCS-01")
        assert response.status_code == 422
        assert "M4-THCS-01" in response.text and 'id="err-class_code"' in response.text
        assert 'name="JWT"' not in response.text
        # the choice is kept, the form can be sent again
        assert picker_form(response.text)["inputs"]["t"]
        assert 'value="gvpt-4:tieu_hoc" checked' in response.text


class TestWhoMayPick:
    def test_a_learner_is_refused(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        url, page = open_picker(client, platform, db, [LEARNER], sub="hv-1", name="Học Viên")
        assert page.status_code == 403
        assert 'name="JWT"' not in page.text
        me = client.get("/api/v1/me").json()
        refused = client.post(
            PICKER_PATH,
            data={"t": token_of(url), "csrf_token": me["csrf_token"], "item": M4_THCS},
        )
        assert refused.status_code == 403
        assert 'name="JWT"' not in refused.text

    def test_not_signed_in_is_refused(self, client: TestClient) -> None:
        assert client.get(PICKER_PATH + "?t=x").status_code == 401

    def test_a_post_without_the_csrf_token_is_refused(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        _, page = open_picker(client, platform, db, ADMIN)
        form = picker_form(page.text)
        response = client.post(PICKER_PATH, data={"t": form["inputs"]["t"][0], "item": M4_THCS})
        assert response.status_code == 403
        assert "csrf_failed" in response.text


class TestSettingsToken:
    def test_a_tampered_token_is_refused_with_a_clear_page(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        url, page = open_picker(client, platform, db, ADMIN)
        token = token_of(url)
        tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
        response = client.get(PICKER_PATH + "?" + urlencode({"t": tampered}))
        assert response.status_code == 400
        assert "deep_link_invalid" in response.text
        assert 'lang="vi"' in response.text
        assert 'action="/deep-link"' not in response.text

        form = picker_form(page.text)
        posted = client.post(
            PICKER_PATH,
            data={"t": tampered, "csrf_token": form["inputs"]["csrf_token"][0], "item": M4_THCS},
        )
        assert posted.status_code == 400
        assert 'name="JWT"' not in posted.text

    def test_an_expired_token_is_refused(
        self, client: TestClient, platform: TestPlatform, db: Session, monkeypatch
    ) -> None:
        _, page = open_picker(client, platform, db, ADMIN)
        assert page.status_code == 200
        settings = platform.deep_linking_settings()
        over_an_hour_ago = int(time.time()) - 3601
        monkeypatch.setattr(
            itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: over_an_hour_ago
        )
        old = session_location(client, db, settings)
        monkeypatch.undo()
        response = client.get(old)
        assert response.status_code == 400
        assert "deep_link_expired" in response.text
        assert 'name="JWT"' not in response.text

    def test_a_token_of_another_session_is_refused(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        url, page = open_picker(client, platform, db, ADMIN)
        assert page.status_code == 200
        # the same person launching again has a new web session; the old address is dead
        open_picker(client, platform, db, ADMIN)
        response = client.get(url)
        assert response.status_code == 400
        assert "deep_link_invalid" in response.text

    def test_round_trip_and_binding(self) -> None:
        secret = "s" * 40
        settings = {"deep_link_return_url": "https://lms.test/r", "accept_types": ["link"]}
        token = sign_deep_link_settings(secret, settings | {"x-extra": 1}, 5, 3, session_id="s1")
        grant = read_deep_link_settings(secret, token, session_id="s1")
        assert (grant.deployment_id, grant.platform_id) == (5, 3)
        assert grant.settings.return_url == "https://lms.test/r"
        assert not grant.settings.accepts_resource_links
        for kwargs in (
            {"session_id": "s2"},
            {"session_id": "s1", "deployment_id": 6},
            {"session_id": "s1", "platform_id": 4},
        ):
            with pytest.raises(Exception) as info:
                read_deep_link_settings(secret, token, **kwargs)  # type: ignore[arg-type]
            assert getattr(info.value, "code", None) == "deep_link_invalid"
        with pytest.raises(Exception) as info:
            read_deep_link_settings("t" * 40, token)
        assert getattr(info.value, "code", None) == "deep_link_invalid"


class TestWhatThePlatformAccepts:
    def test_a_launch_that_accepts_no_resource_links_is_refused_at_once(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        """``lti.launch`` refuses such a launch (``deep_link_types``): no session, no picker,
        nothing sent to the platform."""
        settings = platform.deep_linking_settings(accept_types=["link", "html"])
        launched = platform.deep_link_launch(client, settings=settings, roles=ADMIN)
        assert 400 <= launched.status_code < 500
        assert SESSION_COOKIE not in client.cookies
        assert 'name="JWT"' not in launched.text

    @pytest.mark.parametrize("accept_types", [["link", "html"], ["file"], []])
    def test_the_refusal_says_which_content_blend727_provides(
        self, client: TestClient, platform: TestPlatform, db: Session, accept_types: list[str]
    ) -> None:
        """Not "missing information" (pylti1p3's reading): the LMS asked for something else."""
        status, title, detail = REASONS["deep_link_types"]
        assert "LTI resource links" in detail
        nonces_before = db.scalar(select(func.count()).select_from(UsedNonce))
        settings = platform.deep_linking_settings(accept_types=accept_types)
        page = platform.deep_link_launch(client, settings=settings, roles=ADMIN)
        assert page.status_code == status == 400
        text = unescape(page.text)
        assert "<code>deep_link_types</code>" in text
        lang = re.search(r'<html lang="([a-z]+)"', text)
        assert lang, "the error page is a whole HTML document"
        words = get_translations(lang.group(1))
        assert words.gettext(title) in text and words.gettext(detail) in text
        assert SESSION_COOKIE not in client.cookies
        assert db.scalar(select(func.count()).select_from(UsedNonce)) == nonces_before

    def test_resource_links_among_other_types_are_served(
        self, client: TestClient, platform: TestPlatform
    ) -> None:
        settings = platform.deep_linking_settings(accept_types=["link", "ltiResourceLink"])
        assert platform.deep_link_launch(client, settings=settings, roles=ADMIN).status_code == 303

    def test_no_accept_types_at_all_is_still_a_missing_claim(
        self, client: TestClient, platform: TestPlatform
    ) -> None:
        settings = platform.deep_linking_settings(accept_types=None)
        page = platform.deep_link_launch(client, settings=settings, roles=ADMIN)
        assert page.status_code == 400
        assert "<code>missing_claims</code>" in unescape(page.text)

    def test_no_resource_links_accepted_means_a_message_and_no_jwt(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        """Should such settings reach the picker all the same (a launch path that lets them
        through), the page says so and nothing is signed."""
        open_picker(client, platform, db, ADMIN)
        settings = platform.deep_linking_settings(accept_types=["link", "html"])
        url = session_location(client, db, settings)
        page = client.get(url)
        assert page.status_code == 200
        assert 'role="alert"' in page.text
        assert 'action="/deep-link"' not in page.text
        assert 'name="JWT"' not in page.text

        me = client.get("/api/v1/me").json()
        response = client.post(
            PICKER_PATH,
            data={"t": token_of(url), "csrf_token": me["csrf_token"], "item": M4_THCS},
        )
        assert response.status_code == 422
        assert "deep_link_type_not_accepted" in response.text
        assert 'name="JWT"' not in response.text

    def test_one_item_unless_the_platform_accepts_several(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        _, page = open_picker(client, platform, db, ADMIN)
        assert 'type="radio"' in page.text
        response = choose(client, page.text, [M4_THCS, M4_TH])
        assert response.status_code == 422
        assert 'name="JWT"' not in response.text

        _, page = open_picker(client, platform, db, ADMIN, accept_multiple=True)
        assert 'type="checkbox"' in page.text
        _, token = returned_form(choose(client, page.text, [M4_TH, M4_THCS]))
        items = platform.verify_deep_link_response(token, jwks(client))[DL_CONTENT_ITEMS]
        assert [i["custom"]["level"] for i in items] == ["tieu_hoc", "thcs"]
        assert all(i["lineItem"]["resourceId"] == "gvpt-4" for i in items)

    def test_nothing_chosen_or_an_unknown_choice_is_refused_on_the_form(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        _, page = open_picker(client, platform, db, ADMIN)
        for items in ([], ["gvpt-4:thpt"], ["nope:thcs"]):
            response = choose(client, page.text, items)
            assert response.status_code == 422, items
            assert 'id="err-item"' in response.text
            assert 'name="JWT"' not in response.text

    def test_no_line_item_when_the_platform_ignores_them(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        _, page = open_picker(client, platform, db, ADMIN, accept_lineitem=False)
        _, token = returned_form(choose(client, page.text, [M4_THCS]))
        [item] = platform.verify_deep_link_response(token, jwks(client))[DL_CONTENT_ITEMS]
        assert "lineItem" not in item


class TestVietnameseFirst:
    def test_the_picker_reads_in_vietnamese(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        _, page = open_picker(client, platform, db, ADMIN)
        html = page.text
        assert '<html lang="vi">' in html
        assert "Mô đun 4" in html
        assert "Trung học cơ sở" in html and "Tiểu học" in html
        assert "GVPT (giáo viên phổ thông)" in html
        assert M4_THCS_TITLE in html
        assert no_inline_script(html)

    def test_the_activity_title_is_vietnamese_even_for_an_english_session(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        client.cookies.clear()
        settings = platform.deep_linking_settings()
        launched = platform.deep_link_launch(
            client, settings=settings, roles=ADMIN, sub="admin-en", locale="en"
        )
        page = client.get(picker_url(client, db, launched, settings))
        assert '<html lang="en">' in page.text
        assert "Module 4" in page.text
        _, token = returned_form(choose(client, page.text, [M4_THCS]))
        [item] = platform.verify_deep_link_response(token, jwks(client))[DL_CONTENT_ITEMS]
        assert item["title"].startswith("Mô đun 4 · Trung học cơ sở — ")


# -- lti.deep_linking on its own (no database, no HTTP) ---------------------------------------


class _Key:
    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        from app.keys.service import generate_rsa_key, public_jwk

        private, pem = generate_rsa_key()
        assert isinstance(private, rsa.RSAPrivateKey)
        self.private_key = private
        self.private_key_pem = pem
        self.jwk = public_jwk(private)
        self.kid = self.jwk["kid"]


@pytest.fixture(scope="module")
def tool_key() -> _Key:
    return _Key()


PLATFORM = ResponsePlatform(issuer="https://lms.test", client_id="client-1", deployment_id="1")
ITEM = ResourceLinkItem(title="Mô đun 4", url=TOOL_LAUNCH_URL, custom={"module_key": "gvpt-4"})


class TestResponseMessage:
    def test_settings_as_platforms_write_them(self) -> None:
        settings = DeepLinkSettings.from_claim(
            {
                "deep_link_return_url": "https://lms.test/r?a=1",
                "accept_types": "ltiResourceLink",
                "accept_multiple": "true",
                "accept_lineitem": "false",
            }
        )
        assert settings.accepts_resource_links and settings.accept_multiple
        assert settings.accept_lineitem is False and not settings.has_data
        assert (
            DeepLinkSettings.from_claim({"deep_link_return_url": "https://x.test/"}).accept_multiple
            is False
        )

    @pytest.mark.parametrize(
        "url", [None, "", "javascript:alert(1)", "/relative", "https://", "https://a b.test/"]
    )
    def test_an_unusable_return_url_is_refused(self, url: Any) -> None:
        with pytest.raises(UnusableSettings):
            DeepLinkSettings.from_claim({"deep_link_return_url": url, "accept_types": []})

    def test_the_signed_message(self, tool_key: _Key) -> None:
        settings = DeepLinkSettings.from_claim(
            {
                "deep_link_return_url": "https://lms.test/r",
                "accept_types": ["ltiResourceLink"],
                "data": None,
            }
        )
        token = sign_response(PLATFORM, settings, [ITEM], tool_key, now=1_800_000_000)
        assert jwt.get_unverified_header(token) == {
            "alg": "RS256",
            "kid": tool_key.kid,
            "typ": "JWT",
        }
        claims = jwt.decode(
            token,
            jwt.PyJWK(tool_key.jwk).key,
            algorithms=["RS256"],
            audience="https://lms.test",
            options={"verify_exp": False, "verify_iat": False},
        )
        assert claims["iat"] == 1_800_000_000 and claims["exp"] == 1_800_000_300
        assert claims[DL_DATA] is None  # present in the request (even null): echoed
        assert claims[DL_CONTENT_ITEMS] == [
            {
                "type": "ltiResourceLink",
                "title": "Mô đun 4",
                "url": TOOL_LAUNCH_URL,
                "custom": {"module_key": "gvpt-4"},
            }
        ]

    def test_refused_items_sign_nothing(self, tool_key: _Key) -> None:
        only_links = DeepLinkSettings.from_claim(
            {"deep_link_return_url": "https://lms.test/r", "accept_types": ["link"]}
        )
        with pytest.raises(RefusedItems) as info:
            sign_response(PLATFORM, only_links, [ITEM], tool_key)
        assert info.value.reason == "type_not_accepted"
        one = DeepLinkSettings.from_claim(
            {"deep_link_return_url": "https://lms.test/r", "accept_types": ["ltiResourceLink"]}
        )
        with pytest.raises(RefusedItems) as info:
            sign_response(PLATFORM, one, [ITEM, ITEM], tool_key)
        assert info.value.reason == "one_item_only"
        # nothing chosen: a valid, empty answer
        empty = jwt.decode(
            sign_response(PLATFORM, only_links, [], tool_key),
            options={"verify_signature": False},
        )
        assert empty[DL_CONTENT_ITEMS] == []
