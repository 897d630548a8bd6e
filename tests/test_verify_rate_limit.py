"""``/verify/<code>`` is public, so guessing codes is capped: after
``BLEND727_VERIFY_MISSES_PER_MINUTE`` unknown codes from one client address in a minute, every
check from that address is answered 429 (page or problem+json, with ``Retry-After``) until the
minute ends — known codes too, or a 429 would tell which codes exist. The counts are rows
(``verify_miss``): a second worker on the same database sees the same limit. Checking a known
code writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

import app.certificates.endpoints as certificate_endpoints
from app.certificates import rules
from app.certificates.limits import VerifyLimit, client_key
from app.certificates.models import VerifyMiss
from app.config import Settings
from app.core.db import Database
from app.main import create_app
from tests.authz_world import AuthzWorld, build_world
from tests.conftest import TOOL_BASE_URL
from tests.factories import Factories
from tests.lti_platform import TestPlatform

LIMIT = 3
HOME = ("203.0.113.7", 40000)  # a school's address
OTHER = ("198.51.100.20", 40000)
NOON = datetime(2026, 12, 12, 5, 0, 10, tzinfo=UTC)


@pytest.fixture()
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "demo": True,
            "upload_dir": tmp_path / "uploads",
            "verify_misses_per_minute": LIMIT,
        }
    )


@pytest.fixture()
def world(
    app: FastAPI,
    client: TestClient,
    platform: TestPlatform,
    platform_http: str,
    factories: Factories,
    db: Session,
) -> Iterator[AuthzWorld]:
    yield from build_world(app, client, platform, platform_http, factories, db)


@pytest.fixture()
def now(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Set the time the limit sees."""

    def set_to(moment: datetime) -> None:
        monkeypatch.setattr(certificate_endpoints, "utcnow", lambda: moment)

    set_to(NOON)
    return set_to


def browser(app: FastAPI, address: tuple[str, int] = HOME) -> TestClient:
    return TestClient(app, base_url=TOOL_BASE_URL, follow_redirects=False, client=address)


def unknown_code() -> str:
    return rules.new_code()  # well formed, never issued


def rows(db: Session) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count()).select_from(VerifyMiss)) or 0)


class TestGuessingIsCapped:
    def test_after_the_limit_every_check_is_429_until_the_minute_ends(
        self, world: AuthzWorld, now: Callable[[datetime], None], db: Session
    ) -> None:
        code = world.values["code"]
        guesser = browser(world.app)
        assert guesser.get(f"/verify/{code}").status_code == 200
        for _ in range(LIMIT):
            assert guesser.get(f"/verify/{unknown_code()}").status_code == 404

        page = guesser.get(f"/verify/{unknown_code()}?lang=en")
        assert page.status_code == 429
        assert "text/html" in page.headers["content-type"]
        assert page.headers["retry-after"] == "50"  # 10 s into the minute
        assert "Too many attempts" in page.text
        problem = guesser.get(f"/verify/{code}", headers={"Accept": "application/json"})
        assert problem.status_code == 429  # the known code too: no oracle
        assert problem.headers["content-type"].startswith("application/problem+json")
        assert problem.json()["code"] == "too_many_attempts"
        assert problem.headers["retry-after"] == "50"
        assert "Nguyễn" not in problem.text

        now(NOON + timedelta(seconds=49))
        assert guesser.get(f"/verify/{code}").status_code == 429
        assert guesser.get(f"/verify/{code}").headers["retry-after"] == "1"
        now(NOON + timedelta(seconds=50))  # the next minute
        assert guesser.get(f"/verify/{code}").status_code == 200
        assert rows(db) == 1  # one row: this address, the first minute

    def test_vietnamese_page_with_the_wait(
        self, world: AuthzWorld, now: Callable[[datetime], None]
    ) -> None:
        guesser = browser(world.app)
        for _ in range(LIMIT):
            guesser.get(f"/verify/{unknown_code()}")
        page = guesser.get(f"/verify/{unknown_code()}")
        assert page.status_code == 429
        assert "50" in page.text and "Quá nhiều" in page.text

    def test_another_address_is_not_held_back(
        self, world: AuthzWorld, now: Callable[[datetime], None]
    ) -> None:
        guesser = browser(world.app)
        for _ in range(LIMIT + 2):
            guesser.get(f"/verify/{unknown_code()}")
        assert guesser.get(f"/verify/{world.values['code']}").status_code == 429
        colleague = browser(world.app, OTHER)
        assert colleague.get(f"/verify/{world.values['code']}").status_code == 200
        assert colleague.get(f"/verify/{unknown_code()}").status_code == 404

    def test_a_second_worker_on_the_same_database_applies_the_same_count(
        self,
        world: AuthzWorld,
        now: Callable[[datetime], None],
        settings: Settings,
        database: Database,
    ) -> None:
        first = browser(world.app)
        second_app = create_app(settings, database)  # another process's app, same database
        with browser(second_app) as second:
            for i in range(LIMIT):
                worker = first if i % 2 else second
                assert worker.get(f"/verify/{unknown_code()}").status_code == 404
            assert first.get(f"/verify/{world.values['code']}").status_code == 429
            assert second.get(f"/verify/{world.values['code']}").status_code == 429

    def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(
        self,
        world: AuthzWorld,
        now: Callable[[datetime], None],
        settings: Settings,
        database: Database,
    ) -> None:
        proxied = create_app(settings.model_copy(update={"trusted_proxies": "10.0.0.1"}), database)
        with browser(proxied, ("10.0.0.1", 443)) as proxy:
            for _ in range(LIMIT):
                sent = proxy.get(f"/verify/{unknown_code()}", headers={"X-Forwarded-For": HOME[0]})
                assert sent.status_code == 404
            code = world.values["code"]
            guesser = proxy.get(f"/verify/{code}", headers={"X-Forwarded-For": HOME[0]})
            assert guesser.status_code == 429
            # someone else behind the same proxy — and a client lying about its address in
            # front of the proxy does not escape: the proxy appends the address it saw
            other = proxy.get(f"/verify/{code}", headers={"X-Forwarded-For": OTHER[0]})
            assert other.status_code == 200
            lying = proxy.get(
                f"/verify/{code}", headers={"X-Forwarded-For": f"{OTHER[0]}, {HOME[0]}"}
            )
            assert lying.status_code == 429


class TestTheKnownCodePathStaysCheap:
    def test_checking_a_known_code_writes_nothing(
        self,
        world: AuthzWorld,
        now: Callable[[datetime], None],
        connection: Connection,
        db: Session,
    ) -> None:
        statements: list[str] = []

        def watch(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement.split(None, 1)[0].upper())

        visitor = browser(world.app)
        event.listen(connection.engine, "after_cursor_execute", watch)
        try:
            for _ in range(5):
                assert visitor.get(f"/verify/{world.values['code']}").status_code == 200
        finally:
            event.remove(connection.engine, "after_cursor_execute", watch)
        assert not {"INSERT", "UPDATE", "DELETE"} & set(statements)
        assert rows(db) == 0

    def test_misses_are_counted_in_one_row_per_address_and_minute(
        self, world: AuthzWorld, now: Callable[[datetime], None], db: Session
    ) -> None:
        guesser = browser(world.app)
        guesser.get(f"/verify/{unknown_code()}")
        guesser.get(f"/verify/{unknown_code()}")
        now(NOON + timedelta(minutes=1))
        guesser.get(f"/verify/{unknown_code()}")
        db.expire_all()
        found = db.execute(select(VerifyMiss.client, VerifyMiss.misses)).all()
        assert sorted(found, key=lambda r: r.misses) == [(HOME[0], 1), (HOME[0], 2)]

    def test_housekeeping_prunes_old_minutes(self, db: Session) -> None:
        limit = VerifyLimit(db)
        limit.record_miss(HOME[0], NOON - timedelta(minutes=10))
        limit.record_miss(HOME[0], NOON)
        limit.record_miss(HOME[0], NOON)
        assert limit.prune(NOON) == 1
        assert limit.wait_seconds(HOME[0], NOON, 2) == 50
        assert limit.wait_seconds(HOME[0], NOON, 3) == 0
        assert rows(db) == 1


class TestClientKey:
    def test_ipv4_by_address_ipv6_by_its_64_network(self) -> None:
        assert client_key("203.0.113.7") == "203.0.113.7"
        assert client_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
        assert client_key("2001:db8:1:2:ffff::9") == client_key("2001:db8:1:2::1")
        assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
        assert client_key(None) == client_key("testclient") == "unknown"
