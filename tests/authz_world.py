"""One world for the access tests (tests/test_authorization_matrix.py, tests/test_csrf.py):
two LMSs with the same LTI ids, and in LMS A a class with everything a route can name.

LMS A (``https://lms.test``) and LMS B (``https://other-lms.test``) both use client
``client-1``, deployment ``1``, course ``course-1``, resource link ``rl-1`` and the same
people's ``sub`` (``admin-1``, ``hv-1``…). In A: module 4 with items (a reading, a quiz, an
assignment taking files), a wave, class ``M4-THCS-01`` tied to ``rl-1`` with a coupled
gradebook column, two cohorts (``cc-1`` trains cohort 1 with ``hv-1``; ``cc-2`` trains
cohort 2 with ``hv-2``), every session marked, ``hv-1``'s reading done, a hand-in with a
file graded by ``cc-1``, a result overridden to complete, a certificate issued, a support
log, a target, scores in the outbox (one failed), and a certificate ZIP job. In B: its
administrator, with its own catalogue.

The clock stands at 12/12/2026 09:00 (Vietnam), the day after the class ended.

The identities of the matrix are the people as their browser would be: a session cookie and
the CSRF token of that session (``anonymous`` has neither).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

import app.models  # noqa: F401 - every table in the metadata
from app.attendance.service import clock
from app.auth.dependencies import SESSION_COOKIE
from app.certificates.jobs import JOBS
from app.certificates.models import Certificate
from app.classes.models import TrainingClass
from app.core.db import Base
from app.deeplink.service import sign_deep_link_settings
from app.identity.models import ResourceLink
from app.launch.service import session_id_for
from app.passback.models import OutboxStatus, ScoreOutbox
from app.platforms.repository import PlatformRepository
from tests.factories import Factories
from tests.helpers import module_id, new_class, sign_in
from tests.lti_platform import INST_ADMIN, INSTRUCTOR, LEARNER, SYS_ADMIN, TestPlatform

#: The identities every route is tried as, in the order of the matrix's columns.
IDENTITIES = ("anonymous", "teacher", "trainer_own", "trainer_other", "admin", "admin_other")

NOW = datetime(2026, 12, 12, 9, 0, tzinfo=UTC) - timedelta(hours=7)
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
ISSUER = {
    "unit_name": "Phòng Giáo dục và Đào tạo Quận 7",
    "parent_unit": "Ủy ban nhân dân Quận 7",
    "signer_title": "Trưởng phòng",
    "signer_name": "Nguyễn Văn Ký",
    "place": "Quận 7",
}
MATERIALS: list[dict[str, Any]] = [
    {
        "phase": "self_study",
        "kind": "document",
        "title": "Đọc tài liệu mô đun 4",
        "url": "https://lms.test/doc/1",
        "key": "doc-1",
    },
    {
        "phase": "self_study",
        "kind": "quiz",
        "title": "Tự kiểm tra",
        "key": "quiz-1",
        "questions": [{"text": "KHBD có 4 hoạt động?", "choices": ["Đúng", "Sai"], "answer": 1}],
    },
    {
        "phase": "follow_up",
        "kind": "assignment",
        "title": "Kế hoạch bài dạy",
        "key": "plan-1",
        "submission": ["text", "file"],
    },
]


def fingerprint_query() -> Any:
    """Row count of every table and the latest of each of its timestamps, in one query: what
    a refused request must leave as it was."""
    columns = []
    for table in Base.metadata.sorted_tables:
        columns.append(select(func.count()).select_from(table).scalar_subquery())
        for column in table.columns:
            if column.name.endswith("_at"):
                columns.append(select(func.max(column)).scalar_subquery())
    return select(*columns)


@dataclass(frozen=True)
class Identity:
    name: str
    cookie: str | None = None
    csrf: str | None = None
    user_id: int | None = None


@dataclass
class AuthzWorld:
    app: FastAPI
    client: TestClient
    platform: TestPlatform
    other: TestPlatform
    identities: dict[str, Identity]
    #: path parameter → the id (or code, token, key…) of the world's object of cohort 1 or
    #: the teacher; see tests/authz_matrix.PARAMETERS for what each one names
    values: dict[str, str]
    deployment_a: int
    deployment_b: int
    job_ids: list[str] = field(default_factory=list)

    def use(self, identity: str) -> TestClient:
        """The client as ``identity``'s browser: their session cookie, nothing else."""
        person = self.identities[identity]
        self.client.cookies.clear()
        self.client.headers.pop("X-CSRF-Token", None)
        if person.cookie is not None:
            self.client.cookies.set(SESSION_COOKIE, person.cookie)
        return self.client


def _person(
    client: TestClient, platform: TestPlatform, roles: list[str], sub: str, name: str
) -> Identity:
    me = sign_in(client, platform, roles, sub, name)
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie, "the launch set no session cookie"
    return Identity(name, cookie, me["csrf_token"], int(me["user_id"]))


def _ok(response: Any, *expected: int) -> Any:
    assert response.status_code in (expected or (200,)), (
        f"{response.request.method} {response.request.url}: {response.status_code} "
        f"{response.text[:500]}"
    )
    return response


def build_world(
    app: FastAPI,
    client: TestClient,
    platform: TestPlatform,
    platform_http: str,
    factories: Factories,
    db: Session,
) -> Iterator[AuthzWorld]:
    """Build the world (see the module's docstring); yields it and forgets its ZIP job."""
    app.dependency_overrides[clock] = lambda: NOW
    other = TestPlatform.create(
        platform_http, issuer="https://other-lms.test", client_id="client-1"
    )
    factories.register(other, deployment_ids=["1"])

    people = {
        "teacher": _person(client, platform, [LEARNER], "hv-1", "Nguyễn Thị Học"),
        "teacher_2": _person(client, platform, [LEARNER], "hv-2", "Lê Văn Hai"),
        "trainer_own": _person(client, platform, [INSTRUCTOR], "cc-1", "Trần Cốt Cán"),
        "trainer_other": _person(client, platform, [INSTRUCTOR], "cc-2", "Đỗ Nhóm Hai"),
        "admin_other": _person(client, other, [INST_ADMIN, SYS_ADMIN], "admin-1", "Quản trị B"),
        "admin": _person(client, platform, [INST_ADMIN, SYS_ADMIN], "admin-1", "Lê Quản Trị"),
    }
    identities = {"anonymous": Identity("anonymous")} | people
    world = AuthzWorld(
        app=app,
        client=client,
        platform=platform,
        other=other,
        identities=identities,
        values={},
        deployment_a=0,
        deployment_b=0,
    )

    def as_(name: str) -> TestClient:
        c = world.use(name)
        c.headers["X-CSRF-Token"] = identities[name].csrf or ""
        return c

    # -- LMS B: its administrator's own catalogue (seeded on first use) ----------------
    _ok(as_("admin_other").get("/api/v1/modules"))

    # -- LMS A: the administrator builds the class -------------------------------------
    admin = as_("admin")
    mid = module_id(admin, "gvpt-4")
    spec = _ok(admin.get(f"/api/v1/modules/{mid}")).json()["spec"]
    _ok(admin.put(f"/api/v1/modules/{mid}", json={"spec": {**spec, "materials": MATERIALS}}))
    wave = _ok(admin.post("/api/v1/waves", json={"name": "Đợt 1", "year": 2026}), 201).json()
    cls = new_class(admin, wave_id=wave["id"])
    class_id = cls["id"]
    enrolments = {}
    for name in ("teacher", "teacher_2"):
        r = admin.post(
            f"/api/v1/classes/{class_id}/enrolments", json={"user_id": people[name].user_id}
        )
        enrolments[name] = _ok(r, 201).json()["id"]
    for name in ("trainer_own", "trainer_other"):
        r = admin.post(
            f"/api/v1/classes/{class_id}/trainers", json={"user_id": people[name].user_id}
        )
        _ok(r, 201)
    cohorts = _ok(admin.post(f"/api/v1/classes/{class_id}/cohorts/split")).json()
    cohort_of = {c["trainer_user_id"]: c["id"] for c in cohorts}
    cohort_1 = cohort_of[people["trainer_own"].user_id]
    cohort_2 = cohort_of[people["trainer_other"].user_id]
    for learner, cohort in (("teacher", cohort_1), ("teacher_2", cohort_2)):
        r = admin.post(
            f"/api/v1/classes/{class_id}/cohorts/moves",
            json={"enrolment_id": enrolments[learner], "cohort_id": cohort},
        )
        _ok(r)

    # The class is the activity rl-1 of course-1, whose gradebook column is coupled.
    deployment_a = db.scalar(
        select(TrainingClass.deployment_id).where(TrainingClass.id == class_id)
    )
    assert deployment_a is not None
    platform.enable_ags(2)
    platform.couple_line_item("rl-1", label="Mô đun 4", score_maximum=10)
    link = db.scalars(
        select(ResourceLink).where(
            ResourceLink.deployment_id == deployment_a, ResourceLink.resource_link_id == "rl-1"
        )
    ).one()
    link.ags_endpoint = platform.ags_claim("rl-1")
    db.execute(
        update(TrainingClass)
        .where(TrainingClass.id == class_id)
        .values(resource_link_id=link.id, course_id=link.course_id)
    )
    db.commit()

    detail = _ok(admin.get(f"/api/v1/classes/{class_id}")).json()
    sessions = [s["id"] for s in detail["sessions"]]
    for session_id in sessions:
        r = admin.put(f"/api/v1/attendance/sessions/{session_id}/marks", json={"rest": "present"})
        _ok(r)

    # -- the teacher's work, graded by the cohort's core trainer ------------------------
    teacher = as_("teacher")
    csrf = identities["teacher"].csrf
    r = teacher.post(f"/learn/classes/{class_id}/items/doc-1/done", data={"csrf_token": csrf})
    _ok(r, 303)
    r = teacher.post(
        f"/learn/classes/{class_id}/items/plan-1/hand-in",
        data={"csrf_token": csrf, "text": "Kế hoạch bài dạy của tôi"},
        files={"file": ("ke-hoach.pdf", PDF, "application/pdf")},
    )
    _ok(r, 303)
    mine = _ok(teacher.get(f"/api/v1/learning/classes/{class_id}/me")).json()
    submission_id = next(i for i in mine["items"] if i["key"] == "plan-1")["submission"]["id"]
    r = as_("trainer_own").post(
        f"/grading/submissions/{submission_id}/grade",
        data={"csrf_token": identities["trainer_own"].csrf, "score": "8"},
    )
    _ok(r, 303)
    r = as_("trainer_own").post(
        f"/trainer/cohorts/{cohort_1}/support",
        data={
            "csrf_token": identities["trainer_own"].csrf,
            "day": "2026-12-03",
            "form": "in_person",
            "periods": "4",
        },
    )
    _ok(r, 303)

    # -- a result, a certificate, a target, a failed score, a ZIP job --------------------
    admin = as_("admin")
    r = admin.put(
        f"/api/v1/grading/enrolments/{enrolments['teacher']}/override",
        json={"score": "8", "classification": "complete", "reason": "Hội đồng xét"},
    )
    _ok(r)
    _ok(
        admin.post("/admin/certificates", data={"csrf_token": identities["admin"].csrf, **ISSUER}),
        303,
    )
    _ok(as_("teacher").get(f"/certificates/classes/{class_id}/mine.pdf"))
    code = db.scalar(
        select(Certificate.code).where(Certificate.enrolment_id == enrolments["teacher"])
    )
    assert code is not None
    admin = as_("admin")
    target = admin.post(
        "/api/v1/reports/targets",
        json={
            "name": "GVPT 2026",
            "track": "gvpt",
            "staff_count": 100,
            "percent": "50",
            "due_on": "2026-12-31",
        },
    )
    target_id = _ok(target, 201).json()["id"]
    db.expire_all()
    row = db.scalars(
        select(ScoreOutbox)
        .where(ScoreOutbox.deployment_id == deployment_a)
        .order_by(ScoreOutbox.id.desc())
    ).first()
    assert row is not None, "the world's grades queued no score"
    row.status = OutboxStatus.FAILED
    row.last_error = "forbidden: the LMS refused"
    feeds = db.execute(
        select(TrainingClass.ical_token).where(TrainingClass.id == class_id)
    ).scalar_one()
    db.commit()
    job, _new = JOBS.create(app.state.ctx.database, deployment_a, class_id, cls["code"])
    world.job_ids.append(job.id)
    learner_feed = next(
        s["ical_path"] for s in _ok(as_("teacher").get("/api/v1/me/schedule")).json()
    )
    b_row = PlatformRepository(db).by_issuer_and_client(other.issuer, other.client_id)
    assert b_row is not None
    world.deployment_a = deployment_a
    world.deployment_b = PlatformRepository(db).deployment_pk(b_row.id, "1") or 0
    world.values = {
        "class_id": str(class_id),
        "cohort_id": str(cohort_1),
        "other_cohort_id": str(cohort_2),
        "enrolment_id": str(enrolments["teacher"]),
        "submission_id": str(submission_id),
        "session_id": str(sessions[0]),
        "module_id": str(mid),
        "wave_id": str(wave["id"]),
        "user_id": str(people["teacher"].user_id),
        "trainer_user_id": str(people["trainer_own"].user_id),
        "key": "plan-1",
        "doc_key": "doc-1",
        "quiz_key": "quiz-1",
        "code": code,
        "token": learner_feed.removeprefix("/ical/learner/").removesuffix(".ics"),
        "class_token": feeds,
        "job_id": job.id,
        "row_id": str(row.id),
        "target_id": str(target_id),
        "persona": "teacher",
        "locale": "en",
    }
    # The administrator chose "Select content": a deep-linking grant bound to their session.
    a_row = PlatformRepository(db).by_issuer_and_client(platform.issuer, platform.client_id)
    assert a_row is not None
    world.values["grant"] = sign_deep_link_settings(
        app.state.ctx.secret,
        platform.deep_linking_settings(),
        deployment_a,
        a_row.id,
        session_id=session_id_for(identities["admin"].cookie or ""),
    )
    world.use("anonymous")
    try:
        yield world
    finally:
        app.dependency_overrides.pop(clock, None)
