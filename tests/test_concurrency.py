"""Many people at once: the cap of a class holds under simultaneous enrolments; two trainers
grading one hand-in never lose a grade silently; a room of 150 checks in with one code.

These tests need real concurrent connections, so they commit their rows (outside the
per-test rollback) and delete them afterwards.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine

from app.attendance.models import AttendanceMark, CheckinRecord
from app.attendance.rules import checkin_code, window_of
from app.attendance.service import AttendanceService, device_hash, new_device_token
from app.auth.dependencies import Viewer, ViewerUser
from app.catalogue.service import CatalogueService
from app.classes.models import ClassSession, Enrolment, TrainingClass
from app.classes.schemas import ClassCreate
from app.classes.service import ClassFull, ClassService
from app.core.db import Database
from app.identity.models import Role, User
from app.learning.models import Submission, SubmissionGrade
from app.learning.rules import GradeBase
from app.learning.service import GradeChanged, LearningService
from app.platforms.models import Platform
from app.platforms.repository import PlatformRepository
from app.platforms.service import PlatformInput, PlatformService


@pytest.fixture()
def committed(engine: Engine) -> Iterator[tuple[Database, int, int, list[int]]]:
    database = Database(engine)
    issuer = f"https://lms-{uuid.uuid4().hex[:8]}.test"
    with database.session() as s:
        platform = PlatformService(s).register(
            PlatformInput(
                issuer=issuer,
                client_id="c",
                auth_login_url="https://x/a",
                token_url="https://x/t",
                keyset_url="https://x/k",
                deployment_ids=["1"],
            )
        )
        platform_id = platform.id
        deployment_pk = PlatformRepository(s).deployment_pk(platform.id, "1")
        assert deployment_pk is not None
        catalogue = CatalogueService(s)
        module = next(m for m, _ in catalogue.modules(deployment_pk) if m.key == "gvpt-4")
        cls = ClassService(s).create_class(
            deployment_pk,
            ClassCreate(
                code="CAP",
                name="Cap test",
                module_id=module.id,
                level="thcs",
                capacity=150,
                in_person_dates=["2026-12-03", "2026-12-04"],
            ),
        )
        users = [User(platform_id=platform.id, sub=f"s{i}") for i in range(200)]
        s.add_all(users)
        s.flush()
        ids = [u.id for u in users]
        class_id = cls.id
    yield database, deployment_pk, class_id, ids
    with database.session() as s:
        s.execute(delete(Platform).where(Platform.id == platform_id))


class TestClassCapUnderConcurrency:
    def test_200_simultaneous_enrolments_into_150_leave_exactly_150(self, committed):
        database, deployment_pk, class_id, user_ids = committed
        outcomes: Counter[str] = Counter()
        lock = threading.Lock()
        barrier = threading.Barrier(len(user_ids))

        def enrol(user_id: int) -> None:
            barrier.wait()
            try:
                with database.session() as s:
                    ClassService(s).enrol(deployment_pk, class_id, user_id)
                result = "enrolled"
            except ClassFull:
                result = "full"
            with lock:
                outcomes[result] += 1

        threads = [threading.Thread(target=enrol, args=(uid,)) for uid in user_ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert outcomes == Counter({"enrolled": 150, "full": 50})
        with database.session() as s:
            assert (
                s.scalar(select(TrainingClass.enrolled_count).where(TrainingClass.id == class_id))
                == 150
            )
            assert (
                s.scalar(
                    select(func.count())
                    .select_from(Enrolment)
                    .where(Enrolment.class_id == class_id)
                )
                == 150
            )

    def test_two_simultaneous_rosters_fill_exactly_the_cap(self, committed):
        """Two bulk enrolments (e.g. two roster syncs) racing for the same 150 seats."""
        database, deployment_pk, class_id, user_ids = committed
        results: list[tuple[list[int], list[int]]] = []
        lock = threading.Lock()
        barrier = threading.Barrier(2)

        def enrol_many(ids: list[int]) -> None:
            barrier.wait()
            with database.session() as s:
                outcome = ClassService(s).enrol_many(deployment_pk, class_id, ids, source="test")
            with lock:
                results.append(outcome)

        halves = [user_ids[:100], user_ids[100:]]
        threads = [threading.Thread(target=enrol_many, args=(h,)) for h in halves]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sum(len(enrolled) for enrolled, _ in results) == 150
        assert sum(len(refused) for _, refused in results) == 50
        with database.session() as s:
            assert (
                s.scalar(select(TrainingClass.enrolled_count).where(TrainingClass.id == class_id))
                == 150
            )
            assert (
                s.scalar(
                    select(func.count())
                    .select_from(Enrolment)
                    .where(Enrolment.class_id == class_id)
                )
                == 150
            )


# -- two trainers, one hand-in; a room checking in at once -------------------------------------

VN = timedelta(hours=7)
PLAN = {
    "phase": "follow_up",
    "kind": "assignment",
    "title": "Kế hoạch bài dạy",
    "key": "plan-1",
    "due_day": 3,
}
LEARNERS = 150


@dataclass
class Room:
    database: Database
    deployment_pk: int
    class_id: int
    learners: list[Viewer]
    enrolments: dict[int, int]  # user id → enrolment id
    admins: list[Viewer]
    morning: int  # the first in-person session (3 December, morning)


def _viewer(user: User, deployment_pk: int, platform_id: int, role: Role) -> Viewer:
    return Viewer(
        session_id=f"web-{uuid.uuid4().hex}",
        user=ViewerUser(user.id, user.sub, user.name, None, None, None),
        role=role,
        locale="vi",
        deployment_id=deployment_pk,
        platform_id=platform_id,
        course=None,
        resource_link=None,
        return_url=None,
        csrf_token="-",
    )


@pytest.fixture()
def room(engine: Engine) -> Iterator[Room]:
    """A class of 150 learners with an assignment, two administrators, committed."""
    database = Database(engine)
    with database.session() as s:
        platform = PlatformService(s).register(
            PlatformInput(
                issuer=f"https://lms-{uuid.uuid4().hex[:8]}.test",
                client_id="c",
                auth_login_url="https://x/a",
                token_url="https://x/t",
                keyset_url="https://x/k",
                deployment_ids=["1"],
            )
        )
        platform_id = platform.id
        deployment_pk = PlatformRepository(s).deployment_pk(platform.id, "1")
        assert deployment_pk is not None
        catalogue = CatalogueService(s)
        module, version = next(
            (m, v) for m, v in catalogue.modules(deployment_pk) if m.key == "gvpt-4"
        )
        catalogue.update(
            deployment_pk, module.id, {**version.spec, "materials": [PLAN]}, user_id=None
        )
        cls = ClassService(s).create_class(
            deployment_pk,
            ClassCreate(
                code="ROOM",
                name="Phòng 201",
                module_id=module.id,
                level="thcs",
                capacity=LEARNERS,
                in_person_dates=["2026-12-03", "2026-12-04"],
            ),
        )
        people = [
            User(platform_id=platform_id, sub=f"hv{i}", name=f"HV {i}") for i in range(LEARNERS)
        ]
        admins = [
            User(platform_id=platform_id, sub="qt1", name="Lê Quản Trị"),
            User(platform_id=platform_id, sub="qt2", name="Đỗ Cốt Cán"),
        ]
        s.add_all([*people, *admins])
        s.flush()
        enrolled, refused = ClassService(s).enrol_many(
            deployment_pk, cls.id, [u.id for u in people], source="test"
        )
        assert len(enrolled) == LEARNERS and not refused
        enrolments = {
            e.user_id: e.id
            for e in s.scalars(select(Enrolment).where(Enrolment.class_id == cls.id))
        }
        morning = s.scalars(
            select(ClassSession.id)
            .where(ClassSession.class_id == cls.id)
            .order_by(ClassSession.date, ClassSession.part.desc())
        ).first()
        assert morning is not None
        world = Room(
            database,
            deployment_pk,
            cls.id,
            [_viewer(u, deployment_pk, platform_id, Role.TEACHER) for u in people],
            enrolments,
            [_viewer(u, deployment_pk, platform_id, Role.ADMIN) for u in admins],
            morning,
        )
    yield world
    with database.session() as s:
        s.execute(delete(Platform).where(Platform.id == platform_id))


def _together(jobs: list[Any]) -> list[Any]:
    """Run the jobs in threads released at the same instant; their results (or exceptions)."""
    results: list[Any] = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = jobs[i]()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


class TestTwoTrainersGradeTheSameHandInAtOnce:
    def test_exactly_one_wins_and_the_other_is_told_who_graded_what(self, room: Room) -> None:
        learner = room.learners[0]
        now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC) - VN
        with room.database.session() as s:
            submission = Submission(
                enrolment_id=room.enrolments[learner.user.id],
                item_key="plan-1",
                attempt=1,
                text="Kế hoạch",
                submitted_at=now,
            )
            s.add(submission)
            s.flush()
            submission_id = submission.id

        def grade(viewer: Viewer, score: str) -> Any:
            # Both opened the form when the hand-in had no grade.
            with room.database.session() as s:
                row, _ = LearningService(s).grade(
                    viewer, submission_id, Decimal(score), None, now, based_on=GradeBase(None)
                )
                return row.id

        outcomes = _together(
            [lambda: grade(room.admins[0], "8"), lambda: grade(room.admins[1], "6.5")]
        )
        won = [o for o in outcomes if isinstance(o, int)]
        refused = [o for o in outcomes if isinstance(o, GradeChanged)]
        assert len(won) == 1 and len(refused) == 1, outcomes
        conflict = refused[0]
        assert conflict.current.id == won[0]
        assert conflict.who in ("Lê Quản Trị", "Đỗ Cốt Cán")
        assert conflict.problem_extra["current_grade"]["graded_by"] == conflict.who
        with room.database.session() as s:
            grades = s.scalars(
                select(SubmissionGrade).where(SubmissionGrade.submission_id == submission_id)
            ).all()
            assert [g.id for g in grades] == won  # the loser saved nothing
            # Confirmed on the new base, the second grade is added; the first stays in history.
            loser = room.admins[1] if conflict.who == "Lê Quản Trị" else room.admins[0]
            LearningService(s).grade(
                loser, submission_id, conflict.mine, None, now, based_on=GradeBase(won[0])
            )
        with room.database.session() as s:
            count = s.scalar(
                select(func.count())
                .select_from(SubmissionGrade)
                .where(SubmissionGrade.submission_id == submission_id)
            )
            assert count == 2


class TestACheckInRush:
    def test_150_learners_with_one_code_each_check_in_once(self, room: Room) -> None:
        # 07:35 in Hà Nội on the first in-person day, the code rotating under everyone's feet:
        # half type the code that was on the screen a moment ago (still accepted).
        opened = datetime(2026, 12, 3, 7, 20, tzinfo=UTC) - VN
        with room.database.session() as s:
            window = AttendanceService(s).open_checkin(room.admins[0], room.morning, 15, opened)
            secret = window.secret
        now = datetime(2026, 12, 3, 7, 35, 1, tzinfo=UTC) - VN
        current = window_of(now)
        codes = [checkin_code(secret, room.morning, current - (i % 2)) for i in range(LEARNERS)]
        devices = [device_hash(new_device_token()) for _ in range(LEARNERS)]

        def check_in(i: int) -> Any:
            with room.database.session() as s:
                return (
                    AttendanceService(s)
                    .checkin(room.learners[i], room.morning, codes[i], devices[i], now)
                    .already
                )

        # Everyone at once, and the first learner taps "Check in" twice.
        jobs = [lambda i=i: check_in(i) for i in range(LEARNERS)] + [lambda: check_in(0)]
        outcomes = _together(jobs)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        assert not errors, errors[:3]
        assert outcomes.count(True) == 1  # the double tap: "already checked in"
        with room.database.session() as s:
            marks = s.scalars(
                select(AttendanceMark).where(AttendanceMark.session_id == room.morning)
            ).all()
            records = s.scalars(
                select(CheckinRecord).where(CheckinRecord.session_id == room.morning)
            ).all()
        assert len(marks) == LEARNERS and {m.status for m in marks} == {"present"}
        per_learner = Counter(r.enrolment_id for r in records)
        assert len(per_learner) == LEARNERS and set(per_learner.values()) == {1}
