"""Names and Role Provisioning Services: the roster as the LMS reports it, fetched through
the test platform's real token endpoint and NRPS endpoint over HTTP.

Tests that need no database use a tool key made here; the ones that prove the client
assertion is signed with the key /lti/jwks.json publishes use the app (SQLite and PostgreSQL).
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from requests.adapters import BaseAdapter
from sqlalchemy.orm import Session

from app.keys.service import KeyService, SigningKey
from app.platforms.models import PlatformRecord
from app.platforms.repository import PlatformRepository
from app.platforms.service import PlatformInput, PlatformService
from lti.adapters import registration_for
from lti.nrps import (
    MEMBERSHIP_CONTAINER,
    Member,
    ServiceError,
    fetch_members,
    iter_roster_pages,
    memberships_url,
    parse_member,
)
from lti.services import (
    NRPS_SCOPE,
    ServicePlatform,
    TokenCache,
    ToolServiceConnector,
    connector_for,
    next_page_url,
    parse_link_header,
    usable_lifetime,
)
from tests.helpers import closed_port_url
from tests.lti_platform import INSTRUCTOR, LEARNER, TestPlatform

# -- helpers and fixtures --------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def roster(n: int) -> list[dict[str, Any]]:
    """Members as Moodle 5.1 sends them: string ids, full names, one teacher first."""
    members = []
    for i in range(n):
        members.append(
            {
                "status": "Active",
                "name": f"Học viên {i}",
                "given_name": "Học viên",
                "family_name": str(i),
                "email": f"hv{i}@example.edu.vn",
                "user_id": str(100 + i),
                "lis_person_sourcedid": f"sis-{i}",
                "roles": [INSTRUCTOR] if i == 0 else [LEARNER],
            }
        )
    return members


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def tokens(clock: FakeClock) -> TokenCache:
    return TokenCache(clock=clock)


@pytest.fixture()
def lms(platform_http: str, tool_key: SigningKey) -> TestPlatform:
    """A Moodle-like platform that trusts the tool's key and has 150 people in the course."""
    platform = TestPlatform.create(
        platform_http, issuer="https://moodle.test", client_id=f"nrps-{uuid.uuid4().hex[:8]}"
    )
    platform.trust_tool_jwks({"keys": [tool_key.public_jwk]})
    platform.members = roster(150)
    return platform


def registration(platform: TestPlatform, **overrides: Any) -> ServicePlatform:
    data: dict[str, Any] = {
        "issuer": platform.issuer,
        "client_id": platform.client_id,
        "token_url": platform.served_token_url,
    }
    data.update(overrides)
    return ServicePlatform(**data)


@pytest.fixture()
def fetch(
    lms: TestPlatform, tool_key: SigningKey, http: requests.Session, tokens: TokenCache
) -> Callable[..., list[Member]]:
    def run(**kwargs: Any) -> list[Member]:
        args: dict[str, Any] = {
            "registration": registration(lms),
            "context_memberships_url": lms.memberships_url,
            "tool_key": tool_key,
            "http": http,
            "limit": 50,
            "token_cache": tokens,
        }
        args.update(kwargs)
        return fetch_members(**args)

    return run


def statuses(platform: TestPlatform) -> list[int]:
    return [r["status"] for r in platform.nrps_requests]


# -- the whole roster ------------------------------------------------------------------


class TestWholeRoster:
    def test_150_members_over_three_pages_in_order_with_one_token(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        members = fetch()
        assert [m.user_id for m in members] == [str(100 + i) for i in range(150)]
        assert members[0].roles == [INSTRUCTOR] and members[1].roles == [LEARNER]
        assert members[7].name == "Học viên 7" and members[7].email == "hv7@example.edu.vn"
        assert lms.tokens_issued == 1 and lms.token_hits() == 1
        assert statuses(lms) == [200, 200, 200]
        assert [r["query"].get("from") for r in lms.nrps_requests] == [None, "50", "100"]
        assert all(r["query"]["limit"] == "50" for r in lms.nrps_requests)

    def test_the_accept_header_names_the_membership_container(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        fetch()
        assert {r["accept"] for r in lms.nrps_requests} == {MEMBERSHIP_CONTAINER}

    def test_moodles_typographic_quotes_arrive_as_latin1_and_are_still_followed(
        self,
        lms: TestPlatform,
        tool_key: SigningKey,
        http: requests.Session,
        tokens: TokenCache,
    ) -> None:
        connector = connector_for(registration(lms), tool_key, http, token_cache=tokens)
        page = connector.make_service_request(
            [NRPS_SCOPE], lms.memberships_url + "?limit=50", accept=MEMBERSHIP_CONTAINER
        )
        raw_link = page["headers"]["Link"]
        # UTF-8 “ on the wire, read by http.client as Latin-1: what the tool really sees
        assert "rel=\u00e2\x80\x9cnext\u00e2\x80\x9d" in raw_link
        assert page["next_page_url"] == lms.memberships_url + "?limit=50&from=50"

    @pytest.mark.parametrize("quotes", ["straight", "single"])
    def test_other_quote_styles_are_followed_too(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]], quotes: str
    ) -> None:
        lms.link_quotes = quotes
        assert len(fetch()) == 150
        assert len(lms.nrps_requests) == 3

    def test_a_membership_url_with_a_query_keeps_it_on_every_page(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        members = fetch(context_memberships_url=lms.memberships_url + "?type_id=3")
        assert len(members) == 150
        assert lms.nrps_requests[0]["raw_query"] == "type_id=3&limit=50"
        assert all(r["query"]["type_id"] == "3" for r in lms.nrps_requests)

    def test_the_default_page_size_is_100(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        assert len(fetch(limit=100)) == 150
        assert [r["query"]["limit"] for r in lms.nrps_requests] == ["100", "100"]

    def test_a_second_sync_reuses_the_token(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        fetch()
        fetch()
        assert lms.tokens_issued == 1
        assert len(lms.nrps_requests) == 6

    def test_an_empty_course_is_an_empty_roster(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        lms.members = []
        assert fetch() == []
        assert len(lms.nrps_requests) == 1

    def test_pages_stream_with_the_context(
        self,
        lms: TestPlatform,
        tool_key: SigningKey,
        http: requests.Session,
        tokens: TokenCache,
    ) -> None:
        pages = list(
            iter_roster_pages(
                registration=registration(lms),
                context_memberships_url=lms.memberships_url,
                tool_key=tool_key,
                http=http,
                limit=60,
                token_cache=tokens,
            )
        )
        assert [len(p.members) for p in pages] == [60, 60, 30]
        assert pages[0].context_id == "course-1" and pages[0].context_title == "Mô đun 4 — THCS"
        assert pages[0].next_url == pages[1].url and pages[2].next_url is None

    def test_a_platform_that_loops_is_stopped(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        lms.nrps_mode = "loop"
        with pytest.raises(ServiceError) as exc:
            fetch()
        assert exc.value.kind == "bad_response"
        assert len(lms.nrps_requests) <= 3

    def test_too_many_pages_is_an_error_not_a_partial_roster(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        with pytest.raises(ServiceError) as exc:
            fetch(max_pages=2)
        assert exc.value.kind == "bad_response"
        assert len(lms.nrps_requests) == 2


# -- what one member looks like --------------------------------------------------------


class TestMembers:
    def test_moodle_privacy_leaves_name_and_email_empty(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        lms.members = [
            {"status": "Active", "user_id": "7", "roles": [LEARNER]},
            {"user_id": "8", "roles": [LEARNER], "name": "", "email": None},
        ]
        members = fetch()
        assert members == [
            Member(user_id="7", status="Active", roles=[LEARNER]),
            Member(user_id="8", status="Active", roles=[LEARNER]),
        ]
        assert members[0].name is None and members[0].email is None
        assert members[0].given_name is None and members[0].picture is None

    def test_inactive_and_deleted_come_through(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        lms.members = [
            {"status": "Inactive", "user_id": "1", "roles": [LEARNER]},
            {"status": "Deleted", "user_id": "2", "roles": [LEARNER]},
            {"status": "inactive", "user_id": "3", "roles": [LEARNER]},
            {"user_id": "4", "roles": [LEARNER]},
        ]
        assert [m.status for m in fetch()] == ["Inactive", "Deleted", "Inactive", "Active"]

    def test_unusable_entries_are_skipped_and_the_rest_kept(self) -> None:
        assert parse_member({"roles": [LEARNER]}) is None
        assert parse_member({"user_id": "", "roles": []}) is None
        assert parse_member({"user_id": "a\nb", "roles": []}) is None
        assert parse_member(["not", "a", "member"]) is None
        numeric = parse_member({"user_id": 42, "roles": "Learner", "name": "A\x00n"})
        assert numeric == Member(user_id="42", roles=[], name="An")

    def test_a_user_appearing_on_two_pages_is_listed_once(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        lms.members = roster(60)
        lms.members.insert(55, dict(lms.members[10]))
        members = fetch()
        assert len(members) == 60
        assert len({m.user_id for m in members}) == 60


# -- tokens ----------------------------------------------------------------------------


class TestAccessTokens:
    def test_a_401_midway_fetches_one_new_token_and_carries_on(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        lms.nrps_mode, lms.nrps_fail_at = "revoke_once", 2
        members = fetch()
        assert len(members) == 150
        assert statuses(lms) == [200, 401, 200, 200]
        assert lms.tokens_issued == 2
        assert lms.nrps_requests[1]["query"] == lms.nrps_requests[2]["query"]

    def test_a_token_refused_twice_is_forbidden(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        lms.nrps_mode = "unauthorized"
        with pytest.raises(ServiceError) as exc:
            fetch()
        assert (exc.value.kind, exc.value.status) == ("forbidden", 401)
        assert lms.tokens_issued == 2 and len(lms.nrps_requests) == 2

    def test_a_token_is_not_used_after_it_expires(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]], clock: FakeClock
    ) -> None:
        lms.token_expires_in = 120  # reused for 60 s: half its life, at most 60 s early
        fetch()
        clock.advance(59.9)
        fetch()
        assert lms.tokens_issued == 1
        clock.advance(0.1)
        fetch()
        assert lms.tokens_issued == 2
        assert len({r["token"] for r in lms.nrps_requests}) == 2

    def test_an_hour_long_token_is_dropped_a_minute_early(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]], clock: FakeClock
    ) -> None:
        fetch()
        clock.advance(3539)
        fetch()
        assert lms.tokens_issued == 1
        clock.advance(1)
        fetch()
        assert lms.tokens_issued == 2

    def test_without_expires_in_a_token_serves_one_sync_only(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        lms.token_expires_in = None
        fetch()
        assert lms.tokens_issued == 1  # three pages, one token
        fetch()
        assert lms.tokens_issued == 2

    def test_tokens_are_kept_per_client_id(
        self,
        platform_http: str,
        tool_key: SigningKey,
        http: requests.Session,
        tokens: TokenCache,
    ) -> None:
        """Two registrations of one issuer (pylti1p3 would share one cached token)."""
        platforms = []
        for client_id in ("client-a", "client-b"):
            p = TestPlatform.create(
                platform_http, issuer="https://moodle.test", client_id=client_id
            )
            p.trust_tool_jwks({"keys": [tool_key.public_jwk]})
            p.members = roster(3)
            platforms.append(p)
        for p in platforms * 2:
            fetch_members(
                registration=registration(p),
                context_memberships_url=p.memberships_url,
                tool_key=tool_key,
                http=http,
                token_cache=tokens,
            )
        assert [p.tokens_issued for p in platforms] == [1, 1]
        assert all(r["status"] == 200 for p in platforms for r in p.nrps_requests)

    def test_the_process_cache_is_shared_by_threads_and_fetched_once(
        self, lms: TestPlatform, tool_key: SigningKey, http: requests.Session
    ) -> None:
        barrier = threading.Barrier(8)
        got: list[str] = []

        def worker() -> None:
            connector = connector_for(registration(lms), tool_key, http)  # process cache
            barrier.wait()
            got.append(connector.get_access_token([NRPS_SCOPE]))

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(got) == 8 and len(set(got)) == 1
        assert lms.tokens_issued == 1

    def test_the_assertion_is_what_the_platform_checks(
        self,
        lms: TestPlatform,
        fetch: Callable[..., list[Member]],
        tool_key: SigningKey,
    ) -> None:
        fetch()
        [assertion] = lms.client_assertions
        assert assertion["header"]["kid"] == tool_key.kid
        assert assertion["header"]["alg"] == "RS256"
        claims = assertion["claims"]
        assert claims["iss"] == claims["sub"] == lms.client_id
        assert claims["aud"] == lms.served_token_url
        assert claims["exp"] - claims["iat"] <= 120

    def test_an_auth_audience_replaces_the_token_url_as_aud(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        lms.token_audience = "https://moodle.test/oauth2"
        with pytest.raises(ServiceError) as exc:
            fetch()
        assert exc.value.kind == "token_refused"
        members = fetch(registration=registration(lms, auth_audience="https://moodle.test/oauth2"))
        assert len(members) == 150

    def test_usable_lifetime(self) -> None:
        assert usable_lifetime(3600) == 3540
        assert usable_lifetime("120") == 60
        assert usable_lifetime(10) == 5
        for unusable in (None, 0, -5, "soon", True, float("inf"), float("nan"), [3600]):
            assert usable_lifetime(unusable) is None


# -- failures --------------------------------------------------------------------------


class TestFailures:
    def test_a_500_is_unreachable_not_a_raw_exception(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        lms.nrps_mode, lms.nrps_fail_at = "error_500", 2
        with pytest.raises(ServiceError) as exc:
            fetch()
        assert (exc.value.kind, exc.value.status) == ("unreachable", 500)
        assert exc.value.transient

    def test_garbage_json_is_a_bad_response(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        lms.nrps_mode = "garbage"
        with pytest.raises(ServiceError) as exc:
            fetch()
        assert (exc.value.kind, exc.value.status) == ("bad_response", 200)
        assert exc.value.__cause__ is None

    def test_an_unknown_membership_url_is_not_found(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        with pytest.raises(ServiceError) as exc:
            fetch(context_memberships_url=lms.memberships_url + "-gone")
        assert (exc.value.kind, exc.value.status) == ("not_found", 404)

    def test_an_unreachable_service_host(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        with pytest.raises(ServiceError) as exc:
            fetch(context_memberships_url=closed_port_url("/memberships"))
        assert (exc.value.kind, exc.value.status) == ("unreachable", None)
        assert lms.tokens_issued == 1  # the token came; the service did not answer

    def test_an_unreachable_token_endpoint(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        with pytest.raises(ServiceError) as exc:
            fetch(registration=registration(lms, token_url=closed_port_url("/token")))
        assert (exc.value.kind, exc.value.status) == ("unreachable", None)
        assert lms.nrps_requests == []

    def test_a_key_the_platform_does_not_know_is_token_refused(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        lms.trust_tool_jwks({"keys": []})
        with pytest.raises(ServiceError) as exc:
            fetch()
        assert (exc.value.kind, exc.value.status) == ("token_refused", 401)
        assert "invalid_client" in exc.value.detail
        assert lms.token_refusals and "unknown kid" in lms.token_refusals[0]
        assert lms.nrps_requests == []

    def test_a_scope_the_platform_does_not_grant_is_token_refused(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        lms.token_scopes = frozenset()
        with pytest.raises(ServiceError) as exc:
            fetch()
        assert (exc.value.kind, exc.value.status) == ("token_refused", 400)

    def test_a_membership_url_that_is_not_http_is_refused_before_any_request(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        with pytest.raises(ServiceError) as exc:
            fetch(context_memberships_url="javascript:alert(1)")
        assert exc.value.kind == "bad_response"
        assert lms.token_hits() == 0


class _Canned(BaseAdapter):
    """A transport that answers every request with one canned response."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.status, self.body, self.headers = status, body, headers or {}

    def send(self, request: Any, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = response.status = self.status  # type: ignore[attr-defined]
        response.headers.update({"Content-Type": "application/json", **self.headers})
        response.raw = io.BytesIO(self.body)
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        return None


class TestOddTokenAnswers:
    """What a platform's token endpoint may get wrong, without a server."""

    @pytest.mark.parametrize(
        ("status", "body", "kind"),
        [
            (200, b"<html>login</html>", "bad_response"),
            (200, b"[]", "bad_response"),
            (200, b'{"token_type": "Bearer"}', "bad_response"),
            (200, b'{"access_token": "t", "token_type": "MAC"}', "bad_response"),
            (200, b'{"access_token": "' + b"x" * 70_000 + b'"}', "bad_response"),
            (400, b'{"error": "invalid_client"}', "token_refused"),
            (503, b"maintenance", "unreachable"),
            (429, b"", "unreachable"),
        ],
    )
    def test_each_is_a_service_error(
        self, tool_key: SigningKey, tokens: TokenCache, status: int, body: bytes, kind: str
    ) -> None:
        session = requests.Session()
        session.mount("https://", _Canned(status, body))
        connector = connector_for(
            ServicePlatform("https://lms.example", "c", "https://lms.example/token"),
            tool_key,
            session,
            token_cache=tokens,
        )
        with pytest.raises(ServiceError) as exc:
            connector.get_access_token([NRPS_SCOPE])
        assert exc.value.kind == kind
        assert len(tokens) == 0


# -- Link headers and URLs -------------------------------------------------------------


BASE = "https://moodle.test/mod/lti/services.php/CourseSection/2/bindings/3/memberships"


class TestLinkHeaders:
    @pytest.mark.parametrize(
        "header",
        [
            "<N>; rel=“next”",
            "<N>; rel=\u00e2\x80\x9cnext\u00e2\x80\x9d",  # the same, read as Latin-1
            '<N>; rel="next"',
            "<N>; rel='next'",
            "<N>; rel=next",
            "<N>;rel=NEXT",
            '<N> ;  rel = "next"',
            '<N>; title="a, b; <c>"; rel="next"',
            '<N>; rel="prev next"',
            '<P>; rel="prev",\n <N>; rel="next"',
            "<F>; rel=“first”, <C>; rel=“canonical”, <N>; rel=“next”, <L>; rel=“last”",
            '<N>; rel="next"; rel="prev"',  # the first rel counts
            '<P>; rel="prev" <N>; rel="next"',  # a missing comma
        ],
    )
    def test_next_is_found(self, header: str) -> None:
        assert next_page_url(header, BASE) == "https://moodle.test/mod/lti/services.php/" + (
            "CourseSection/2/bindings/3/N"
        )

    def test_absolute_and_relative_targets(self) -> None:
        assert next_page_url('<https://x.test/p?from=50>; rel="next"', BASE) == (
            "https://x.test/p?from=50"
        )
        assert next_page_url('</m?from=50>; rel="next"', BASE) == "https://moodle.test/m?from=50"

    @pytest.mark.parametrize(
        "header",
        ["", None, '<P>; rel="prev"', '<L>; rel="last", <F>; rel="first"', "rel=next", "<N"],
    )
    def test_no_next(self, header: str | None) -> None:
        assert next_page_url(header, BASE) is None

    def test_every_link_and_its_params(self) -> None:
        links = parse_link_header('<A>; rel="prev first"; title=‘Trang 1’, <B>; rel=next')
        assert [(link.url, link.rels) for link in links] == [
            ("A", ("prev", "first")),
            ("B", ("next",)),
        ]
        assert links[0].params["title"] == "Trang 1"

    @given(st.text(max_size=200))
    def test_never_raises(self, header: str) -> None:
        parse_link_header(header)
        next_page_url(header, BASE)

    def test_a_next_page_on_another_host_is_not_followed(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        """The bearer token would go with it."""
        url = lms.memberships_url.replace("127.0.0.1", "localhost")
        with pytest.raises(ServiceError) as exc:
            fetch(context_memberships_url=url)
        assert exc.value.kind == "bad_response"
        assert len(lms.nrps_requests) == 1


class TestMembershipsUrl:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            (BASE, BASE + "?limit=100"),
            (BASE + "?type_id=3", BASE + "?type_id=3&limit=100"),
            (BASE + "?type_id=3&limit=10", BASE + "?type_id=3&limit=100"),
            (BASE + "?a=1&a=2&empty=", BASE + "?a=1&a=2&empty=&limit=100"),
            (BASE + "?q=%C3%A0#frag", BASE + "?q=%C3%A0&limit=100"),
        ],
    )
    def test_limit_is_added_and_the_query_kept(self, given: str, expected: str) -> None:
        assert memberships_url(given, limit=100) == expected

    def test_role_is_encoded(self) -> None:
        assert memberships_url(BASE + "?type_id=3", limit=5, role=LEARNER) == (
            BASE + "?type_id=3&limit=5&role=http%3A%2F%2Fpurl.imsglobal.org%2Fvocab%2Flis%2Fv2"
            "%2Fmembership%23Learner"
        )

    def test_role_reaches_the_platform(
        self, lms: TestPlatform, fetch: Callable[..., list[Member]]
    ) -> None:
        fetch(role=LEARNER)
        assert lms.nrps_requests[0]["query"]["role"] == LEARNER

    @pytest.mark.parametrize("limit", [0, -1, True])
    def test_a_silly_limit_is_a_programming_error(self, limit: int) -> None:
        with pytest.raises(ValueError):
            memberships_url(BASE, limit=limit)


# -- with the app: the key /lti/jwks.json publishes ------------------------------------


def _register(db: Session, platform: TestPlatform) -> PlatformRecord:
    PlatformService(db).register(
        PlatformInput(
            issuer=platform.issuer,
            client_id=platform.client_id,
            auth_login_url=platform.auth_login_url,
            token_url=platform.served_token_url,
            keyset_url=platform.keyset_url,
            deployment_ids=["1"],
            name="Moodle with services",
        )
    )
    db.commit()
    [record] = PlatformRepository(db).records_by_issuer(platform.issuer)
    return record


def _published_kids(client: TestClient) -> set[str]:
    response = client.get("/lti/jwks.json")
    assert response.status_code == 200
    return {k["kid"] for k in response.json()["keys"]}


class TestSignedWithThePublishedKey:
    def test_the_assertion_kid_is_published_and_the_platform_verified_it(
        self,
        client: TestClient,
        db: Session,
        lms: TestPlatform,
        http: requests.Session,
        tokens: TokenCache,
    ) -> None:
        record = _register(db, lms)
        signing = KeyService(db).signing_key()
        db.commit()
        lms.trust_tool_jwks(client.get("/lti/jwks.json").json())
        members = fetch_members(
            registration=record,
            context_memberships_url=lms.memberships_url + "?type_id=3",
            tool_key=signing,
            http=http,
            token_cache=tokens,
        )
        assert len(members) == 150
        [assertion] = lms.client_assertions
        assert assertion["header"]["kid"] == signing.kid
        assert assertion["header"]["kid"] in _published_kids(client)
        assert lms.token_refusals == []

    def test_after_a_rotation_the_new_current_key_signs(
        self,
        client: TestClient,
        db: Session,
        lms: TestPlatform,
        http: requests.Session,
        tokens: TokenCache,
    ) -> None:
        record = _register(db, lms)
        old = KeyService(db).signing_key()
        KeyService(db).rotate(retire_after=timedelta(days=2))
        new = KeyService(db).signing_key()
        db.commit()
        assert new.kid != old.kid
        lms.trust_tool_jwks(client.get("/lti/jwks.json").json())
        fetch_members(
            registration=record,
            context_memberships_url=lms.memberships_url,
            tool_key=KeyService(db).signing_key(),
            http=http,
            token_cache=tokens,
        )
        assert lms.client_assertions[0]["header"]["kid"] == new.kid
        assert {old.kid, new.kid} <= _published_kids(client)

    def test_a_plain_pylti1p3_registration_gets_the_published_kid_too(
        self,
        client: TestClient,
        db: Session,
        lms: TestPlatform,
        http: requests.Session,
        tokens: TokenCache,
    ) -> None:
        """As ``MessageLaunch(service_connector_cls=ToolServiceConnector)`` builds it: the
        library's own ``get_kid()`` would be None here."""
        record = _register(db, lms)
        signing = KeyService(db).signing_key()
        db.commit()
        lms.trust_tool_jwks(client.get("/lti/jwks.json").json())
        connector = ToolServiceConnector(
            registration_for(record, signing.private_key_pem), http, token_cache=tokens
        )
        assert connector.get_access_token([NRPS_SCOPE])
        assert lms.client_assertions[0]["header"]["kid"] == signing.kid
