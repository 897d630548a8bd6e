"""The LMS misbehaving: its gradebook (AGS), its token endpoint and its member list (NRPS)
fail, hang, throttle and answer garbage. Whatever it does, a score owed to it is never lost
and never counted twice, and an administrator reads on ``/admin/passback`` what is going on.

**Exactly once**, as this suite asserts it (``assert_exactly_once``): AGS has no delivery id;
a score is identified by (line item, user, timestamp), and every score blend727 queues gets a
timestamp strictly later than the previous one (``next_timestamp``). A delivery may be
repeated — the answer to an earlier one was lost, or it timed out after the LMS stored it —
but each repetition carries the byte-identical body (same timestamp, same value), and the
LMS, like Moodle, applies a given timestamp once and answers 409 to the same timestamp
again. So: for every queued score the gradebook **applied exactly one** POST (the platform
counts them, ``applied_scores``), every other POST of it that reached the LMS was identical
and changed nothing, and the gradebook ends up holding that score's value.

The platform (``tests/lti_platform.py``) is real HTTP on 127.0.0.1; ``Fault`` scripts what it
answers. Rounds of the worker are run with a clock an hour apart so that retries come due at
once; the worker records real times, which are what the Retry-After checks read.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.classes.models import Enrolment
from app.core.db import Database
from app.core.i18n import gettext
from app.core.time import utcnow
from app.passback.models import OutboxStatus, ScoreOutbox
from app.passback.rules import (
    BASE_DELAY,
    MAX_RETRY_AFTER,
    REASONS,
    REFUSALS_BEFORE_FAILED,
)
from app.passback.service import OutboxWorker, RunResult
from lti.http import build_session
from lti.services import TokenCache, process_token_cache
from tests.helpers import new_class
from tests.lti_platform import (
    INST_ADMIN,
    INSTRUCTOR,
    LEARNER,
    SYS_ADMIN,
    Fault,
    TestPlatform,
)
from tests.test_passback_e2e import _lms, _queue, _register

N = 5
HTML_PAGE = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>SSO</body></html>"


@dataclass
class Outbox:
    client: TestClient
    database: Database
    db: Session
    lms: TestPlatform
    expected: dict[str, Decimal]
    timeout: float = 2.0

    def worker(self, *, batch: int = 50, timeout: float | None = None) -> OutboxWorker:
        t = timeout or self.timeout
        return OutboxWorker(
            self.database,
            build_session(t),
            rng=random.Random(7),
            token_cache=self.tokens,
            batch=batch,
            send_timeout=t,
        )

    def __post_init__(self) -> None:
        self.tokens = TokenCache()
        self.hour = 0

    def round(self, worker: OutboxWorker | None = None) -> RunResult:
        """One round an hour later than the last: every retry is due."""
        self.hour += 1
        return (worker or self.worker()).run_once(now=utcnow() + timedelta(hours=self.hour))

    def drain(self, worker: OutboxWorker | None = None, rounds: int = 30) -> None:
        """Rounds until nothing waits (a Retry-After of hours takes a few rounds)."""
        worker = worker or self.worker()
        for _ in range(rounds):
            if self.round(worker).claimed == 0 and not any(
                r.status in (OutboxStatus.PENDING, OutboxStatus.SENDING) for r in self.rows()
            ):
                return
        raise AssertionError("the outbox did not drain")

    def rows(self) -> list[ScoreOutbox]:
        self.db.expire_all()
        return list(self.db.scalars(select(ScoreOutbox).order_by(ScoreOutbox.id)))

    def score_posts(self) -> list[dict[str, Any]]:
        return list(self.lms.scores_received)

    def admin_view(self) -> list[dict[str, Any]]:
        """What the LMS's administrator reads (``GET /api/v1/passback``)."""
        if "X-CSRF-Token" not in self.client.headers:
            response = self.lms.launch(
                self.client, roles=[INST_ADMIN, SYS_ADMIN], sub="9", name="Quản trị"
            )
            assert response.status_code == 303
            me = self.client.get("/api/v1/me").json()
            self.client.headers["X-CSRF-Token"] = me["csrf_token"]
        listing = self.client.get("/api/v1/passback")
        assert listing.status_code == 200, listing.text
        return list(listing.json()["rows"])


@pytest.fixture()
def outbox(client: TestClient, database: Database, db: Session, platform_http: str) -> Outbox:
    lms = _lms(platform_http, client.get("/lti/jwks.json").json())
    platform_id, deployment_pk = _register(db, lms)
    expected = _queue(db, platform_id, deployment_pk, lms, N)
    db.commit()
    return Outbox(client, database, db, lms, expected)


def assert_exactly_once(box: Outbox) -> None:
    lms = box.lms
    line_item = lms.ags_claim("rl-1")["lineitem"]
    for sub, given in box.expected.items():
        applied = lms.applied_scores(user_id=sub)
        assert len(applied) == 1, (sub, applied)
        posts = [p for p in lms.scores_received if p["user_id"] == sub]
        # Every delivery of the score was the same timestamp and value; only one counted.
        assert {p["raw_body"] for p in posts} == {applied[0]["raw_body"]}, posts
        held = lms.grade(line_item, sub)
        assert held is not None and Decimal(str(held["final_grade"])) == given
    assert {r.status for r in box.rows()} == {OutboxStatus.SENT}


def reason_text(code: str, status: int | str = "—") -> str:
    """The plain-words reason as the administrator (Vietnamese by default) reads it on the
    page (HTML-escaped)."""
    return str(escape(gettext("vi", REASONS[code]) % {"status": status}))


# -- the gradebook failing ---------------------------------------------------------------------


class TestTheGradebookFailing:
    @pytest.mark.parametrize("status", [500, 502, 503])
    def test_server_errors_are_retried_with_backoff_and_each_score_lands_once(
        self, outbox: Outbox, status: int
    ) -> None:
        outbox.lms.misbehave(Fault(status), Fault(status))
        before = utcnow()
        first = outbox.round()
        rows = outbox.rows()
        waiting = [r for r in rows if r.status == OutboxStatus.PENDING]
        if status == 500:
            # One score's own trouble: the others are still sent.
            assert first.retried == 2 and first.sent == N - 2
            assert len(outbox.score_posts()) == N
        else:
            # A gateway or maintenance page: the LMS as a whole is out. One request, and the
            # other scores wait for the same next try instead of hammering it.
            assert first.retried == 1 and first.deferred == N - 1
            assert len(outbox.score_posts()) == 1
            assert len(waiting) == N
            assert {r.attempts for r in waiting} == {1, 0}
            assert len({r.next_attempt_at for r in waiting}) == 1
        for row in waiting:
            assert row.next_attempt_at >= before + BASE_DELAY / 2  # backed off
            assert row.last_http_status == status
        view = outbox.admin_view()
        assert {v["state"] for v in view} == {"waiting"}
        assert {v["reason_code"] for v in view} == {"server_error"}
        assert all(v["next_try_at"] for v in view)
        page = outbox.client.get("/admin/passback")
        assert reason_text("server_error", status) in page.text
        outbox.drain()
        assert_exactly_once(outbox)

    def test_a_500_after_the_score_was_stored_is_answered_409_on_the_retry(
        self, outbox: Outbox
    ) -> None:
        outbox.lms.misbehave(Fault(500, after_processing=True))
        outbox.drain()
        assert_exactly_once(outbox)
        first = outbox.lms.scores_received[0]["user_id"]
        statuses = [p["status"] for p in outbox.score_posts() if p["user_id"] == first]
        assert statuses == [500, 409]  # the LMS said it holds it: delivered

    @pytest.mark.parametrize(
        "stored_first", [False, True], ids=["slow-then-stores", "stores-slowly"]
    )
    def test_an_lms_slower_than_the_timeout(self, outbox: Outbox, stored_first: bool) -> None:
        """BLEND727_HTTP_TIMEOUT_SECONDS (here 0.3 s) runs out; the LMS may store the score
        after we gave up (or before its slow answer): the retry meets it either way."""
        outbox.lms.misbehave(Fault(None, delay=1.0, after_processing=stored_first))
        worker = outbox.worker(timeout=0.3)
        started = time.monotonic()
        first = outbox.round(worker)
        assert first.retried == 1 and first.deferred == N - 1  # no answer: the LMS is out
        view = outbox.admin_view()
        assert {v["reason_code"] for v in view} == {"timeout"}
        assert reason_text("timeout") in outbox.client.get("/admin/passback").text
        outbox.drain(worker)
        time.sleep(max(0.0, started + 1.3 - time.monotonic()))  # the slow request ends
        assert_exactly_once(outbox)
        first_sub = next(iter(outbox.expected))
        statuses = sorted(
            p.get("status") for p in outbox.score_posts() if p["user_id"] == first_sub
        )
        assert statuses == [200, 409]  # the late one and the retry: one of them counted

    def test_a_dropped_connection_is_retried(self, outbox: Outbox) -> None:
        outbox.lms.misbehave(Fault(200, drop=True))
        first = outbox.round()
        assert first.retried == 1 and first.deferred == N - 1
        assert outbox.admin_view()[0]["reason_code"] == "no_connection"
        outbox.drain()
        assert_exactly_once(outbox)


class TestGarbageAnswers:
    def test_a_sign_in_page_answering_200_is_not_acceptance(self, outbox: Outbox) -> None:
        """A proxy's sign-in page (or a captive portal) answers 200 in the LMS's place: the
        score never reached the gradebook. It used to be counted as sent — and lost."""
        outbox.lms.misbehave(Fault(200, HTML_PAGE, "text/html; charset=utf-8"))
        first = outbox.round()
        assert first.sent == N - 1 and first.retried == 1
        assert outbox.admin_view()[0]["reason_code"] == "bad_response"
        outbox.drain()
        assert_exactly_once(outbox)

    def test_a_web_page_after_the_score_was_stored_is_met_by_409(self, outbox: Outbox) -> None:
        outbox.lms.misbehave(Fault(200, HTML_PAGE, after_processing=True))
        outbox.drain()
        assert_exactly_once(outbox)

    @pytest.mark.parametrize(
        "fault",
        [
            Fault(502, b'{"error": "Bad gat', "application/json"),
            Fault(503, b"\x00\xff garbage", "application/octet-stream"),
            Fault(200, b'{"resultUrl": "http', "application/json", cut_short=True),
            Fault(200, b'{"resultUrl": "http', "text/plain", after_processing=True),
        ],
        ids=["502-truncated-json", "503-binary", "200-cut-short", "200-broken-json-stored"],
    )
    def test_broken_answers_lose_nothing(self, outbox: Outbox, fault: Fault) -> None:
        outbox.lms.misbehave(fault)
        outbox.round()
        for view in outbox.admin_view():
            # garbage is never shown to an administrator as the LMS's words
            assert "Bad gat" not in (view["last_error"] or "")
        outbox.drain()
        assert_exactly_once(outbox)


class TestConflicts:
    def test_409_for_a_score_the_lms_already_holds_is_delivery(self, outbox: Outbox) -> None:
        """Moodle's 409 ("Refusing score with an earlier timestamp") for the same timestamp:
        resending it would loop, a new timestamp would apply it twice. It counts as sent."""
        sub = next(iter(outbox.expected))
        item = outbox.lms.item_id(outbox.lms.ags_claim("rl-1")["lineitem"])
        outbox.drain()
        assert_exactly_once(outbox)
        # A newer grade typed in the LMS's gradebook meanwhile makes a later score 409 too:
        # the newer grade stands (the LMS's word is the latest), nothing loops.
        held = outbox.lms.ags_grades[(item, sub)]
        held["timestamp"] += 3600
        with outbox.database.session() as s:
            row = s.scalars(select(ScoreOutbox).where(ScoreOutbox.lms_user_id == sub)).one()
            s.add(
                ScoreOutbox(
                    deployment_id=row.deployment_id,
                    resource_link_id=row.resource_link_id,
                    line_item_url=row.line_item_url,
                    line_item_url_hash=row.line_item_url_hash,
                    lms_user_id=sub,
                    score=row.score,
                    score_timestamp=row.score_timestamp + timedelta(seconds=1),
                )
            )
        outbox.drain()
        posts = [p for p in outbox.score_posts() if p["user_id"] == sub]
        assert [p["status"] for p in posts] == [200, 409]
        last = outbox.rows()[-1]
        assert last.status == OutboxStatus.SENT and last.last_http_status == 409


# -- throttling --------------------------------------------------------------------------------


class TestRateLimits:
    @pytest.mark.parametrize("form", ["seconds", "http-date"])
    def test_retry_after_is_honoured_for_every_waiting_score(
        self, outbox: Outbox, form: str
    ) -> None:
        before = utcnow()
        wait = 120 if form == "seconds" else 300
        value = (
            str(wait)
            if form == "seconds"
            else email.utils.format_datetime(before + timedelta(seconds=wait), usegmt=True)
        )
        outbox.lms.misbehave(Fault(429, b"Too Many Requests", "text/plain", {"Retry-After": value}))
        first = outbox.round()
        assert first.retried == 1 and first.deferred == N - 1
        assert len(outbox.score_posts()) == 1  # throttled: nothing more is sent this round
        after = utcnow()
        for row in outbox.rows():
            assert row.status == OutboxStatus.PENDING
            assert before + timedelta(seconds=wait - 1) <= row.next_attempt_at
            assert row.next_attempt_at <= after + timedelta(seconds=wait + 1)
        view = outbox.admin_view()
        assert {v["reason_code"] for v in view} == {"rate_limited"}
        assert reason_text("rate_limited") in outbox.client.get("/admin/passback").text
        outbox.drain()
        assert_exactly_once(outbox)

    def test_without_retry_after_it_backs_off_on_its_own(self, outbox: Outbox) -> None:
        outbox.lms.misbehave(Fault(429, b"slow down", "text/plain"))
        before = utcnow()
        outbox.round()
        for row in outbox.rows():
            assert before + BASE_DELAY / 2 <= row.next_attempt_at
            assert row.next_attempt_at <= utcnow() + BASE_DELAY
        outbox.drain()
        assert_exactly_once(outbox)

    def test_an_unreasonable_retry_after_is_capped(self, outbox: Outbox) -> None:
        outbox.lms.misbehave(Fault(429, b"", "text/plain", {"Retry-After": str(10 * 86400)}))
        outbox.round()
        for row in outbox.rows():
            assert row.next_attempt_at <= utcnow() + MAX_RETRY_AFTER
        outbox.drain()
        assert_exactly_once(outbox)


# -- the token endpoint --------------------------------------------------------------------------


class TestTheTokenEndpoint:
    def test_a_revoked_token_gets_exactly_one_new_token(self, outbox: Outbox) -> None:
        worker = outbox.worker(batch=2)
        outbox.round(worker)
        assert outbox.lms.tokens_issued == 1
        outbox.lms.revoke_tokens()
        outbox.drain(worker)
        assert outbox.lms.tokens_issued == 2  # one 401, one new token, for every later score
        assert [p["status"] for p in outbox.score_posts()].count(401) == 1
        assert_exactly_once(outbox)

    @pytest.mark.parametrize(
        ("fault", "code"),
        [
            (Fault(503, headers={"Retry-After": "60"}, resource=None), "token_down"),
            (Fault(200, drop=True, resource=None), "no_connection"),
            (
                Fault(
                    401,
                    b'{"error": "invalid_client", "error_description": "unknown kid"}',
                    "application/json",
                    resource=None,
                ),
                "token_refused",
            ),
            (Fault(200, HTML_PAGE, resource=None), "bad_response"),
        ],
        ids=["down-503", "no-connection", "refused-401", "garbage"],
    )
    def test_a_failing_token_endpoint_is_asked_once_per_round(
        self, outbox: Outbox, fault: Fault, code: str
    ) -> None:
        outbox.lms.misbehave_token(fault)
        before = utcnow()
        first = outbox.round()
        assert first.retried == 1 and first.deferred == N - 1
        assert outbox.lms.token_hits() == 1 and not outbox.score_posts()
        if fault.headers.get("Retry-After"):
            assert min(r.next_attempt_at for r in outbox.rows()) >= before + timedelta(seconds=59)
        view = outbox.admin_view()
        assert {v["reason_code"] for v in view} == {code}
        page = outbox.client.get("/admin/passback").text
        assert reason_text(code, fault.status or "—") in page
        outbox.drain()
        assert outbox.lms.tokens_issued == 1
        assert_exactly_once(outbox)


# -- refusals --------------------------------------------------------------------------------


class TestRefusals:
    @pytest.mark.parametrize(
        ("fault", "code", "words"),
        [
            (Fault(400, b"[]", reason="Incorrect score received"), "rejected", "Incorrect score"),
            (
                Fault(422, b'{"reason": "User not enrolled as a student"}', "application/json"),
                "rejected",
                "not enrolled",
            ),
            (
                Fault(404, b"[]", reason="Not Found: Grade item 5 doesn't exist."),
                "not_found",
                "doesn't exist",
            ),
        ],
        ids=["400", "422", "404"],
    )
    def test_a_refusal_fails_after_a_few_tries_with_the_lms_reason(
        self, outbox: Outbox, fault: Fault, code: str, words: str
    ) -> None:
        first = next(iter(outbox.expected))
        outbox.lms.misbehave(*([replace(fault, user_id=first)] * REFUSALS_BEFORE_FAILED))
        outbox.drain()
        rows = outbox.rows()
        refused = rows[0]
        assert refused.status == OutboxStatus.FAILED
        assert refused.attempts == REFUSALS_BEFORE_FAILED
        assert refused.last_http_status == fault.status
        # one score's refusal: the others went through at once
        assert {r.status for r in rows[1:]} == {OutboxStatus.SENT}
        (view,) = [v for v in outbox.admin_view() if v["state"] == "failed"]
        assert view["reason_code"] == code and words in view["last_error"]
        page = outbox.client.get("/admin/passback").text
        assert reason_text(code, fault.status or "—") in page and escape(words) in page
        # Fixed in the LMS: the administrator sends it again, it lands once.
        assert outbox.client.post(f"/api/v1/passback/{refused.id}/retry").status_code == 200
        outbox.drain()
        assert_exactly_once(outbox)


# -- the member list (NRPS) ------------------------------------------------------------------


NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"


@pytest.fixture()
def roster(client: TestClient, platform_http: str, factories: Any) -> Iterator[Any]:
    process_token_cache().clear()
    lms = TestPlatform.create(platform_http, issuer="https://moodle-nrpsf.test", client_id="n")
    factories.register(lms, deployment_ids=["1"], served_token=True)
    lms.trust_tool_jwks(client.get("/lti/jwks.json").json())
    lms.members = [
        {"status": "Active", "user_id": str(2000 + i), "roles": [LEARNER]} for i in range(120)
    ] + [{"status": "Active", "user_id": "1999", "roles": [INSTRUCTOR]}]
    nrps = {"context_memberships_url": lms.memberships_url, "service_versions": ["2.0"]}
    response = lms.launch(
        client,
        roles=[INST_ADMIN, SYS_ADMIN],
        sub="1",
        name="Quản trị",
        mutate=lambda c: c.update({NRPS_CLAIM: nrps}),
    )
    assert response.status_code == 303
    client.headers["X-CSRF-Token"] = client.get("/api/v1/me").json()["csrf_token"]
    course = client.get("/api/v1/courses").json()[0]
    cls = new_class(client, course_id=course["id"])
    yield lms, cls


class TestTheMemberListFailing:
    @pytest.mark.parametrize(
        "fault",
        [
            Fault(503, resource=None),
            Fault(200, b'{"members": [{"user_id": "1"', "application/json", resource=None),
            Fault(200, HTML_PAGE, resource=None),
            Fault(429, b"", "text/plain", {"Retry-After": "5"}, resource=None),
            Fault(None, delay=1.0, resource=None),
        ],
        ids=["503", "truncated-json", "html", "429", "timeout"],
    )
    def test_a_page_failing_midway_changes_nobody(
        self, client: TestClient, roster: Any, db: Session, fault: Fault
    ) -> None:
        lms, cls = roster
        sync = f"/api/v1/classes/{cls['id']}/roster/sync"
        assert client.post(sync).json()["enrolled"] == 120
        lms.members = lms.members[:60] + lms.members[61:]  # one learner left the course
        # The second page of three fails: nothing of the first page is applied, and nobody
        # on the pages not read is taken for a leaver.
        lms.misbehave_nrps(Fault(None, resource=None), fault)
        client.app.state.ctx.http = build_session(0.3)  # type: ignore[attr-defined]
        response = client.post(sync)
        assert response.status_code == 502, response.text
        assert response.json()["code"] == "roster_unavailable"
        active = db.scalar(
            select(func.count())
            .select_from(Enrolment)
            .where(Enrolment.class_id == cls["id"], Enrolment.status == "active")
        )
        assert active == 120
        after = client.post(sync).json()
        assert after["left"] == 1 and after["already"] == 119
