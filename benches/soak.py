"""Soak: mixed traffic for a bounded time against a real ``blend727 serve``, on loopback.

    python benches/soak.py [--minutes 15 | --seconds N] [--database-url URL]
                           [--learners 120] [--assignments 3] [--threads 6]
                           [--report-every 60] [--rss-growth-limit 15] [--ports 8850-8869]

What runs:

* ``blend727 serve`` as a subprocess (one process, its in-process outbox worker on), on a fresh
  SQLite file by default, or in a fresh schema of ``--database-url`` (PostgreSQL; dropped at
  the end);
* the test platform (``tests/lti_platform.py``: JWKS, token endpoint, AGS like Moodle 5.1) in
  this process, on 127.0.0.1;
* ``--threads`` clients, each with a session of every core trainer (one per cohort of at most
  40: the class is split as an administrator splits it) and a share of the learners, with
  their own cookies,
  doing in a loop: **launch** (OIDC login + signed id_token), **page** (the learner's class
  page, home, the trainer's progress page), **checkin** (the trainer marks a learner absent,
  the learner checks in with the code on the trainer's screen: both real writes; trainer
  marks only, when no session of today is running at the time of the run), **grade** (a
  regrade of a hand-in with ``If-Match``, or an override in an ended class, which queues a
  ``FullyGraded`` score: **passback** to the platform's AGS), **admin** (``/admin/passback``).

The traffic is spread the way a class spreads it: ``--learners`` (120) each hand in
``--assignments`` (3) assignments, and a regrade picks one of those hand-ins at random, so that
one hand-in is not regraded thousands of times (at the end the bench prints how deep the
histories got: grades per hand-in, check-ins per learner). The history tables still grow for
the whole run, as a real installation's do.

Every request must answer what it should (303 for a launch, 200 for the rest): anything else
is an error. Every ``--report-every`` seconds it prints requests done, errors, p50/p99 per
kind, the server's RSS (``/proc/<pid>/status``) and the outbox depth (waiting + being sent).

At the end the outbox must drain and every score the tool recorded as sent must have been
applied by the gradebook exactly once (the last one is what the gradebook holds). Verdict:

* **errors** = 0;
* **memory flat**: the server's RSS is sampled every few seconds; a least-squares line is fitted
  to the samples of the **second half** of the run (the first half is warm-up: pools, caches,
  allocator arenas fill), and its slope, in MB per minute, projected over the default 15-minute
  run must not exceed ``--rss-growth-limit`` (default 15 MB, ~9 % of the server's ~170 MB).
  A run whose second half is shorter than a minute is not judged;
* latency and throughput are compared with a named peer measured in the same run: **the first
  reporting interval** (requests per second and p99 of the last interval ÷ those of the first;
  printed, not judged).

The exit status is 0 when the verdict is "pass".
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import Engine, make_url  # noqa: E402

from app.attendance.models import AttendanceChange, CheckinRecord  # noqa: E402
from app.core.db import normalise_url  # noqa: E402
from app.core.migrate import upgrade  # noqa: E402
from app.core.time import VN_TZ  # noqa: E402
from app.grading.models import ResultChange  # noqa: E402
from app.learning.models import Submission, SubmissionGrade  # noqa: E402
from app.passback.models import OutboxStatus, ScoreOutbox  # noqa: E402
from tests.lti_platform import (  # noqa: E402
    AGS_CLAIM,
    CLAIM,
    INST_ADMIN,
    INSTRUCTOR,
    LEARNER,
    SYS_ADMIN,
    TestPlatform,
    platform_server,
)

KINDS = ("launch", "page", "checkin", "grade", "admin")
WEIGHTS = (8, 40, 22, 22, 8)
PORTS = range(8850, 8870)
SESSION_HOURS = {"morning": (7, 30, 11, 30), "afternoon": (13, 30, 17, 0)}
DEFAULT_MINUTES = 15.0
COHORT_SIZE = 40  # learners per core trainer (the split makes cohorts of at most 50)


def plans(n: int) -> list[dict[str, Any]]:
    """``n`` assignments of the module (``plan-1`` …)."""
    return [
        {
            "phase": "follow_up",
            "kind": "assignment",
            "title": f"Kế hoạch bài dạy {i}",
            "key": f"plan-{i}",
            "due_day": 3,
        }
        for i in range(1, n + 1)
    ]


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    kind: str
    seconds: float
    ok: bool


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float, ok: bool, what: str = "") -> None:
        with self.lock:
            self.samples.append(Sample(time.monotonic(), kind, seconds, ok))
            if not ok and len(self.errors) < 50:
                self.errors.append(f"{kind}: {what}")

    def between(self, start: float, end: float) -> list[Sample]:
        with self.lock:
            return [s for s in self.samples if start <= s.at < end]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the people ----------------------------------------------------------------------------------


@dataclass
class Person:
    sub: str
    name: str
    roles: list[str]
    client: httpx.Client
    csrf: str = ""
    user_id: int = 0


class World:
    """The tool under test, its LMS and what the bench set up there."""

    def __init__(self, base: str, lms: TestPlatform, stats: Stats) -> None:
        self.base = base
        self.lms = lms
        self.stats = stats
        self.class_a = self.class_b = 0
        self.session_id: int | None = None  # today's session running now (check-ins)
        self.marks_session = 0  # the session whose marks the trainer changes
        self.in_person_today = False
        self.enrol_a: dict[int, int] = {}  # user id → enrolment id
        self.enrol_b: dict[int, int] = {}
        self.trainer_a: dict[int, str] = {}  # user id → their cohort's core trainer (sub)
        self.trainer_b: dict[int, str] = {}
        self.submissions: dict[str, list[int]] = {}  # learner → their hand-ins
        self.etags: dict[int, str] = {}
        self.overrides: dict[int, Decimal] = {}
        self.code: tuple[float, str] | None = None
        self.code_lock = threading.Lock()

    def person(self, sub: str, name: str, roles: list[str]) -> Person:
        # A connection idle for uvicorn's keep-alive timeout (5 s) is closed by the server;
        # reusing one just then fails with "connection reset" (with many learners per client,
        # one can idle that long): drop idle connections well before the server does.
        client = httpx.Client(
            base_url=self.base,
            timeout=30,
            follow_redirects=False,
            limits=httpx.Limits(keepalive_expiry=2.0),
        )
        return Person(sub, name, roles, client)

    def launch(self, p: Person, link: str, class_code: str | None = None) -> bool:
        """OIDC login, the platform's signed id_token, the launch; then the CSRF token."""
        started = time.monotonic()
        p.client.cookies.clear()
        login = p.client.get(
            "/lti/login",
            params={
                "iss": self.lms.issuer,
                "login_hint": p.sub,
                "target_link_uri": self.base + "/lti/launch",
                "client_id": self.lms.client_id,
                "lti_deployment_id": "1",
            },
        )
        if login.status_code != 302:
            self.stats.add(
                "launch", time.monotonic() - started, False, f"login {login.status_code}"
            )
            return False
        query = {k: v[-1] for k, v in parse_qs(urlsplit(login.headers["location"]).query).items()}
        extra: dict[str, Any] = {AGS_CLAIM: self.lms.ags_claim(link)}
        if class_code:
            extra[CLAIM + "custom"] = {"class_code": class_code}
        claims = self.lms.claims(
            nonce=query["nonce"],
            sub=p.sub,
            roles=p.roles,
            name=p.name,
            target_link_uri=self.base + "/lti/launch",
            resource_link_id=link,
            **extra,
        )
        token = self.lms.sign(claims)
        response = p.client.post("/lti/launch", data={"id_token": token, "state": query["state"]})
        ok = response.status_code == 303
        if ok:
            me = p.client.get("/api/v1/me")
            ok = me.status_code == 200
            if ok:
                p.csrf = me.json()["csrf_token"]
                p.user_id = int(me.json()["user_id"])
                p.client.headers["X-CSRF-Token"] = p.csrf
        self.stats.add("launch", time.monotonic() - started, ok, f"launch {response.status_code}")
        return ok

    def call(self, kind: str, p: Person, method: str, url: str, expect: int, **kw: Any) -> Any:
        started = time.monotonic()
        try:
            response = p.client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            self.stats.add(kind, time.monotonic() - started, False, f"{method} {url}: {exc!r}")
            return None
        ok = response.status_code == expect
        self.stats.add(
            kind,
            time.monotonic() - started,
            ok,
            f"{method} {url}: {response.status_code} {response.text[:200]}",
        )
        return response if ok else None


def must(response: Any, what: str) -> Any:
    if response is None:
        raise SystemExit(f"set-up failed: {what}")
    return response


# -- set-up ------------------------------------------------------------------------------------


def today_vn() -> date:
    return datetime.now(VN_TZ).date()


def running_part(seconds: float) -> str | None:
    """The session part of today that runs for the whole bench, if any."""
    now = datetime.now(VN_TZ)
    for part, (h1, m1, h2, m2) in SESSION_HOURS.items():
        start = now.replace(hour=h1, minute=m1, second=0, microsecond=0)
        end = now.replace(hour=h2, minute=m2, second=0, microsecond=0)
        if start <= now and now + timedelta(seconds=seconds + 120) <= end:
            return part
    return None


def set_up(
    world: World,
    admin: Person,
    trainers: list[Person],
    learners: list[Person],
    seconds: float,
    assignments: int,
) -> None:
    assert world.launch(admin, "rl-a"), "the administrator's launch failed"
    modules = must(world.call("page", admin, "GET", "/api/v1/modules", 200), "modules").json()
    mid = next(m["id"] for m in modules if m["key"] == "gvpt-4")
    spec = must(world.call("page", admin, "GET", f"/api/v1/modules/{mid}", 200), "module").json()
    must(
        world.call(
            "page",
            admin,
            "PUT",
            f"/api/v1/modules/{mid}",
            200,
            json={"spec": {**spec["spec"], "materials": plans(assignments)}, "note": "soak"},
        ),
        "module items",
    )
    today = today_vn()
    # A: in the room today (when today can be an in-person day); B: ended two months ago.
    for code, day, step in (("SOAK-A", today, 1), ("SOAK-B", today - timedelta(days=60), -1)):
        for _ in range(14):  # past weekends and public holidays
            dates = [day.isoformat(), (day + timedelta(days=1)).isoformat()]
            body = {"code": code, "name": f"Soak {code}", "module_id": mid, "level": "thcs"}
            created = admin.client.post("/api/v1/classes", json=body | {"in_person_dates": dates})
            if created.status_code == 201:
                break
            day += timedelta(days=step)
        else:
            raise SystemExit(f"set-up failed: no in-person days for {code}: {created.text}")
        if code == "SOAK-A":
            world.class_a = created.json()["id"]
            world.in_person_today = day == today
        else:
            world.class_b = created.json()["id"]
    # Everyone opens both activities once: learners join the classes, trainers train them.
    trainer = trainers[0]
    for p in [*trainers, *learners]:
        for link, code in (("rl-b", "SOAK-B"), ("rl-a", "SOAK-A")):
            assert world.launch(p, link, code), f"launch of {p.sub} failed"
    for cls in (world.class_a, world.class_b):
        must(
            world.call("page", admin, "POST", f"/api/v1/classes/{cls}/cohorts/split", 200), "split"
        )
    for cls, enrol in ((world.class_a, world.enrol_a), (world.class_b, world.enrol_b)):
        results = must(
            world.call("page", admin, "GET", f"/api/v1/grading/classes/{cls}/results", 200),
            "results",
        ).json()["results"]
        enrol.update({int(r["user_id"]): int(r["enrolment_id"]) for r in results})
        assert len(enrol) == len(learners), "not every learner joined the class"
    # Who follows whom: each core trainer's results are those of their own cohort.
    for cls, follows in ((world.class_a, world.trainer_a), (world.class_b, world.trainer_b)):
        for t in trainers:
            mine = must(
                world.call("page", t, "GET", f"/api/v1/grading/classes/{cls}/results", 200),
                "results",
            ).json()["results"]
            follows.update({int(r["user_id"]): t.sub for r in mine})
        assert len(follows) == len(learners), "a learner has no core trainer"
    detail = must(
        world.call("page", admin, "GET", f"/api/v1/classes/{world.class_a}", 200), "class"
    )
    sessions = detail.json()["sessions"]
    part = running_part(seconds) if world.in_person_today else None
    world.marks_session = sessions[0]["id"]
    if part is not None:
        world.session_id = next(s["id"] for s in sessions if s["part"] == part)
        world.marks_session = world.session_id
        must(
            world.call(
                "checkin",
                trainer,
                "PUT",
                f"/api/v1/attendance/sessions/{world.session_id}/checkin-window",
                200,
                json={"late_after_minutes": 60},
            ),
            "open check-in",
        )
    # Learners hand in the assignments of the running class (graded, then regraded, later).
    keys = [plan["key"] for plan in plans(assignments)]
    for p in learners:
        if not world.launch(p, "rl-a", "SOAK-A"):
            raise SystemExit(f"launch of {p.sub} failed")
        for key in keys:
            must(
                world.call(
                    "page",
                    p,
                    "POST",
                    f"/learn/classes/{world.class_a}/items/{key}/hand-in",
                    303,
                    data={"csrf_token": p.csrf, "text": "Kế hoạch bài dạy của tôi"},
                    files={"file": ("", b"", "application/octet-stream")},
                ),
                "hand-in",
            )
        mine = must(
            world.call("page", p, "GET", f"/api/v1/learning/classes/{world.class_a}/me", 200), "me"
        ).json()
        world.submissions[p.sub] = [
            int(i["submission"]["id"]) for i in mine["items"] if i["key"] in keys
        ]
        assert len(world.submissions[p.sub]) == len(keys), "a hand-in is missing"


# -- traffic -------------------------------------------------------------------------------------


@dataclass
class Client:
    """One thread's people: a session of every core trainer and of the administrator of its
    own, and a share of the learners (no two threads act for the same learner)."""

    trainers: dict[str, Person]
    admin: Person
    learners: list[Person]

    def trainer_a(self, world: World, learner: Person) -> Person:
        return self.trainers[world.trainer_a[learner.user_id]]

    def trainer_b(self, world: World, learner: Person) -> Person:
        return self.trainers[world.trainer_b[learner.user_id]]


def current_code(world: World, trainer: Person) -> str | None:
    assert world.session_id is not None
    with world.code_lock:
        if world.code is not None and time.monotonic() - world.code[0] < 5:
            return world.code[1]
    r = world.call(
        "checkin",
        trainer,
        "GET",
        f"/attendance/sessions/{world.session_id}/code.json",
        200,
        headers={"Accept": "application/json"},
    )
    if r is None:
        return None
    code = str(r.json()["code"])
    with world.code_lock:
        world.code = (time.monotonic(), code)
    return code


def one_request(world: World, c: Client, rng: random.Random) -> None:
    kind = rng.choices(KINDS, WEIGHTS)[0]
    learner = rng.choice(c.learners)
    if kind == "launch":
        world.launch(learner, "rl-a", "SOAK-A")
    elif kind == "page":
        choice = rng.random()
        if choice < 0.5:
            world.call("page", learner, "GET", f"/learn/classes/{world.class_a}", 200)
        elif choice < 0.75:
            world.call("page", learner, "GET", "/", 200)
        else:
            trainer = c.trainer_a(world, learner)
            world.call("page", trainer, "GET", f"/grading/classes/{world.class_a}", 200)
    elif kind == "checkin":
        # The trainer marks the learner absent (or, with no session running, anything)...
        enrolment = world.enrol_a[learner.user_id]
        status = "absent" if world.session_id else rng.choice(["present", "late", "absent"])
        trainer = c.trainer_a(world, learner)
        world.call(
            "checkin",
            trainer,
            "PUT",
            f"/api/v1/attendance/sessions/{world.marks_session}/marks",
            200,
            json={"marks": [{"enrolment_id": enrolment, "status": status, "note": "soak"}]},
        )
        # ...and the learner checks in again with the code on the trainer's screen.
        code = current_code(world, trainer) if world.session_id else None
        if code is not None:
            world.call(
                "checkin",
                learner,
                "POST",
                f"/api/v1/attendance/sessions/{world.session_id}/checkin",
                200,
                json={"code": code},
            )
    elif kind == "grade":
        if rng.random() < 0.5:
            sub_id = rng.choice(world.submissions[learner.sub])
            score = rng.choice(["6", "6.5", "7", "7.5", "8", "8.5", "9"])
            headers = {"If-Match": world.etags.get(sub_id, '"grade-none"')}
            r = world.call(
                "grade",
                c.trainer_a(world, learner),
                "POST",
                f"/api/v1/grading/submissions/{sub_id}/grade",
                200,
                json={"score": score, "feedback": f"Lần {rng.randint(1, 10**6)}"},
                headers=headers,
            )
            if r is not None:
                world.etags[sub_id] = r.headers["etag"]
        else:
            enrolment = world.enrol_b[learner.user_id]
            last = world.overrides.get(enrolment)
            score = rng.choice(
                [s for s in ("6.00", "7.00", "8.00", "9.00", "10.00") if s != str(last)]
            )
            r = world.call(
                "grade",
                c.trainer_b(world, learner),
                "PUT",
                f"/api/v1/grading/enrolments/{enrolment}/override",
                200,
                json={"score": score, "classification": "complete", "reason": "Soak: chấm lại"},
            )
            if r is not None:
                world.overrides[enrolment] = Decimal(score)
    else:
        world.call("admin", c.admin, "GET", "/admin/passback", 200)


# -- the run -------------------------------------------------------------------------------------


def free_port(ports: range = PORTS) -> int:
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {ports.start}–{ports.stop - 1}")


def prepare_database(url: str | None, workdir: Path) -> tuple[str, Any]:
    """A fresh database: a SQLite file, or a new schema of ``url`` (dropped by the cleanup)."""
    if url is None:
        return f"sqlite:///{workdir / 'soak.db'}", lambda: None
    url = normalise_url(url)
    schema = f"soak_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return scoped.render_as_string(hide_password=False), drop


def register(url: str, lms: TestPlatform) -> None:
    from app.core.db import Database
    from app.platforms.service import PlatformInput, PlatformService

    database = Database.from_url(url)
    with database.session() as s:
        PlatformService(s).register(
            PlatformInput(
                issuer=lms.issuer,
                client_id=lms.client_id,
                auth_login_url=lms.auth_login_url,
                token_url=lms.served_token_url,
                keyset_url=lms.keyset_url,
                deployment_ids=["1"],
            )
        )
    database.engine.dispose()


def outbox_counts(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        rows = conn.execute(select(ScoreOutbox.status, func.count()).group_by(ScoreOutbox.status))
        return Counter({str(s): int(n) for s, n in rows})


def rss_trend(rss: list[tuple[float, float]], seconds: float) -> tuple[float, int] | None:
    """Least-squares slope (MB per minute) of the RSS samples of the second half of the run,
    and how many samples it rests on; ``None`` when that half spans less than a minute."""
    late = [(t, mb) for t, mb in rss if t >= seconds / 2]
    if seconds / 2 < 60 or len(late) < 6:
        return None
    slope, _ = statistics.linear_regression([t for t, _ in late], [mb for _, mb in late])
    return slope * 60, len(late)


def history_depth(engine: Engine) -> dict[str, int]:
    """How deep the histories the hot paths must not read in full got during the run."""
    per_hand_in = (
        select(func.count().label("n"))
        .select_from(SubmissionGrade)
        .group_by(SubmissionGrade.submission_id)
        .subquery()
    )
    per_learner = (
        select(func.count().label("n"))
        .select_from(CheckinRecord)
        .group_by(CheckinRecord.session_id, CheckinRecord.enrolment_id)
        .subquery()
    )
    with engine.connect() as conn:

        def one(stmt: Any) -> int:
            return int(conn.scalar(stmt) or 0)

        return {
            "hand_ins": one(select(func.count()).select_from(Submission)),
            "grades": one(select(func.count()).select_from(SubmissionGrade)),
            "grades_max": one(select(func.max(per_hand_in.c.n))),
            "checkins": one(select(func.count()).select_from(CheckinRecord)),
            "checkins_max": one(select(func.max(per_learner.c.n))),
            "attendance_changes": one(select(func.count()).select_from(AttendanceChange)),
            "result_changes": one(select(func.count()).select_from(ResultChange)),
            "outbox": one(select(func.count()).select_from(ScoreOutbox)),
        }


def check_passback(engine: Engine, lms: TestPlatform) -> list[str]:
    """Every score recorded as sent was applied by the gradebook exactly once, and the
    gradebook holds the newest one."""
    problems: list[str] = []
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                ScoreOutbox.line_item_url,
                ScoreOutbox.lms_user_id,
                ScoreOutbox.score,
                ScoreOutbox.score_timestamp,
            )
            .where(ScoreOutbox.status == OutboxStatus.SENT)
            .order_by(ScoreOutbox.score_timestamp)
        ).all()
    sent: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for url, user, score, stamp in rows:
        sent[(url, user)].append((score if isinstance(score, dict) else json.loads(score), stamp))
    for (url, user), scores in sent.items():
        applied = lms.applied_scores(user_id=user, line_item_url=url)
        stamps = Counter(a["body"]["timestamp"] for a in applied)
        if len(applied) != len(scores) or any(n > 1 for n in stamps.values()):
            problems.append(f"{user} on {url}: {len(scores)} sent, {len(applied)} applied")
            continue
        held = lms.grade(url, user)
        last = scores[-1][0]
        if held is None or (last.get("scoreGiven") or None) != (
            None if held["score_given"] is None else f"{Decimal(str(held['score_given'])):.2f}"
        ):
            problems.append(f"{user} on {url}: the gradebook holds {held}, last sent {last}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, default=None)
    length.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--learners", type=int, default=120)
    parser.add_argument(
        "--assignments", type=int, default=3, help="assignments each learner hands in"
    )
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--report-every", type=float, default=60.0)
    parser.add_argument("--pause", type=float, default=0.005, help="seconds between requests")
    parser.add_argument(
        "--rss-growth-limit",
        type=float,
        default=15.0,
        help=f"MB: most RSS growth allowed over {DEFAULT_MINUTES:.0f} minutes (projected)",
    )
    parser.add_argument(
        "--ports", default=f"{PORTS.start}-{PORTS.stop - 1}", help="where the server may listen"
    )
    args = parser.parse_args()
    seconds = args.seconds if args.seconds is not None else 60 * (args.minutes or DEFAULT_MINUTES)
    workdir = Path(tempfile.mkdtemp(prefix="blend727-soak-"))
    url, cleanup = prepare_database(args.database_url, workdir)
    backend = make_url(url).get_backend_name()
    stats = Stats()
    server: subprocess.Popen[bytes] | None = None
    log = workdir / "serve.log"
    try:
        with platform_server() as platform_base:
            upgrade(url)
            lms = TestPlatform.create(
                platform_base,
                issuer=f"https://moodle-{uuid.uuid4().hex[:6]}.soak",
                client_id="soak",
            )
            lms.enable_ags(2)
            for link in ("rl-a", "rl-b"):
                lms.couple_line_item(link, label=f"Soak {link}", score_maximum=10)
            register(url, lms)
            low, _, high = args.ports.partition("-")
            port = free_port(range(int(low), int(high or low) + 1))
            base = f"http://127.0.0.1:{port}"
            env = {k: v for k, v in os.environ.items() if not k.startswith("BLEND727_")}
            env.update(
                BLEND727_DATABASE_URL=url,
                BLEND727_BASE_URL=base,
                BLEND727_SECRET_KEY="soak-" + "x" * 40,
                BLEND727_WORKER_POLL_SECONDS="1",
                BLEND727_LOG_LEVEL="WARNING",
                BLEND727_UPLOAD_DIR=str(workdir / "uploads"),
            )
            server = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
                env=env,
                cwd=workdir,
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            )
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("blend727 serve did not start:\n" + log.read_text()[-3000:])
                time.sleep(0.2)
            lms.trust_tool_jwks(httpx.get(base + "/lti/jwks.json").json())
            world = World(base, lms, stats)
            admin = world.person("qt-1", "Lê Quản Trị", [INST_ADMIN, SYS_ADMIN])
            cohorts = max(1, -(-args.learners // COHORT_SIZE))
            trainer_names = [(f"cc-{i}", f"Trần Cốt Cán {i}") for i in range(1, cohorts + 1)]
            trainers = [world.person(sub, name, [INSTRUCTOR]) for sub, name in trainer_names]
            learners = [
                world.person(str(5000 + i), f"Giáo viên {i}", [LEARNER])
                for i in range(args.learners)
            ]
            t0 = time.monotonic()
            set_up(world, admin, trainers, learners, seconds, args.assignments)
            print(
                f"soak: {backend}, {args.learners} learners × {args.assignments} hand-ins, "
                f"{cohorts} cohorts, {args.threads} clients, "
                f"{seconds:.0f} s; set-up {time.monotonic() - t0:.1f} s; check-ins "
                + ("on" if world.session_id else "off (no session running now: trainer marks)"),
                flush=True,
            )
            engine = create_engine(url)
            stop = threading.Event()
            shares = [learners[i :: args.threads] for i in range(args.threads)]
            clients = []
            for share in shares:
                c = Client(
                    {sub: world.person(sub, name, [INSTRUCTOR]) for sub, name in trainer_names},
                    world.person("qt-1", "Lê Quản Trị", [INST_ADMIN, SYS_ADMIN]),
                    share,
                )
                for person in c.trainers.values():
                    assert world.launch(person, "rl-a", "SOAK-A"), f"launch of {person.sub} failed"
                assert world.launch(c.admin, "rl-a"), "the administrator's launch failed"
                clients.append(c)
            stats.samples.clear()
            stats.errors.clear()

            def drive(c: Client, seed: int) -> None:
                rng = random.Random(seed)
                while not stop.is_set():
                    try:
                        one_request(world, c, rng)
                    except Exception as exc:  # a bench bug must show, not hang
                        stats.add("error", 0.0, False, repr(exc))
                    time.sleep(args.pause)

            rss: list[tuple[float, float]] = []
            depth: list[tuple[float, int]] = []
            start = time.monotonic()
            stats.started = start
            threads = [
                threading.Thread(target=drive, args=(c, i), daemon=True)
                for i, c in enumerate(clients)
            ]
            for t in threads:
                t.start()
            next_report = start + args.report_every
            last_report = start
            intervals: list[dict[str, Any]] = []
            print(
                f"{'t':>6} {'reqs':>7} {'err':>4} {'rss MB':>7} {'outbox':>6}  "
                + "  ".join(f"{k} p50/p99 ms" for k in KINDS),
                flush=True,
            )
            while True:
                now = time.monotonic()
                rss.append((now - start, rss_mb(server.pid)))
                depth.append(
                    (
                        now - start,
                        sum(
                            n
                            for s, n in outbox_counts(engine).items()
                            if s in ("pending", "sending")
                        ),
                    )
                )
                if now >= next_report or now - start >= seconds:
                    window = stats.between(last_report, now)
                    lat = {k: [s.seconds * 1000 for s in window if s.kind == k] for k in KINDS}
                    interval = {
                        "t": now - start,
                        "seconds": now - last_report,
                        "requests": len(window),
                        "errors": sum(1 for s in window if not s.ok),
                        "p99": {k: pct(v, 0.99) for k, v in lat.items()},
                    }
                    intervals.append(interval)
                    cells = "  ".join(
                        f"{pct(lat[k], 0.5):6.1f}/{pct(lat[k], 0.99):6.1f}" for k in KINDS
                    )
                    print(
                        f"{now - start:6.0f} {len(window):7d} {interval['errors']:4d} "
                        f"{rss[-1][1]:7.1f} {depth[-1][1]:6d}  {cells}",
                        flush=True,
                    )
                    last_report = now
                    next_report = now + args.report_every
                if now - start >= seconds:
                    break
                time.sleep(min(5.0, max(0.1, next_report - time.monotonic())))
            stop.set()
            for t in threads:
                t.join(60)
            # The outbox drains, and the gradebook got each score exactly once.
            drain_deadline = time.monotonic() + 90
            while time.monotonic() < drain_deadline:
                counts = outbox_counts(engine)
                if not counts.get("pending") and not counts.get("sending"):
                    break
                time.sleep(1)
            counts = outbox_counts(engine)
            passback = check_passback(engine, lms)
            histories = history_depth(engine)
            engine.dispose()
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
        cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    total = stats.samples
    errors = sum(1 for s in total if not s.ok)
    by_kind = Counter(s.kind for s in total)
    trend = rss_trend(rss, seconds)
    judged = trend is not None
    slope = trend[0] if trend is not None else float("nan")
    projected = slope * DEFAULT_MINUTES
    flat = not judged or projected <= args.rss_growth_limit
    print()
    print(
        f"requests: {len(total)} ({', '.join(f'{k} {by_kind[k]}' for k in KINDS)}), "
        f"{len(total) / seconds:.1f}/s"
    )
    print(f"errors: {errors}")
    for e in stats.errors[:10]:
        print(f"  {e}")
    print(
        f"scores: sent {counts.get('sent', 0)}, superseded {counts.get('superseded', 0)}, "
        f"waiting {counts.get('pending', 0) + counts.get('sending', 0)}, failed "
        f"{counts.get('failed', 0)}, dead {counts.get('dead', 0)}; gradebook: "
        f"{len(lms.applied_scores())} applied of {len(lms.scores_received)} received; "
        + ("exactly once" if not passback else f"{len(passback)} PROBLEMS: {passback[:3]}")
    )
    print(
        f"histories: {histories['grades']} grades of {histories['hand_ins']} hand-ins (at most "
        f"{histories['grades_max']} of one), {histories['checkins']} check-ins (at most "
        f"{histories['checkins_max']} of one learner in a session), "
        f"{histories['attendance_changes']} attendance changes, "
        f"{histories['result_changes']} result changes, {histories['outbox']} outbox rows"
    )
    late = [mb for t, mb in rss if t >= seconds / 2]
    verdict = "flat" if flat else "GROWING"
    if trend is None:
        verdict = "second half under a minute: not judged"
    print(
        f"memory: RSS {rss[0][1]:.1f} MB at start, {statistics.median(late):.1f} MB (median) in "
        f"the second half, {rss[-1][1]:.1f} MB at the end, peak {max(mb for _, mb in rss):.1f} "
        f"MB; second-half slope {slope:+.3f} MB/min over {trend[1] if trend else 0} samples → "
        f"{projected:+.1f} MB per {DEFAULT_MINUTES:.0f} min ({verdict}, limit "
        f"{args.rss_growth_limit:.0f} MB); outbox depth max {max(d for _, d in depth)}"
    )
    if len(intervals) >= 2:
        a, b = intervals[0], intervals[-1]
        rate_a, rate_b = a["requests"] / a["seconds"], b["requests"] / b["seconds"]
        print(
            f"throughput: first interval {rate_a:.1f}/s, last {rate_b:.1f}/s "
            f"({rate_b / rate_a:.2f}x; named peer, same run)"
        )
        first, last = a["p99"], b["p99"]
        ratios = ", ".join(
            f"{k} {last[k] / first[k]:.2f}x" for k in KINDS if first[k] == first[k] and first[k] > 0
        )
        print(f"p99 last interval vs the first (named peer, same run): {ratios}")
    ok = (
        errors == 0
        and flat
        and not passback
        and not counts.get("failed")
        and not counts.get("dead")
        and not counts.get("pending")
        and not counts.get("sending")
    )
    print(f"verdict: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
