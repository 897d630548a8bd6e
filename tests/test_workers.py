"""Several processes, one truth: the real app as separate processes on one PostgreSQL.

Two ``blend727 serve`` processes (A and B, two ports, one base URL as behind a load
balancer) and, for scores, two ``blend727 worker`` processes; then ``serve --workers 2`` on
one port. A browser's requests go to whichever process: the login to A, the launch to B,
the next page to A. Nothing may depend on which process remembers what — the session, the
nonce, the outbox, a certificate ZIP job and the metrics' counts all live in the database
(or, for the counts, in prometheus_client's multiprocess files).

Skipped, with the reason, when PostgreSQL does not answer (SQLite serves one process).
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import create_engine, select, text

from app.certificates.models import Certificate, CertificateJob
from app.certificates.rules import new_code
from app.certificates.service import CertificateService
from app.core.db import Database
from app.core.migrate import upgrade
from app.core.time import utcnow
from app.grading.models import ModuleResultRow
from app.keys.service import KeyService
from app.passback.models import OutboxStatus, ScoreOutbox
from app.platforms.service import PlatformInput, PlatformService
from tests.conftest import _pg_unreachable_reason, _pg_url
from tests.lti_platform import INST_ADMIN, LEARNER, SYS_ADMIN, TestPlatform

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
PORTS = range(8830, 8840)  # the ports these tests may listen on
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
CUSTOM_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/custom"
ITEMS: list[dict[str, Any]] = [
    {
        "phase": "self_study",
        "kind": "document",
        "key": "doc",
        "title": "Tài liệu",
        "url": "https://lms.example.edu.vn/mod/resource/view.php?id=5",
    },
    {"phase": "follow_up", "kind": "assignment", "key": "plan", "title": "Kế hoạch"},
]


# -- processes -------------------------------------------------------------------------------


def _free_port(taken: set[int]) -> int:
    for port in PORTS:
        if port in taken:
            continue
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise RuntimeError("no free port in 8830–8839")


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    base: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _spawn(name: str, args: list[str], env: dict[str, str], folder: Path) -> Proc:
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env=env,
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Proc(name, proc, log)


def _serve(name: str, port: int, env: dict[str, str], folder: Path, *extra: str) -> Proc:
    server = _spawn(name, ["serve", "--port", str(port), *extra], env, folder)
    server.base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(server.base + "/readyz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"{name} did not start:\n{server.output()}")
        time.sleep(0.2)


@dataclass
class Cluster:
    url: str  # the schema's database URL
    database: Database
    lms: TestPlatform
    a: Proc
    b: Proc
    env: dict[str, str]
    folder: Path
    ports: set[int]
    metrics_dir: Path


@pytest.fixture(scope="module")
def cluster(platform_http: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    url = _pg_url()
    reason = _pg_unreachable_reason(url)
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("workers")
    schema = f"w_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    schema_url = f"{url}?options=-csearch_path%3D{schema}"
    procs: list[Proc] = []
    database = Database.from_url(schema_url)
    try:
        upgrade(schema_url)
        with database.session() as db:
            KeyService(db).ensure_key()
        ports: set[int] = set()
        port_a, port_b = _free_port(ports), _free_port(ports)
        base = f"http://127.0.0.1:{port_a}"  # both processes are one tool at one address
        lms = TestPlatform.create(
            platform_http, issuer=f"https://moodle-{uuid.uuid4().hex[:6]}.test", client_id="wk"
        )
        lms.tool_url = base
        lms.enable_ags(2)
        lms.couple_line_item("rl-1", label="Mô đun 4", score_maximum=10)
        with database.session() as db:
            PlatformService(db).register(
                PlatformInput(
                    issuer=lms.issuer,
                    client_id=lms.client_id,
                    auth_login_url=lms.auth_login_url,
                    token_url=lms.served_token_url,
                    keyset_url=lms.keyset_url,
                    deployment_ids=["1"],
                )
            )
        metrics_dir = folder / "metrics"
        metrics_dir.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLEND727_")}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update(
            {
                "BLEND727_DATABASE_URL": schema_url,
                "BLEND727_BASE_URL": base,
                # No secret configured: the processes must agree through the database.
                "BLEND727_INPROCESS_WORKER": "false",
                "BLEND727_UPLOAD_DIR": str(folder / "uploads"),
                "BLEND727_LOG_LEVEL": "WARNING",
                "BLEND727_WORKER_POLL_SECONDS": "0.2",
                "PYTHONPATH": str(ROOT),
            }
        )
        shared = env | {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        a = _serve("serve-a", port_a, shared, folder)
        procs.append(a)
        b = _serve("serve-b", port_b, shared, folder)
        procs.append(b)
        lms.trust_tool_jwks(httpx.get(a.base + "/lti/jwks.json").json())
        yield Cluster(schema_url, database, lms, a, b, env, folder, ports, metrics_dir)
    finally:
        for proc in procs:
            proc.stop()
        database.engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# -- a browser and a platform ----------------------------------------------------------------


@dataclass
class Browser:
    client: httpx.Client
    csrf: str = ""


def _login(client: httpx.Client, base: str, lms: TestPlatform, sub: str) -> dict[str, str]:
    r = client.get(f"{base}/lti/login?" + urlencode(lms.login_params(login_hint=sub)))
    assert r.status_code == 302, r.text
    return lms.authorize(r.headers["location"])


def _post_launch(
    client: httpx.Client,
    base: str,
    lms: TestPlatform,
    auth: dict[str, str],
    sub: str,
    **claims: Any,
) -> httpx.Response:
    extra = claims.pop("extra", {})
    body = lms.claims(nonce=auth["nonce"], sub=sub, **claims)
    body.update(extra)
    token = lms.sign(body)
    return client.post(f"{base}/lti/launch", data={"id_token": token, "state": auth["state"]})


def _sign_in(
    cluster: Cluster,
    sub: str,
    name: str,
    roles: list[str],
    *,
    via: tuple[Proc, Proc],
    **claims: Any,
) -> Browser:
    """Login through ``via[0]``, launch through ``via[1]``; a browser signed in."""
    client = httpx.Client(timeout=30)
    auth = _login(client, via[0].base, cluster.lms, sub)
    r = _post_launch(client, via[1].base, cluster.lms, auth, sub, roles=roles, name=name, **claims)
    assert r.status_code == 303, r.text
    me = client.get(via[0].base + "/api/v1/me").json()
    client.headers["X-CSRF-Token"] = me["csrf_token"]
    return Browser(client, me["csrf_token"])


def _metric(body: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in body.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        sample, _, rest = head.partition("{")
        if sample != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


def _metrics(server: Proc) -> str:
    r = httpx.get(server.base + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    return r.text


def _in_person_dates(today: date) -> list[str]:
    """Two working days, two to eight days ahead: self-study has begun."""
    day = today + timedelta(days=2)
    while day.weekday() >= 4:  # Friday–Sunday: start on a Monday–Thursday
        day += timedelta(days=1)
    return [day.isoformat(), (day + timedelta(days=1)).isoformat()]


def _open_class(admin: Browser, base: str, code: str, course_label: str) -> dict[str, Any]:
    """The administrator puts items in module 4 and opens a class in the launch's course."""
    modules = admin.client.get(base + "/api/v1/modules").json()
    module_id = next(m["id"] for m in modules if m["key"] == "gvpt-4")
    spec = admin.client.get(f"{base}/api/v1/modules/{module_id}").json()["spec"]
    if [i.get("key") for i in spec.get("materials") or []] != [i["key"] for i in ITEMS]:
        r = admin.client.put(
            f"{base}/api/v1/modules/{module_id}",
            json={"spec": {**spec, "materials": ITEMS}, "note": "Học liệu"},
        )
        assert r.status_code == 200, r.text
    courses = admin.client.get(base + "/api/v1/courses").json()
    course = next(c for c in courses if c["label"] == course_label)
    r = admin.client.post(
        base + "/api/v1/classes",
        json={
            "code": code,
            "name": f"Mô đun 4 — {code}",
            "module_id": module_id,
            "level": "thcs",
            "in_person_dates": _in_person_dates(utcnow().date()),
            "venue": "Trường THCS Nguyễn Du",
            "course_id": course["id"],
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


def _context(course: str) -> dict[str, Any]:
    return {
        "id": course,
        "label": course,
        "title": f"Mô đun 4 — {course}",
        "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseSection"],
    }


# -- the tests -------------------------------------------------------------------------------


class TestOneBrowserManyProcesses:
    def test_login_on_a_launch_on_b_next_page_on_a_and_a_replay_on_a_is_refused(
        self, cluster: Cluster
    ) -> None:
        a, b, lms = cluster.a, cluster.b, cluster.lms
        before = _metrics(a)
        client = httpx.Client(timeout=30)
        auth = _login(client, a.base, lms, "7001")
        state_cookies = dict(client.cookies)  # what a thief of the whole exchange holds
        token = lms.sign(lms.claims(nonce=auth["nonce"], sub="7001", name="Phạm Thị Đa"))
        form = {"id_token": token, "state": auth["state"]}

        r = client.post(f"{b.base}/lti/launch", data=form)  # the nonce and state: from A
        assert r.status_code == 303, r.text
        page = client.get(a.base + r.headers["location"])  # the session: made by B
        assert page.status_code == 200
        assert "Phạm Thị Đa" in page.text
        assert client.get(b.base + "/api/v1/me").json()["name"] == "Phạm Thị Đa"

        # The same id_token again, with the state cookie, to the other process: refused.
        replay = httpx.Client(timeout=30, cookies=state_cookies)
        r = replay.post(f"{a.base}/lti/launch", data=form, headers={"Accept": "application/json"})
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "replayed"

        # Both processes' counts, added up by whichever answers the scrape.
        after_a, after_b = _metrics(a), _metrics(b)
        for after in (after_a, after_b):
            assert (
                _metric(after, "blend727_launches_total")
                - _metric(before, "blend727_launches_total")
                == 1
            )
            assert (
                _metric(after, "blend727_launches_refused_total", reason="replayed")
                - (_metric(before, "blend727_launches_refused_total", reason="replayed"))
                == 1
            )

    def test_launch_counts_of_two_processes_are_summed(self, cluster: Cluster) -> None:
        a, b, lms = cluster.a, cluster.b, cluster.lms
        before = _metric(_metrics(b), "blend727_launches_total", role="teacher")
        for i, server in enumerate([a, a, b, b, b]):
            client = httpx.Client(timeout=30)
            auth = _login(client, server.base, lms, f"72{i}")
            assert _post_launch(client, server.base, lms, auth, f"72{i}").status_code == 303
        for server in (a, b):
            after = _metric(_metrics(server), "blend727_launches_total", role="teacher")
            assert after - before == 5
        # Both processes wrote their own counts (one file each), and the scrape summed them.
        pids = {p.name.rsplit("_", 1)[-1].split(".")[0] for p in cluster.metrics_dir.glob("*.db")}
        assert {str(a.proc.pid), str(b.proc.pid)} <= pids


class TestScoresFromSeveralWorkers:
    def test_each_score_queued_by_a_server_is_sent_exactly_once_by_two_workers(
        self, cluster: Cluster
    ) -> None:
        a, b, lms = cluster.a, cluster.b, cluster.lms
        activity = {
            AGS_CLAIM: lms.ags_claim("rl-1"),
            CUSTOM_CLAIM: {"module_key": "gvpt-4", "level": "thcs", "class_code": "WK-SCORES"},
        }
        admin = _sign_in(
            cluster, "7100", "Lê Quản Trị", [INST_ADMIN, SYS_ADMIN], via=(a, b), extra=activity
        )
        cls = _open_class(admin, a.base, "WK-SCORES", "M4")
        learners = []
        for i in range(12):
            via = (a, b) if i % 2 else (b, a)
            learners.append(
                (
                    f"71{i:02d}",
                    _sign_in(
                        cluster, f"71{i:02d}", f"Học viên {i}", [LEARNER], via=via, extra=activity
                    ),
                )
            )
        # Two workers wait for scores; the servers queue them as the learners work. The LMS
        # takes 0.3 s per score, so that one worker's batch is still under way when the next
        # scores come and the other worker claims them.
        lms.ags_latency_seconds = 0.3
        workers = [
            _spawn(f"worker-{n}", ["worker", "--batch", "2"], cluster.env, cluster.folder)
            for n in (1, 2)
        ]
        try:
            for w in workers:  # both ready (migrations checked, key loaded) before scores come
                deadline = time.monotonic() + 60
                while "sending queued scores" not in w.log.read_text(errors="replace"):
                    assert w.proc.poll() is None and time.monotonic() < deadline, w.output()
                    time.sleep(0.1)
            for i, (_sub, learner) in enumerate(learners):
                server = (a, b)[i % 2]
                r = learner.client.post(
                    f"{server.base}/learn/classes/{cls['id']}/items/doc/done",
                    data={"csrf_token": learner.csrf, "done": "1"},
                )
                assert r.status_code == 303, r.text
            deadline = time.monotonic() + 90
            while True:
                with cluster.database.session(readonly=True) as db:
                    waiting = db.scalar(
                        select(ScoreOutbox.id)
                        .where(ScoreOutbox.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)))
                        .limit(1)
                    )
                if waiting is None:
                    break
                for w in workers:
                    assert w.proc.poll() is None, w.output()
                assert time.monotonic() < deadline, [w.output() for w in workers]
                time.sleep(0.3)
        finally:
            lms.ags_latency_seconds = 0.0
            for w in workers:
                w.stop()

        with cluster.database.session(readonly=True) as db:
            rows = db.scalars(select(ScoreOutbox)).all()
        sent = [r for r in rows if r.status == OutboxStatus.SENT]
        assert {r.status for r in rows} <= {OutboxStatus.SENT, OutboxStatus.SUPERSEDED}
        subs = {sub for sub, _ in learners}
        assert subs <= {r.lms_user_id for r in sent}
        # Every sent score reached the LMS once: one POST each, none refused, none doubled.
        posted = Counter((r["user_id"], r["body"]["timestamp"]) for r in lms.scores_received)
        assert all(n == 1 for n in posted.values()), posted
        assert len(lms.scores_received) == len(sent)
        assert all(r.get("applied") for r in lms.scores_received)
        # Both workers took their share of the claims (batches of 2).
        senders = Counter(
            next(w.name for w in workers if f":{w.proc.pid}:" in (r.claimed_by or "")) for r in sent
        )
        assert set(senders) == {"worker-1", "worker-2"}, senders
        # The sweep ran in one worker at a time: one lease row, held by one of them.
        with cluster.database.session(readonly=True) as db:
            holder = db.execute(text("SELECT owner FROM lease WHERE name = 'result-sweep'")).one()
        assert any(f":{w.proc.pid}:" in holder.owner for w in workers)


class TestCertificateJobsAcrossProcesses:
    def test_a_zip_started_on_a_is_followed_and_downloaded_on_b(self, cluster: Cluster) -> None:
        a, b = cluster.a, cluster.b
        course = {"context": _context("course-zip"), "resource_link_id": "rl-zip"}
        admin = _sign_in(
            cluster, "7200", "Lê Quản Trị", [INST_ADMIN, SYS_ADMIN], via=(a, a), **course
        )
        cls = _open_class(admin, a.base, "WK-ZIP", "course-zip")
        for i in range(3):
            _sign_in(cluster, f"72{i:02d}x", f"Trần Văn {i}", [LEARNER], via=(b, b), **course)
        r = admin.client.post(
            a.base + "/admin/certificates",
            data={"csrf_token": admin.csrf, "unit_name": "Phòng GD&ĐT Quận 7"},
        )
        assert r.status_code == 303, r.text
        # Their certificates are issued (the module is not over in real time: written here).
        with cluster.database.session() as db:
            service = CertificateService(db)
            training = service.repo.get_class(_deployment(db), cls["id"])
            assert training is not None
            issuer = service._issuer_facts(training.deployment_id)
            rows = service.repo.learners(training.id)
            assert len(rows) == 3
            for row in rows:
                result = ModuleResultRow(
                    enrolment_id=row.enrolment.id,
                    score=Decimal("8.50"),
                    classification="complete",
                    final=True,
                )
                db.add(result)
                row = replace(row, result=result)
                db.add(
                    Certificate(
                        deployment_id=training.deployment_id,
                        enrolment_id=row.enrolment.id,
                        code=new_code(),
                        snapshot=service._snapshot(training, row, issuer, utcnow()),
                        issued_at=utcnow(),
                    )
                )

        r = admin.client.post(
            f"{a.base}/admin/certificates/classes/{cls['id']}/zip",
            data={"csrf_token": admin.csrf},
        )
        assert r.status_code == 303, r.text
        location = r.headers["location"]
        job_id = location.rsplit("/", 1)[-1]
        deadline = time.monotonic() + 60
        while True:
            page = admin.client.get(f"{b.base}{location}?lang=en")  # the other process
            assert page.status_code == 200, page.text
            if "The ZIP file is ready: 3 certificates." in page.text:
                break
            assert "could not be built" not in page.text and "stopped" not in page.text
            assert time.monotonic() < deadline
            time.sleep(0.2)
        download = admin.client.get(f"{b.base}{location}.zip")
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/zip"
        names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
        assert len(names) == 3 and all(n.endswith(".pdf") for n in names)
        with cluster.database.session(readonly=True) as db:
            job = db.get(CertificateJob, job_id)
            assert job is not None and job.state == "done"
            assert f":{a.proc.pid}:" in job.owner  # built by A, shown and served by B


def _deployment(db: Any) -> int:
    from app.platforms.models import Deployment

    ids = db.scalars(select(Deployment.id)).all()
    assert len(ids) == 1
    return int(ids[0])


class TestServeWithTwoWorkers:
    def test_fifty_launches_complete_and_both_workers_serve(
        self, cluster: Cluster, tmp_path: Path
    ) -> None:
        port = _free_port(cluster.ports)
        base = f"http://127.0.0.1:{port}"
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        (metrics_dir / "counter_1.db").write_bytes(b"stale")  # a previous run's: cleaned
        env = cluster.env | {
            "BLEND727_BASE_URL": base,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        server = _serve("serve-2w", port, env, cluster.folder, "--workers", "2")
        deadline = time.monotonic() + 60  # /readyz answered: one worker is up; wait for both
        while server.log.read_text(errors="replace").count("Application startup complete") < 2:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)
        lms = replace(cluster.lms, tool_url=base)  # the same LMS, this server's address

        def launch(i: int) -> str:
            sub = f"75{i:03d}"
            with httpx.Client(timeout=60) as client:
                auth = _login(client, base, lms, sub)
                r = _post_launch(client, base, lms, auth, sub, name=f"Giáo viên {i}")
                assert r.status_code == 303, r.text
                page = client.get(base + r.headers["location"])
                assert page.status_code == 200 and f"Giáo viên {i}" in page.text
            return sub

        try:
            with ThreadPoolExecutor(8) as pool:
                done = list(pool.map(launch, range(50)))
            assert len(set(done)) == 50
            body = _metrics(server)
            assert _metric(body, "blend727_launches_total") == 50
            assert (
                _metric(
                    body,
                    "blend727_http_request_duration_seconds_count",
                    route="/lti/launch",
                    method="POST",
                    status="303",
                )
                == 50
            )
            per_pid = _launches_per_pid(metrics_dir)
            assert sum(per_pid.values()) == 50
            assert len([n for n in per_pid.values() if n]) == 2, per_pid  # both served
            assert not (metrics_dir / "counter_1.db").exists()
        finally:
            server.stop()


def _launches_per_pid(folder: Path) -> dict[str, float]:
    from prometheus_client.mmap_dict import MmapedDict

    counts: dict[str, float] = {}
    for path in folder.glob("counter_*.db"):
        pid = path.stem.split("_", 1)[1]
        for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(path)):
            name = json.loads(key)[0]
            if name == "blend727_launches":
                counts[pid] = counts.get(pid, 0.0) + value
    return counts
