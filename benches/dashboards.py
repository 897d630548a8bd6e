"""The trainer's cohort page, the class pages and the province report on a province of learners.

    python benches/dashboards.py [--learners 100000] [--small 2000] [--sqlite]
                                 [--postgres-url URL] [--cohort-requests 200]
                                 [--class-requests 50] [--report-runs 5] [--peer-runs 40]
                                 [--gc-freeze] [--seed 727]

Two databases are built and measured in the same run, one after the other: a *small* one
(``--small``, 2,000 learners) and the *province* (``--learners``, 100,000). Both have the same
shape, so a page of the same size (a cohort of 50, a class of 150) is measured in each: what
changes is only how many learners the database holds. PostgreSQL at ``--postgres-url``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) when it answers, in a schema of
its own (``bench_<random>``, dropped at the end, also on failure); else, or with ``--sqlite``,
a temporary SQLite file. Both are migrated with the project's migrations.

Set-up (not compared), with bulk Core inserts except where noted:

* the platform (``tests.lti_platform.TestPlatform``, JWKS over real HTTP) and its deployment,
  the shipped catalogue, and a new version of modules 4, 5 and 9 with learning items (four
  self-study items — a reading, a video, a quiz, a reflection — and a follow-up assignment
  and forum), modules 5 and 9 with two tiers (Khá ≥ 7, Giỏi ≥ 8.5) — through the services;
* learners with school (about 71 teachers a school) and district (30), as in
  ``benches/schedule.py``; classes of 150 and ~144 learners alternately (two or three
  schools each), three cohorts of ≤ 50 per class, each with its own core trainer; the
  classes themselves through ``ClassService.create_class`` (their schedule and sessions are
  the app's), in-person days spread over the working days from 100 days ago to 14 days
  ahead, so most classes have ended and some are running;
* per learner, by their class's dates and a diligence drawn per learner: attendance marks of
  past sessions, items done (``item_progress``), reflections and assignment hand-ins (some
  handed in twice), grades of most hand-ins (some of the first attempt only, so that work
  waits for a grade), and the ``module_result`` the app's own rules compute from all that
  (``components_from`` + ``compute_result``: a mix of incomplete, not complete, complete and
  tiers); 1% left their class, 2% have their own (shifted) dates; support periods per cohort.

What is measured, in-process through FastAPI's ``TestClient`` after real LTI sign-ins (OIDC
login + signed id_token; a core trainer per sampled cohort, and an administrator):

* *server time* (inside the ASGI app, minus the time blocked handing the body to the client,
  as in ``benches/launch.py``) at p50 and p99 of ``GET /cohorts/{id}`` (the cohort's own core
  trainer, cohorts of 50 of the most recent classes), ``GET /grading/classes/{id}`` and
  ``GET /admin/classes/{id}`` (an administrator, classes of 150), ``GET /admin/reports`` and
  ``GET /admin/reports/export.xlsx`` (every class of the province);
* SQL statements per request (a ``before_cursor_execute`` listener; transaction control such
  as SQLite's ``BEGIN`` is not counted), the most any one statement repeats in a request, the
  time spent in the driver's ``execute`` and the slowest statement;
* full garbage collections (generation 2) while a page is measured, and their pauses: they
  make most of the p99 of the pages that allocate most (``--gc-freeze`` measures the pages
  with ``gc.freeze()`` once the app is built, as a server could do after start-up);
* the province report's peak memory: Python allocations (``tracemalloc`` peak, in a run of
  its own, which it slows down), the growth of resident memory at its peak (Linux VmHWM,
  reset before the request, after the freed heap is handed back with ``malloc_trim``) and the
  ``ru_maxrss`` delta (the process's peak so far: it only
  moves when the request outgrows everything before it, set-up included).

Named peers, in the same run:

* the same pages on the small database (the SQL count must be the same; the time should be);
* for the cohort table: ``DashboardService.cohort`` alone (no HTTP, no sign-in check, no
  HTML), and a naive per-learner loop that produces the same table — the members, then for
  each learner their marks, items done, hand-ins, grades and result (5 queries a learner);
  its rows are checked against the service's;
* for the report: the per-learner way — every enrolment with its school, district and result
  fetched into Python and tallied; its totals are checked against the report's.

The bench exits 1 when a check fails (same SQL count at both sizes, no statement repeated per
learner, the peer's rows equal the page's, the report's totals equal the per-learner count).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import io
import json
import logging
import os
import platform as pyplatform
import random
import resource
import secrets
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Starlette 1.x warns that its TestClient is moving from httpx to httpx2: not this bench's business.
warnings.filterwarnings("ignore", message=".*`httpx` with `starlette.testclient`.*")

from fastapi.testclient import TestClient  # noqa: E402
from openpyxl import load_workbook  # noqa: E402
from sqlalchemy import bindparam, create_engine, event, insert, select, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.attendance.models import AttendanceMark  # noqa: E402
from app.attendance.service import attendance_points_of  # noqa: E402
from app.auth.dependencies import SESSION_COOKIE, Viewer, ViewerUser  # noqa: E402
from app.catalogue.repository import CatalogueRepository  # noqa: E402
from app.catalogue.service import CatalogueService  # noqa: E402
from app.classes.models import (  # noqa: E402
    ClassSession,
    ClassTrainer,
    Cohort,
    Enrolment,
    EnrolmentStatus,
    Level,
    SupportLog,
    TrainingClass,
    Wave,
)
from app.classes.schemas import ClassCreate, WaveCreate  # noqa: E402
from app.classes.service import ClassService, plan_of, stored_schedule  # noqa: E402
from app.config import Settings  # noqa: E402
from app.core.db import Base, Database, build_engine, normalise_url  # noqa: E402
from app.core.migrate import upgrade, upgrade_connection  # noqa: E402
from app.core.time import local, utcnow  # noqa: E402
from app.dashboards.service import DashboardService  # noqa: E402
from app.grading.models import ModuleResultRow  # noqa: E402
from app.grading.rules import attendance_score, components_from, compute_result  # noqa: E402
from app.grading.service import policy_of  # noqa: E402
from app.identity.models import Role, User  # noqa: E402
from app.learning.models import (  # noqa: E402
    ItemProgress,
    ProgressSource,
    Submission,
    SubmissionGrade,
)
from app.learning.rules import Item, items_of  # noqa: E402
from app.main import create_app  # noqa: E402
from app.platforms.repository import PlatformRepository  # noqa: E402
from app.platforms.service import PlatformInput, PlatformService  # noqa: E402
from app.reports.rules import Period  # noqa: E402
from app.reports.service import ReportService  # noqa: E402
from app.schedule.rules import Schedule, shift_schedule  # noqa: E402
from app.schedule.service import calendar_for  # noqa: E402
from tests.lti_platform import TestPlatform, platform_server  # noqa: E402

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TOOL_BASE_URL = "https://tool.test"
SECRET_KEY = "bench-secret-" + "x" * 32
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
TRAINER_ROLES = [LIS + "membership#Instructor"]
ADMIN_ROLES = [LIS + "institution/person#Administrator", LIS + "membership#Instructor"]

MODULE_KEYS = ("gvpt-4", "gvpt-5", "gvpt-9")
LEVELS = ("tieu_hoc", "thcs")
LEVEL_SCHOOL = {"tieu_hoc": "Trường Tiểu học", "thcs": "Trường THCS"}
LEARNERS_PER_SCHOOL = 100_000 / 1_400
DISTRICTS = 30
CLASS_FULL = 150  # every other class is full: the "class page of 150"
COHORT_SIZE = 50
DAYS_BACK, DAYS_AHEAD = 100, 14  # in-person days fall in this window around today
SAMPLE_COHORTS = 20  # cohorts (and core trainers) whose page is requested
SAMPLE_CLASSES = 10
TX_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")

FAMILY: tuple[str, ...] = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ")
FAMILY += ("Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý")
MIDDLE: tuple[str, ...] = ("Văn", "Thị", "Hữu", "Minh", "Ngọc", "Thu", "Đức", "Thanh", "Quốc")
GIVEN: tuple[str, ...] = ("An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hoa")
GIVEN += ("Hùng", "Lan", "Linh", "Mai", "Nam", "Nga", "Phong", "Phương", "Quân", "Sơn")
GIVEN += ("Tâm", "Thảo", "Trang", "Tuấn", "Vy", "Yến")

LMS = "https://lms.sogd.bench.test/mod"
MATERIALS: list[dict[str, Any]] = [
    {
        "phase": "self_study",
        "kind": "document",
        "key": "doc-chuong-trinh",
        "title": "Chương trình giáo dục phổ thông 2018: phần chung",
        "url": f"{LMS}/resource/view.php?id=101",
        "due_day": 2,
    },
    {
        "phase": "self_study",
        "kind": "video",
        "key": "video-gioi-thieu",
        "title": "Giới thiệu mô-đun",
        "url": f"{LMS}/page/view.php?id=102",
        "due_day": 4,
    },
    {
        "phase": "self_study",
        "kind": "quiz",
        "key": "tu-kiem-tra",
        "title": "Tự kiểm tra: phẩm chất và năng lực",
        "due_day": 5,
        "questions": [
            {"text": "Bao nhiêu phẩm chất chủ yếu?", "choices": ["3", "5", "10"], "answer": 2},
            {"text": "Năng lực chung?", "choices": ["Ngôn ngữ", "Tự chủ và tự học"], "answer": 2},
        ],
    },
    {
        "phase": "self_study",
        "kind": "reflection",
        "key": "suy-ngam",
        "title": "Suy ngẫm: điều gì sẽ thay đổi trong giờ dạy?",
    },
    {
        "phase": "follow_up",
        "kind": "assignment",
        "key": "ke-hoach-bai-day",
        "title": "Kế hoạch bài dạy áp dụng sau tập trung",
        "submission": ["file"],
        "due_day": 6,
    },
    {
        "phase": "follow_up",
        "kind": "forum",
        "key": "dien-dan",
        "title": "Chia sẻ kinh nghiệm trên diễn đàn",
        "url": f"{LMS}/forum/view.php?id=103",
    },
]
TIERS: list[dict[str, Any]] = [
    {"code": "kha", "name_vi": "Khá", "name_en": "Good", "min_score": 7.0},
    {"code": "gioi", "name_vi": "Giỏi", "name_en": "Very good", "min_score": 8.5},
]
REFLECTION = (
    "Sau khi học mô-đun, tôi sẽ thiết kế hoạt động để học sinh tự tìm hiểu, trao đổi nhóm và "
    "trình bày; đánh giá thường xuyên bằng nhận xét thay cho chỉ cho điểm."
)


# -- memory ----------------------------------------------------------------------------------


class PeakMemory:
    """Peak resident memory of one phase: Linux's VmHWM, reset through /proc/self/clear_refs
    at its start. Elsewhere, ``ru_maxrss`` (the peak of the whole process)."""

    def __init__(self) -> None:
        self.resettable = self._reset()

    @staticmethod
    def _reset() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    @staticmethod
    def _status(key: str) -> int | None:
        with suppress(OSError):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        return None

    def start(self) -> int:
        """Reset the peak; return the resident memory now (bytes)."""
        if self.resettable:
            self._reset()
        return self._status("VmRSS") or 0

    def peak(self) -> int:
        if self.resettable:
            hwm = self._status("VmHWM")
            if hwm is not None:
                return hwm
        return maxrss()


def release_memory() -> None:
    """Collect garbage and hand freed heap back to the OS (glibc ``malloc_trim``), so that a
    request's resident-memory growth is not hidden in memory the set-up freed."""
    gc.collect()
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def maxrss() -> int:
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


# -- databases -------------------------------------------------------------------------------


def postgres_refusal(url: str) -> str | None:
    """``None`` when PostgreSQL answers at ``url``, else why not."""
    try:
        engine = create_engine(normalise_url(url), connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:  # any failure to connect means: use SQLite
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    return None


@contextmanager
def fresh_database(url: str | None, label: str) -> Iterator[tuple[Database, str]]:
    """A migrated, empty database: a temporary SQLite file, or a throwaway PostgreSQL schema
    (dropped at the end, whatever happens in between)."""
    if url is None:
        with tempfile.TemporaryDirectory(prefix=f"blend727-{label}-") as tmp:
            sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(sqlite_url)
            engine = build_engine(sqlite_url)
            try:
                yield Database(engine), f"SQLite file {Path(tmp) / 'bench.db'}"
            finally:
                engine.dispose()
        return
    url = normalise_url(url)
    schema = f"bench_{label}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine: Engine | None = None
    try:
        engine = build_engine(url, connect_args={"options": f"-csearch_path={schema}"})
        with engine.begin() as conn:
            upgrade_connection(conn)
        yield Database(engine), f"PostgreSQL schema {schema}"
    finally:
        if engine is not None:
            engine.dispose()
        try:
            with admin.begin() as conn:
                conn.execute(text("SET lock_timeout = '20s'"))
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        except Exception as exc:
            print(f"WARNING: could not drop schema {schema}: {exc}", file=sys.stderr)
            raise
        finally:
            admin.dispose()


def backend_note(database: Database) -> str:
    with database.engine.connect() as conn:
        if database.dialect == "sqlite":
            version = conn.exec_driver_sql("select sqlite_version()").scalar()
            journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            return f"SQLite {version}, journal_mode={journal} (no ANALYZE, as in service)"
        version = conn.exec_driver_sql("show server_version").scalar()
        shared = conn.exec_driver_sql("show shared_buffers").scalar()
        work = conn.exec_driver_sql("show work_mem").scalar()
        return (
            f"PostgreSQL {version}, shared_buffers={shared}, work_mem={work} "
            "(set-up ends with ANALYZE, as autovacuum would)"
        )


# -- the province: set-up --------------------------------------------------------------------


@dataclass(frozen=True)
class CohortInfo:
    id: int
    class_id: int
    position: int
    size: int
    trainer_sub: str


@dataclass
class ClassInfo:
    id: int
    size: int
    module_key: str
    schedule: Schedule
    sessions: list[tuple[int, date, str]]  # in the pages' order
    user_ids: list[int]
    trainer_ids: list[int]
    cohorts: list[CohortInfo] = field(default_factory=list)


@dataclass
class World:
    deployment_pk: int
    platform_id: int
    learners: int
    schools: int
    classes: list[ClassInfo]
    period: Period
    rows: dict[str, int]
    classifications: Counter[str]
    seconds: float


def class_sizes(learners: int) -> list[int]:
    """Classes of 150 and of the rest alternately (~144 for 100,000 learners)."""
    count = max(1, round(learners / 147))
    full = (count + 1) // 2
    rest = count - full
    if rest and 100 <= (learners - CLASS_FULL * full) / rest <= CLASS_FULL:
        base, extra = divmod(learners - CLASS_FULL * full, rest)
        others = iter([base + (1 if i < extra else 0) for i in range(rest)])
        return [CLASS_FULL if i % 2 == 0 else next(others) for i in range(count)]
    base, extra = divmod(learners, count)
    return [base + (1 if i < extra else 0) for i in range(count)]


def school_sizes(learners: int, rng: random.Random) -> list[int]:
    count = max(1, round(learners / LEARNERS_PER_SCHOOL))
    weights = [rng.uniform(0.5, 1.5) for _ in range(count)]
    total = sum(weights)
    sizes = [int(learners * w / total) for w in weights]
    for i in range(learners - sum(sizes)):
        sizes[i % count] += 1
    return sizes


def person_name(rng: random.Random) -> str:
    return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


def split(n: int, parts: int) -> list[int]:
    base, extra = divmod(n, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def with_items(spec: dict[str, Any], key: str) -> dict[str, Any]:
    """The module's spec with the bench's learning items (and tiers for modules 5 and 9)."""
    out = json.loads(json.dumps(spec))
    out["materials"] = json.loads(json.dumps(MATERIALS))
    if key != "gvpt-4":
        out.setdefault("assessment", {})["tiers"] = json.loads(json.dumps(TIERS))
    return out


class Rows:
    """Rows waiting to be inserted, written in chunks so memory stays flat."""

    CHUNK = 40_000

    def __init__(self, database: Database) -> None:
        self.database = database
        self.marks: list[dict[str, Any]] = []
        self.progress: list[dict[str, Any]] = []
        self.hand_ins: list[tuple[dict[str, Any], dict[str, Any] | None]] = []  # row, its grade
        self.results: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()

    def pending(self) -> int:
        return len(self.marks) + len(self.progress) + len(self.hand_ins) + len(self.results)

    def flush(self, force: bool = False) -> None:
        if not force and self.pending() < self.CHUNK:
            return
        with self.database.engine.begin() as conn:
            for name, model, rows in (
                ("attendance marks", AttendanceMark, self.marks),
                ("items done", ItemProgress, self.progress),
                ("module results", ModuleResultRow, self.results),
            ):
                if rows:
                    conn.execute(insert(model), rows)
                    self.counts[name] += len(rows)
            if self.hand_ins:
                stmt = insert(Submission).returning(Submission.id, sort_by_parameter_order=True)
                ids = conn.execute(stmt, [row for row, _ in self.hand_ins]).scalars().all()
                grades = [
                    grade | {"submission_id": sid}
                    for sid, (_, grade) in zip(ids, self.hand_ins, strict=True)
                    if grade is not None
                ]
                self.counts["hand-ins"] += len(ids)
                if grades:
                    conn.execute(insert(SubmissionGrade), grades)
                    self.counts["grades"] += len(grades)
        self.marks, self.progress, self.hand_ins, self.results = [], [], [], []


@dataclass(frozen=True)
class ModuleFacts:
    spec: dict[str, Any]
    items: list[Item]  # with the class's dates: computed per class
    policy: Any
    points: Any


def at(day: date, hour: int) -> datetime:
    """A time on a Vietnamese day, in UTC."""
    return datetime.combine(day, clock_time(hour, 0), UTC) - timedelta(hours=7)


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def hand_in_row(enrolment_id: int, key: str, attempt: int, at_: datetime) -> dict[str, Any]:
    """A reflection's row; an assignment's adds its file (every row has the same keys, as
    an executemany needs)."""
    return {
        "enrolment_id": enrolment_id,
        "item_key": key,
        "attempt": attempt,
        "text": REFLECTION,
        "file_name": None,
        "file_key": None,
        "file_size": None,
        "file_type": None,
        "file_sha256": None,
        "late": False,
        "submitted_at": at_,
    }


def learner_activity(
    rng: random.Random,
    rows: Rows,
    cls: ClassInfo,
    module: ModuleFacts,
    enrolment_id: int,
    trainer_id: int,
    own: Schedule | None,
    now: datetime,
    today: date,
) -> str | None:
    """One learner's marks, items, hand-ins, grades and result, by their dates; returns the
    classification (``None`` when their module has not started: no result row yet)."""
    schedule = own or cls.schedule
    if today < schedule.start:
        return None
    diligence = rng.uniform(0.05, 0.35) if rng.random() < 0.06 else rng.uniform(0.75, 1.0)
    marks: dict[int, str] = {}
    for session_id, day, _part in cls.sessions:
        if day >= today:
            continue
        if own is not None:
            status = "excused"  # attends with another class on their own dates
        else:
            r = rng.random()
            absent = 0.02 + (1 - diligence) * 0.3
            status = (
                "absent"
                if r < absent
                else "late"
                if r < absent + 0.05
                else "excused"
                if r < absent + 0.08
                else "present"
            )
        marks[session_id] = status
        rows.marks.append(
            {
                "session_id": session_id,
                "enrolment_id": enrolment_id,
                "status": status,
                "source": "manual",
                "marked_by_user_id": trainer_id,
                "marked_at": at(day, 17),
            }
        )
    items = items_of(module.spec, own) if own is not None else module.items
    done: set[str] = set()
    grades: dict[str, Decimal] = {}
    for item in items:
        if not item.tracked or item.due_on is None:
            continue
        start = (
            schedule.self_study_start if item.phase == "self_study" else schedule.follow_up_start
        )
        if start is None or today < start:
            continue
        chance = diligence if today > item.due_on else diligence * 0.5
        if rng.random() >= chance:
            continue
        done.add(item.key)
        day = max(start, min(today, item.due_on) - timedelta(days=rng.randint(0, 2)))
        done_at = at(day, rng.randint(8, 22))
        source = {
            "quiz": ProgressSource.QUIZ,
            "reflection": ProgressSource.REFLECTION,
            "assignment": ProgressSource.SUBMISSION,
        }.get(item.mode, ProgressSource.LEARNER)
        rows.progress.append(
            {
                "enrolment_id": enrolment_id,
                "item_key": item.key,
                "source": source,
                "done_at": done_at,
            }
        )
        if item.mode == "reflection":
            rows.hand_ins.append((hand_in_row(enrolment_id, item.key, 1, done_at), None))
        elif item.mode == "assignment":
            attempts = 2 if rng.random() < 0.12 else 1
            graded_attempt = (attempts if rng.random() < 0.9 else 1) if rng.random() < 0.85 else 0
            if today <= day:
                graded_attempt = 0  # handed in today: not graded yet
            for attempt in range(1, attempts + 1):
                submitted = done_at + timedelta(hours=attempt - 1)
                grade = None
                if attempt == graded_attempt:
                    score = min(10.0, max(0.0, rng.gauss(4.6 + 3.0 * diligence, 1.4)))
                    grades[item.key] = Decimal(round(score * 2) / 2).quantize(Decimal("0.01"))
                    grade = {
                        "enrolment_id": enrolment_id,
                        "item_key": item.key,
                        "score": grades[item.key],
                        "feedback": "Đạt yêu cầu." if score >= 5 else "Cần bổ sung.",
                        "graded_by_user_id": trainer_id,
                        "graded_at": submitted + timedelta(days=1),
                    }
                hand_in = hand_in_row(enrolment_id, item.key, attempt, submitted) | {
                    "text": None,
                    "file_name": f"ke-hoach-bai-day-v{attempt}.docx",
                    "file_key": secrets.token_hex(16),
                    "file_size": rng.randint(40_000, 900_000),
                    "file_type": DOCX,
                    "file_sha256": secrets.token_hex(32),
                    "late": submitted > (item.due_at or submitted),
                }
                rows.hand_ins.append((hand_in, grade))

    # The module result as GradingService.refresh computes it (items with the class's dates).
    self_items = [i for i in module.items if i.counts_for_self_study]
    assignments = [i for i in module.items if i.counts_for_follow_up]
    session_ids = [s for s, _, _ in cls.sessions]
    attendance = (
        attendance_score([marks.get(s) for s in session_ids], module.points, len(session_ids))
        if session_ids
        else None
    )
    components = components_from(
        self_study_done=sum(1 for i in self_items if i.key in done),
        self_study_total=len(self_items),
        manual_self_study=None,
        assignment_grades=[grades.get(i.key) for i in assignments],
        manual_follow_up=None,
        attendance=attendance,
    )
    result = compute_result(components, module.policy)
    rows.results.append(
        {
            "enrolment_id": enrolment_id,
            "self_study": components.self_study,
            "attendance": components.attendance,
            "follow_up": components.follow_up,
            "score": result.score,
            "classification": result.classification,
            "final": result.final,
            "updated_at": now,
        }
    )
    return result.classification


def progress(label: str, done: int, total: int, started: float) -> None:
    if sys.stderr.isatty():
        elapsed = time.perf_counter() - started
        print(f"\r  {label}: {done:,}/{total:,} ({elapsed:.0f} s)", end="", file=sys.stderr)
        if done == total:
            print(file=sys.stderr)


def catalogue(database: Database, lms: TestPlatform) -> tuple[int, int, dict[str, Any]]:
    """Platform, deployment, the shipped catalogue and the bench's module versions (through
    the services); returns the platform id, the deployment id, and per module key its id
    and current spec."""
    with database.session() as s:
        platform = PlatformService(s).register(
            PlatformInput(
                issuer=lms.issuer,
                client_id=lms.client_id,
                auth_login_url=lms.auth_login_url,
                token_url=lms.token_url,
                keyset_url=lms.keyset_url,
                deployment_ids=[lms.deployment_id],
                name="Sở GD&ĐT (bench)",
            )
        )
        deployment_pk = PlatformRepository(s).deployment_pk(platform.id, lms.deployment_id)
        assert deployment_pk is not None
        service = CatalogueService(s)
        shipped = {m.key: (m, v) for m, v in service.modules(deployment_pk)}
        missing = [k for k in MODULE_KEYS if k not in shipped]
        if missing:
            raise SystemExit(f"the shipped catalogue has no module {', '.join(missing)}")
        for key in MODULE_KEYS:
            module, version = shipped[key]
            service.update(
                deployment_pk, module.id, with_items(dict(version.spec), key), user_id=None
            )
        current = {m.key: (m.id, dict(v.spec)) for m, v in service.modules(deployment_pk)}
        return platform.id, deployment_pk, current


def people(
    database: Database, platform_id: int, learners: int, trainers: int, rng: random.Random
) -> tuple[list[int], list[str], list[str], dict[str, int], int]:
    """Learners in school order, then the core trainers (bulk); returns the learners' ids
    and levels, the trainers' subs, every id by sub, and the number of schools."""
    schools = school_sizes(learners, rng)
    users: list[dict[str, Any]] = []
    levels: list[str] = []
    for n, size in enumerate(schools):
        level = LEVELS[0] if n < len(schools) / 2 else LEVELS[1]
        for _ in range(size):
            sub = f"gv-{len(users) + 1:06d}"
            users.append(
                {
                    "platform_id": platform_id,
                    "sub": sub,
                    "name": person_name(rng),
                    "email": f"{sub}@truong.bench.edu.vn",
                    "school": f"{LEVEL_SCHOOL[level]} số {n + 1:04d}",
                    "district": f"Huyện {n % DISTRICTS + 1:02d}",
                }
            )
            levels.append(level)
    for n in range(trainers):
        users.append(
            {
                "platform_id": platform_id,
                "sub": f"cc-{n + 1:05d}",
                "name": person_name(rng),
                "email": f"cc-{n + 1:05d}@sogd.bench.edu.vn",
                "school": None,
                "district": f"Huyện {n % DISTRICTS + 1:02d}",
            }
        )
    with database.engine.begin() as conn:
        conn.execute(insert(User), users)
        ids = dict(
            conn.execute(select(User.sub, User.id).where(User.platform_id == platform_id)).all()
        )
    subs = [u["sub"] for u in users]
    return [ids[sub] for sub in subs[:learners]], levels, subs[learners:], ids, len(schools)


def create_classes(
    database: Database,
    deployment_pk: int,
    current: dict[str, Any],
    sizes: list[int],
    learner_ids: list[int],
    levels: list[str],
    trainer_ids: list[int],
    today: date,
) -> tuple[list[ClassInfo], Any]:
    """Two waves and the classes, through ``ClassService`` in one unit of work (the app
    computes their dates and sessions); returns them and the tenant's holiday calendar."""
    classes: list[ClassInfo] = []
    trainers = iter(trainer_ids)
    with database.session() as s:
        calendar = calendar_for(s, deployment_pk, around=today.year)
        days, day = [], today - timedelta(days=DAYS_BACK)
        while day <= today + timedelta(days=DAYS_AHEAD):
            if calendar.is_working_day(day):
                days.append(day)
            day += timedelta(days=1)
        service = ClassService(s)
        first = service.create_wave(
            deployment_pk, WaveCreate(name=f"Đợt 1 — {today.year}", year=today.year)
        )
        second = service.create_wave(
            deployment_pk, WaveCreate(name=f"Đợt 2 — {today.year}", year=today.year)
        )
        waves = {"gvpt-4": first.id, "gvpt-5": second.id, "gvpt-9": second.id}
        at_learner = 0
        for i, size in enumerate(sizes):
            key = MODULE_KEYS[i % len(MODULE_KEYS)]
            j = i * (len(days) - 2) // max(1, len(sizes) - 1)
            cls = service.create_class(
                deployment_pk,
                ClassCreate(
                    code=f"B-{i + 1:04d}",
                    name=f"Mô-đun {key.rsplit('-', 1)[1]} — lớp {i + 1:04d}",
                    module_id=current[key][0],
                    level=Level(levels[at_learner]),
                    wave_id=waves[key],
                    in_person_dates=[days[j], days[j + 1]],
                    venue="Trung tâm bồi dưỡng (bench)",
                ),
            )
            classes.append(
                ClassInfo(
                    id=cls.id,
                    size=size,
                    module_key=key,
                    schedule=stored_schedule(cls),
                    sessions=[],
                    user_ids=learner_ids[at_learner : at_learner + size],
                    trainer_ids=[next(trainers) for _ in range(-(-size // COHORT_SIZE))],
                )
            )
            at_learner += size
    by_id = {c.id: c for c in classes}
    stmt = select(ClassSession.id, ClassSession.class_id, ClassSession.date, ClassSession.part)
    stmt = stmt.order_by(
        ClassSession.class_id, ClassSession.date, ClassSession.part.desc(), ClassSession.id
    )
    with database.engine.connect() as conn:
        for session_id, class_id, day, part in conn.execute(stmt):
            by_id[class_id].sessions.append((session_id, day, part))
    return classes, calendar


def enrol(
    database: Database,
    classes: list[ClassInfo],
    sub_of: dict[int, str],
    plans: dict[str, Any],
    calendar: Any,
    rng: random.Random,
    now: datetime,
) -> tuple[list[tuple[ClassInfo, int, int, Schedule | None]], int, int]:
    """Cohorts (one core trainer each), trainer links and enrolments (bulk); returns per
    enrolment its class, id, cohort's trainer and own dates, and how many left or shifted."""
    cohort_rows = [
        {"class_id": c.id, "position": p + 1, "name": f"Nhóm {p + 1}", "trainer_user_id": t}
        for c in classes
        for p, t in enumerate(c.trainer_ids)
    ]
    trainer_links = [
        {"class_id": c.id, "user_id": t, "source": "manual", "active": True}
        for c in classes
        for t in c.trainer_ids
    ]
    with database.engine.begin() as conn:
        stmt = insert(Cohort).returning(Cohort.id, sort_by_parameter_order=True)
        cohort_ids = iter(conn.execute(stmt, cohort_rows).scalars().all())
        conn.execute(insert(ClassTrainer), trainer_links)
    rows: list[dict[str, Any]] = []
    placed: list[tuple[ClassInfo, int, Schedule | None]] = []
    left_at = now - timedelta(days=3)
    for c in classes:
        start = 0
        for p, n in enumerate(split(c.size, len(c.trainer_ids))):
            cohort_id = next(cohort_ids)
            c.cohorts.append(CohortInfo(cohort_id, c.id, p + 1, n, sub_of[c.trainer_ids[p]]))
            for user_id in c.user_ids[start : start + n]:
                own = None
                if rng.random() < 0.02:
                    own = shift_schedule(
                        c.schedule, delay_days=7, calendar=calendar, plan=plans[c.module_key]
                    )
                left = rng.random() < 0.01
                rows.append(
                    {
                        "class_id": c.id,
                        "user_id": user_id,
                        "cohort_id": cohort_id,
                        "status": EnrolmentStatus.LEFT if left else EnrolmentStatus.ACTIVE,
                        "source": "bench",
                        "enrolled_at": at(c.schedule.start, 8) - timedelta(days=14),
                        "left_at": left_at if left else None,
                        "own_schedule": own.to_dict() if own is not None else None,
                        "ical_token": secrets.token_urlsafe(24),
                    }
                )
                placed.append((c, c.trainer_ids[p], own))
            start += n
    active = Counter(r["class_id"] for r in rows if r["status"] == EnrolmentStatus.ACTIVE)
    table = TrainingClass.__table__
    with database.engine.begin() as conn:
        stmt = insert(Enrolment).returning(Enrolment.id, sort_by_parameter_order=True)
        ids = conn.execute(stmt, rows).scalars().all()
        conn.execute(
            table.update()
            .where(table.c.id == bindparam("b_id"))
            .values(enrolled_count=bindparam("b_n")),
            [{"b_id": cid, "b_n": n} for cid, n in active.items()],
        )
    shifted = sum(1 for _, _, own in placed if own is not None)
    out = [(c, eid, trainer, own) for (c, trainer, own), eid in zip(placed, ids, strict=True)]
    return out, len(rows) - sum(active.values()), shifted


def support_logs(
    database: Database, classes: list[ClassInfo], rng: random.Random, now: datetime, today: date
) -> int:
    rows = [
        {
            "cohort_id": cohort.id,
            "trainer_user_id": c.trainer_ids[cohort.position - 1],
            "date": min(today, c.schedule.start + timedelta(days=2 + 3 * k)),
            "form": "online" if k % 2 else "in_person",
            "periods": Decimal(rng.choice((1, 2, 2, 3))),
            "created_at": now,
        }
        for c in classes
        if today >= c.schedule.start
        for cohort in c.cohorts
        for k in range(rng.randint(1, 4))
    ]
    if rows:
        with database.engine.begin() as conn:
            conn.execute(insert(SupportLog), rows)
    return len(rows)


def build(database: Database, lms: TestPlatform, learners: int, seed: int) -> World:
    started = time.perf_counter()
    rng = random.Random(seed)
    now = utcnow()
    today = local(now).date()
    platform_id, deployment_pk, current = catalogue(database, lms)
    sizes = class_sizes(learners)
    trainers = sum(-(-size // COHORT_SIZE) for size in sizes)  # a core trainer per cohort
    learner_ids, levels, trainer_subs, ids, schools = people(
        database, platform_id, learners, trainers, rng
    )
    classes, calendar = create_classes(
        database,
        deployment_pk,
        current,
        sizes,
        learner_ids,
        levels,
        [ids[sub] for sub in trainer_subs],
        today,
    )
    plans = {k: plan_of(current[k][1]) for k in MODULE_KEYS}
    placed, left, shifted = enrol(
        database, classes, {ids[sub]: sub for sub in trainer_subs}, plans, calendar, rng, now
    )

    # Per learner: marks, items, hand-ins, grades, results (bulk, in chunks).
    modules: dict[int, ModuleFacts] = {}
    for c in classes:
        spec = current[c.module_key][1]
        modules[c.id] = ModuleFacts(
            spec, items_of(spec, c.schedule), policy_of(spec), attendance_points_of(spec)
        )
    rows = Rows(database)
    classifications: Counter[str] = Counter()
    t0 = time.perf_counter()
    for n, (c, enrolment_id, trainer_id, own) in enumerate(placed, start=1):
        found = learner_activity(
            rng, rows, c, modules[c.id], enrolment_id, trainer_id, own, now, today
        )
        classifications[found or "(no result yet)"] += 1
        rows.flush()
        if n % 5000 == 0 or n == len(placed):
            progress("learners", n, len(placed), t0)
    rows.flush(force=True)
    supports = support_logs(database, classes, rng, now, today)
    if database.dialect == "postgresql":
        # A database in service has planner statistics (autovacuum); a fresh bulk load has none.
        with database.engine.begin() as conn:
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.exec_driver_sql(f"ANALYZE {tables}")

    counts = {
        "classes": len(classes),
        "cohorts": sum(len(c.cohorts) for c in classes),
        "sessions": sum(len(c.sessions) for c in classes),
        "enrolments": len(placed),
        "left": left,
        "own dates": shifted,
        **rows.counts,
        "support logs": supports,
    }
    ends = [c.schedule.end for c in classes]
    return World(
        deployment_pk=deployment_pk,
        platform_id=platform_id,
        learners=learners,
        schools=schools,
        classes=classes,
        period=Period(min(ends), max(ends)),
        rows=counts,
        classifications=classifications,
        seconds=time.perf_counter() - started,
    )


# -- driving the app -------------------------------------------------------------------------


class ServerTimer:
    """ASGI wrapper: time inside the app, minus time blocked in ``send`` (the transport)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        blocked = 0.0

        async def timed_send(message: Any) -> None:
            nonlocal blocked
            t0 = time.perf_counter()
            try:
                await send(message)
            finally:
                blocked += time.perf_counter() - t0

        start = time.perf_counter()
        try:
            await self.app(scope, receive, timed_send)
        finally:
            self.last = time.perf_counter() - start - blocked


@dataclass
class Census:
    """SQL statements executed while ``active`` (transaction control left out), with the time
    each spent in the driver's ``execute`` (on SQLite, fetching the rows comes after it)."""

    active: bool = False
    statements: list[tuple[str, float]] = field(default_factory=list)
    _started: float = 0.0

    def attach(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def detach(self, engine: Engine) -> None:
        event.remove(engine, "before_cursor_execute", self._before)
        event.remove(engine, "after_cursor_execute", self._after)

    def _before(self, *_: Any) -> None:
        self._started = time.perf_counter()

    def _after(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if self.active and not statement.lstrip().upper().startswith(TX_CONTROL):
            self.statements.append((statement, time.perf_counter() - self._started))

    @contextmanager
    def counting(self) -> Iterator[list[tuple[str, float]]]:
        self.statements = []
        self.active = True
        try:
            yield self.statements
        finally:
            self.active = False


class FullCollections:
    """Full (generation 2) garbage collections and their pauses, through ``gc.callbacks``."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._started)

    @contextmanager
    def watching(self) -> Iterator[list[float]]:
        self.pauses = []
        gc.callbacks.append(self)
        try:
            yield self.pauses
        finally:
            gc.callbacks.remove(self)


@dataclass
class Timing:
    """One page (or peer) measured ``n`` times."""

    label: str
    seconds: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    db: list[float] = field(default_factory=list)  # seconds in the driver's execute
    repeat: int = 0  # the most any one statement ran in one request
    repeated: str = ""
    slowest: dict[str, list[float]] = field(default_factory=dict)  # statement → its times
    size: int = 0  # bytes of the last response
    full_gcs: list[float] = field(default_factory=list)  # pauses while it was measured

    def record(self, seconds: float, statements: list[tuple[str, float]]) -> None:
        self.seconds.append(seconds)
        self.statements.append(len(statements))
        self.db.append(sum(t for _, t in statements))
        shown = [" ".join(st.split()) for st, _ in statements]
        top = Counter(shown).most_common(1)
        if top and top[0][1] > self.repeat:
            self.repeat, self.repeated = top[0][1], top[0][0][:90]
        for text_, (_, t) in zip(shown, statements, strict=True):
            self.slowest.setdefault(text_[:200], []).append(t)

    @property
    def slowest_statement(self) -> tuple[float, str]:
        """The statement with the largest median time, and that time."""
        if not self.slowest:
            return 0.0, ""
        text_, times = max(self.slowest.items(), key=lambda kv: statistics.median(kv[1]))
        return statistics.median(times), text_

    def pct(self, q: float) -> float:
        ordered = sorted(self.seconds)
        index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
        return ordered[index]

    @property
    def sql(self) -> str:
        low, high = min(self.statements), max(self.statements)
        return f"{low}" if low == high else f"{low}–{high}"


@dataclass
class Bench:
    client: TestClient
    timer: ServerTimer
    census: Census
    lms: TestPlatform

    def sign_in(self, sub: str, roles: list[str]) -> str:
        """A whole LTI launch (OIDC login, signed id_token); returns the session cookie."""
        self.client.cookies.clear()
        response = self.client.get("/lti/login?" + urlencode(self.lms.login_params(login_hint=sub)))
        if response.status_code != 302:
            raise RuntimeError(f"login answered {response.status_code}: {response.text[:300]}")
        auth = self.lms.authorize(response.headers["location"])
        claims = self.lms.claims(nonce=auth["nonce"], sub=sub, roles=roles, name=None, email=None)
        response = self.client.post(
            "/lti/launch", data={"id_token": self.lms.sign(claims), "state": auth["state"]}
        )
        if response.status_code != 303:
            raise RuntimeError(f"launch answered {response.status_code}: {response.text[:300]}")
        token = self.client.cookies.get(SESSION_COOKIE)
        self.client.cookies.clear()
        if not token:
            raise RuntimeError("the launch set no session cookie")
        return token

    def get(self, url: str, cookie: str, check: Callable[[Any], bool] | None = None) -> Any:
        response = self.client.get(url, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
        if response.status_code != 200 or (check is not None and not check(response)):
            status = response.status_code
            raise RuntimeError(f"GET {url} answered {status}: {response.text[:300]}")
        return response

    def measure(
        self,
        label: str,
        requests: list[tuple[str, str]],
        n: int,
        check: Callable[[Any], bool] | None = None,
    ) -> Timing:
        """Every distinct request once to warm up, then ``n`` timed requests, round-robin."""
        for url, cookie in requests:
            self.get(url, cookie, check)
        timing = Timing(label)
        with FullCollections().watching() as pauses:
            for i in range(n):
                url, cookie = requests[i % len(requests)]
                with self.census.counting() as statements:
                    response = self.get(url, cookie)
                timing.record(self.timer.last, statements)
                timing.size = len(response.content)
        timing.full_gcs = list(pauses)
        return timing


def quiet_logging() -> None:
    """Keep the app's INFO logging (its formatting is part of a request) but write it nowhere."""
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


# -- the peers -------------------------------------------------------------------------------


ASSIGNMENT_KEYS = tuple(m["key"] for m in MATERIALS if m["kind"] == "assignment")


@dataclass(frozen=True)
class TableRow:
    """What the cohort table shows of one learner, as both ways compute it."""

    enrolment_id: int
    marks: tuple[str | None, ...]
    items_done: int
    handed_in: int
    to_grade: int
    classification: str | None


def naive_cohort(session: Session, cohort_id: int, class_id: int) -> list[TableRow]:
    """The peer: the members, then five queries per learner."""
    members = session.execute(
        select(Enrolment.id)
        .join(User, User.id == Enrolment.user_id)
        .where(Enrolment.cohort_id == cohort_id, Enrolment.status == EnrolmentStatus.ACTIVE)
        .order_by(User.name, User.id)
    ).scalars()
    sessions = session.scalars(
        select(ClassSession.id)
        .where(ClassSession.class_id == class_id)
        .order_by(ClassSession.date, ClassSession.part.desc(), ClassSession.id)
    ).all()
    rows = []
    for enrolment_id in members.all():
        marks = dict(
            session.execute(
                select(AttendanceMark.session_id, AttendanceMark.status).where(
                    AttendanceMark.enrolment_id == enrolment_id
                )
            ).all()
        )
        done = session.scalars(
            select(ItemProgress.item_key).where(ItemProgress.enrolment_id == enrolment_id)
        ).all()
        latest = dict(
            session.execute(
                select(Submission.item_key, Submission.id)
                .where(Submission.enrolment_id == enrolment_id)
                .order_by(Submission.attempt)
            ).all()
        )
        graded = dict(
            session.execute(
                select(SubmissionGrade.item_key, SubmissionGrade.submission_id)
                .where(SubmissionGrade.enrolment_id == enrolment_id)
                .order_by(SubmissionGrade.graded_at, SubmissionGrade.id)
            ).all()
        )
        classification = session.scalar(
            select(ModuleResultRow.classification).where(
                ModuleResultRow.enrolment_id == enrolment_id
            )
        )
        handed = [k for k in ASSIGNMENT_KEYS if k in latest]
        rows.append(
            TableRow(
                enrolment_id=enrolment_id,
                marks=tuple(marks.get(s) for s in sessions),
                items_done=len(set(done)),
                handed_in=len(handed),
                to_grade=sum(1 for k in handed if graded.get(k) != latest[k]),
                classification=classification,
            )
        )
    return rows


def service_cohort(session: Session, viewer: Viewer, cohort_id: int) -> list[TableRow]:
    """Ours without HTTP: the rows ``DashboardService.cohort`` builds for the page."""
    board = DashboardService(session).cohort(viewer, cohort_id, utcnow())
    return [
        TableRow(
            enrolment_id=r.enrolment_id,
            marks=r.marks,
            items_done=sum(p.done for k, p in r.progress.items() if k != "in_person"),
            handed_in=r.follow_up.handed_in,
            to_grade=r.follow_up.to_grade,
            classification=r.result.classification if r.result is not None else None,
        )
        for r in board.rows
    ]


def admin_viewer(world: World) -> Viewer:
    return Viewer(
        session_id="bench",
        user=ViewerUser(0, "bench", "Bench", None, None, None),
        role=Role.ADMIN,
        locale="vi",
        deployment_id=world.deployment_pk,
        platform_id=world.platform_id,
        course=None,
        resource_link=None,
        return_url=None,
        csrf_token="bench",
    )


def time_calls(
    label: str,
    database: Database,
    census: Census,
    calls: list[Callable[[Session], list[TableRow]]],
    n: int,
) -> tuple[Timing, list[list[TableRow]]]:
    """Each call in a read-only unit of work of its own, as a request would have."""
    outputs = []
    for call in calls:  # warm-up, and the rows to compare
        with database.session(readonly=True) as s:
            outputs.append(call(s))
    timing = Timing(label)
    for i in range(n):
        with census.counting() as statements:
            t0 = time.perf_counter()
            with database.session(readonly=True) as s:
                calls[i % len(calls)](s)
            seconds = time.perf_counter() - t0
        timing.record(seconds, statements)
    return timing, outputs


@dataclass
class Memory:
    label: str
    seconds: float  # p50 of the timed runs
    traced_peak: int  # tracemalloc peak (its own run)
    rss: int  # resident memory at the start of the last run
    rss_growth: int  # VmHWM (reset at the start) minus RSS at the start
    maxrss_delta: int
    statements: int


def memory_of(label: str, call: Callable[[], Any], census: Census, runs: int) -> Memory:
    """``runs`` timed calls, then one under tracemalloc, then one for resident memory."""
    times = []
    statements = 0
    for _ in range(runs):
        gc.collect()
        with census.counting() as seen:
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        statements = len(seen)
    gc.collect()
    tracemalloc.start()
    try:
        call()
        _, traced = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    release_memory()
    memory = PeakMemory()
    before_max = maxrss()
    rss = memory.start()
    call()
    growth = memory.peak() - rss
    return Memory(
        label, statistics.median(times), traced, rss, growth, maxrss() - before_max, statements
    )


def per_learner_report(database: Database, world: World) -> dict[str, int]:
    """The report's peer: every enrolment of the period in Python, then tallied."""
    with database.session(readonly=True) as s:
        versions = {
            c: v
            for c, v in s.execute(
                select(TrainingClass.id, TrainingClass.module_version_id).where(
                    TrainingClass.deployment_id == world.deployment_pk
                )
            )
        }
        found = CatalogueRepository(s).versions_with_modules(set(versions.values()))
        policies = {vid: policy_of(dict(v.spec)) for vid, (_m, v) in found.items()}
        waves = dict(s.execute(select(Wave.id, Wave.name)).all())
        rows = s.execute(
            select(
                Enrolment.class_id,
                Enrolment.status,
                User.district,
                User.school,
                TrainingClass.wave_id,
                ModuleResultRow.classification,
                ModuleResultRow.final,
            )
            .join(TrainingClass, TrainingClass.id == Enrolment.class_id)
            .join(User, User.id == Enrolment.user_id)
            .outerjoin(ModuleResultRow, ModuleResultRow.enrolment_id == Enrolment.id)
            .where(
                TrainingClass.deployment_id == world.deployment_pk,
                TrainingClass.ends_on >= world.period.start,
                TrainingClass.ends_on <= world.period.end,
            )
        ).all()
    lines: dict[tuple[Any, ...], Counter[str]] = {}
    for class_id, status, district, school, wave_id, classification, final in rows:
        version = versions[class_id]
        key = ((district or "").strip(), (school or "").strip(), version, waves.get(wave_id))
        counts = lines.setdefault(key, Counter())
        code = classification or "incomplete"
        completes = policies[version].completes(code) if version in policies else False
        if not completes and status != EnrolmentStatus.ACTIVE:
            counts["left"] += 1
            continue
        counts["enrolled"] += 1
        counts["completed"] += completes
        counts["in_progress"] += not completes and not final
    total: Counter[str] = Counter()
    for counts in lines.values():
        total.update(counts)
    return {"lines": len(lines), **total}


# -- one size --------------------------------------------------------------------------------


@dataclass
class Check:
    label: str
    ok: bool
    detail: str


@dataclass
class SizeResult:
    learners: int
    world: World
    backend: str
    where: str
    pages: dict[str, Timing]
    service: Timing
    peer: Timing
    cohort_learners: int
    class_learners: int
    report: Memory
    report_peer: Memory
    report_lines: int
    xlsx_rows: int
    checks: list[Check]


def sample(world: World, today: date) -> tuple[list[CohortInfo], list[ClassInfo]]:
    """Full classes whose in-person days are past, most recent first: their cohorts (one per
    class first, then the next positions) and the classes themselves."""
    recent = sorted(
        (
            c
            for c in world.classes
            if c.size == CLASS_FULL and c.schedule.in_person_dates[0] < today
        ),
        key=lambda c: c.schedule.in_person_dates[0],
        reverse=True,
    )
    if not recent:
        recent = sorted(world.classes, key=lambda c: -c.size)
    cohorts = [c.cohorts[p] for p in range(3) for c in recent if p < len(c.cohorts)]
    return cohorts[:SAMPLE_COHORTS], recent[:SAMPLE_CLASSES]


def run_size(
    url: str | None, label: str, learners: int, args: argparse.Namespace, server: str
) -> SizeResult:
    with ExitStack() as stack:
        database, where = stack.enter_context(fresh_database(url, label))
        lms = TestPlatform.create(
            server, issuer=f"https://lms-{label}.bench.test", client_id="bench-client"
        )
        print(f"\n[{label}] {learners:,} learners — {where}", file=sys.stderr)
        world = build(database, lms, learners, args.seed)
        gc.collect()
        print(f"[{label}] set-up {world.seconds:.1f} s; measuring", file=sys.stderr)
        upload = stack.enter_context(tempfile.TemporaryDirectory(prefix="blend727-uploads-"))
        settings = Settings(
            inprocess_worker=False,
            database_url="sqlite://",  # unused: the app is given the database object
            base_url=TOOL_BASE_URL,
            secret_key=SECRET_KEY,
            demo=False,
            log_level="INFO",
            upload_dir=Path(upload),
        )
        app = create_app(settings, database)
        quiet_logging()
        timer = ServerTimer(app)
        client = stack.enter_context(
            TestClient(timer, base_url=TOOL_BASE_URL, follow_redirects=False)
        )
        census = Census()
        census.attach(database.engine)
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
        bench = Bench(client, timer, census, lms)
        today = local(utcnow()).date()
        cohorts, classes = sample(world, today)
        trainers = {c.trainer_sub: bench.sign_in(c.trainer_sub, TRAINER_ROLES) for c in cohorts}
        admin = bench.sign_in("bench-admin", ADMIN_ROLES)

        pages: dict[str, Timing] = {}
        pages["cohort"] = bench.measure(
            "cohort page",
            [(f"/cohorts/{c.id}", trainers[c.trainer_sub]) for c in cohorts],
            args.cohort_requests,
            check=lambda r: r.text.count('<tr id="learner-') >= COHORT_SIZE * 0.8,
        )
        pages["grading"] = bench.measure(
            "class page",
            [(f"/grading/classes/{c.id}", admin) for c in classes],
            args.class_requests,
        )
        pages["admin"] = bench.measure(
            "admin class page",
            [(f"/admin/classes/{c.id}", admin) for c in classes],
            args.class_requests,
        )
        period = f"from={world.period.start.isoformat()}&to={world.period.end.isoformat()}"
        pages["reports"] = bench.measure(
            "reports page", [(f"/admin/reports?{period}", admin)], args.report_runs
        )
        pages["xlsx"] = bench.measure(
            "report xlsx", [(f"/admin/reports/export.xlsx?{period}", admin)], args.report_runs
        )

        # The cohort table without HTTP, and the naive peer, on the same cohorts.
        viewer = admin_viewer(world)
        service, ours = time_calls(
            "DashboardService.cohort",
            database,
            census,
            [lambda s, c=c: service_cohort(s, viewer, c.id) for c in cohorts],
            args.cohort_requests,
        )
        peer, theirs = time_calls(
            "naive per-learner loop",
            database,
            census,
            [lambda s, c=c: naive_cohort(s, c.id, c.class_id) for c in cohorts],
            args.peer_runs,
        )

        # The report's memory, beside the per-learner peer.
        xlsx_url = f"/admin/reports/export.xlsx?{period}"
        holder: dict[str, Any] = {}

        def fetch_xlsx() -> None:
            holder["xlsx"] = bench.get(xlsx_url, admin).content

        report = memory_of("report xlsx (request)", fetch_xlsx, census, args.report_runs)
        report_peer = memory_of(
            "peer: per-learner rows",
            lambda: holder.__setitem__("peer", per_learner_report(database, world)),
            census,
            args.report_runs,
        )
        with database.session(readonly=True) as s:
            built = ReportService(s).report(world.deployment_pk, world.period)
        book = load_workbook(io.BytesIO(holder["xlsx"]), read_only=True)
        xlsx_rows = sum(1 for _ in book.worksheets[0].iter_rows())
        census.detach(database.engine)
        if args.gc_freeze:
            gc.unfreeze()

    peer_total = holder["peer"]
    checks = [
        Check(
            "the peer's cohort tables equal the service's",
            ours == theirs,
            f"{len(cohorts)} cohorts, {sum(len(t) for t in ours):,} learners compared",
        ),
        Check(
            "the report's totals equal the per-learner count",
            (built.total.enrolled, built.total.completed, built.total.left)
            == (peer_total["enrolled"], peer_total["completed"], peer_total["left"])
            and len(built.schools) == peer_total["lines"],
            f"enrolled {built.total.enrolled:,}, completed {built.total.completed:,}, "
            f"left {built.total.left:,}; {len(built.schools):,} rows by school, module, wave",
        ),
        Check(
            "the XLSX holds every row",
            xlsx_rows == len(built.schools) + 4,
            f"{xlsx_rows:,} rows in its first sheet (title, period, headings, total)",
        ),
    ]
    backend = database.dialect
    return SizeResult(
        learners=learners,
        world=world,
        backend=backend,
        where=where,
        pages=pages,
        service=service,
        peer=peer,
        cohort_learners=round(statistics.fmean(c.size for c in cohorts)),
        class_learners=round(statistics.fmean(c.size for c in classes)),
        report=report,
        report_peer=report_peer,
        report_lines=len(built.schools),
        xlsx_rows=xlsx_rows,
        checks=checks,
    )


# -- printing --------------------------------------------------------------------------------


def load_note() -> str:
    if not hasattr(os, "getloadavg"):
        return "load average unknown"
    load = os.getloadavg()[0]
    busy = load > 0.5 * (os.cpu_count() or 1)
    return f"load average {load:.2f}" + (" (busy machine: expect noisy figures)" if busy else "")


def versions() -> str:
    parts = []
    for name in ("fastapi", "starlette", "SQLAlchemy", "psycopg", "jinja2", "openpyxl"):
        with suppress(metadata.PackageNotFoundError):
            parts.append(f"{name} {metadata.version(name)}")
    return f"Python {pyplatform.python_version()}, " + ", ".join(parts)


PAGE_LABELS = {
    "cohort": "GET /cohorts/{id} (core trainer)",
    "grading": "GET /grading/classes/{id} (admin)",
    "admin": "GET /admin/classes/{id}",
    "reports": "GET /admin/reports (province)",
    "xlsx": "GET /admin/reports/export.xlsx",
}


def print_world(result: SizeResult) -> None:
    w = result.world
    sizes = sorted({c.size for c in w.classes})
    cohort_sizes = [c.size for cls in w.classes for c in cls.cohorts]
    rows = ", ".join(f"{n:,} {k}" for k, n in w.rows.items())
    mix = ", ".join(f"{k} {n:,}" for k, n in w.classifications.most_common())
    print(
        f"\n{w.learners:,} learners ({result.backend}, {result.where}): {w.schools:,} schools, "
        f"classes of {sizes[0]}–{sizes[-1]}, cohorts of {min(cohort_sizes)}–{max(cohort_sizes)}"
        f" each with its own core trainer; set-up {w.seconds:.1f} s (not compared)"
    )
    print(f"  rows: {rows}")
    print(f"  results: {mix}")
    print(f"  classes end {w.period.start} – {w.period.end} (the report's period)")


def print_pages(small: SizeResult, big: SizeResult, args: argparse.Namespace) -> None:
    head_small = f"{small.learners:,} learners"
    head_big = f"{big.learners:,} learners"
    print(
        f"\nServer time, ms (p50 / p99), and SQL statements per request — cohorts of "
        f"{big.cohort_learners}, classes of {big.class_learners}"
    )
    print(f"  {'':<39}{head_small:>27}  {head_big:>27}  {'×small':>7}")
    print(f"  {'page':<34}{'n':>5}{'p50':>9}{'p99':>9}{'SQL':>9}  {'p50':>9}{'p99':>9}{'SQL':>9}")
    for key, label in PAGE_LABELS.items():
        a, b = small.pages[key], big.pages[key]
        growth = b.pct(50) / a.pct(50) if a.pct(50) else float("inf")
        print(
            f"  {label:<34}{len(b.seconds):>5}"
            f"{a.pct(50) * 1e3:9.1f}{a.pct(99) * 1e3:9.1f}{a.sql:>9}"
            f"  {b.pct(50) * 1e3:9.1f}{b.pct(99) * 1e3:9.1f}{b.sql:>9}  {growth:7.2f}"
        )
    print(
        "  (server time: inside the ASGI app, sign-in check, queries, rules and HTML included;"
        "\n   SQL: statements the request executed, transaction control not counted)"
    )
    print(
        f"\n  At {big.learners:,} learners: response size; time in the driver's execute and the"
        " slowest statement\n  (medians); full garbage collections while the page was measured"
    )
    for key, label in PAGE_LABELS.items():
        t = big.pages[key]
        slow, statement = t.slowest_statement
        gcs = (
            f"{len(t.full_gcs)} × {statistics.fmean(t.full_gcs) * 1e3:.0f} ms"
            if t.full_gcs
            else "0"
        )
        print(
            f"  {label:<34}{t.size / 1024:5,.0f} KiB  SQL {statistics.median(t.db) * 1e3:6.1f} ms"
            f"  full GCs {gcs:<12} slowest {slow * 1e3:5.1f} ms: {statement[:44]}"
        )
    if args.gc_freeze:
        print("  (--gc-freeze: gc.freeze() once the app was built, so full collections skip it)")
    else:
        print(
            "  (a full collection walks every object the process holds — the app's modules alone"
            "\n   are ~200,000 — and shows in the p99 of the pages that allocate most; --gc-freeze"
            "\n   measures the pages with gc.freeze() once the app is built)"
        )


def print_peer(small: SizeResult, big: SizeResult) -> None:
    print(
        f"\nThe cohort table, {big.cohort_learners} learners a cohort — server time, ms"
        f" (same cohorts, each call in a read-only unit of work)"
    )
    print(f"  {'':<50}{f'{small.learners:,} learners':>27}{f'{big.learners:,} learners':>28}")
    print(f"  {'':<50}{'p50':>9}{'p99':>9}{'SQL':>9}{'p50':>10}{'p99':>9}{'SQL':>9}{'× ours':>8}")
    rows = [
        (
            "page: GET /cohorts/{id} (HTTP, sign-in, HTML)",
            small.pages["cohort"],
            big.pages["cohort"],
        ),
        ("ours without HTTP: DashboardService.cohort", small.service, big.service),
        ("peer: naive loop (members + 5 queries a learner)", small.peer, big.peer),
    ]
    base = big.service.pct(50)
    for label, a, b in rows:
        print(
            f"  {label:<50}{a.pct(50) * 1e3:9.1f}{a.pct(99) * 1e3:9.1f}{a.sql:>9}"
            f"{b.pct(50) * 1e3:10.1f}{b.pct(99) * 1e3:9.1f}{b.sql:>9}{b.pct(50) / base:8.1f}"
        )
    print(
        f"  ({len(big.service.seconds)} calls of ours, {len(big.peer.seconds)} of the peer;"
        " the peer builds the same table rows without the rules' flags and due dates)"
    )


def print_report(small: SizeResult, big: SizeResult) -> None:
    print(
        f"\nThe province report ({big.report_lines:,} rows by school, module and wave at "
        f"{big.learners:,} learners; {small.report_lines:,} at {small.learners:,})"
    )
    print(
        f"  {'':<34}{'learners':>9}{'s (p50)':>9}{'SQL':>5}{'tracemalloc':>13}"
        f"{'RSS growth':>12}{'(RSS before)':>14}{'maxrss Δ':>11}"
    )
    for result in (small, big):
        for m in (result.report, result.report_peer):
            print(
                f"  {m.label:<34}{result.learners:>9,}{m.seconds:9.3f}{m.statements:>5}"
                f"{mib(m.traced_peak):>13}{mib(m.rss_growth):>12}{f'({mib(m.rss)})':>14}"
                f"{mib(m.maxrss_delta):>11}"
            )
    print(
        "  (tracemalloc: peak of Python allocations, in a run of its own; RSS growth: resident"
        "\n   memory at the request's peak minus before it (VmHWM reset, freed heap trimmed"
        " first);\n   maxrss Δ: the process's peak so far, which moves only when a request"
        " outgrows all before it)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=100_000, help="the province (100000)")
    parser.add_argument("--small", type=int, default=2_000, help="the small peer (2000)")
    parser.add_argument("--sqlite", action="store_true", help="SQLite even if PostgreSQL answers")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--cohort-requests", type=int, default=200)
    parser.add_argument("--class-requests", type=int, default=50)
    parser.add_argument("--report-runs", type=int, default=5)
    parser.add_argument("--peer-runs", type=int, default=40, help="naive loop calls (40)")
    parser.add_argument("--seed", type=int, default=727)
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() once the app is built (what a server could do after start-up)",
    )
    args = parser.parse_args(argv)
    if args.small < 300 or args.learners < args.small:
        parser.error("need --small ≥ 300 and --learners ≥ --small")
    if min(args.cohort_requests, args.class_requests, args.report_runs, args.peer_runs) < 1:
        parser.error("every count of requests must be at least 1")

    url: str | None = None
    note = "--sqlite"
    if not args.sqlite:
        refusal = postgres_refusal(args.postgres_url)
        url = None if refusal else args.postgres_url
        note = f"PostgreSQL does not answer ({refusal})" if refusal else ""
    quiet_logging()
    started = time.perf_counter()
    with platform_server() as server:
        small = run_size(url, "small", args.small, args, server)
        big = run_size(url, "province", args.learners, args, server)
    wall = time.perf_counter() - started

    print(f"blend727 dashboards bench — {big.backend}" + (f" ({note})" if note else ""))
    print(f"{versions()}; {os.cpu_count()} CPUs, {load_note()}")
    print_world(small)
    print_world(big)
    print_pages(small, big, args)
    print_peer(small, big)
    print_report(small, big)

    checks: list[Check] = []
    for key, label in PAGE_LABELS.items():
        a, b = small.pages[key], big.pages[key]
        checks.append(
            Check(
                f"{label}: SQL per request does not grow with learners",
                set(a.statements) == set(b.statements),
                f"{a.sql} at {small.learners:,}, {b.sql} at {big.learners:,}",
            )
        )
    for key, label in PAGE_LABELS.items():
        t = big.pages[key]
        checks.append(
            Check(
                f"{label}: no statement per learner",
                t.repeat < 10,
                f"most repeated ×{t.repeat}" + (f": {t.repeated}" if t.repeat > 1 else ""),
            )
        )
    for result in (small, big):
        checks += [Check(f"{c.label} ({result.learners:,})", c.ok, c.detail) for c in result.checks]
    print("\nCheck")
    for check in checks:
        print(f"  [{'ok' if check.ok else 'FAIL'}] {check.label}: {check.detail}")
    print(f"\nWhole run {wall / 60:.1f} min")
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
