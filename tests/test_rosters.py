"""Class rosters come from the LMS (NRPS): 150 members over three pages, idempotent, and
people who leave are marked as left, never deleted."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from app.classes.models import ClassTrainer, Enrolment
from lti.services import process_token_cache
from tests.helpers import new_class
from tests.lti_platform import INST_ADMIN, INSTRUCTOR, LEARNER, SYS_ADMIN, TestPlatform

NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"


def members(n: int, *, trainers: int = 2) -> list[dict[str, Any]]:
    out = []
    for i in range(n + trainers):
        member = {
            "status": "Active",
            "user_id": str(1000 + i),
            "roles": [INSTRUCTOR] if i < trainers else [LEARNER],
        }
        if i % 3:  # Moodle's privacy settings may withhold names
            member["name"] = f"Giáo viên {i}"
        out.append(member)
    return out


@pytest.fixture()
def lms(client, platform_http, factories) -> TestPlatform:
    process_token_cache().clear()
    lms = TestPlatform.create(
        platform_http, issuer="https://moodle-nrps.test", client_id="nrps-client"
    )
    factories.register(lms, deployment_ids=["1"], served_token=True)
    lms.trust_tool_jwks(client.get("/lti/jwks.json").json())
    lms.members = members(148)  # + 2 trainers: 150 members, three pages of 50
    return lms


@pytest.fixture()
def linked_class(client, lms):
    nrps = {
        "context_memberships_url": lms.memberships_url + "?type_id=3",
        "service_versions": ["2.0"],
    }
    response = lms.launch(
        client,
        roles=[INST_ADMIN, SYS_ADMIN],
        sub="1",
        name="Quản trị",
        mutate=lambda c: c.update({NRPS_CLAIM: nrps}),
    )
    assert response.status_code == 303
    client.headers["X-CSRF-Token"] = client.get("/api/v1/me").json()["csrf_token"]
    course = client.get("/api/v1/courses").json()[0]
    assert course["has_roster"]
    return new_class(client, course_id=course["id"])


class TestRosterSync:
    def test_150_members_over_three_pages(self, client, lms, linked_class, db):
        result = client.post(f"/api/v1/classes/{linked_class['id']}/roster/sync")
        assert result.status_code == 200, result.text
        body = result.json()
        assert body["members"] == 150
        assert body["enrolled"] == 148 and body["trainers"] == 2
        assert len(lms.nrps_requests) == 3
        assert all("type_id=3" in r["raw_query"] for r in lms.nrps_requests)
        assert (
            db.scalar(
                select(func.count())
                .select_from(Enrolment)
                .where(Enrolment.class_id == linked_class["id"])
            )
            == 148
        )
        assert (
            db.scalar(
                select(func.count())
                .select_from(ClassTrainer)
                .where(ClassTrainer.class_id == linked_class["id"])
            )
            == 2
        )

    def test_sync_is_idempotent_and_leavers_are_marked_not_deleted(
        self, client, lms, linked_class, db
    ):
        assert (
            client.post(f"/api/v1/classes/{linked_class['id']}/roster/sync").json()["enrolled"]
            == 148
        )
        again = client.post(f"/api/v1/classes/{linked_class['id']}/roster/sync").json()
        assert again["enrolled"] == 0 and again["already"] == 148
        lms.members = [m for m in lms.members if m["user_id"] != "1005"]
        lms.members[10]["status"] = "Inactive"
        third = client.post(f"/api/v1/classes/{linked_class['id']}/roster/sync").json()
        assert third["left"] == 2
        rows = db.scalars(select(Enrolment).where(Enrolment.class_id == linked_class["id"])).all()
        assert len(rows) == 148  # nobody deleted
        assert sum(1 for r in rows if r.status == "left") == 2
        detail = client.get(f"/api/v1/classes/{linked_class['id']}").json()
        assert detail["enrolled"] == 146

    def test_a_list_without_any_learner_marks_nobody_as_left(self, client, lms, linked_class, db):
        # An LMS answering with only its teachers (a privacy setting, a faulty page) is not a
        # whole class leaving: the learners stay enrolled and the sync says how many were kept.
        assert client.post(f"/api/v1/classes/{linked_class['id']}/roster/sync").status_code == 200
        lms.members = [m for m in lms.members if m["roles"] == [INSTRUCTOR]]
        body = client.post(f"/api/v1/classes/{linked_class['id']}/roster/sync").json()
        assert body["left"] == 0 and body["kept"] == 148
        assert client.get(f"/api/v1/classes/{linked_class['id']}").json()["enrolled"] == 148
        # One learner still listed: the others have really gone.
        lms.members = members(1, trainers=2)[2:] + [m for m in members(0, trainers=2)]
        body = client.post(f"/api/v1/classes/{linked_class['id']}/roster/sync").json()
        assert body["left"] == 147 and body["kept"] == 0

    def test_a_full_class_enrols_up_to_its_cap(self, client, lms, linked_class):
        lms.members = members(160)
        body = client.post(f"/api/v1/classes/{linked_class['id']}/roster/sync").json()
        assert body["enrolled"] == 150 and body["refused_full"] == 10

    def test_lms_failure_is_a_clear_problem(self, client, lms, linked_class):
        lms.nrps_mode = "error_500"
        response = client.post(f"/api/v1/classes/{linked_class['id']}/roster/sync")
        assert response.status_code == 502
        assert response.json()["code"] == "roster_unavailable"

    def test_a_class_without_a_course_says_what_to_do(self, client, lms, linked_class):
        other = new_class(client, code="NO-COURSE")
        response = client.post(f"/api/v1/classes/{other['id']}/roster/sync")
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "course_id"


class TestLaunchJoinsTheClass:
    def test_a_learner_opening_the_course_is_enrolled(self, client, lms, linked_class, db):
        client.cookies.clear()
        assert (
            lms.launch(client, roles=[LEARNER], sub="2001", name="Học viên mới").status_code == 303
        )
        rows = db.scalars(select(Enrolment).where(Enrolment.class_id == linked_class["id"])).all()
        assert [r.source for r in rows] == ["launch"]


class TestNoSyncWithoutAMemberList:
    def test_a_course_without_nrps_schedules_no_background_sync(self, client, platform, db):
        from app.identity.models import Course
        from app.rosters.service import on_launch
        from tests.helpers import sign_in

        me = sign_in(client, platform, [INST_ADMIN, SYS_ADMIN], "admin-1", "Quản trị")
        course = db.scalars(select(Course)).one()
        assert course.nrps_url is None
        cls = new_class(client, course_id=course.id)
        assert cls["course_id"] == course.id
        assert on_launch(db, course.deployment_id, course.id, me["user_id"], "trainer") == []
