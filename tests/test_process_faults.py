"""Processes dying and databases restarting, for real: a ``blend727 worker`` SIGKILLed in the
middle of a batch, and a private PostgreSQL cluster restarted under a running ``blend727
serve``. Marked ``slow`` (a few seconds each); they run by default.

Exactly once is meant as in ``tests/test_passback_faults.py``: the gradebook applies each
score once, every repeated delivery is the identical body (same timestamp) and changes
nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.engine import Engine

from app.core.db import Database
from app.keys.service import KeyService
from app.passback.models import OutboxStatus, ScoreOutbox
from app.platforms.models import Platform
from tests.lti_platform import TestPlatform
from tests.test_passback_e2e import _lms, _queue, _register

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port(first: int, last: int) -> int:
    """A free port in ``[first, last]`` on 127.0.0.1 (the ranges this suite may use)."""
    for port in range(first, last + 1):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip(f"no free port in {first}–{last}")


def clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLEND727_")}
    env.update({f"BLEND727_{k.upper()}": v for k, v in settings.items()})
    return env


def url_of(engine: Engine) -> str:
    """The URL a subprocess reaches this test database with (PostgreSQL: its schema)."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        with engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def start(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args],
        env=env,
        cwd=cwd,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_for(condition: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# -- a worker killed in the middle of a batch -------------------------------------------------

SCORES = 8
LEASE_SECONDS = 2


@pytest.fixture()
def queued(engine: Engine, platform_http: str) -> Iterator[tuple[Database, TestPlatform, Any]]:
    database = Database(engine)
    with database.session() as s:
        jwks = KeyService(s).jwks()
    lms = _lms(platform_http, jwks)
    with database.session() as s:
        platform_id, deployment_pk = _register(s, lms)
        expected = _queue(s, platform_id, deployment_pk, lms, SCORES)
    yield database, lms, expected
    with database.session() as s:
        s.execute(delete(Platform).where(Platform.id == platform_id))


class TestAWorkerKilledMidBatch:
    def test_another_worker_finishes_the_batch_and_each_score_lands_once(
        self, engine: Engine, queued: Any, tmp_path: Path
    ) -> None:
        database, lms, expected = queued
        lms.ags_delay = 0.25  # the LMS stores each score at once and answers 0.25 s later
        env = clean_env(
            database_url=url_of(engine),
            worker_lease_seconds=str(LEASE_SECONDS),
            worker_poll_seconds="0.1",
            http_timeout_seconds="3",
        )
        log = tmp_path / "workers.log"
        first = start(["worker", "--batch", "5"], env, tmp_path, log)
        try:
            # SIGKILL right after the LMS stored the third score, before its answer arrives.
            wait_for(lambda: len(lms.applied_scores()) >= 3, 30, "three scores to land")
            first.send_signal(signal.SIGKILL)
            first.wait(5)
        finally:
            stop(first)
        with database.session() as s:
            rows = s.scalars(select(ScoreOutbox).where(ScoreOutbox.lms_user_id.in_(expected)))
            claimed = [r for r in rows if r.status == OutboxStatus.SENDING]
        assert claimed, "the killed worker held no claim: the kill came too late to prove much"
        orphan_owner = {r.claimed_by for r in claimed}
        assert len(orphan_owner) == 1

        second = start(["worker", "--batch", "5"], env, tmp_path, log)
        try:

            def all_sent() -> bool:
                with database.session(readonly=True) as s:
                    statuses = s.scalars(
                        select(ScoreOutbox.status).where(ScoreOutbox.lms_user_id.in_(expected))
                    ).all()
                return set(statuses) == {OutboxStatus.SENT}

            wait_for(all_sent, 30, "the second worker to deliver everything", interval=0.2)
        finally:
            stop(second)
        with database.session() as s:
            rows = s.scalars(select(ScoreOutbox).where(ScoreOutbox.lms_user_id.in_(expected))).all()
            assert not [r for r in rows if r.status == OutboxStatus.SENDING]  # no claim is left
            taken_over = [r for r in rows if r.id in {c.id for c in claimed}]
            assert all(r.claimed_by not in orphan_owner for r in taken_over)
        for sub in expected:
            applied = lms.applied_scores(user_id=sub)
            assert len(applied) == 1, (sub, applied)
            posts = [p for p in lms.scores_received if p["user_id"] == sub]
            assert {p["raw_body"] for p in posts} == {applied[0]["raw_body"]}
        statuses = Counter(p["status"] for p in lms.scores_received)
        # The score in flight when the worker died was sent again and met Moodle's 409.
        assert statuses[409] >= 1, (statuses, log.read_text())
        assert statuses[200] == SCORES


# -- PostgreSQL restarted under load ----------------------------------------------------------


@dataclass
class PrivateCluster:
    """A PostgreSQL 15 cluster of this test alone (never the shared one on 5432)."""

    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        command = [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "30",
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
            *args,
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=60)


@pytest.fixture()
def private_cluster() -> Iterator[PrivateCluster]:
    if os.geteuid() != 0:
        pytest.skip("a private PostgreSQL cluster needs root (to run it as the postgres user)")
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.skip(f"PostgreSQL 15 binaries not in {PG_BIN} (or no runuser)")
    try:
        subprocess.run(["id", "postgres"], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        pytest.skip("no postgres user to run a private cluster as")
    root = Path(tempfile.mkdtemp(prefix="blend727-pg-", dir="/tmp"))
    shutil.chown(root, "postgres", "postgres")
    cluster = PrivateCluster(root, free_port(55432, 55439))
    subprocess.run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            str(PG_BIN / "initdb"),
            "-D",
            str(cluster.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    cluster.ctl("start")
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            cluster.ctl("stop", "-m", "immediate")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Seen:
    phase: str
    kind: str
    status: int | None
    content_type: str
    seconds: float
    body: str


@dataclass
class Load:
    """Requests in a loop from a thread, each recorded with the phase it was sent in."""

    base: str
    login_query: str
    phase: str = "before"
    seen: list[Seen] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    REQUESTS = (
        ("health", "/healthz", {}),
        ("page", "/lti/login?{q}", {"Accept": "text/html"}),
        ("json", "/lti/login?{q}", {"Accept": "application/json"}),
    )

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=15, follow_redirects=False) as client:
            while not self.stopping.is_set():
                for kind, path, headers in self.REQUESTS:
                    phase = self.phase
                    started = time.monotonic()
                    try:
                        r = client.get(path.format(q=self.login_query), headers=headers)
                        status, ctype, body = (
                            r.status_code,
                            r.headers.get("content-type", ""),
                            r.text,
                        )
                    except httpx.HTTPError as exc:
                        status, ctype, body = None, "", repr(exc)
                    self.seen.append(
                        Seen(phase, kind, status, ctype, time.monotonic() - started, body[:5000])
                    )
                time.sleep(0.02)

    def of(self, phase: str) -> list[Seen]:
        return [s for s in self.seen if s.phase == phase]


class TestPostgresRestartedUnderLoad:
    def test_requests_fail_cleanly_then_recover_without_restarting_blend727(
        self, private_cluster: PrivateCluster, tmp_path: Path
    ) -> None:
        env = clean_env(
            database_url=private_cluster.url,
            base_url="https://tool.test",
            secret_key="restart-secret-" + "x" * 32,
            worker_poll_seconds="0.5",
        )
        issuer = f"https://moodle-{uuid.uuid4().hex[:6]}.test"
        command = [sys.executable, "-m", "app.cli", "platform", "add", "--issuer", issuer]
        command += ["--client-id", "c1", "--deployment-id", "1", "--keyset-url", f"{issuer}/k"]
        command += ["--auth-login-url", f"{issuer}/auth", "--token-url", f"{issuer}/token"]
        add = subprocess.run(
            command,
            env=env,
            cwd=tmp_path,
            capture_output=True,
            timeout=60,
        )
        assert add.returncode == 0, add.stdout + add.stderr
        port = free_port(8850, 8869)
        log = tmp_path / "serve.log"
        server = start(["serve", "--port", str(port)], env, tmp_path, log)
        base = f"http://127.0.0.1:{port}"
        query = httpx.QueryParams(
            {
                "iss": issuer,
                "login_hint": "42",
                "target_link_uri": "https://tool.test/lti/launch",
                "client_id": "c1",
                "lti_deployment_id": "1",
            }
        )
        load = Load(base, str(query))
        driver = threading.Thread(target=load.run, daemon=True)
        try:

            def up() -> bool:
                assert server.poll() is None, log.read_text()
                try:
                    return httpx.get(base + "/healthz", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(up, 60, "blend727 serve to start", interval=0.2)
            driver.start()
            time.sleep(0.5)
            load.phase = "outage"
            private_cluster.ctl("stop", "-m", "fast")
            time.sleep(1.5)
            private_cluster.ctl("start")
            load.phase = "after-start"
            time.sleep(1.0)
            load.phase = "restarting"
            private_cluster.ctl("restart", "-m", "fast")
            load.phase = "after-restart"
            time.sleep(1.0)
        finally:
            load.stopping.set()
            driver.join(20)
            pid_alive = server.poll() is None
            stop(server)
        assert pid_alive, "blend727 serve died with its database"
        problems = [s for s in load.seen if s.status not in (200, 302, 503)]
        assert not problems, (problems[:5], log.read_text()[-3000:])
        assert max(s.seconds for s in load.seen) < 8  # never a hang
        for phase in ("before", "after-start", "after-restart"):
            seen = load.of(phase)
            assert seen and {s.status for s in seen} <= {200, 302}, (phase, seen[:5])
        outage = load.of("outage")
        failed = [s for s in outage if s.status == 503]
        assert {s.kind for s in failed} == {"health", "page", "json"}, outage[:6]
        for s in failed:
            if s.kind == "json":
                assert s.content_type.startswith("application/problem+json"), s
                assert '"database_unavailable"' in s.body
            elif s.kind == "page":
                assert s.content_type.startswith("text/html") and "database_unavailable" in s.body
            else:
                assert '"unreachable"' in s.body
        # /healthz said so, and says the database is fine again
        health = [s.status for s in load.seen if s.kind == "health"]
        assert 503 in health and health[-1] == 200
