"""Scores reach the LMS gradebook exactly once, through failures and downtime, from one
worker or several (AGS test platform behaving like Moodle 5.1)."""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import delete, select

from app.core.db import Database
from app.core.time import utcnow
from app.identity.models import ResourceLink, User
from app.keys.service import KeyService
from app.passback.models import OutboxStatus, ScoreOutbox
from app.passback.service import OutboxWorker, enqueue_score
from app.platforms.models import Platform
from app.platforms.repository import PlatformRepository
from app.platforms.service import PlatformInput, PlatformService
from lti.http import build_session
from lti.services import TokenCache
from tests.lti_platform import TestPlatform

AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"


def _lms(platform_http: str, jwks: dict) -> TestPlatform:
    lms = TestPlatform.create(
        platform_http, issuer=f"https://moodle-{uuid.uuid4().hex[:6]}.test", client_id="ags"
    )
    lms.trust_tool_jwks(jwks)
    lms.enable_ags(2)
    lms.couple_line_item("rl-1", label="Mô đun 4", score_maximum=10)
    return lms


def _register(session, lms: TestPlatform) -> tuple[int, int]:
    platform = PlatformService(session).register(
        PlatformInput(
            issuer=lms.issuer,
            client_id=lms.client_id,
            auth_login_url=lms.auth_login_url,
            token_url=lms.served_token_url,
            keyset_url=lms.keyset_url,
            deployment_ids=["1"],
        )
    )
    deployment_pk = PlatformRepository(session).deployment_pk(platform.id, "1")
    assert deployment_pk is not None
    return platform.id, deployment_pk


def _queue(
    session, platform_id: int, deployment_pk: int, lms: TestPlatform, n: int
) -> dict[str, Decimal]:
    claim = lms.ags_claim("rl-1")
    link = ResourceLink(
        deployment_id=deployment_pk, resource_link_id="rl-1", ags_endpoint=claim, custom={}
    )
    users = [User(platform_id=platform_id, sub=str(500 + i), name=f"HV {i}") for i in range(n)]
    session.add_all([link, *users])
    session.flush()
    expected = {}
    for i, user in enumerate(users):
        given = Decimal(5 + i % 5) + Decimal("0.25")
        enqueue_score(
            session,
            deployment_id=deployment_pk,
            resource_link=link,
            line_item_url=claim["lineitem"],
            user=user,
            score_given=given,
            score_maximum=Decimal(10),
            activity_progress="Completed",
            grading_progress="FullyGraded",
        )
        expected[user.sub] = given
    return expected


def _drain(worker: OutboxWorker, rounds: int = 300, *, fast_forward: bool = True) -> None:
    """Run the worker until nothing is due; ``fast_forward``: each round an hour later, so
    that retries come due at once (one worker only: workers must share one clock)."""
    later = utcnow()
    for _ in range(rounds):
        later += timedelta(hours=1)
        result = worker.run_once(now=later if fast_forward else None)
        if result.claimed == 0:
            return
    raise AssertionError("outbox did not drain")


class TestEveryScoreArrivesExactlyOnce:
    def test_through_30_percent_failures_and_a_stretch_of_downtime(
        self, client, database, db, platform_http
    ):
        lms = _lms(platform_http, client.get("/lti/jwks.json").json())
        platform_id, deployment_pk = _register(db, lms)
        expected = _queue(db, platform_id, deployment_pk, lms, 40)
        db.commit()
        # Lost answers too: the score is stored, then the response fails (a retry meets 409).
        lms.fail_randomly(0.3, seed=7, after_processing=True)
        lms.go_down(15)
        worker = OutboxWorker(
            database, build_session(5), rng=random.Random(1), token_cache=TokenCache()
        )
        _drain(worker)
        for sub, given in expected.items():
            applied = lms.applied_scores(user_id=sub)
            assert len(applied) == 1, (sub, applied)
            held = lms.grade(lms.ags_claim("rl-1")["lineitem"], sub)
            assert held is not None and Decimal(str(held["final_grade"])) == given
        statuses = Counter(r.status for r in db.scalars(select(ScoreOutbox)))
        assert statuses == Counter({OutboxStatus.SENT: 40})
        assert len(lms.scores_received) > 40  # there were failures and retries

    def test_a_person_who_is_not_gradable_lands_in_the_failed_list_with_the_reason(
        self, client, database, db, platform_http
    ):
        lms = _lms(platform_http, client.get("/lti/jwks.json").json())
        platform_id, deployment_pk = _register(db, lms)
        _queue(db, platform_id, deployment_pk, lms, 3)
        lms.gradable_users = {"500", "501"}
        db.commit()
        _drain(OutboxWorker(database, build_session(5), token_cache=TokenCache()))
        rows = {r.lms_user_id: r for r in db.scalars(select(ScoreOutbox))}
        assert rows["502"].status == OutboxStatus.FAILED
        assert rows["502"].last_http_status == 400 and rows["502"].last_error
        assert {rows["500"].status, rows["501"].status} == {OutboxStatus.SENT}


@pytest.fixture()
def committed_outbox(engine, platform_http):
    database = Database(engine)
    with database.session() as s:
        jwks = KeyService(s).jwks()
    lms = _lms(platform_http, jwks)
    with database.session() as s:
        platform_id, deployment_pk = _register(s, lms)
        expected = _queue(s, platform_id, deployment_pk, lms, 120)
    yield database, lms, expected
    with database.session() as s:
        s.execute(delete(Platform).where(Platform.id == platform_id))


class TestSeveralWorkers:
    def test_two_workers_never_send_the_same_score_twice(self, committed_outbox):
        database, lms, expected = committed_outbox
        workers = [
            OutboxWorker(
                database, build_session(5), batch=10, token_cache=TokenCache(), worker_id=f"w{i}"
            )
            for i in range(2)
        ]
        errors: list[BaseException] = []

        def run(worker: OutboxWorker) -> None:
            try:
                _drain(worker, fast_forward=False)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors
        received = Counter(r["user_id"] for r in lms.scores_received)
        assert set(received) == set(expected)
        assert max(received.values()) == 1, "a score was sent twice"
        with database.session() as s:
            rows = s.scalars(
                select(ScoreOutbox).where(ScoreOutbox.lms_user_id.in_(list(expected)))
            ).all()
            assert {r.status for r in rows} == {OutboxStatus.SENT}
            assert {r.claimed_by for r in rows} == {"w0", "w1"}  # both did work


class TestAdministratorSeesAndRetries:
    def test_failed_score_listed_and_sent_again(
        self, client, database, db, platform_http, platform
    ):
        from tests.helpers import sign_in
        from tests.lti_platform import INST_ADMIN, SYS_ADMIN

        lms = _lms(platform_http, client.get("/lti/jwks.json").json())
        platform_id, deployment_pk = _register(db, lms)
        _queue(db, platform_id, deployment_pk, lms, 1)
        lms.gradable_users = set()
        db.commit()
        _drain(OutboxWorker(database, build_session(5), token_cache=TokenCache()))
        # The administrator of that LMS sees the failure and its reason.
        nrps_admin = lms.launch(client, roles=[INST_ADMIN, SYS_ADMIN], sub="9", name="Quản trị")
        assert nrps_admin.status_code == 303
        client.headers["X-CSRF-Token"] = client.get("/api/v1/me").json()["csrf_token"]
        listing = client.get("/api/v1/passback").json()
        assert listing["counts"] == {"failed": 1}
        row = listing["rows"][0]
        assert row["status"] == "failed" and row["last_http_status"] == 400
        page = client.get("/admin/passback")
        assert page.status_code == 200 and "500" in page.text
        # Fixed in the LMS (the person is now gradable): send again.
        lms.gradable_users = None
        assert client.post(f"/api/v1/passback/{row['id']}/retry").status_code == 200
        _drain(OutboxWorker(database, build_session(5), token_cache=TokenCache()))
        assert client.get("/api/v1/passback").json()["counts"] == {"sent": 1}
        # Another LMS's administrator sees none of it.
        sign_in(client, platform, [INST_ADMIN, SYS_ADMIN], "admin-x", "Khác")
        assert client.get("/api/v1/passback").json()["counts"] == {}
        assert client.post(f"/api/v1/passback/{row['id']}/retry").status_code == 404
