"""A deep-linked activity names its class (custom ``class_code``): the first launch from it
ties the class to that resource link (and to the course, when the class has none), and a
learner who opens it joins that class, even in a course with several classes. A code that
names no class of the launch's deployment is logged and the launch goes on as usual; another
tenant's class is never touched."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.classes.models import ClassTrainer, Enrolment, TrainingClass
from app.identity.models import Course, ResourceLink, User
from tests.factories import Factories
from tests.helpers import new_class
from tests.lti_platform import INST_ADMIN, INSTRUCTOR, LEARNER, SYS_ADMIN, TestPlatform

CUSTOM = "https://purl.imsglobal.org/spec/lti/claim/custom"
ADMIN = [INST_ADMIN, SYS_ADMIN]
ROSTER_LOG = "blend727.rosters"


def deep_linked(class_code: str) -> dict[str, str]:
    """The custom claim Moodle sends for an activity placed by deep linking: strings."""
    return {"module_key": "gvpt-4", "level": "thcs", "class_code": class_code}


def launch_activity(
    client: TestClient,
    platform: TestPlatform,
    *,
    link: str,
    custom: dict[str, Any] | None,
    sub: str,
    roles: list[str] | None = None,
    course: str = "course-1",
) -> None:
    client.cookies.clear()
    client.headers.pop("X-CSRF-Token", None)

    def with_custom(claims: dict[str, Any]) -> None:
        if custom is not None:
            claims[CUSTOM] = custom

    response = platform.launch(
        client,
        roles=roles or [LEARNER],
        sub=sub,
        name=f"Giáo viên {sub}",
        resource_link_id=link,
        context={"id": course, "label": course, "title": f"Khoá {course}"},
        mutate=with_custom,
    )
    assert response.status_code == 303, response.text


def admin_of(client: TestClient, platform: TestPlatform, course: str = "course-1") -> None:
    """An administrator signed in from ``course`` (the course row then exists)."""
    client.cookies.clear()
    assert (
        platform.launch(
            client,
            roles=ADMIN,
            sub="admin-1",
            name="Lê Quản Trị",
            context={"id": course, "label": course, "title": f"Khoá {course}"},
        ).status_code
        == 303
    )
    client.headers["X-CSRF-Token"] = client.get("/api/v1/me").json()["csrf_token"]


def course_id(db: Session, context_id: str, deployment_id: int | None = None) -> int:
    stmt = select(Course.id).where(Course.context_id == context_id)
    if deployment_id is not None:
        stmt = stmt.where(Course.deployment_id == deployment_id)
    return db.scalars(stmt).one()


def the_class(db: Session, class_id: int) -> TrainingClass:
    db.expire_all()
    row = db.get(TrainingClass, class_id)
    assert row is not None
    return row


def link_pk(db: Session, resource_link_id: str, deployment_id: int) -> int:
    return db.scalars(
        select(ResourceLink.id).where(
            ResourceLink.resource_link_id == resource_link_id,
            ResourceLink.deployment_id == deployment_id,
        )
    ).one()


def enrolled(db: Session, class_id: int) -> list[str]:
    """The subs of the class's active learners, with how they came in."""
    rows = db.execute(
        select(User.sub, Enrolment.source)
        .join(User, User.id == Enrolment.user_id)
        .where(Enrolment.class_id == class_id, Enrolment.status == "active")
        .order_by(User.sub)
    ).all()
    return [f"{sub}:{source}" for sub, source in rows]


class TestTheFirstLaunchTiesTheClass:
    def test_link_and_course_are_set_and_the_learner_joins(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        admin_of(client, platform)
        cls = new_class(client, code="M4-THCS-01")  # no course yet
        assert cls["course_id"] is None

        launch_activity(
            client, platform, link="rl-dl-1", custom=deep_linked("M4-THCS-01"), sub="gv-1"
        )

        row = the_class(db, cls["id"])
        assert row.resource_link_id == link_pk(db, "rl-dl-1", row.deployment_id)
        assert row.course_id == course_id(db, "course-1")
        assert enrolled(db, cls["id"]) == ["gv-1:launch"]

    def test_a_course_with_several_classes_the_code_picks_the_class(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        admin_of(client, platform)
        course = course_id(db, "course-1")
        first = new_class(client, code="M4-THCS-01", course_id=course)
        second = new_class(client, code="M4-THCS-02", course_id=course)

        launch_activity(
            client, platform, link="rl-dl-2", custom=deep_linked("M4-THCS-02"), sub="gv-2"
        )
        # an activity without a code in a course of two classes joins no one (as before)
        launch_activity(client, platform, link="rl-plain", custom=None, sub="gv-3")

        assert enrolled(db, first["id"]) == []
        assert enrolled(db, second["id"]) == ["gv-2:launch"]
        assert the_class(db, first["id"]).resource_link_id is None
        row = the_class(db, second["id"])
        assert row.resource_link_id == link_pk(db, "rl-dl-2", row.deployment_id)

    def test_more_learners_from_the_link_join_and_the_tie_is_unchanged(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        admin_of(client, platform)
        cls = new_class(client, code="M4-THCS-01")
        for sub in ("gv-1", "gv-2", "gv-1"):
            launch_activity(
                client, platform, link="rl-dl-1", custom=deep_linked("M4-THCS-01"), sub=sub
            )
        row = the_class(db, cls["id"])
        assert row.resource_link_id == link_pk(db, "rl-dl-1", row.deployment_id)
        assert enrolled(db, cls["id"]) == ["gv-1:launch", "gv-2:launch"]
        assert row.enrolled_count == 2

    def test_a_core_trainer_opening_it_becomes_a_trainer_of_that_class(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        admin_of(client, platform)
        course = course_id(db, "course-1")
        new_class(client, code="M4-THCS-01", course_id=course)
        second = new_class(client, code="M4-THCS-02", course_id=course)
        launch_activity(
            client,
            platform,
            link="rl-dl-2",
            custom=deep_linked("M4-THCS-02"),
            sub="cc-1",
            roles=[INSTRUCTOR],
        )
        trainers = db.scalars(select(ClassTrainer)).all()
        assert [(t.class_id, t.source) for t in trainers] == [(second["id"], "launch")]
        assert enrolled(db, second["id"]) == []


class TestAClassTiedToAnotherLink:
    def test_it_stays_tied_to_its_first_link(
        self,
        client: TestClient,
        platform: TestPlatform,
        db: Session,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        admin_of(client, platform)
        course = course_id(db, "course-1")
        new_class(client, code="M4-THCS-01", course_id=course)
        cls = new_class(client, code="M4-THCS-02", course_id=course)
        launch_activity(
            client, platform, link="rl-first", custom=deep_linked("M4-THCS-02"), sub="gv-1"
        )
        caplog.set_level(logging.INFO, logger=ROSTER_LOG)

        # the same class placed again (a second deep link) in the same course
        launch_activity(
            client, platform, link="rl-second", custom=deep_linked("M4-THCS-02"), sub="gv-2"
        )

        row = the_class(db, cls["id"])
        assert row.resource_link_id == link_pk(db, "rl-first", row.deployment_id)
        # the code still names the class of this course: its learners join it
        assert enrolled(db, cls["id"]) == ["gv-1:launch", "gv-2:launch"]
        assert any("stays tied" in r.getMessage() for r in caplog.records if r.name == ROSTER_LOG)


class TestCodesThatNameNoClassHere:
    def test_an_unknown_code_is_logged_and_the_launch_goes_on(
        self,
        client: TestClient,
        platform: TestPlatform,
        db: Session,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        admin_of(client, platform)
        cls = new_class(client, code="M4-THCS-01", course_id=course_id(db, "course-1"))
        caplog.set_level(logging.WARNING, logger=ROSTER_LOG)

        launch_activity(
            client, platform, link="rl-dl-1", custom=deep_linked("NO-SUCH-CLASS"), sub="gv-1"
        )

        warnings = [r.getMessage() for r in caplog.records if r.name == ROSTER_LOG]
        assert any("'NO-SUCH-CLASS'" in m for m in warnings)
        # as if the activity carried no code: the course's only class
        assert enrolled(db, cls["id"]) == ["gv-1:launch"]
        assert the_class(db, cls["id"]).resource_link_id is None

    @pytest.mark.parametrize("value", [12, ["M4-THCS-01"], "", "   "])
    def test_a_code_that_is_not_a_string_names_no_class(
        self, client: TestClient, platform: TestPlatform, db: Session, value: Any
    ) -> None:
        admin_of(client, platform)
        cls = new_class(client, code="M4-THCS-01")
        launch_activity(client, platform, link="rl-dl-1", custom={"class_code": value}, sub="gv-1")
        row = the_class(db, cls["id"])
        assert row.resource_link_id is None and row.course_id is None
        assert enrolled(db, cls["id"]) == []

    def test_the_same_code_in_another_deployment_is_never_touched(
        self,
        client: TestClient,
        platform: TestPlatform,
        factories: Factories,
        db: Session,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        factories.register(platform, deployment_ids=["1", "2"])
        platform.deployment_id = "2"
        admin_of(client, platform)
        theirs = new_class(client, code="M4-THCS-01")
        only_theirs = new_class(client, code="M4-THCS-09")
        platform.deployment_id = "1"
        admin_of(client, platform)
        ours = new_class(client, code="M4-THCS-01")
        caplog.set_level(logging.WARNING, logger=ROSTER_LOG)

        launch_activity(
            client, platform, link="rl-dl-1", custom=deep_linked("M4-THCS-01"), sub="gv-1"
        )
        launch_activity(
            client, platform, link="rl-dl-9", custom=deep_linked("M4-THCS-09"), sub="gv-2"
        )

        mine = the_class(db, ours["id"])
        assert mine.resource_link_id == link_pk(db, "rl-dl-1", mine.deployment_id)
        # gv-2's unknown code: the course's only class, as if the activity carried no code
        assert enrolled(db, ours["id"]) == ["gv-1:launch", "gv-2:launch"]
        for other in (theirs, only_theirs):
            row = the_class(db, other["id"])
            assert row.deployment_id != mine.deployment_id
            assert (row.resource_link_id, row.course_id, row.enrolled_count) == (None, None, 0)
            assert enrolled(db, other["id"]) == []
        warnings = [r.getMessage() for r in caplog.records if r.name == ROSTER_LOG]
        assert any("'M4-THCS-09'" in m for m in warnings)

    def test_a_class_of_another_course_is_not_taken(
        self,
        client: TestClient,
        platform: TestPlatform,
        db: Session,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """An activity copied into another course keeps its custom parameters."""
        admin_of(client, platform, course="course-2")
        admin_of(client, platform, course="course-1")
        cls = new_class(client, code="M4-THCS-01", course_id=course_id(db, "course-2"))
        caplog.set_level(logging.WARNING, logger=ROSTER_LOG)

        launch_activity(
            client, platform, link="rl-copy", custom=deep_linked("M4-THCS-01"), sub="gv-1"
        )

        row = the_class(db, cls["id"])
        assert row.resource_link_id is None and row.course_id == course_id(db, "course-2")
        assert enrolled(db, cls["id"]) == []
        assert any("M4-THCS-01" in r.getMessage() for r in caplog.records if r.name == ROSTER_LOG)
