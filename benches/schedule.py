"""Scheduling a wave through the app's services, beside the time to merely insert its rows.

    python benches/schedule.py [--learners 100000] [--classes 700] [--database-url URL]
                               [--trainers-per-class 2] [--profile]

Set-up (not compared): a platform and its deployment, the shipped catalogue, the learners
spread over schools (about 71 teachers a school, as 100,000 over 1,400) and the core trainers,
written with bulk inserts.

*Our logic* runs ``ClassService`` as requests would, one unit of work (session, commit) per
request-sized piece of work:

1. a wave, then every class through ``create_class`` (pydantic ``ClassCreate`` included, as
   a route parses it), one commit per class. The in-person days are pairs of consecutive
   working days spread over the first term of 2026–2027; modules 4, 5 and 9 take turns,
   and a class has the level of its schools (primary or lower secondary: the shipped
   modules have no upper-secondary titles);
2. per class, one unit of work: ``enrol`` each of its learners one by one (within the cap of
   150), then ``add_trainer`` for its core trainers, one commit;
3. per class, one unit of work: ``split_cohorts``, one commit.

The named peer writes *the same final rows* (wave, classes, sessions, trainer links,
cohorts, enrolments that already carry their cohort) into a second fresh database of the same
kind, with plain ``insert()`` executemany and no logic, in one transaction. The rows are read
from the first database before the clock starts, so both sides write identical data.

Default database: a fresh temporary SQLite file migrated with Alembic (one for ours, one for
the peer); ``--database-url postgresql+psycopg://…`` uses two throwaway schemas, dropped at
the end, and ANALYZEs the set-up's tables as autovacuum would in service. The results are
checked at the end (class cap, cohort size, each learner enrolled exactly once, everyone in a
cohort) and the bench exits 1 if a check fails.

``--profile`` runs cProfile over the service path of a few classes instead (``--profile-
classes``, 20 by default) and prints the top functions and the SQL each operation issues.
"""

from __future__ import annotations

import argparse
import cProfile
import math
import os
import platform as pyplatform
import pstats
import random
import resource
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, event, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import Connection, Engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from app.catalogue.service import CatalogueService  # noqa: E402
from app.classes.models import (  # noqa: E402
    ClassSession,
    ClassTrainer,
    Cohort,
    Enrolment,
    EnrolmentStatus,
    Level,
    TrainingClass,
    Wave,
)
from app.classes.rules import CLASS_CAP, COHORT_MAX  # noqa: E402
from app.classes.schemas import ClassCreate, WaveCreate  # noqa: E402
from app.classes.service import ClassService  # noqa: E402
from app.core.db import Base, Database, build_engine, normalise_url  # noqa: E402
from app.core.migrate import upgrade, upgrade_connection  # noqa: E402
from app.identity.models import User  # noqa: E402
from app.platforms.repository import PlatformRepository  # noqa: E402
from app.platforms.service import PlatformInput, PlatformService  # noqa: E402
from app.schedule.calendar import HolidayCalendar  # noqa: E402

MODULE_KEYS = ("gvpt-4", "gvpt-5", "gvpt-9")
LEVELS = ("tieu_hoc", "thcs")  # the shipped modules have titles for these two levels only
LEVEL_SCHOOL = {"tieu_hoc": "Trường Tiểu học", "thcs": "Trường THCS"}
TERM = (date(2026, 9, 7), date(2026, 12, 25))  # in-person days fall in this term
WAVE_YEAR = 2026
LEARNERS_PER_SCHOOL = 100_000 / 1_400
DISTRICTS = 30
PROFILE_CLASSES = 20

# Plain tuples one line each, so the formatter keeps them short.
FAMILY: tuple[str, ...] = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ")
FAMILY += ("Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý")
MIDDLE: tuple[str, ...] = ("Văn", "Thị", "Hữu", "Minh", "Ngọc", "Thu", "Đức", "Thanh", "Quốc")
GIVEN: tuple[str, ...] = ("An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hoa")
GIVEN += ("Hùng", "Lan", "Linh", "Mai", "Nam", "Nga", "Phong", "Phương", "Quân", "Sơn")
GIVEN += ("Tâm", "Thảo", "Trang", "Tuấn", "Vy", "Yến")


# -- memory ----------------------------------------------------------------------------------


class PeakMemory:
    """Peak resident memory of one phase: Linux's VmHWM, reset through /proc/self/clear_refs
    at the start of the phase. Elsewhere, ``ru_maxrss`` (the peak of the whole process)."""

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
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

    @property
    def note(self) -> str:
        if self.resettable:
            return "peak RSS of the phase (VmHWM, reset at its start)"
        return "peak RSS of the process so far (ru_maxrss)"


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


# -- counting SQL ----------------------------------------------------------------------------


@dataclass
class StatementCounter:
    """Cursor executions per phase (an executemany counts once); cheap enough to stay on."""

    phase: str = "-"
    executes: Counter[str] = field(default_factory=Counter)
    commits: Counter[str] = field(default_factory=Counter)

    def attach(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._execute)
        event.listen(engine, "commit", self._commit)

    def _execute(self, *_: Any) -> None:
        self.executes[self.phase] += 1

    def _commit(self, *_: Any) -> None:
        self.commits[self.phase] += 1


# -- databases -------------------------------------------------------------------------------


@contextmanager
def fresh_database(url: str | None, label: str) -> Iterator[tuple[Database, str]]:
    """A migrated, empty database: a temporary SQLite file, or a throwaway PostgreSQL schema."""
    if url is None:
        with tempfile.TemporaryDirectory(prefix=f"blend727-{label}-") as tmp:
            sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(sqlite_url)
            engine = build_engine(sqlite_url)
            try:
                yield Database(engine), sqlite_url
            finally:
                engine.dispose()
        return
    url = normalise_url(url)
    if not url.startswith("postgresql"):
        raise SystemExit("--database-url: only PostgreSQL (or the default SQLite) is supported")
    schema = f"bench_{label}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    pg_engine: Engine | None = None
    try:
        pg_engine = build_engine(url, connect_args={"options": f"-csearch_path={schema}"})
        with pg_engine.begin() as conn:
            upgrade_connection(conn)
        yield Database(pg_engine), f"{url} (schema {schema})"
    finally:
        if pg_engine is not None:
            pg_engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def backend_note(database: Database) -> str:
    with database.engine.connect() as conn:
        if database.dialect == "sqlite":
            version = conn.exec_driver_sql("select sqlite_version()").scalar()
            journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            return f"SQLite {version}, journal_mode={journal}, synchronous={sync} (1 = NORMAL)"
        version = conn.exec_driver_sql("show server_version").scalar()
        fsync = conn.exec_driver_sql("show fsync").scalar()
        sync = conn.exec_driver_sql("show synchronous_commit").scalar()
        vacuum = conn.exec_driver_sql("show autovacuum").scalar()
        return (
            f"PostgreSQL {version}, fsync={fsync}, synchronous_commit={sync}, "
            f"autovacuum={vacuum} (set-up ends with ANALYZE)"
        )


# -- the world: set-up and the plan of the wave ----------------------------------------------


@dataclass(frozen=True)
class Learner:
    user_id: int
    school: str
    level: str


@dataclass(frozen=True)
class ClassPlan:
    code: str
    name: str
    module_key: str
    level: str
    in_person: tuple[date, date]
    learner_ids: tuple[int, ...]
    trainer_ids: tuple[int, ...]


@dataclass
class World:
    deployment_pk: int
    platform_id: int
    module_ids: dict[str, int]
    learners: list[Learner]
    trainer_ids: list[int]
    schools: int


def school_sizes(learners: int, rng: random.Random) -> list[int]:
    """About 71 teachers a school, some schools twice as large as others."""
    count = max(1, round(learners / LEARNERS_PER_SCHOOL))
    weights = [rng.uniform(0.5, 1.5) for _ in range(count)]
    total = sum(weights)
    sizes = [int(learners * w / total) for w in weights]
    for i in range(learners - sum(sizes)):
        sizes[i % count] += 1
    return sizes


def person_name(rng: random.Random) -> str:
    return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


def set_up(database: Database, learners: int, trainers: int, seed: int) -> World:
    """Platform, deployment, catalogue (through the services), people (bulk insert)."""
    with database.session() as s:
        platform = PlatformService(s).register(
            PlatformInput(
                issuer="https://lms.sogd.bench.test",
                client_id="blend727",
                auth_login_url="https://lms.sogd.bench.test/auth",
                token_url="https://lms.sogd.bench.test/token",
                keyset_url="https://lms.sogd.bench.test/jwks",
                deployment_ids=["1"],
                name="Sở GD&ĐT (bench)",
            )
        )
        platform_id = platform.id
        deployment_pk = PlatformRepository(s).deployment_pk(platform.id, "1")
        assert deployment_pk is not None
        modules = {m.key: m.id for m, _ in CatalogueService(s).modules(deployment_pk)}
    missing = [k for k in MODULE_KEYS if k not in modules]
    if missing:
        raise SystemExit(f"the shipped catalogue has no module {', '.join(missing)}")

    rng = random.Random(seed)
    sizes = school_sizes(learners, rng)
    rows: list[dict[str, Any]] = []
    schools: list[tuple[str, str]] = []  # per learner: school, level
    for n, size in enumerate(sizes):
        level = LEVELS[0] if n < len(sizes) / 2 else LEVELS[1]
        school = f"{LEVEL_SCHOOL[level]} số {n + 1:04d}"
        district = f"Huyện {n % DISTRICTS + 1:02d}"
        for _ in range(size):
            rows.append(
                {
                    "platform_id": platform_id,
                    "sub": f"gv-{len(rows) + 1:06d}",
                    "name": person_name(rng),
                    "school": school,
                    "district": district,
                }
            )
            schools.append((school, level))
    for n in range(trainers):
        rows.append(
            {
                "platform_id": platform_id,
                "sub": f"cc-{n + 1:05d}",
                "name": person_name(rng),
                "school": None,
                "district": f"Huyện {n % DISTRICTS + 1:02d}",
            }
        )
    with database.engine.begin() as conn:
        conn.execute(insert(User), rows)
        ids = dict(
            conn.execute(select(User.sub, User.id).where(User.platform_id == platform_id)).all()
        )
        if conn.dialect.name == "postgresql":
            # A database in service has planner statistics (autovacuum); a fresh bulk load has
            # none, and without them PostgreSQL may pick seq scans over the 100,000 people.
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.exec_driver_sql(f"ANALYZE {tables}")
    people = [
        Learner(ids[row["sub"]], school, level)
        for row, (school, level) in zip(rows, schools, strict=False)
    ]
    trainer_ids = [ids[row["sub"]] for row in rows[learners:]]
    return World(deployment_pk, platform_id, modules, people, trainer_ids, len(sizes))


def term_days() -> list[date]:
    calendar = HolidayCalendar.vietnam(range(TERM[0].year, TERM[1].year + 1))
    day, days = TERM[0], []
    while day <= TERM[1]:
        if calendar.is_working_day(day):
            days.append(day)
        day += timedelta(days=1)
    return days


def plan_wave(world: World, classes: int, trainers_per_class: int) -> list[ClassPlan]:
    """Learners in school order, cut into balanced classes (a class holds two or three
    schools); in-person pairs of consecutive working days spread evenly over the term."""
    days = term_days()
    base, extra = divmod(len(world.learners), classes)
    plans: list[ClassPlan] = []
    start = 0
    for i in range(classes):
        size = base + (1 if i < extra else 0)
        members = world.learners[start : start + size]
        start += size
        j = i * (len(days) - 1) // classes
        module_key = MODULE_KEYS[i % len(MODULE_KEYS)]
        level = members[0].level if members else LEVELS[i % len(LEVELS)]
        plans.append(
            ClassPlan(
                code=f"D1-{i + 1:04d}",
                name=f"Mô-đun {module_key.rsplit('-', 1)[1]} — lớp {i + 1:04d}",
                module_key=module_key,
                level=level,
                in_person=(days[j], days[j + 1]),
                learner_ids=tuple(m.user_id for m in members),
                trainer_ids=tuple(
                    world.trainer_ids[i * trainers_per_class : (i + 1) * trainers_per_class]
                ),
            )
        )
    return plans


# -- our logic -------------------------------------------------------------------------------


@dataclass
class Clock:
    """Seconds per phase, and the part of it spent in COMMIT."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    commit: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    memory: dict[str, tuple[int, int]] = field(default_factory=dict)  # (RSS at start, peak)


@contextmanager
def unit_of_work(database: Database, clock: Clock, step: str) -> Iterator[Session]:
    """``Database.session()`` with its COMMIT timed: the same sessionmaker and the same
    commit-on-success, roll-back-on-error boundary as a request."""
    session = database.sessionmaker()
    try:
        yield session
        t0 = time.perf_counter()
        session.commit()
        clock.commit[step] += time.perf_counter() - t0
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def phase(name: str, clock: Clock, counter: StatementCounter, memory: PeakMemory) -> Iterator[None]:
    counter.phase = name
    rss = memory.start()
    t0 = time.perf_counter()
    try:
        yield
    finally:
        clock.seconds[name] += time.perf_counter() - t0
        clock.memory[name] = (rss, memory.peak())
        counter.phase = "-"


def progress(label: str, done: int, total: int, started: float) -> None:
    if sys.stderr.isatty():
        elapsed = time.perf_counter() - started
        print(f"\r  {label}: {done}/{total} ({elapsed:.0f} s)", end="", file=sys.stderr)
        if done == total:
            print(file=sys.stderr)


def create_classes(
    database: Database, world: World, plans: list[ClassPlan], clock: Clock, name: str
) -> list[int]:
    ids: list[int] = []
    with unit_of_work(database, clock, name) as s:
        wave = ClassService(s).create_wave(
            world.deployment_pk, WaveCreate(name=f"Đợt 1 — {WAVE_YEAR}", year=WAVE_YEAR)
        )
        wave_id = wave.id
    started = time.perf_counter()
    for n, plan in enumerate(plans, start=1):
        with unit_of_work(database, clock, name) as s:
            data = ClassCreate(
                code=plan.code,
                name=plan.name,
                module_id=world.module_ids[plan.module_key],
                level=Level(plan.level),
                wave_id=wave_id,
                in_person_dates=list(plan.in_person),
                venue="Trung tâm bồi dưỡng (bench)",
            )
            ids.append(ClassService(s).create_class(world.deployment_pk, data).id)
        if n % 50 == 0 or n == len(plans):
            progress("create_class", n, len(plans), started)
    return ids


def enrol_all(
    database: Database,
    world: World,
    plans: list[ClassPlan],
    class_ids: list[int],
    clock: Clock,
    name: str,
) -> None:
    started = time.perf_counter()
    for n, (plan, class_id) in enumerate(zip(plans, class_ids, strict=True), start=1):
        with unit_of_work(database, clock, name) as s:
            service = ClassService(s)
            # The roster path (NRPS sync, imports): one bulk enrolment per class.
            service.enrol_many(world.deployment_pk, class_id, plan.learner_ids, source="bench")
            for user_id in plan.trainer_ids:
                service.add_trainer(world.deployment_pk, class_id, user_id)
        if n % 10 == 0 or n == len(plans):
            progress("enrol", n, len(plans), started)


def split_all(
    database: Database, world: World, class_ids: list[int], clock: Clock, name: str
) -> None:
    started = time.perf_counter()
    for n, class_id in enumerate(class_ids, start=1):
        with unit_of_work(database, clock, name) as s:
            ClassService(s).split_cohorts(world.deployment_pk, class_id)
        if n % 50 == 0 or n == len(class_ids):
            progress("split_cohorts", n, len(class_ids), started)


# -- the peer --------------------------------------------------------------------------------

# In foreign-key order; enrolments come after the cohorts they point at.
PEER_TABLES: tuple[tuple[str, Any], ...] = (
    ("classes", Wave),
    ("classes", TrainingClass),
    ("classes", ClassSession),
    ("enrolments", ClassTrainer),
    ("cohorts", Cohort),
    ("enrolments", Enrolment),
)


def read_rows(database: Database, deployment_pk: int) -> dict[Any, list[dict[str, Any]]]:
    """Everything our logic wrote for the wave, as plain dicts (outside the clock)."""
    classes = select(TrainingClass.id).where(TrainingClass.deployment_id == deployment_pk)
    where: dict[Any, Any] = {
        Wave: Wave.deployment_id == deployment_pk,
        TrainingClass: TrainingClass.deployment_id == deployment_pk,
        ClassSession: ClassSession.class_id.in_(classes),
        ClassTrainer: ClassTrainer.class_id.in_(classes),
        Cohort: Cohort.class_id.in_(classes),
        Enrolment: Enrolment.class_id.in_(classes),
    }
    out: dict[Any, list[dict[str, Any]]] = {}
    with database.engine.connect() as conn:
        for _, model in PEER_TABLES:
            table = model.__table__
            stmt = select(table).where(where[model]).order_by(*table.primary_key.columns)
            out[model] = [dict(row) for row in conn.execute(stmt).mappings()]
    return out


def run_peer(
    database: Database,
    rows: dict[Any, list[dict[str, Any]]],
    clock: Clock,
    counter: StatementCounter,
    memory: PeakMemory,
) -> None:
    """Plain executemany of the same rows, one transaction; no logic, no ORM."""
    name = "peer"
    counter.phase = name
    rss = memory.start()
    t0 = time.perf_counter()
    with database.engine.connect() as conn:
        with conn.begin():
            for label, model in PEER_TABLES:
                t1 = time.perf_counter()
                conn.execute(insert(model.__table__), rows[model])
                clock.seconds[f"peer {label}"] += time.perf_counter() - t1
            t1 = time.perf_counter()
        clock.commit[name] += time.perf_counter() - t1
    clock.seconds[name] = time.perf_counter() - t0
    clock.memory[name] = (rss, memory.peak())
    counter.phase = "-"


# -- checking the results --------------------------------------------------------------------


@dataclass
class Check:
    label: str
    ok: bool
    detail: str


def check_results(
    conn: Connection, world: World, plans: list[ClassPlan], trainers_per_class: int
) -> list[Check]:
    dep = world.deployment_pk
    class_ids = select(TrainingClass.id).where(TrainingClass.deployment_id == dep)
    active = Enrolment.status == EnrolmentStatus.ACTIVE
    checks: list[Check] = []

    counts = conn.execute(
        select(TrainingClass.id, TrainingClass.enrolled_count, TrainingClass.capacity).where(
            TrainingClass.deployment_id == dep
        )
    ).all()
    actual = dict(
        conn.execute(
            select(Enrolment.class_id, func.count())
            .where(Enrolment.class_id.in_(class_ids), active)
            .group_by(Enrolment.class_id)
        ).all()
    )
    largest = max((actual.get(cid, 0) for cid, _, _ in counts), default=0)
    drift = sum(1 for cid, n, _ in counts if actual.get(cid, 0) != n)
    over = sum(1 for cid, _, cap in counts if actual.get(cid, 0) > min(cap, CLASS_CAP))
    checks.append(
        Check(
            f"every class ≤ {CLASS_CAP} learners",
            len(counts) == len(plans) and over == 0 and drift == 0,
            f"{len(counts):,} classes, largest {largest}, "
            f"enrolled_count matches the rows in {len(counts) - drift:,}",
        )
    )

    sizes = conn.execute(
        select(Cohort.id, Cohort.trainer_user_id, func.count(Enrolment.id))
        .outerjoin(Enrolment, (Enrolment.cohort_id == Cohort.id) & active)
        .where(Cohort.class_id.in_(class_ids))
        .group_by(Cohort.id, Cohort.trainer_user_id)
    ).all()
    biggest = max((n for _, _, n in sizes), default=0)
    smallest = min((n for _, _, n in sizes), default=0)
    checks.append(
        Check(
            f"every cohort ≤ {COHORT_MAX} learners",
            bool(sizes) and biggest <= COHORT_MAX,
            f"{len(sizes):,} cohorts of {smallest}–{biggest}",
        )
    )

    learner_ids = [lr.user_id for lr in world.learners]
    per_user = Counter(
        dict(
            conn.execute(
                select(Enrolment.user_id, func.count())
                .where(Enrolment.class_id.in_(class_ids), active)
                .group_by(Enrolment.user_id)
            ).all()
        )
    )
    once = sum(1 for uid in learner_ids if per_user.get(uid, 0) == 1)
    others = sum(per_user.values()) - sum(per_user.get(uid, 0) for uid in learner_ids)
    checks.append(
        Check(
            "every learner enrolled exactly once",
            once == len(learner_ids) and others == 0,
            f"{once:,} of {len(learner_ids):,} once; "
            f"{len(learner_ids) - once:,} not or twice; {others:,} other enrolments",
        )
    )

    unassigned = conn.scalar(
        select(func.count()).where(
            Enrolment.class_id.in_(class_ids), active, Enrolment.cohort_id.is_(None)
        )
    )
    checks.append(
        Check(
            "every learner in a cohort of their class",
            unassigned == 0,
            f"{unassigned:,} without a cohort",
        )
    )

    sessions = conn.execute(
        select(ClassSession.date, func.count())
        .where(ClassSession.class_id.in_(class_ids))
        .group_by(ClassSession.date)
    ).all()
    calendar = HolidayCalendar.vietnam(range(TERM[0].year - 1, TERM[1].year + 2))
    off_days = [d for d, _ in sessions if not calendar.is_working_day(d)]
    total_sessions = sum(n for _, n in sessions)
    checks.append(
        Check(
            "in-person sessions on working days",
            total_sessions == 4 * len(plans) and not off_days,
            f"{total_sessions:,} sessions on {len(sessions)} days; {len(off_days)} days off used",
        )
    )

    trainer_links = conn.scalar(
        select(func.count()).where(ClassTrainer.class_id.in_(class_ids), ClassTrainer.active)
    )
    checks.append(
        Check(
            f"{trainers_per_class} core trainers per class",
            trainer_links == trainers_per_class * len(plans),
            f"{trainer_links:,} trainer links",
        )
    )
    return checks


def cohort_notes(conn: Connection, world: World) -> list[str]:
    """Facts about the split worth seeing, not pass/fail: cohorts without a trainer (more
    cohorts than trainers) and how often a school's teachers were spread over cohorts."""
    class_ids = select(TrainingClass.id).where(TrainingClass.deployment_id == world.deployment_pk)
    cohorts, orphans = conn.execute(
        select(func.count(), func.count().filter(Cohort.trainer_user_id.is_(None))).where(
            Cohort.class_id.in_(class_ids)
        )
    ).one()
    largest = dict(
        conn.execute(
            select(Enrolment.class_id, func.max(func.count()).over(partition_by=Enrolment.class_id))
            .where(Enrolment.class_id.in_(class_ids))
            .group_by(Enrolment.class_id, Enrolment.cohort_id)
        ).all()
    )
    groups = conn.execute(
        select(
            Enrolment.class_id,
            User.school,
            func.count(),
            func.count(func.distinct(Enrolment.cohort_id)),
        )
        .join(User, User.id == Enrolment.user_id)
        .where(Enrolment.class_id.in_(class_ids))
        .group_by(Enrolment.class_id, User.school)
    ).all()
    spread = [(cid, n) for cid, _, n, cohorts_of_group in groups if cohorts_of_group > 1]
    must = sum(1 for cid, n in spread if n > largest.get(cid, 0))
    fits = sum(1 for cid, _, n, _ in groups if n <= largest.get(cid, 0))
    return [
        f"{orphans:,} of {cohorts:,} cohorts have no core trainer: a class of more than "
        f"{COHORT_MAX} × its trainers needs one more trainer per extra cohort",
        f"schools kept together: {len(groups) - len(spread):,} of {len(groups):,} "
        f"(class, school) groups in one cohort; {len(spread) - must:,} of the {fits:,} no "
        "larger than a cohort were split anyway (greedy placement)",
    ]


def row_counts(conn: Connection, deployment_pk: int) -> dict[str, int]:
    classes = select(TrainingClass.id).where(TrainingClass.deployment_id == deployment_pk)
    return {
        "classes": conn.scalar(select(func.count()).where(TrainingClass.id.in_(classes))) or 0,
        "sessions": conn.scalar(select(func.count()).where(ClassSession.class_id.in_(classes)))
        or 0,
        "trainer links": conn.scalar(select(func.count()).where(ClassTrainer.class_id.in_(classes)))
        or 0,
        "cohorts": conn.scalar(select(func.count()).where(Cohort.class_id.in_(classes))) or 0,
        "enrolments": conn.scalar(select(func.count()).where(Enrolment.class_id.in_(classes))) or 0,
        "in a cohort": conn.scalar(
            select(func.count()).where(
                Enrolment.class_id.in_(classes), Enrolment.cohort_id.is_not(None)
            )
        )
        or 0,
    }


# -- the profile -----------------------------------------------------------------------------


def _where(code: tuple[str, int, str]) -> str:
    filename, line, name = code
    if filename == "~":
        return name
    for marker in ("site-packages/", "lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    else:
        with suppress(ValueError):
            filename = str(Path(filename).resolve().relative_to(ROOT))
    return f"{filename}:{line}({name})"


@dataclass
class SqlCensus:
    """Statements per operation (create_class, enrol, add_trainer, split_cohorts, commit)."""

    op: str = "-"
    counts: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    seconds: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    _started: float = 0.0

    def attach(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def detach(self, engine: Engine) -> None:
        event.remove(engine, "before_cursor_execute", self._before)
        event.remove(engine, "after_cursor_execute", self._after)

    def _before(self, *_: Any) -> None:
        self._started = time.perf_counter()

    def _after(
        self, _conn: Any, _cursor: Any, statement: str, _p: Any, _c: Any, many: bool
    ) -> None:
        shown = ("(many) " if many else "") + " ".join(statement.split())[:100]
        key = (self.op, shown)
        self.counts[key] += 1
        self.seconds[key] += time.perf_counter() - self._started

    def print(self, per: dict[str, int]) -> None:
        print("\nSQL per operation (times executed × mean µs in the driver)")
        for op, n_ops in per.items():
            keys = [k for k in self.counts if k[0] == op]
            n = sum(self.counts[k] for k in keys) / n_ops
            driver = sum(self.seconds[k] for k in keys) / n_ops * 1e6
            print(f"  {op} ({n_ops:,} calls): {n:.1f} statements, {driver:.0f} µs in the driver")
            for key in sorted(keys, key=lambda k: -self.counts[k])[:12]:
                each = self.seconds[key] / self.counts[key] * 1e6
                print(f"    {self.counts[key] / n_ops:6.2f} × {each:6.1f}  {key[1]}")


def profile(database: Database, world: World, plans: list[ClassPlan]) -> None:
    """cProfile the service path (create, enrol, trainers, split) of a few classes, then the
    same again under an SQL census (apart, so the listeners stay out of the profile)."""
    with database.session() as s:
        wave_id = (
            ClassService(s)
            .create_wave(world.deployment_pk, WaveCreate(name="Đợt hồ sơ", year=WAVE_YEAR))
            .id
        )
    half = len(plans) // 2
    profiled, censused = plans[:half], plans[half:]
    census = SqlCensus()

    def one_class(plan: ClassPlan, mark: Callable[[str], None]) -> None:
        dep = world.deployment_pk
        mark("create_class")
        with database.session() as s:
            data = ClassCreate(
                code=plan.code,
                name=plan.name,
                module_id=world.module_ids[plan.module_key],
                level=Level(plan.level),
                wave_id=wave_id,
                in_person_dates=list(plan.in_person),
            )
            class_id = ClassService(s).create_class(dep, data).id
            mark("commit")
        with database.session() as s:
            service = ClassService(s)
            mark("enrol")
            service.enrol_many(dep, class_id, plan.learner_ids, source="bench")
            mark("add_trainer")
            for user_id in plan.trainer_ids:
                service.add_trainer(dep, class_id, user_id)
            mark("commit")
        with database.session() as s:
            mark("split_cohorts")
            ClassService(s).split_cohorts(dep, class_id)
            mark("commit")
        mark("-")

    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    for plan in profiled:
        one_class(plan, lambda _op: None)
    profiler.disable()
    wall = time.perf_counter() - t0

    def mark(op: str) -> None:
        census.op = op

    census.attach(database.engine)
    try:
        for plan in censused:
            one_class(plan, mark)
    finally:
        census.detach(database.engine)

    enrolments = sum(len(p.learner_ids) for p in profiled)
    stats = pstats.Stats(profiler)
    rows = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in rows.values())
    print(
        f"\n--profile: the service path of {len(profiled)} classes ({enrolments:,} enrolments),"
        f" {wall:.2f} s under cProfile ({total:.2f} s of profiled own time; the profiler"
        " roughly doubles it)"
    )
    header = f"  {'calls/enrol':>11} {'own µs':>9} {'cum µs':>9}  function (per enrolment)"

    def show(items: list[tuple[Any, Any]]) -> None:
        for code, (_cc, nc, tt, ct, _callers) in items:
            print(
                f"  {nc / enrolments:11.2f} {tt / enrolments * 1e6:9.1f}"
                f" {ct / enrolments * 1e6:9.1f}  {_where(code)}"
            )

    skip = ("benches/schedule.py", "contextlib.py")
    print("\nTop 30 by cumulative time")
    print(header)
    show(
        sorted(
            ((c, v) for c, v in rows.items() if not any(m in c[0] for m in skip)),
            key=lambda kv: kv[1][3],
            reverse=True,
        )[:30]
    )
    print(f"\nTop 20 by own time\n{header}")
    show(sorted(rows.items(), key=lambda kv: kv[1][2], reverse=True)[:20])
    census.print(
        {
            "create_class": len(censused),
            "enrol": sum(len(p.learner_ids) for p in censused),
            "add_trainer": sum(len(p.trainer_ids) for p in censused),
            "split_cohorts": len(censused),
        }
    )


# -- main ------------------------------------------------------------------------------------


def load_note() -> str:
    if not hasattr(os, "getloadavg"):
        return "load average unknown"
    load = os.getloadavg()[0]
    busy = load > 0.5 * (os.cpu_count() or 1)
    return f"load average {load:.2f}" + (" (busy machine: expect noisy figures)" if busy else "")


def versions() -> str:
    parts = []
    for name in ("SQLAlchemy", "psycopg", "pydantic", "alembic"):
        with suppress(metadata.PackageNotFoundError):
            parts.append(f"{name} {metadata.version(name)}")
    return f"Python {pyplatform.python_version()}, " + ", ".join(parts)


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:12,.0f}/s {seconds / n * 1e6:10,.0f} µs each" if seconds else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=100_000, help="learners (100000)")
    parser.add_argument("--classes", type=int, default=700, help="classes (700)")
    parser.add_argument("--trainers-per-class", type=int, default=2, help="core trainers (2)")
    parser.add_argument("--seed", type=int, default=727)
    parser.add_argument(
        "--database-url",
        default=None,
        help="default: fresh temporary SQLite files; postgresql+psycopg://… uses throwaway schemas",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile a few classes instead")
    parser.add_argument("--profile-classes", type=int, default=PROFILE_CLASSES)
    args = parser.parse_args(argv)
    if args.classes < 1 or args.learners < args.classes:
        parser.error("need at least one class and one learner per class")
    if math.ceil(args.learners / args.classes) > CLASS_CAP:
        parser.error(f"{args.learners} learners do not fit {args.classes} classes of {CLASS_CAP}")
    if args.trainers_per_class < 0:
        parser.error("--trainers-per-class must not be negative")

    trainers = args.classes * args.trainers_per_class
    memory = PeakMemory()

    if args.profile:
        classes = max(2, args.profile_classes)
        learners = min(args.learners, classes * (args.learners // args.classes))
        with fresh_database(args.database_url, "profile") as (database, shown):
            print(f"blend727 schedule bench, --profile — {shown}\n{backend_note(database)}")
            world = set_up(database, learners, classes * args.trainers_per_class, args.seed)
            plans = plan_wave(world, classes, args.trainers_per_class)
            profile(database, world, plans)
        return 0

    clock = Clock()
    with fresh_database(args.database_url, "ours") as (ours, shown):
        counter = StatementCounter()
        counter.attach(ours.engine)
        print(f"blend727 schedule bench — {ours.dialect}: {shown}")
        print(f"{backend_note(ours)}; {versions()}")
        print(f"{os.cpu_count()} CPUs, {load_note()}")

        with phase("set-up", clock, counter, memory):
            world = set_up(ours, args.learners, trainers, args.seed)
        plans = plan_wave(world, args.classes, args.trainers_per_class)
        sizes = [len(p.learner_ids) for p in plans]
        days = sorted({d for p in plans for d in p.in_person})
        print(
            f"\nSet-up: {args.learners:,} learners in {world.schools:,} schools and {trainers:,}"
            f" core trainers, {clock.seconds['set-up']:.1f} s (not compared)"
        )
        print(
            f"Wave: {args.classes:,} classes of {min(sizes)}–{max(sizes)} learners, modules "
            f"{'/'.join(k.split('-')[1] for k in MODULE_KEYS)}, in person on {len(days)} "
            f"working days {days[0]} – {days[-1]}, {args.trainers_per_class} trainers a class"
        )

        wall = time.perf_counter()
        with phase("create", clock, counter, memory):
            class_ids = create_classes(ours, world, plans, clock, "create")
        with phase("enrol", clock, counter, memory):
            enrol_all(ours, world, plans, class_ids, clock, "enrol")
        with phase("split", clock, counter, memory):
            split_all(ours, world, class_ids, clock, "split")
        ours_total = time.perf_counter() - wall

        with ours.engine.connect() as conn:
            checks = check_results(conn, world, plans, args.trainers_per_class)
            notes = cohort_notes(conn, world)
            ours_counts = row_counts(conn, world.deployment_pk)
        rows = read_rows(ours, world.deployment_pk)

        with fresh_database(args.database_url, "peer") as (peer, _):
            counter.attach(peer.engine)
            peer_world = set_up(peer, args.learners, trainers, args.seed)
            same = (
                peer_world.deployment_pk == world.deployment_pk
                and peer_world.module_ids == world.module_ids
                and peer_world.learners == world.learners
                and peer_world.trainer_ids == world.trainer_ids
            )
            if not same:
                raise SystemExit("the peer's set-up gave other ids than ours; cannot compare")
            run_peer(peer, rows, clock, counter, memory)
            with peer.engine.connect() as conn:
                peer_counts = row_counts(conn, world.deployment_pk)
                checks += [
                    Check(
                        "the peer wrote the same rows",
                        peer_counts == ours_counts,
                        ", ".join(f"{v:,} {k}" for k, v in peer_counts.items()),
                    )
                ]
        del rows

    n_classes, n_learners = args.classes, args.learners
    print(f"\nOur logic — ClassService, one unit of work per class per step ({ours.dialect})")
    print(f"  {'step':<44}{'s':>8}{'of it COMMIT':>14}{'statements':>12}{'commits':>9}")
    labels = {
        "create": f"create_wave + {n_classes:,} × create_class",
        "enrol": f"{n_learners:,} enrolled (enrol_many per class) + {trainers:,} × add_trainer",
        "split": f"{n_classes:,} × split_cohorts",
    }
    for key, label in labels.items():
        print(
            f"  {label:<44}{clock.seconds[key]:8.2f}{clock.commit[key]:14.2f}"
            f"{counter.executes[key]:12,}{counter.commits[key]:9,}"
        )
    print(f"  {'total':<44}{ours_total:8.2f}")

    peer_total = clock.seconds["peer"]
    print(f"\nPeer — plain insert() executemany of the same rows, one transaction ({peer.dialect})")
    peer_labels = {
        "peer classes": f"wave + {n_classes:,} classes + {ours_counts['sessions']:,} sessions",
        "peer cohorts": f"{ours_counts['cohorts']:,} cohorts",
        "peer enrolments": f"{n_learners:,} enrolments (cohort set) + {trainers:,} trainer links",
    }
    for key, label in peer_labels.items():
        print(f"  {label:<58}{clock.seconds[key]:8.3f}")
    print(f"  {'COMMIT':<58}{clock.commit['peer']:8.3f}")
    print(
        f"  {'total':<58}{peer_total:8.3f}   ({counter.executes['peer']} statements, "
        f"{counter.commits['peer']} commit)"
    )

    print(f"\nPer operation\n  {'':<14}{'ours':>33}   {'peer':>33}")
    for label, n, ours_key, peer_key in (
        ("classes", n_classes, "create", "peer classes"),
        ("enrolments", n_learners, "enrol", "peer enrolments"),
        ("cohort splits", n_classes, "split", "peer cohorts"),
    ):
        print(
            f"  {label:<14}{rate(n, clock.seconds[ours_key])}   {rate(n, clock.seconds[peer_key])}"
        )
    print(
        "  (a class includes its 4 sessions; an enrolment its share of the trainer links; the"
        " peer's\n   cohort assignment is the cohort_id already in each enrolment row, so its"
        " split is the cohort rows)"
    )

    print(f"\nMemory ({memory.note})")
    for key, label in (
        ("set-up", "set-up"),
        ("create", "create classes"),
        ("enrol", "enrol"),
        ("split", "split cohorts"),
        ("peer", "peer (the rows to insert already in memory)"),
    ):
        start, peak = clock.memory[key]
        print(f"  {label:<46}{mib(peak):>10} peak   ({mib(start)} at the start)")

    ratio = ours_total / peer_total if peer_total else float("inf")
    print("\nSide by side                                               s    × peer")
    print(f"  ours: schedule the wave and split it (services)    {ours_total:9.2f}{ratio:9.1f}")
    print(f"  peer: insert the same rows (executemany)           {peer_total:9.2f}{1:9.1f}")
    print(
        f"  overhead of our logic: {ours_total - peer_total:.2f} s "
        f"({(ours_total - peer_total) / n_learners * 1e6:,.0f} µs per learner)"
    )

    print("\nCheck")
    for check in checks:
        print(f"  [{'ok' if check.ok else 'FAIL'}] {check.label}: {check.detail}")
    for note in notes:
        print(f"  note: {note}")
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
