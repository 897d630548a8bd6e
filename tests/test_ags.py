"""Assignment and Grade Services: line items and scores as Moodle 5.1 takes them, sent through
the test platform's real token endpoint and AGS endpoints over HTTP.
"""

from __future__ import annotations

import email.utils
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from app.keys.service import SigningKey
from lti.ags import (
    LINEITEM_CONTAINER_MEDIA_TYPE,
    LINEITEM_MEDIA_TYPE,
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_SCORE,
    SCORE_MEDIA_TYPE,
    AgsError,
    LineItem,
    ScoreToSend,
    find_or_create_line_item,
    format_timestamp,
    get_results,
    next_timestamp,
    parse_line_item,
    parse_retry_after,
    post_score,
    results_url,
    score_body,
    scores_url,
)
from lti.services import ServiceError, ServicePlatform, TokenCache
from tests.helpers import closed_port_url
from tests.lti_platform import TestPlatform

T0 = datetime(2025, 9, 1, 8, 0, 0, tzinfo=UTC)
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?[+-]\d\d:\d\d$")

# -- helpers and fixtures --------------------------------------------------------------


@pytest.fixture()
def tokens() -> TokenCache:
    return TokenCache()


@pytest.fixture()
def lms(platform_http: str, tool_key: SigningKey) -> TestPlatform:
    """Moodle 5.1 with AGS set to "grade sync and column management"; students 101-103."""
    platform = TestPlatform.create(
        platform_http, issuer="https://moodle.test", client_id=f"ags-{uuid.uuid4().hex[:8]}"
    )
    platform.trust_tool_jwks({"keys": [tool_key.public_jwk]})
    platform.enable_ags(grade_sync=2)
    platform.gradable_users = {"101", "102", "103"}
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
def line_item(
    lms: TestPlatform, tool_key: SigningKey, http: requests.Session, tokens: TokenCache
) -> Callable[..., LineItem]:
    def run(**kwargs: Any) -> LineItem:
        args: dict[str, Any] = {
            "registration": registration(lms),
            "tool_key": tool_key,
            "http": http,
            "endpoint": lms.ags_claim("rl-1"),
            "label": "Điểm danh",
            "score_maximum": 10,
            "resource_link_id": "rl-1",
            "tag": "attendance",
            "token_cache": tokens,
        }
        args.update(kwargs)
        return find_or_create_line_item(**args)

    return run


def score(user_id: str = "101", **overrides: Any) -> ScoreToSend:
    data: dict[str, Any] = {
        "user_id": user_id,
        "score_given": 7.0,
        "score_maximum": 10.0,
        "activity_progress": "Completed",
        "grading_progress": "FullyGraded",
        "timestamp": T0,
        "comment": None,
    }
    data.update(overrides)
    return ScoreToSend(**data)


class Sender:
    """Posts scores to ``url`` (a line item of rl-1 with maximum 10) or another one."""

    def __init__(
        self,
        lms: TestPlatform,
        tool_key: SigningKey,
        http: requests.Session,
        tokens: TokenCache,
    ) -> None:
        self.lms, self.tool_key, self.http, self.tokens = lms, tool_key, http, tokens
        self.url = lms.add_line_item(
            label="Điểm danh", score_maximum=10, resource_link_id="rl-1", tag="attendance"
        )

    def __call__(self, to_send: ScoreToSend | None = None, url: str | None = None) -> None:
        post_score(
            registration=registration(self.lms),
            tool_key=self.tool_key,
            http=self.http,
            line_item_url=url or self.url,
            score=to_send or score(),
            token_cache=self.tokens,
        )


@pytest.fixture()
def send(
    lms: TestPlatform, tool_key: SigningKey, http: requests.Session, tokens: TokenCache
) -> Sender:
    return Sender(lms, tool_key, http, tokens)


def ags_requests(platform: TestPlatform, resource: str) -> list[dict[str, Any]]:
    return [r for r in platform.ags_requests if r["resource"] == resource]


def failure(call: Callable[[], object]) -> AgsError:
    with pytest.raises(AgsError) as exc:
        call()
    return exc.value


# -- line items ------------------------------------------------------------------------


class TestCoupledLineItem:
    def test_the_line_item_moodle_couples_to_the_link_is_used(
        self, lms: TestPlatform, line_item: Callable[..., LineItem]
    ) -> None:
        coupled = lms.couple_line_item("rl-1", label="Mô đun 4", score_maximum=100)
        item = line_item()
        assert item.id == coupled and item.id.endswith("/lineitem?type_id=3")
        assert (item.label, item.score_maximum, item.resource_link_id) == ("Mô đun 4", 100, "rl-1")
        assert item.tag is None and item.resource_id is None  # Moodle's "" read as nothing
        [read] = lms.ags_requests
        assert (read["resource"], read["method"], read["accept"]) == (
            "lineitem",
            "GET",
            LINEITEM_MEDIA_TYPE,
        )
        assert read["raw_query"] == "type_id=3"
        assert ags_requests(lms, "lineitems") == []  # neither searched nor created

    def test_a_score_only_grant_uses_the_coupled_url_without_reading_it(
        self, lms: TestPlatform, line_item: Callable[..., LineItem]
    ) -> None:
        coupled = lms.couple_line_item("rl-1")
        endpoint = lms.ags_claim("rl-1") | {"scope": [SCOPE_SCORE]}
        item = line_item(endpoint=endpoint)
        assert item == LineItem(coupled, "Điểm danh", 10.0, "rl-1", None, "attendance")
        assert lms.ags_requests == [] and lms.tokens_issued == 0

    def test_the_read_asks_for_the_readonly_scope_only(
        self, lms: TestPlatform, line_item: Callable[..., LineItem]
    ) -> None:
        lms.couple_line_item("rl-1")
        line_item()
        [read] = lms.ags_requests
        assert lms._issued[read["token"]]["scopes"] == {SCOPE_LINEITEM_READONLY}


class TestFindExisting:
    def test_found_by_resource_link_and_tag_with_moodles_filters(
        self, lms: TestPlatform, line_item: Callable[..., LineItem]
    ) -> None:
        lms.ags_resource_links.add("rl-2")
        lms.add_line_item(label="Điểm danh", resource_link_id="rl-2", tag="attendance")
        lms.add_line_item(label="Bài tập", resource_link_id="rl-1", tag="homework")
        ours = lms.add_line_item(
            label="Điểm danh (cũ)", score_maximum=10, resource_link_id="rl-1", tag="attendance"
        )
        item = line_item()
        assert item.id == ours and (item.tag, item.resource_link_id) == ("attendance", "rl-1")
        assert item.label == "Điểm danh (cũ)"  # the platform's label, not ours
        [search] = ags_requests(lms, "lineitems")
        assert search["method"] == "GET" and search["accept"] == LINEITEM_CONTAINER_MEDIA_TYPE
        assert search["raw_query"].startswith("type_id=3&")  # the platform's query first
        assert search["query"] == {
            "type_id": "3",
            "resource_link_id": "rl-1",
            "tag": "attendance",
            "limit": "100",
        }

    def test_found_on_the_third_page_when_the_platform_ignores_the_tag_filter(
        self, lms: TestPlatform, line_item: Callable[..., LineItem]
    ) -> None:
        lms.ags_filters = False
        lms.ags_resource_links.add("rl-2")
        lms.add_line_item(label="Điểm danh", resource_link_id="rl-2", tag="attendance")
        for n in range(3):
            lms.add_line_item(label=f"Cột {n}", resource_link_id="rl-1", tag=f"other-{n}")
        ours = lms.add_line_item(label="X", resource_link_id="rl-1", tag="attendance")
        lms.add_line_item(label="Cột 9", resource_link_id="rl-1", tag="other-9")
        item = line_item(page_size=2)
        assert item.id == ours
        searches = ags_requests(lms, "lineitems")
        assert [r["query"].get("from") for r in searches] == [None, "2", "4"]
        assert all(r["query"]["type_id"] == "3" for r in searches)
        assert not any(r["method"] == "POST" for r in lms.ags_requests)

    def test_a_label_match_is_reused_when_no_item_has_the_tag(
        self, lms: TestPlatform, line_item: Callable[..., LineItem]
    ) -> None:
        lms.ags_filters = False
        for n in range(4):
            lms.add_line_item(label=f"Cột {n}", resource_link_id="rl-1")
        ours = lms.add_line_item(label="Điểm danh", resource_link_id="rl-1")
        lms.add_line_item(label="Điểm danh", resource_link_id="rl-1", tag="someone-else")
        assert line_item(page_size=2).id == ours
        assert line_item(page_size=2, tag=None).id == ours

    def test_an_item_of_another_link_is_never_taken(
        self, lms: TestPlatform, line_item: Callable[..., LineItem]
    ) -> None:
        lms.ags_filters = False
        lms.ags_resource_links.add("rl-2")
        other = lms.add_line_item(label="Điểm danh", resource_link_id="rl-2", tag="attendance")
        item = line_item()
        assert item.id != other and item.resource_link_id == "rl-1"
        assert [r["method"] for r in ags_requests(lms, "lineitems")] == ["GET", "POST"]

    def test_moodles_typographic_link_quotes_are_followed(
        self, lms: TestPlatform, line_item: Callable[..., LineItem]
    ) -> None:
        lms.ags_filters = False
        for n in range(4):
            lms.add_line_item(label=f"Cột {n}", resource_link_id="rl-1")
        line_item(page_size=2)
        searches = [r for r in ags_requests(lms, "lineitems") if r["method"] == "GET"]
        assert len(searches) == 2


class TestCreate:
    def test_created_when_absent_with_label_numeric_maximum_link_and_tag(
        self, lms: TestPlatform, line_item: Callable[..., LineItem]
    ) -> None:
        item = line_item(resource_id="module-4")
        [search, create] = ags_requests(lms, "lineitems")
        assert search["method"] == "GET" and create["method"] == "POST"
        assert create["content_type"] == LINEITEM_MEDIA_TYPE
        assert create["accept"] == LINEITEM_MEDIA_TYPE
        assert create["raw_query"] == "type_id=3"
        body = create["body"]
        assert body == {
            "label": "Điểm danh",
            "scoreMaximum": 10.0,
            "resourceLinkId": "rl-1",
            "tag": "attendance",
            "resourceId": "module-4",
        }
        assert isinstance(body["scoreMaximum"], float)
        assert create["status"] == 201
        assert item.id.endswith("/lineitem?type_id=3")
        assert lms.line_items[lms.item_id(item.id)]["tag"] == "attendance"
        assert (item.label, item.score_maximum, item.tag) == ("Điểm danh", 10.0, "attendance")
        assert lms._issued[create["token"]]["scopes"] == {SCOPE_LINEITEM}

    def test_the_second_call_finds_what_the_first_created(
        self, lms: TestPlatform, line_item: Callable[..., LineItem]
    ) -> None:
        first = line_item()
        assert line_item() == first
        assert [r["method"] for r in ags_requests(lms, "lineitems")] == ["GET", "POST", "GET"]

    @pytest.mark.parametrize(
        "bad",
        [{"label": "  "}, {"score_maximum": 0}, {"score_maximum": float("nan")}, {"label": None}],
    )
    def test_what_moodle_would_refuse_is_a_programming_error(
        self, lms: TestPlatform, line_item: Callable[..., LineItem], bad: dict[str, Any]
    ) -> None:
        with pytest.raises(ValueError):
            line_item(**bad)
        assert lms.ags_requests == []

    def test_a_403_names_the_moodle_setting(
        self, lms: TestPlatform, line_item: Callable[..., LineItem]
    ) -> None:
        lms.ags_create_refusal = 403
        err = failure(line_item)
        assert (err.kind, err.status) == ("forbidden", 403)
        assert "grade sync and column management" in err.detail
        assert err.platform_message == "Not allowed in context"
        assert not err.transient

    def test_grade_sync_only_is_refused_before_any_post(
        self, lms: TestPlatform, line_item: Callable[..., LineItem]
    ) -> None:
        lms.enable_ags(grade_sync=1)
        err = failure(line_item)
        assert (err.kind, err.status) == ("forbidden", None)
        assert "'Use this service for grade sync and column management'" in err.detail
        assert [r["method"] for r in lms.ags_requests] == ["GET"]

    def test_a_stale_claim_meets_the_token_endpoints_invalid_scope(
        self, lms: TestPlatform, line_item: Callable[..., LineItem]
    ) -> None:
        claim = lms.ags_claim("rl-1")  # issued while column management was on
        lms.enable_ags(grade_sync=1)
        err = failure(lambda: line_item(endpoint=claim))
        assert (err.kind, err.status) == ("forbidden", 400)
        assert "invalid_scope" in err.detail and "column management" in err.detail

    def test_a_link_that_is_not_the_tools_activity_is_forbidden(
        self, lms: TestPlatform, line_item: Callable[..., LineItem]
    ) -> None:
        err = failure(lambda: line_item(resource_link_id="rl-404"))
        assert (err.kind, err.status) == ("forbidden", 403)
        assert "resource link must also be an activity of this tool" in err.detail


# -- scores ----------------------------------------------------------------------------


class TestScoreRequests:
    def test_scores_go_to_the_path_and_keep_type_id(self, lms: TestPlatform, send: Sender) -> None:
        send()
        [posted] = lms.scores_received
        assert posted["status"] == 200 and posted["applied"]
        [request] = ags_requests(lms, "scores")
        assert request["path"].endswith(f"/lineitems/{posted['line_item']}/lineitem/scores")
        assert request["raw_query"] == "type_id=3"

    def test_media_type_and_fields(self, lms: TestPlatform, send: Sender) -> None:
        send(score(comment="Có mặt đủ 3 buổi"))
        [posted] = lms.scores_received
        assert posted["content_type"] == SCORE_MEDIA_TYPE  # exactly: no charset parameter
        body = posted["body"]
        assert set(body) == {
            "userId",
            "timestamp",
            "activityProgress",
            "gradingProgress",
            "scoreMaximum",
            "scoreGiven",
            "comment",
        }
        assert body["userId"] == "101" and body["comment"] == "Có mặt đủ 3 buổi"
        assert body["scoreGiven"] == 7.0 and body["scoreMaximum"] == 10.0
        assert ISO_WITH_OFFSET.match(body["timestamp"]), body["timestamp"]
        assert body["timestamp"] == "2025-09-01T08:00:00+00:00"
        token = ags_requests(lms, "scores")[0]["token"]
        assert lms._issued[token]["scopes"] == {SCOPE_SCORE}

    def test_score_given_is_left_out_until_fully_graded(
        self, lms: TestPlatform, send: Sender
    ) -> None:
        send(score(grading_progress="Pending", activity_progress="Submitted", score_given=7))
        send(score(timestamp=T0 + timedelta(seconds=1)))
        pending, graded = (r["body"] for r in lms.scores_received)
        assert "scoreGiven" not in pending and pending["scoreMaximum"] == 10.0
        assert graded["scoreGiven"] == 7.0 and graded["gradingProgress"] == "FullyGraded"
        assert lms.grade(send.url, "101")["final_grade"] == 7.0

    def test_a_pending_score_after_a_graded_one_clears_moodles_grade(
        self, lms: TestPlatform, send: Sender
    ) -> None:
        send(score())
        send(score(grading_progress="Pending", timestamp=T0 + timedelta(seconds=1)))
        assert lms.grade(send.url, "101")["final_grade"] is None

    def test_comment_is_absent_when_none(self, lms: TestPlatform, send: Sender) -> None:
        send(score(comment=None))
        assert "comment" not in lms.scores_received[0]["body"]

    def test_a_zero_is_sent(self, lms: TestPlatform, send: Sender) -> None:
        send(score(score_given=0))
        assert lms.scores_received[0]["body"]["scoreGiven"] == 0.0


class TestScoreRefusals:
    def test_a_repeated_timestamp_is_a_conflict(self, lms: TestPlatform, send: Sender) -> None:
        send(score())
        err = failure(lambda: send(score(score_given=8)))
        assert (err.kind, err.status) == ("conflict", 409)
        assert err.platform_message is not None
        assert err.platform_message.startswith("Refusing score with an earlier timestamp")
        assert not err.transient

    def test_a_later_timestamp_within_the_same_second_is_a_conflict_too(
        self, lms: TestPlatform, send: Sender
    ) -> None:
        send(score(timestamp=T0 + timedelta(microseconds=100)))
        err = failure(lambda: send(score(timestamp=T0 + timedelta(microseconds=900_000))))
        assert err.kind == "conflict"
        send(score(timestamp=next_timestamp(T0 + timedelta(microseconds=900_000), T0)))
        assert len(lms.applied_scores("101")) == 2

    def test_a_user_moodle_cannot_grade_is_rejected_with_its_reason(
        self, lms: TestPlatform, send: Sender
    ) -> None:
        err = failure(lambda: send(score(user_id="999")))
        assert (err.kind, err.status) == ("rejected", 400)
        assert err.platform_message == "Incorrect score received"
        assert "Incorrect score received" in err.detail
        assert not err.transient and isinstance(err, ServiceError)

    def test_rejected_without_a_reason_phrase_still_says_rejected(
        self, lms: TestPlatform, send: Sender
    ) -> None:
        lms.ags_reason_phrases = False  # HTTP/2: no reason phrase, and Moodle's body is "[]"
        err = failure(lambda: send(score(user_id="999")))
        assert (err.kind, err.platform_message) == ("rejected", None)

    def test_429_with_delta_seconds(self, lms: TestPlatform, send: Sender) -> None:
        lms.throttle(1, retry_after="17")
        err = failure(send)
        assert (err.kind, err.status, err.retry_after) == ("rate_limited", 429, 17.0)
        assert err.transient
        send()  # the next one goes through
        assert len(lms.applied_scores()) == 1

    def test_429_with_an_http_date(self, lms: TestPlatform, send: Sender) -> None:
        when = datetime.now(UTC) + timedelta(seconds=120)
        lms.throttle(1, retry_after=email.utils.format_datetime(when, usegmt=True))
        err = failure(send)
        assert err.kind == "rate_limited"
        assert err.retry_after is not None and 110 <= err.retry_after <= 121

    def test_a_500_is_unreachable(self, lms: TestPlatform, send: Sender) -> None:
        lms.fail_randomly(1.0)
        err = failure(send)
        assert (err.kind, err.status, err.retry_after) == ("unreachable", 500, None)
        assert err.transient and lms.applied_scores() == []

    def test_down_for_a_stretch_with_retry_after(self, lms: TestPlatform, send: Sender) -> None:
        lms.go_down(2, retry_after="5")
        for _ in range(2):
            err = failure(send)
            assert (err.kind, err.status, err.retry_after) == ("unreachable", 503, 5.0)
        send()
        assert len(lms.applied_scores()) == 1

    def test_connection_refused_is_unreachable(self, send: Sender) -> None:
        err = failure(lambda: send(url=closed_port_url("/mod/lti/lineitems/5/lineitem?type_id=3")))
        assert (err.kind, err.status) == ("unreachable", None)

    def test_a_deleted_column_is_not_found(self, lms: TestPlatform, send: Sender) -> None:
        err = failure(lambda: send(url=lms.line_item_url(999)))
        assert err.kind == "not_found"

    def test_a_wrong_type_id_is_forbidden(self, lms: TestPlatform, send: Sender) -> None:
        url = send.url.replace("type_id=3", "type_id=4")
        err = failure(lambda: send(url=url))
        assert (err.kind, err.status) == ("forbidden", 403)

    def test_a_score_not_granted_names_the_grade_sync_setting(
        self, lms: TestPlatform, send: Sender
    ) -> None:
        lms.enable_ags(grade_sync=0)
        err = failure(send)
        assert err.kind == "forbidden" and "grade sync only" in err.detail


class TestTokens:
    def test_a_401_gets_one_new_token_and_the_score_lands(
        self, lms: TestPlatform, send: Sender
    ) -> None:
        send()
        lms.revoke_tokens()
        send(score(timestamp=T0 + timedelta(seconds=1)))
        assert lms.tokens_issued == 2
        assert [r["status"] for r in lms.scores_received] == [200, 401, 200]
        assert len(lms.applied_scores("101")) == 2

    def test_a_401_twice_is_forbidden(self, lms: TestPlatform, send: Sender) -> None:
        """The token endpoint still grants the scope, the service no longer takes it."""
        lms.enable_ags(grade_sync=0)
        lms.token_scopes = lms.token_scopes | {SCOPE_SCORE}
        err = failure(send)
        assert (err.kind, err.status) == ("forbidden", 401)
        assert "grade sync only" in err.detail
        assert lms.tokens_issued == 2
        assert [r["status"] for r in lms.scores_received] == [401, 401]

    def test_many_scores_share_one_token(self, lms: TestPlatform, send: Sender) -> None:
        for n, user in enumerate(["101", "102", "103"]):
            send(score(user_id=user, timestamp=T0 + timedelta(seconds=n)))
        assert lms.tokens_issued == 1 and len(lms.applied_scores()) == 3

    def test_failed_requests_keep_the_token(self, lms: TestPlatform, send: Sender) -> None:
        """500s and 409s (the outbox bench's 30% failing run) drop no token: only a 401 does."""
        lms.fail_randomly(0.5, seed=7, after_processing=True)
        for user in ["101", "102", "103"]:
            for _ in range(20):  # the outbox's way: the same score again until 2xx or 409
                try:
                    send(score(user_id=user, timestamp=T0))
                    break
                except AgsError as err:
                    assert err.kind in ("unreachable", "conflict")
                    if err.kind == "conflict":  # an earlier try landed, its answer was lost
                        break
        statuses = [r["status"] for r in lms.scores_received]
        assert 500 in statuses and 409 in statuses and 401 not in statuses
        assert lms.token_hits() == lms.tokens_issued == 1
        assert [len(lms.applied_scores(u)) for u in ["101", "102", "103"]] == [1, 1, 1]


class TestOutboxLikeDelivery:
    """What an outbox sees when it retries each kind as the module's table says."""

    def deliver(
        self, send: Sender, user: str, previous: datetime | None
    ) -> tuple[datetime, list[str]]:
        kinds: list[str] = []
        clock = T0 + timedelta(seconds=10)
        stamp = next_timestamp(previous, clock)
        for _ in range(50):
            try:
                send(score(user_id=user, timestamp=stamp))
                return stamp, kinds
            except AgsError as err:
                kinds.append(err.kind)
                if err.kind == "conflict":
                    stamp = next_timestamp(stamp, clock)
                elif not err.transient:
                    raise
        raise AssertionError("not delivered")

    def test_seeded_faults_every_score_lands_exactly_once(
        self, lms: TestPlatform, send: Sender
    ) -> None:
        lms.fail_randomly(0.4, seed=7)
        seen: list[str] = []
        for user in ["101", "102", "103"]:
            _, kinds = self.deliver(send, user, None)
            seen += kinds
        assert "unreachable" in seen
        assert [len(lms.applied_scores(u)) for u in ["101", "102", "103"]] == [1, 1, 1]

    def test_a_lost_answer_then_a_retry_meets_a_conflict(
        self, lms: TestPlatform, send: Sender
    ) -> None:
        """The first try landed but its answer was lost: the retry with the same timestamp
        is refused (409), the bumped one lands again — the value is the same."""
        lms.fail_randomly(1.0, after_processing=True)
        with pytest.raises(AgsError):
            send(score(timestamp=T0))
        lms.fail_randomly(0.0)
        err = failure(lambda: send(score(timestamp=T0)))
        assert err.kind == "conflict"
        send(score(timestamp=next_timestamp(T0, T0)))
        assert len(lms.applied_scores("101")) == 2
        assert lms.grade(send.url, "101")["final_grade"] == 7.0


# -- results ---------------------------------------------------------------------------


class TestResults:
    def test_results_read_back_and_a_zero_reads_as_no_score(
        self,
        lms: TestPlatform,
        send: Sender,
        tool_key: SigningKey,
        http: requests.Session,
        tokens: TokenCache,
    ) -> None:
        send(score(user_id="101", score_given=7, comment="Tốt"))
        send(score(user_id="102", score_given=0))
        results = get_results(
            registration=registration(lms),
            tool_key=tool_key,
            http=http,
            line_item_url=send.url,
            token_cache=tokens,
        )
        by_user = {r.user_id: r for r in results}
        assert by_user["101"].result_score == 7.0 and by_user["101"].result_maximum == 10.0
        assert by_user["101"].comment == "Tốt" and by_user["101"].timestamp == T0
        assert by_user["102"].result_score is None  # Moodle: !empty(0) is false
        [read] = ags_requests(lms, "results")
        assert read["path"].endswith("/lineitem/results") and read["raw_query"] == "type_id=3"

    def test_one_users_result(
        self,
        lms: TestPlatform,
        send: Sender,
        tool_key: SigningKey,
        http: requests.Session,
        tokens: TokenCache,
    ) -> None:
        send(score(user_id="101"))
        send(score(user_id="102", score_given=9))
        [result] = get_results(
            registration=registration(lms),
            tool_key=tool_key,
            http=http,
            line_item_url=send.url,
            user_id="102",
            token_cache=tokens,
        )
        assert (result.user_id, result.result_score) == ("102", 9.0)


# -- rules without HTTP ----------------------------------------------------------------


class TestNextTimestamp:
    @given(
        st.lists(
            st.datetimes(
                min_value=datetime(2020, 1, 1),
                max_value=datetime(2040, 1, 1),
                timezones=st.sampled_from([UTC, timezone(timedelta(hours=7))]),
            ),
            min_size=1,
            max_size=30,
        )
    )
    def test_strictly_increasing_whole_seconds_and_no_later_than_needed(
        self, nows: list[datetime]
    ) -> None:
        previous: datetime | None = None
        for now in nows:
            stamp = next_timestamp(previous, now)
            assert stamp.microsecond == 0 and stamp.utcoffset() == timedelta(0)
            assert stamp >= now.replace(microsecond=0)
            if previous is not None:
                assert int(stamp.timestamp()) > int(previous.timestamp())
                assert stamp <= max(now, previous + timedelta(seconds=1))
            else:
                assert stamp <= now
            previous = stamp

    def test_examples(self) -> None:
        assert next_timestamp(None, T0 + timedelta(microseconds=999_999)) == T0
        assert next_timestamp(T0, T0) == T0 + timedelta(seconds=1)
        assert next_timestamp(T0, T0 - timedelta(hours=1)) == T0 + timedelta(seconds=1)
        assert next_timestamp(T0, T0 + timedelta(seconds=30.5)) == T0 + timedelta(seconds=30)

    def test_naive_times_are_refused(self) -> None:
        with pytest.raises(ValueError):
            next_timestamp(None, datetime(2025, 9, 1, 8, 0))
        with pytest.raises(ValueError):
            next_timestamp(datetime(2025, 9, 1, 8, 0), T0)


class TestTimestampsAndBodies:
    def test_format(self) -> None:
        hanoi = timezone(timedelta(hours=7))
        assert format_timestamp(datetime(2025, 9, 1, 15, 0, tzinfo=hanoi)) == (
            "2025-09-01T08:00:00+00:00"
        )
        assert format_timestamp(T0 + timedelta(microseconds=5)) == (
            "2025-09-01T08:00:00.000005+00:00"
        )

    @pytest.mark.parametrize(
        "bad",
        [
            {"activity_progress": "Done"},
            {"grading_progress": "Graded"},
            {"timestamp": datetime(2025, 9, 1)},
            {"score_given": -1},
            {"score_given": float("inf")},
            {"score_maximum": 0},
            {"user_id": ""},
        ],
    )
    def test_a_score_moodle_would_misread_cannot_be_built(self, bad: dict[str, Any]) -> None:
        with pytest.raises(ValueError):
            score(**bad)

    @pytest.mark.parametrize("progress", ["Pending", "PendingManual", "Failed", "NotReady"])
    def test_score_given_only_with_fully_graded(self, progress: str) -> None:
        assert "scoreGiven" not in score_body(score(grading_progress=progress))
        assert score_body(score())["scoreGiven"] == 7.0


MOODLE = "https://moodle.test/mod/lti/services.php/2/lineitems/5/lineitem"


class TestUrls:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            (MOODLE + "?type_id=3", MOODLE + "/scores?type_id=3"),
            (MOODLE, MOODLE + "/scores"),
            (MOODLE + "/?type_id=3", MOODLE + "/scores?type_id=3"),
            (MOODLE + "?type_id=3&x=a%3Fb#frag", MOODLE + "/scores?type_id=3&x=a%3Fb"),
            (MOODLE + "?q=a?b", MOODLE + "/scores?q=a?b"),  # pylti1p3 would drop "?b"
        ],
    )
    def test_scores_url(self, given: str, expected: str) -> None:
        assert scores_url(given) == expected

    def test_results_url(self) -> None:
        assert results_url(MOODLE + "?type_id=3", user_id="101") == (
            MOODLE + "/results?type_id=3&user_id=101"
        )

    @pytest.mark.parametrize("bad", ["javascript:alert(1)", "/relative/lineitem", ""])
    def test_not_http_is_refused_before_any_request(self, bad: str) -> None:
        err = failure(lambda: scores_url(bad))
        assert err.kind == "bad_response"


class TestRetryAfter:
    NOW = datetime(2015, 10, 21, 7, 0, 0, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("value", "seconds"),
        [
            ("120", 120.0),
            (" 0 ", 0.0),
            ("Wed, 21 Oct 2015 07:28:00 GMT", 1680.0),
            ("Wednesday, 21-Oct-15 07:28:00 GMT", 1680.0),  # RFC 850, still allowed
            ("Wed, 21 Oct 2015 06:00:00 GMT", 0.0),  # in the past: now
            (None, None),
            ("", None),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
        ],
    )
    def test_both_forms(self, value: str | None, seconds: float | None) -> None:
        assert parse_retry_after(value, now=self.NOW) == seconds

    @given(st.text(max_size=60))
    def test_never_raises(self, value: str) -> None:
        parse_retry_after(value, now=self.NOW)


class TestParseLineItem:
    def test_moodle_json(self) -> None:
        item = parse_line_item(
            {
                "id": MOODLE + "?type_id=3",
                "label": "Mô đun 4",
                "scoreMaximum": 100,
                "resourceId": "",
                "tag": "",
                "resourceLinkId": "7",
                "ltiLinkId": "7",
            }
        )
        assert item == LineItem(MOODLE + "?type_id=3", "Mô đun 4", 100.0, "7", None, None)

    @pytest.mark.parametrize(
        "raw",
        [None, [], {"label": "x", "scoreMaximum": 1}, {"id": "ftp://x", "scoreMaximum": 1}],
    )
    def test_unusable(self, raw: Any) -> None:
        assert parse_line_item(raw) is None

    def test_error_kinds_are_checked(self) -> None:
        with pytest.raises(ValueError):
            AgsError("nonsense")  # type: ignore[arg-type]
        assert AgsError("rate_limited", 429, retry_after=3).transient
        assert not AgsError("conflict", 409).transient
