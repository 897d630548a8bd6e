"""Two LMSs with the same LTI ids (client id, deployment, course, resource link, people's
``sub``) are two tenants: nothing of one shows in, or changes through, the other — pages, the
JSON API, exports, certificates and calendar feeds. Calendar feeds are unguessable, per
person, and can be renewed (the old address then answers 404). A class's scores go to its
own course's gradebook column, whatever another launch says (Open edX's CVE-2023-23611).

Tenant A is ``https://lms.test``, tenant B ``https://other-lms.test``; each has a teacher
``hv-1``, a core trainer ``cc-1`` and an administrator ``admin-1``, and a class
``M4-THCS-01`` in course ``course-1`` whose teacher handed in work, was graded, completed
and has a certificate. Everything of A carries the word ALPHA, of B the word BRAVO.
"""

from __future__ import annotations

import io
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.attendance.service import clock
from app.auth.dependencies import SESSION_COOKIE
from app.certificates.models import Certificate
from app.classes.models import TrainingClass
from app.config import Settings
from app.core.db import Database
from app.grading.service import GradingService, ResultSweeper
from app.identity.models import Course, ResourceLink, User
from app.keys.service import KeyService
from app.passback.models import ScoreOutbox
from app.passback.service import line_item_belongs
from app.platforms.models import Platform, PlatformStatus
from lti.ags import AgsError, find_or_create_line_item
from lti.services import ServicePlatform
from tests.authz_world import ISSUER, MATERIALS, NOW, PDF, fingerprint_query
from tests.factories import Factories
from tests.helpers import module_id, new_class, sign_in
from tests.lti_platform import INST_ADMIN, INSTRUCTOR, LEARNER, SYS_ADMIN, TestPlatform

AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
YEAR = "from=2026-01-01&to=2026-12-31"


@dataclass
class Person:
    cookie: str
    csrf: str
    user_id: int


@dataclass
class Tenant:
    word: str  # ALPHA or BRAVO: in every name, school and address of this tenant
    platform: TestPlatform
    admin: Person
    trainer: Person
    teacher: Person
    class_id: int
    cohort_id: int
    enrolment_id: int
    submission_id: int
    session_id: int
    course_id: int
    certificate: str
    learner_feed: str
    class_feed: str


@dataclass
class Tenants:
    client: TestClient
    a: Tenant
    b: Tenant

    def as_(self, person: Person | None) -> TestClient:
        self.client.cookies.clear()
        self.client.headers.pop("X-CSRF-Token", None)
        if person is not None:
            self.client.cookies.set(SESSION_COOKIE, person.cookie)
            self.client.headers["X-CSRF-Token"] = person.csrf
        return self.client


def _person(
    client: TestClient, platform: TestPlatform, roles: list[str], sub: str, name: str
) -> Person:
    me = sign_in(client, platform, roles, sub, name)
    return Person(client.cookies[SESSION_COOKIE], me["csrf_token"], int(me["user_id"]))


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.request.url}: {response.text[:400]}"
    return response


def _tenant(t: Tenants, platform: TestPlatform, word: str, db: Session) -> Tenant:
    client = t.client
    low = word.lower()
    teacher = _person(client, platform, [LEARNER], "hv-1", f"Học viên {word}")
    trainer = _person(client, platform, [INSTRUCTOR], "cc-1", f"Cốt cán {word}")
    admin = _person(client, platform, [INST_ADMIN, SYS_ADMIN], "admin-1", f"Quản trị {word}")
    db.execute(
        update(User)
        .where(User.id == teacher.user_id)
        .values(school=f"Trường {word}", email=f"hv1@{low}.edu.vn")
    )
    db.commit()
    c = t.as_(admin)
    mid = module_id(c, "gvpt-4")
    spec = _ok(c.get(f"/api/v1/modules/{mid}")).json()["spec"]
    _ok(c.put(f"/api/v1/modules/{mid}", json={"spec": {**spec, "materials": MATERIALS}}))
    cls = new_class(c, name=f"Lớp {word}", venue=f"Trường {word}")
    class_id = cls["id"]
    enrolment_id = _ok(
        c.post(f"/api/v1/classes/{class_id}/enrolments", json={"user_id": teacher.user_id}), 201
    ).json()["id"]
    _ok(c.post(f"/api/v1/classes/{class_id}/trainers", json={"user_id": trainer.user_id}), 201)
    (cohort,) = _ok(c.post(f"/api/v1/classes/{class_id}/cohorts/split")).json()
    sessions = [s["id"] for s in _ok(c.get(f"/api/v1/classes/{class_id}")).json()["sessions"]]
    for session_id in sessions:
        _ok(c.put(f"/api/v1/attendance/sessions/{session_id}/marks", json={"rest": "present"}))
    _ok(c.post("/admin/certificates", data={"csrf_token": admin.csrf, **ISSUER}), 303)

    c = t.as_(teacher)
    _ok(
        c.post(
            f"/learn/classes/{class_id}/items/plan-1/hand-in",
            data={"csrf_token": teacher.csrf, "text": f"Bài của {word}"},
            files={"file": (f"bai-{low}.pdf", PDF, "application/pdf")},
        ),
        303,
    )
    items = _ok(c.get(f"/api/v1/learning/classes/{class_id}/me")).json()["items"]
    submission_id = next(i for i in items if i["key"] == "plan-1")["submission"]["id"]
    schedule = _ok(c.get("/api/v1/me/schedule")).json()
    c = t.as_(trainer)
    _ok(c.post(f"/api/v1/grading/submissions/{submission_id}/grade", json={"score": "8"}))
    c = t.as_(admin)
    _ok(
        c.put(
            f"/api/v1/grading/enrolments/{enrolment_id}/override",
            json={"score": "8", "classification": "complete", "reason": f"Hội đồng {word}"},
        )
    )
    _ok(t.as_(teacher).get(f"/certificates/classes/{class_id}/mine.pdf"))
    db.expire_all()
    row = db.get(TrainingClass, class_id)
    assert row is not None
    code = db.scalar(select(Certificate.code).where(Certificate.enrolment_id == enrolment_id))
    assert code is not None
    course_id = db.scalar(
        select(ResourceLink.course_id)
        .join(TrainingClass, TrainingClass.deployment_id == ResourceLink.deployment_id)
        .where(TrainingClass.id == class_id)
    )
    assert course_id is not None
    return Tenant(
        word=word,
        platform=platform,
        admin=admin,
        trainer=trainer,
        teacher=teacher,
        class_id=class_id,
        cohort_id=cohort["id"],
        enrolment_id=enrolment_id,
        submission_id=submission_id,
        session_id=sessions[0],
        course_id=course_id,
        certificate=code,
        learner_feed=schedule[0]["ical_path"],
        class_feed=f"/ical/class/{row.ical_token}.ics",
    )


@pytest.fixture()
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"upload_dir": tmp_path / "uploads"})


@pytest.fixture()
def tenants(
    app: FastAPI,
    client: TestClient,
    platform: TestPlatform,
    platform_http: str,
    factories: Factories,
    db: Session,
) -> Iterator[Tenants]:
    app.dependency_overrides[clock] = lambda: NOW
    other = TestPlatform.create(
        platform_http, issuer="https://other-lms.test", client_id="client-1"
    )
    factories.register(other, deployment_ids=["1"])
    t = Tenants(client, None, None)  # type: ignore[arg-type]
    t.b = _tenant(t, other, "BRAVO", db)  # B first: A's ids are not the smallest
    t.a = _tenant(t, platform, "ALPHA", db)
    t.as_(None)
    yield t
    app.dependency_overrides.pop(clock, None)


def _text(response: Any) -> str:
    kind = response.headers.get("content-type", "")
    if "spreadsheetml" in kind:
        book = load_workbook(io.BytesIO(response.content))
        return " ".join(
            str(v) for ws in book.worksheets for r in ws.iter_rows(values_only=True) for v in r
        )
    if "pdf" in kind:
        reader = PdfReader(io.BytesIO(response.content))
        return " ".join(page.extract_text() for page in reader.pages)
    return response.text


def _pages(x: Tenant) -> dict[str, list[str]]:
    """What each person of a tenant opens: their own pages, lists, exports and feeds."""
    c, s, e, co = x.class_id, x.session_id, x.enrolment_id, x.cohort_id
    return {
        "admin": [
            "/",
            "/admin/lti",
            "/admin/classes",
            f"/admin/classes/{c}",
            "/admin/waves",
            "/admin/modules",
            "/admin/overview",
            "/admin/targets",
            f"/admin/reports?{YEAR}",
            f"/admin/reports/print?{YEAR}",
            f"/admin/reports/export.xlsx?{YEAR}",
            f"/admin/reports/export.csv?{YEAR}",
            "/admin/passback",
            "/admin/certificates",
            f"/grading/classes/{c}",
            f"/grading/enrolments/{e}",
            f"/cohorts/{co}",
            f"/cohorts/{co}/learners.csv",
            f"/attendance/sessions/{s}",
            f"/certificates/enrolments/{e}.pdf",
            "/api/v1/classes",
            f"/api/v1/classes/{c}",
            "/api/v1/courses",
            "/api/v1/waves",
            "/api/v1/passback",
            "/api/v1/reports/overview",
            f"/api/v1/reports/report?{YEAR}",
            "/api/v1/reports/targets",
            f"/api/v1/grading/classes/{c}/results",
            f"/api/v1/grading/enrolments/{e}/history",
            f"/api/v1/attendance/classes/{c}/scores",
            f"/api/v1/attendance/sessions/{s}/marks",
            f"/api/v1/attendance/sessions/{s}/history",
            f"/api/v1/learning/classes/{c}/progress",
        ],
        "trainer": [
            "/",
            "/api/v1/me/cohorts",
            f"/cohorts/{co}",
            f"/cohorts/{co}/learners.csv",
            f"/grading/classes/{c}",
            f"/grading/enrolments/{e}",
            f"/attendance/sessions/{s}",
        ],
        "teacher": [
            "/",
            f"/learn/classes/{c}",
            f"/learn/classes/{c}/items/plan-1",
            f"/api/v1/learning/classes/{c}/me",
            "/api/v1/me/schedule",
            "/attendance/checkin",
            f"/certificates/classes/{c}/mine.pdf",
        ],
    }


class TestSameLtiIdsAreTwoTenants:
    def test_people_courses_links_and_classes_are_twice(
        self, tenants: Tenants, db: Session
    ) -> None:
        def count(model: Any, *where: Any) -> int:
            return int(db.scalar(select(func.count()).select_from(model).where(*where)) or 0)

        assert count(User, User.sub == "hv-1") == 2
        assert count(Course, Course.context_id == "course-1") == 2
        assert count(ResourceLink, ResourceLink.resource_link_id == "rl-1") == 2
        assert count(TrainingClass, TrainingClass.code == "M4-THCS-01") == 2
        assert tenants.a.class_id != tenants.b.class_id


class TestNothingOfOneShowsInTheOther:
    @pytest.mark.parametrize("who", ["admin", "trainer", "teacher"])
    def test_pages_api_and_exports(self, tenants: Tenants, who: str) -> None:
        for mine, theirs in ((tenants.a, tenants.b), (tenants.b, tenants.a)):
            person = getattr(mine, who)
            seen_own = 0
            for url in _pages(mine)[who]:
                response = tenants.as_(person).get(url)
                assert response.status_code == 200, f"{mine.word} {who} {url}: {response.text}"
                text = _text(response)
                assert theirs.word not in text.upper(), (
                    f"{mine.word} {who} sees {theirs.word} at {url}"
                )
                assert theirs.certificate not in text
                seen_own += mine.word in text.upper()
            assert seen_own >= 3, f"{mine.word} {who}: their own data is missing from the pages"

    def test_another_tenants_objects_are_not_found(self, tenants: Tenants) -> None:
        a, b = tenants.a, tenants.b
        for who in ("admin", "trainer", "teacher"):
            for url in _pages(a)[who]:
                if not re.search(r"/\d+", url):
                    continue  # a list: B's own (checked above)
                response = tenants.as_(getattr(b, who)).get(url)
                assert response.status_code == 404, (
                    f"B's {who} at A's {url}: {response.status_code}"
                )
        assert tenants.as_(b.teacher).get(f"/learn/files/{a.submission_id}").status_code == 404

    def test_writes_naming_the_other_tenants_objects_change_nothing(
        self, tenants: Tenants, connection: Connection
    ) -> None:
        """Cross-tenant ids inside the request body of one's own objects."""
        a, b = tenants.a, tenants.b
        before = tuple(connection.execute(fingerprint_query()).one())
        admin = tenants.as_(b.admin)
        attempts = [
            admin.post(
                f"/api/v1/classes/{b.class_id}/enrolments", json={"user_id": a.teacher.user_id}
            ),
            admin.post(
                f"/api/v1/classes/{b.class_id}/trainers", json={"user_id": a.trainer.user_id}
            ),
            admin.put(f"/api/v1/classes/{b.class_id}/course", json={"course_id": a.course_id}),
            admin.post(
                f"/api/v1/classes/{b.class_id}/cohorts/moves",
                json={"enrolment_id": a.enrolment_id, "cohort_id": b.cohort_id},
            ),
            admin.put(
                f"/api/v1/classes/{b.class_id}/cohorts/{b.cohort_id}/trainer",
                json={"trainer_user_id": a.trainer.user_id},
            ),
            admin.put(
                f"/api/v1/attendance/sessions/{b.session_id}/marks",
                json={"marks": [{"enrolment_id": a.enrolment_id, "status": "absent"}]},
            ),
            admin.post(
                "/admin/classes/new",
                data={"csrf_token": b.admin.csrf, "code": "X-1", "course_id": str(a.course_id)},
            ),
        ]
        trainer = tenants.as_(b.trainer)
        attempts += [
            trainer.post(
                f"/cohorts/{b.cohort_id}/submissions/{a.submission_id}/grade",
                data={"csrf_token": b.trainer.csrf, "score": "1"},
            ),
            trainer.post(
                f"/cohorts/{b.cohort_id}/learners/{a.enrolment_id}/attendance",
                data={"csrf_token": b.trainer.csrf, f"status-{a.session_id}": "absent"},
            ),
        ]
        for response in attempts:
            assert response.status_code in (403, 404, 422), (
                f"{response.request.method} {response.request.url}: {response.status_code}"
            )
        assert tuple(connection.execute(fingerprint_query()).one()) == before


class TestCertificates:
    def test_the_pdf_is_the_learners_own_and_verify_shows_only_the_certificate(
        self, tenants: Tenants
    ) -> None:
        a, b = tenants.a, tenants.b
        pdf = _text(tenants.as_(a.teacher).get(f"/certificates/classes/{a.class_id}/mine.pdf"))
        assert "Học viên ALPHA" in pdf and "BRAVO" not in pdf and a.certificate in pdf
        client = tenants.as_(None)
        page = client.get(f"/verify/{a.certificate}")
        assert page.status_code == 200 and "Học viên ALPHA" in page.text
        for private in ("hv1@alpha", "Trường ALPHA", "hv-1", "Hội đồng ALPHA", "BRAVO", "8.00"):
            assert private not in page.text, private
        data = client.get(f"/verify/{a.certificate}", headers={"Accept": "application/json"}).json()
        assert set(data) == {
            "status",
            "code",
            "name",
            "module",
            "class_dates",
            "classification",
            "issuing_unit",
            "issued_on",
        }
        # Signed-in people of A get no PDF of B's.
        teacher_a = tenants.as_(a.teacher)
        assert teacher_a.get(f"/certificates/classes/{b.class_id}/mine.pdf").status_code == 404
        assert (
            tenants.as_(a.admin).get(f"/certificates/enrolments/{b.enrolment_id}.pdf").status_code
            == 404
        )


class TestCalendarFeeds:
    def test_feeds_are_unguessable_per_person_and_show_only_their_class(
        self, tenants: Tenants
    ) -> None:
        a, b = tenants.a, tenants.b
        tokens = [
            x.removeprefix("/ical/learner/").removeprefix("/ical/class/").removesuffix(".ics")
            for x in (a.learner_feed, b.learner_feed, a.class_feed, b.class_feed)
        ]
        assert len(set(tokens)) == 4
        assert all(len(t) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", t) for t in tokens)
        client = tenants.as_(None)  # a calendar app: no session
        learner = client.get(a.learner_feed)
        assert learner.status_code == 200 and "Lớp ALPHA" in learner.text
        whole = client.get(a.class_feed)
        assert whole.status_code == 200 and "Lớp ALPHA" in whole.text
        for body in (learner.text, whole.text):
            assert "BRAVO" not in body and "Học viên" not in body and "hv1@" not in body
        assert client.get("/ical/learner/" + secrets.token_urlsafe(24) + ".ics").status_code == 404

    def test_a_learner_renews_their_link_and_the_old_one_is_gone(
        self, tenants: Tenants, db: Session
    ) -> None:
        a, b = tenants.a, tenants.b
        teacher = tenants.as_(a.teacher)
        page = teacher.get("/")
        assert f'action="/learn/classes/{a.class_id}/calendar/renew"' in page.text
        assert a.learner_feed in page.text
        renewed = teacher.post(
            f"/learn/classes/{a.class_id}/calendar/renew", data={"csrf_token": a.teacher.csrf}
        )
        assert renewed.status_code == 303
        home = teacher.get(renewed.headers["location"])
        assert a.learner_feed not in home.text
        new = _ok(teacher.get("/api/v1/me/schedule")).json()[0]["ical_path"]
        assert new != a.learner_feed and new in home.text
        client = tenants.as_(None)
        assert client.get(a.learner_feed).status_code == 404
        assert client.get(new).status_code == 200
        assert client.get(b.learner_feed).status_code == 200  # the other tenant's is untouched
        # Without the form's token nothing is renewed.
        forged = tenants.as_(a.teacher).post(
            f"/learn/classes/{a.class_id}/calendar/renew", data={"csrf_token": "forged"}
        )
        assert forged.status_code == 403
        assert tenants.as_(None).get(new).status_code == 200

    def test_an_administrator_renews_the_class_link(self, tenants: Tenants) -> None:
        a, b = tenants.a, tenants.b
        admin = tenants.as_(a.admin)
        page = admin.get(f"/admin/classes/{a.class_id}")
        assert a.class_feed in page.text
        renewed = admin.post(
            f"/admin/classes/{a.class_id}/calendar/renew", data={"csrf_token": a.admin.csrf}
        )
        assert renewed.status_code == 303
        page = admin.get(renewed.headers["location"])
        assert a.class_feed not in page.text
        new = re.search(r'href="(/ical/class/[A-Za-z0-9_-]+\.ics)"', page.text)
        assert new is not None
        client = tenants.as_(None)
        assert client.get(a.class_feed).status_code == 404
        assert client.get(new.group(1)).status_code == 200
        assert client.get(a.learner_feed).status_code == 200  # learners keep theirs
        # B's administrator cannot renew A's.
        other = tenants.as_(b.admin).post(
            f"/admin/classes/{a.class_id}/calendar/renew", data={"csrf_token": b.admin.csrf}
        )
        assert other.status_code == 404
        assert tenants.as_(None).get(new.group(1)).status_code == 200

    def test_a_switched_off_person_or_lms_has_no_feed(self, tenants: Tenants, db: Session) -> None:
        a, b = tenants.a, tenants.b
        client = tenants.as_(None)
        db.execute(update(User).where(User.id == a.teacher.user_id).values(disabled_at=NOW))
        db.commit()
        assert client.get(a.learner_feed).status_code == 404
        assert client.get(b.learner_feed).status_code == 200
        db.execute(
            update(Platform)
            .where(Platform.issuer == b.platform.issuer)
            .values(status=PlatformStatus.DISABLED)
        )
        db.commit()
        assert client.get(b.learner_feed).status_code == 404
        assert client.get(b.class_feed).status_code == 404
        assert client.get(a.class_feed).status_code == 200


# -- line items and scores stay with their registration and course -----------------------------


def _claim(lineitems: str, lineitem: str | None = None) -> dict[str, Any]:
    claim: dict[str, Any] = {
        "scope": [
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        ],
        "lineitems": lineitems,
    }
    if lineitem is not None:
        claim["lineitem"] = lineitem
    return claim


@dataclass
class Gradebook:
    platform: TestPlatform
    class_id: int
    enrolment_id: int
    link_id: int
    course_id: int
    own_item: str  # course-1's column, coupled to rl-1
    other_course_item: str  # a column of course-2 of the same LMS


@pytest.fixture()
def gradebook(
    app: FastAPI, client: TestClient, platform: TestPlatform, db: Session
) -> Iterator[Gradebook]:
    """Class M4-THCS-01 of LMS A, tied to activity rl-1 of course-1, whose launch coupled a
    gradebook column; the class has not stored it yet (the first result does)."""
    app.dependency_overrides[clock] = lambda: NOW
    teacher = sign_in(client, platform, [LEARNER], "hv-1", "Học viên")
    sign_in(client, platform, [INST_ADMIN, SYS_ADMIN], "admin-1", "Quản trị")
    class_id = new_class(client)["id"]
    enrolment_id = _ok(
        client.post(f"/api/v1/classes/{class_id}/enrolments", json={"user_id": teacher["user_id"]}),
        201,
    ).json()["id"]
    platform.enable_ags(2)
    own_item = platform.couple_line_item("rl-1", label="Mô đun 4", score_maximum=10)
    other_item = own_item.replace("/services.php/2/", "/services.php/3/")
    link = db.scalars(select(ResourceLink).where(ResourceLink.resource_link_id == "rl-1")).one()
    assert link.course_id is not None
    link.ags_endpoint = platform.ags_claim("rl-1")
    db.execute(
        update(TrainingClass)
        .where(TrainingClass.id == class_id)
        .values(resource_link_id=link.id, course_id=link.course_id)
    )
    db.commit()
    yield Gradebook(platform, class_id, enrolment_id, link.id, link.course_id, own_item, other_item)
    app.dependency_overrides.pop(clock, None)


def _launch_with_claim(
    client: TestClient, platform: TestPlatform, claim: dict[str, Any], course: str = "course-1"
) -> None:
    def add(claims: dict[str, Any]) -> None:
        claims[AGS_CLAIM] = claim

    response = platform.launch(
        client,
        sub="hv-9",
        context={"id": course, "label": course, "title": course},
        mutate=add,
    )
    assert response.status_code == 303, response.text


def _outbox_urls(db: Session, class_id: int) -> set[str]:
    db.expire_all()
    cls = db.get(TrainingClass, class_id)
    assert cls is not None
    rows = db.scalars(
        select(ScoreOutbox).where(ScoreOutbox.resource_link_id == cls.resource_link_id)
    )
    return {r.line_item_url for r in rows}


def _refresh(db: Session, class_id: int) -> str | None:
    db.expire_all()  # what the launches wrote
    GradingService(db).refresh(class_id, now=NOW)
    db.commit()
    cls = db.get(TrainingClass, class_id)
    assert cls is not None
    return cls.line_item_url


class TestLineItemsStayWithTheirCourse:
    def test_a_line_item_must_be_the_links_own_or_in_its_container_on_the_lms(self) -> None:
        lms = ("https://lms.test", "https://lms.test/mod/lti/token.php")
        container = "https://lms.test/mod/lti/services.php/2/lineitems?type_id=3"
        own = "https://lms.test/mod/lti/services.php/2/lineitems/7/lineitem?type_id=3"
        claim = _claim(container, own)
        assert line_item_belongs(own, claim, lms)
        assert line_item_belongs(
            "https://lms.test/mod/lti/services.php/2/lineitems/9/lineitem?type_id=3", claim, lms
        )
        # Another course's column, another host, a claim pointing off the LMS, no claim.
        assert not line_item_belongs(own.replace("/2/", "/3/"), claim, lms)
        assert not line_item_belongs("https://evil.test/lineitems/7/lineitem", claim, lms)
        evil = _claim(container, "https://evil.test/lineitems/7/lineitem")
        assert not line_item_belongs("https://evil.test/lineitems/7/lineitem", evil, lms)
        assert not line_item_belongs(
            "javascript:alert(1)", _claim(container, "javascript:alert(1)")
        )
        assert not line_item_belongs(own, None, lms)
        # A service host of its own (Canvas): the claim's container vouches for it.
        canvas = _claim(
            "https://school.instructure.com/api/lti/courses/1/line_items",
            "https://school.instructure.com/api/lti/courses/1/line_items/5",
        )
        assert line_item_belongs(canvas["lineitem"], canvas, ("https://canvas.instructure.com",))

    def test_a_launch_of_the_same_link_from_another_course_cannot_redirect_the_scores(
        self, gradebook: Gradebook, client: TestClient, db: Session
    ) -> None:
        g = gradebook
        container_3 = g.platform.lineitems_url.replace("/services.php/2/", "/services.php/3/")
        _launch_with_claim(client, g.platform, _claim(container_3, g.other_course_item), "course-2")
        link = db.get(ResourceLink, g.link_id)
        assert link is not None
        db.refresh(link)
        assert link.course_id == g.course_id  # the link stays in its course…
        assert link.ags_endpoint is not None and link.ags_endpoint["lineitem"] == g.own_item
        assert _refresh(db, g.class_id) == g.own_item  # …and the class's column is its own
        assert _outbox_urls(db, g.class_id) <= {g.own_item}
        # Once stored, still its own after another such launch.
        _launch_with_claim(client, g.platform, _claim(container_3, g.other_course_item), "course-2")
        assert _refresh(db, g.class_id) == g.own_item
        assert g.other_course_item not in _outbox_urls(db, g.class_id)

    def test_a_launch_of_the_same_ids_from_another_lms_changes_nothing_here(
        self,
        gradebook: Gradebook,
        client: TestClient,
        db: Session,
        platform_http: str,
        factories: Factories,
    ) -> None:
        g = gradebook
        other = TestPlatform.create(
            platform_http, issuer="https://other-lms.test", client_id="client-1"
        )
        factories.register(other, deployment_ids=["1"])
        # B names A's column in its claim (and A's class code): A's link and class stay A's.
        _launch_with_claim(client, other, _claim(g.platform.lineitems_url, g.own_item))
        _launch_with_claim(client, other, _claim(g.platform.lineitems_url, g.other_course_item))
        link = db.get(ResourceLink, g.link_id)
        assert link is not None
        db.refresh(link)
        assert link.ags_endpoint == g.platform.ags_claim("rl-1")
        assert _refresh(db, g.class_id) == g.own_item
        assert _outbox_urls(db, g.class_id) <= {g.own_item}
        b_links = db.scalars(
            select(ResourceLink).where(
                ResourceLink.resource_link_id == "rl-1", ResourceLink.id != g.link_id
            )
        ).all()
        assert len(b_links) == 1 and b_links[0].deployment_id != link.deployment_id

    def test_a_coupled_column_off_the_lms_is_never_used(
        self, gradebook: Gradebook, client: TestClient, db: Session
    ) -> None:
        g = gradebook
        evil = "https://evil.test/mod/lti/services.php/2/lineitems/5/lineitem"
        _launch_with_claim(client, g.platform, _claim(g.platform.lineitems_url, evil))
        assert _refresh(db, g.class_id) is None
        assert _outbox_urls(db, g.class_id) == set()

    def test_the_sweep_skips_a_link_of_another_course_and_a_column_off_the_lms(
        self, gradebook: Gradebook, db: Session, database: Database, http: requests.Session
    ) -> None:
        g = gradebook
        other_course = Course(
            deployment_id=db.get(ResourceLink, g.link_id).deployment_id, context_id="course-9"
        )  # type: ignore[union-attr]
        db.add(other_course)
        db.flush()
        db.execute(
            update(ResourceLink)
            .where(ResourceLink.id == g.link_id)
            .values(course_id=other_course.id, ags_endpoint=_claim(g.platform.lineitems_url))
        )
        db.commit()
        before = len(g.platform.ags_requests)
        assert ResultSweeper(database, http).find_line_items(NOW.date()) == 0
        assert len(g.platform.ags_requests) == before  # not even asked
        db.expire_all()
        assert _refresh(db, g.class_id) is None

    def test_the_ags_client_refuses_a_coupled_column_off_the_lms(
        self, db: Session, http: requests.Session
    ) -> None:
        registration = ServicePlatform(
            issuer="https://lms.test", client_id="c", token_url="https://lms.test/token"
        )
        key = KeyService(db).signing_key()
        assert key is not None
        with pytest.raises(AgsError, match="own origin"):
            find_or_create_line_item(
                registration=registration,
                tool_key=key,
                http=http,
                endpoint=_claim(
                    "https://lms.test/mod/lti/services.php/2/lineitems",
                    "https://evil.test/lineitems/1/lineitem",
                ),
                label="Mô đun 4",
                score_maximum=10,
                resource_link_id="rl-1",
            )
