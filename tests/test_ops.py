"""What several processes share, tested in one: leases for periodic work, and the metrics
Prometheus scrapes (tests/test_workers.py runs the real processes on PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.config import Settings
from app.core.db import Database
from app.core.time import utcnow
from app.grading.service import SWEEP_EVERY, ResultSweeper
from app.identity.models import ResourceLink, User
from app.main import create_app
from app.ops.repository import LeaseRepository
from app.ops.service import PeriodicTask
from app.passback.models import OutboxStatus, ScoreOutbox
from app.passback.service import enqueue_score
from app.platforms.models import Platform
from app.platforms.repository import PlatformRepository
from tests.conftest import TOOL_BASE_URL
from tests.lti_platform import TestPlatform

TOKEN = "metrics-" + "t" * 32


def _metric(body: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in body.splitlines():
        if line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        sample, _, rest = head.partition("{")
        if sample != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


class TestLeases:
    def test_one_holder_at_a_time_until_it_expires(self, db: Session) -> None:
        repo = LeaseRepository(db)
        now = utcnow()
        assert repo.acquire("job", "a", now, now + timedelta(minutes=1))
        assert not repo.acquire("job", "b", now, now + timedelta(minutes=1))
        assert not repo.acquire("job", "a", now, now + timedelta(minutes=1))  # not re-entrant
        later = now + timedelta(minutes=2)
        assert repo.acquire("job", "b", later, later + timedelta(minutes=1))
        assert not repo.extend("job", "a", later + timedelta(hours=1))  # a lost it
        assert repo.extend("job", "b", later + timedelta(hours=1))
        holder = repo.holder("job")
        assert holder is not None and holder.owner == "b"

    def test_a_periodic_task_runs_once_per_period_whichever_process_asks(
        self, database: Database
    ) -> None:
        runs: list[str] = []
        every = timedelta(minutes=1)
        tasks = [
            PeriodicTask(
                database,
                "tick",
                every=every,
                hold=timedelta(minutes=5),
                owner=name,
                check_every=timedelta(0),
            )
            for name in ("proc-1", "proc-2")
        ]
        start = utcnow()
        for second in range(0, 300, 5):  # five minutes, both asking every five seconds
            now = start + timedelta(seconds=second)
            for task in tasks:
                task.run_if_due(lambda _keep, t=task: runs.append(t.owner), now)
        assert len(runs) == 5

    def test_a_holder_that_died_is_replaced_after_its_hold(self, database: Database) -> None:
        start = utcnow()
        other = PeriodicTask(
            database,
            "sweep",
            every=timedelta(minutes=1),
            hold=timedelta(minutes=5),
            owner="other",
            check_every=timedelta(0),
        )
        # A process took the task and was killed mid-way: the lease is never handed back.
        with database.session() as s:
            LeaseRepository(s).acquire("sweep", "killed:1:x", start, start + other.hold)
        ran: list[int] = []
        assert other.run_if_due(lambda _k: ran.append(1), start + timedelta(minutes=2))[0] is False
        assert other.run_if_due(lambda _k: ran.append(2), start + timedelta(minutes=6))[0] is True
        assert ran == [2]

    def test_two_workers_sweep_results_one_at_a_time(
        self, database: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls: list[str] = []
        sweepers = [ResultSweeper(database, None), ResultSweeper(database, None)]  # type: ignore[arg-type]
        for n, sweeper in enumerate(sweepers):
            sweeper.task.owner = f"worker-{n}"
            sweeper.task.check_every = timedelta(0)
            monkeypatch.setattr(
                sweeper, "run", lambda now, keep=None, n=n: calls.append(f"worker-{n}") or {}
            )
        start = utcnow()
        for second in range(0, 180, 2):
            for sweeper in sweepers:
                sweeper.run_if_due(start + timedelta(seconds=second))
        assert len(calls) == 180 // SWEEP_EVERY.seconds


@pytest.fixture()
def metrics_settings() -> Settings:
    return Settings(
        inprocess_worker=False,
        database_url="sqlite://",
        base_url=TOOL_BASE_URL,
        secret_key="test-secret-" + "x" * 32,
        metrics_token=TOKEN,
    )


@pytest.fixture()
def scraper(metrics_settings: Settings, database: Database) -> Iterator[TestClient]:
    with TestClient(create_app(metrics_settings, database), base_url=TOOL_BASE_URL) as c:
        c.headers["Authorization"] = f"Bearer {TOKEN}"
        yield c


class TestWhoMayReadTheMetrics:
    def test_with_a_token_only_its_bearer(self, metrics_settings: Settings, database) -> None:
        with TestClient(create_app(metrics_settings, database)) as client:
            r = client.get("/metrics")
            assert r.status_code == 401
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert (
                client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
            )
            r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/plain")
            assert "blend727_launches_total" in r.text

    def test_without_a_token_only_this_machine_and_not_through_a_proxy(self, app: FastAPI) -> None:
        with TestClient(app, client=("127.0.0.1", 50000)) as local:
            assert local.get("/metrics").status_code == 200
            proxied = local.get("/metrics?lang=en", headers={"X-Forwarded-For": "203.0.113.9"})
            assert proxied.status_code == 403
            assert "BLEND727_METRICS_TOKEN" in proxied.text
        with TestClient(app, client=("198.51.100.7", 50000)) as remote:
            assert remote.get("/metrics").status_code == 403


class TestWhatTheMetricsSay:
    def test_launches_accepted_and_refused_by_reason(
        self, scraper: TestClient, platform: TestPlatform
    ) -> None:
        before = scraper.get("/metrics").text
        browser = TestClient(scraper.app, base_url=TOOL_BASE_URL, follow_redirects=False)
        assert platform.launch(browser, sub="m-1").status_code == 303
        auth = platform.login(browser)
        token = platform.sign(platform.claims(nonce=auth["nonce"], sub="m-2"))
        form = {"id_token": token, "state": auth["state"]}
        assert browser.post("/lti/launch", data=form).status_code == 303
        state = platform.login(browser)["state"]  # a fresh state cookie, the old nonce
        replay = browser.post("/lti/launch", data={"id_token": token, "state": state})
        assert replay.status_code == 401
        assert browser.get("/lti/launch").status_code == 405
        after = scraper.get("/metrics").text

        def delta(name: str, **labels: str) -> float:
            return _metric(after, name, **labels) - _metric(before, name, **labels)

        assert delta("blend727_launches_total", role="teacher") == 2
        refused = delta("blend727_launches_refused_total")
        assert refused == 2
        assert delta("blend727_launches_refused_total", reason="method_not_allowed") == 1
        assert (
            delta("blend727_launches_refused_total", reason="replayed")
            + delta("blend727_launches_refused_total", reason="bad_nonce")
            == 1
        )
        # Every reason of lti/errors.py is there from the start (at 0 or more).
        assert 'blend727_launches_refused_total{reason="keys_unavailable"}' in after

    def test_latency_by_route_template_not_raw_path(self, scraper: TestClient) -> None:
        before = scraper.get("/metrics").text
        for n in (1, 2, 3):
            scraper.get(f"/verify/NO-SUCH-{n}")
        scraper.get("/no/such/page/at/all")
        after = scraper.get("/metrics").text
        name = "blend727_http_request_duration_seconds_count"
        counted = _metric(after, name, route="/verify/{code}", method="GET") - _metric(
            before, name, route="/verify/{code}", method="GET"
        )
        assert counted == 3
        assert "NO-SUCH" not in after
        assert _metric(after, name, route="<unmatched>", status="404") >= 1
        assert "/no/such/page" not in after

    def test_outbox_depth_and_age_come_from_the_database(
        self, scraper: TestClient, db: Session, platform: TestPlatform
    ) -> None:
        row: Platform | None = PlatformRepository(db).by_issuer_and_client(
            platform.issuer, platform.client_id
        )
        assert row is not None
        deployment = PlatformRepository(db).deployment_pk(row.id, "1")
        assert deployment is not None
        platform.enable_ags(2)
        platform.couple_line_item("rl-1", label="Mô đun 4", score_maximum=10)
        claim = platform.ags_claim("rl-1")
        link = ResourceLink(
            deployment_id=deployment, resource_link_id="rl-1", ags_endpoint=claim, custom={}
        )
        users = [User(platform_id=row.id, sub=f"o-{i}", name=f"HV {i}") for i in range(4)]
        db.add_all([link, *users])
        db.flush()
        queued_at = utcnow() - timedelta(minutes=10)
        scores = [
            enqueue_score(
                db,
                deployment_id=deployment,
                resource_link=link,
                line_item_url=claim["lineitem"],
                user=user,
                score_given=Decimal(8),
                score_maximum=Decimal(10),
                activity_progress="Completed",
                grading_progress="FullyGraded",
                now=queued_at,
            )
            for user in users
        ]
        scores[2].status = OutboxStatus.DEAD
        scores[3].status = OutboxStatus.FAILED
        db.commit()
        body = scraper.get("/metrics").text
        assert _metric(body, "blend727_database_up") == 1
        assert _metric(body, "blend727_outbox_scores", status="pending") == 2
        assert _metric(body, "blend727_outbox_scores", status="dead") == 1
        assert _metric(body, "blend727_outbox_scores", status="failed") == 1
        assert _metric(body, "blend727_outbox_depth") == 2
        age = _metric(body, "blend727_outbox_oldest_pending_age_seconds")
        assert 600 <= age < 900
        assert db.query(ScoreOutbox).count() == 4
