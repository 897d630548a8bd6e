"""Many people at once: the cap of a class holds under simultaneous enrolments.

These tests need real concurrent connections, so they commit their rows (outside the
per-test rollback) and delete them afterwards.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine

from app.catalogue.service import CatalogueService
from app.classes.models import Enrolment, TrainingClass
from app.classes.schemas import ClassCreate
from app.classes.service import ClassFull, ClassService
from app.core.db import Database
from app.identity.models import User
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
