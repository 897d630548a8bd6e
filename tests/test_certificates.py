"""Completion certificates as learners, trainers, administrators and strangers meet them:
a PDF that says in Vietnamese who completed what, when, with which result, and a code with
a QR code that leads to a public page confirming it; refusals that say why; a revoked
certificate that says so; a class's ZIP built in the background with its progress shown.

The class (helpers.new_class): self-study 26 Nov – 2 Dec, in person 3–4 Dec, follow-up
5–11 Dec 2026. Results are driven through the grading and attendance APIs; time comes from
a fake clock (12 Dec 2026 unless a test moves it).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from app.attendance.service import clock
from app.certificates import rules
from app.certificates.jobs import JOBS
from app.certificates.models import Certificate, CertificateIssuer, CertificateJob
from app.certificates.repository import CertificateRepository
from app.certificates.service import CertificateService
from app.core.time import utcnow
from app.grading.models import ModuleResultRow
from app.grading.rules import (
    COMPLETE,
    GradePolicy,
    Tier,
    Weights,
)
from app.grading.service import GradingService
from app.identity.models import User
from app.platforms.models import Platform
from tests.conftest import TOOL_BASE_URL
from tests.factories import Factories
from tests.helpers import new_class, sign_in
from tests.lti_platform import INST_ADMIN, INSTRUCTOR, LEARNER, SYS_ADMIN, TestPlatform

NHUNG = "Nguyễn Thị Hồng Nhung"
NHUNG_SUB = "hv-nhung-7001"
NHUNG_SCHOOL = "Trường THCS Nguyễn Du"
# Who else completes the module (4 more: a class of 5 certificates) and who does not.
OTHERS = ["Trần Văn Đức", "Lê Thị Ánh Tuyết", "Phạm Quốc Bảo", "Đỗ Thị Ngọc Hà"]
FAILING = "Võ Văn Chưa Đạt"
MODULE_TITLE = (
    "Xây dựng kế hoạch dạy học và giáo dục theo hướng phát triển phẩm chất, năng lực học "
    "sinh trung học cơ sở"
)
ISSUER = {
    "unit_name": "Phòng Giáo dục và Đào tạo Quận 7",
    "parent_unit": "Ủy ban nhân dân Quận 7",
    "signer_title": "Trưởng phòng",
    "signer_name": "Nguyễn Văn Trưởng",
    "place": "Quận 7",
}


def vn(day: int, hh: int = 9, month: int = 12) -> datetime:
    """Vietnam wall-clock time in 2026, as aware UTC."""
    return datetime(2026, month, day, hh, tzinfo=UTC) - timedelta(hours=7)


@dataclass
class Clock:
    now: datetime


@dataclass
class Person:
    device: TestClient
    me: dict[str, Any]

    @property
    def csrf(self) -> str:
        return str(self.me["csrf_token"])


@dataclass
class World:
    app: FastAPI
    admin: Person
    trainer: Person
    nhung: Person
    cls: dict[str, Any]
    enrolments: dict[str, int]  # learner's name → enrolment id
    platform: TestPlatform
    clock: Clock

    def device(self) -> TestClient:
        return TestClient(self.app, base_url=TOOL_BASE_URL, follow_redirects=False)

    def person(self, roles: list[str], sub: str, name: str) -> Person:
        device = self.device()
        return Person(device, sign_in(device, self.platform, roles, sub, name))

    @property
    def mine(self) -> str:
        return f"/certificates/classes/{self.cls['id']}/mine.pdf"

    def override(self, name: str, score: str, classification: str) -> None:
        r = self.admin.device.put(
            f"/api/v1/grading/enrolments/{self.enrolments[name]}/override",
            json={"score": score, "classification": classification, "reason": "Hội đồng xét"},
        )
        assert r.status_code == 200, r.text


@pytest.fixture()
def fake_clock(app: FastAPI) -> Iterator[Clock]:
    fake = Clock(vn(12))
    app.dependency_overrides[clock] = lambda: fake.now
    yield fake
    app.dependency_overrides.pop(clock, None)


@pytest.fixture()
def world(
    app: FastAPI,
    client: TestClient,
    platform: TestPlatform,
    platform_row: Platform,
    db: Session,
    fake_clock: Clock,
) -> World:
    admin = Person(
        client, sign_in(client, platform, [INST_ADMIN, SYS_ADMIN], "admin-1", "Lê Quản Trị")
    )
    cls = new_class(client)
    w = World(app, admin, admin, admin, cls, {}, platform, fake_clock)
    w.nhung = w.person([LEARNER], NHUNG_SUB, NHUNG)
    w.trainer = w.person([INSTRUCTOR], "cc-1", "Trần Cốt Cán")
    nhung = db.get(User, w.nhung.me["user_id"])
    assert nhung is not None
    nhung.school = NHUNG_SCHOOL
    others = [
        User(
            platform_id=platform_row.id,
            sub=f"hv-{i}",
            name=name,
            email=f"hv{i}@example.edu.vn",
            school="Trường THCS Lê Lợi",
        )
        for i, name in enumerate([*OTHERS, FAILING])
    ]
    db.add_all(others)
    db.commit()
    people = {NHUNG: w.nhung.me["user_id"]} | {u.name or "": u.id for u in others}
    for name, user_id in people.items():
        r = client.post(f"/api/v1/classes/{cls['id']}/enrolments", json={"user_id": user_id})
        assert r.status_code == 201, r.text
        w.enrolments[name] = r.json()["id"]
    r = client.post(
        f"/api/v1/classes/{cls['id']}/trainers", json={"user_id": w.trainer.me["user_id"]}
    )
    assert r.status_code in (200, 201), r.text
    assert client.post(f"/api/v1/classes/{cls['id']}/cohorts/split").status_code in (200, 201)

    # Everyone attended all four sessions; self-study 9, follow-up 8 (→ 8.70, complete),
    # except one whose follow-up is 3 (not complete).
    for session in client.get(f"/api/v1/classes/{cls['id']}").json()["sessions"]:
        r = client.put(
            f"/api/v1/attendance/sessions/{session['id']}/marks",
            json={"marks": [], "rest": "present"},
        )
        assert r.status_code == 200, r.text
    # The trainer's inputs, as the grading page stores them, then the results recomputed.
    rows = {r.enrolment_id: r for r in db.scalars(select(ModuleResultRow))}
    for name, enrolment_id in w.enrolments.items():
        rows[enrolment_id].manual_self_study = Decimal(9)
        rows[enrolment_id].manual_follow_up = Decimal(3 if name == FAILING else 8)
    results = GradingService(db).refresh(cls["id"], now=fake_clock.now)
    assert sorted(r.result.classification for r in results) == ["complete"] * 5 + ["not_complete"]
    db.commit()

    r = client.post("/admin/certificates", data={"csrf_token": admin.csrf, **ISSUER})
    assert r.status_code == 303, r.text
    return w


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


def _certificates(db: Session, enrolment_id: int | None = None) -> list[Certificate]:
    db.expire_all()
    stmt = select(Certificate).order_by(Certificate.id)
    if enrolment_id is not None:
        stmt = stmt.where(Certificate.enrolment_id == enrolment_id)
    return list(db.scalars(stmt))


# -- the PDF -------------------------------------------------------------------------------


class TestTheCertificatePdf:
    def test_says_who_completed_what_when_with_which_result_and_its_code(
        self, world: World, db: Session
    ) -> None:
        r = world.nhung.device.get(world.mine)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf"
        assert r.content.startswith(b"%PDF-")
        (cert,) = _certificates(db, world.enrolments[NHUNG])
        assert re.fullmatch(r"B727(-[0-9A-HJKMNP-TV-Z]{4}){3}", cert.code)
        assert cert.code in r.headers["content-disposition"]

        text = _text(r.content)
        for expected in (
            "CỘNG HOÀ XÃ HỘI CHỦ NGHĨA VIỆT NAM",
            "Độc lập - Tự do - Hạnh phúc",
            "GIẤY CHỨNG NHẬN",
            "HOÀN THÀNH BỒI DƯỠNG THƯỜNG XUYÊN",
            "PHÒNG GIÁO DỤC VÀ ĐÀO TẠO QUẬN 7",
            "ỦY BAN NHÂN DÂN QUẬN 7",
            NHUNG,  # with its diacritics, as the LMS gave it
            NHUNG_SCHOOL,
            f"Mô đun 4: {MODULE_TITLE}",
            "M4-THCS-01",
            "từ ngày 26/11/2026 đến ngày 11/12/2026",
            "Hoàn thành",
            "8,70",
            "Quận 7, ngày 12 tháng 12 năm 2026",
            "TRƯỞNG PHÒNG",
            "Nguyễn Văn Trưởng",
            cert.code,
        ):
            assert expected in text, (expected, text)

        # The QR code (and a link over it) leads to the public verification page.
        url = f"{TOOL_BASE_URL}/verify/{cert.code}"
        assert rules.verify_url(TOOL_BASE_URL + "/", cert.code) == url
        reader = PdfReader(io.BytesIO(r.content))
        assert reader.metadata is not None and reader.metadata.subject == url
        assert url in text
        links = [
            a.get_object()["/A"]["/URI"]
            for a in reader.pages[0].get("/Annots", [])
            if "/A" in a.get_object()
        ]
        assert url in links

        # One A4 landscape page, drawn with the bundled font.
        (page,) = reader.pages
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert (round(width), round(height)) == (842, 595)  # A4 landscape, in points
        fonts = {str(f["/BaseFont"]) for f in page["/Resources"]["/Font"].values()}
        assert fonts and all("DejaVuSans" in f for f in fonts)

    def test_asking_twice_issues_one_certificate(self, world: World, db: Session) -> None:
        first = world.nhung.device.get(world.mine)
        second = world.nhung.device.get(world.mine)
        assert first.status_code == second.status_code == 200
        (cert,) = _certificates(db, world.enrolments[NHUNG])
        assert cert.code in _text(first.content) and cert.code in _text(second.content)
        # The trainer's copy is the same certificate.
        r = world.trainer.device.get(f"/certificates/enrolments/{world.enrolments[NHUNG]}.pdf")
        assert r.status_code == 200 and cert.code in _text(r.content)
        assert len(_certificates(db)) == 1

        # Two first requests at the same moment: the second insert finds the row there.
        repo = CertificateRepository(db)
        values = {
            "deployment_id": _deployment_of(world),
            "enrolment_id": world.enrolments[OTHERS[0]],
            "snapshot": {"v": 1},
            "issued_at": world.clock.now,
        }
        assert repo.insert_if_absent(values | {"code": rules.new_code()}) is True
        assert repo.insert_if_absent(values | {"code": rules.new_code()}) is False
        assert len(_certificates(db, world.enrolments[OTHERS[0]])) == 1


# -- refusals ------------------------------------------------------------------------------


class TestNoCertificateYet:
    def test_a_learner_who_did_not_complete_is_told_why_and_gets_nothing(
        self, world: World, db: Session
    ) -> None:
        failing = world.person([LEARNER], "hv-4", FAILING)
        r = failing.device.get(world.mine + "?lang=en")
        assert r.status_code == 409
        assert "text/html" in r.headers["content-type"]
        assert "not “complete”, so no certificate can be issued" in r.text
        r = failing.device.get(world.mine, headers={"Accept": "application/json"})
        assert r.status_code == 409
        assert r.json()["code"] == "certificate_not_complete"
        assert _certificates(db, world.enrolments[FAILING]) == []

    def test_before_the_module_ends_there_is_none_unless_a_trainer_set_the_result(
        self, world: World, db: Session
    ) -> None:
        world.clock.now = vn(8)
        r = world.nhung.device.get(world.mine + "?lang=en")
        assert r.status_code == 409
        assert "after 11/12/2026" in r.text
        assert _certificates(db) == []
        # A trainer's decision does not wait for the end.
        world.override(NHUNG, "9", COMPLETE)
        r = world.nhung.device.get(world.mine)
        assert r.status_code == 200
        assert "9,00" in _text(r.content)

    def test_someone_not_in_the_class_gets_not_found(self, world: World) -> None:
        outsider = world.person([LEARNER], "hv-99", "Người Ngoài Lớp")
        assert outsider.device.get(world.mine).status_code == 404
        assert outsider.device.get("/certificates/classes/999999/mine.pdf").status_code == 404

    def test_without_an_issuing_unit_nothing_is_issued(self, world: World, db: Session) -> None:
        db.execute(CertificateIssuer.__table__.delete())
        db.commit()
        r = world.nhung.device.get(world.mine + "?lang=en")
        assert r.status_code == 409
        assert "has not been set yet" in r.text
        assert _certificates(db) == []


# -- who may fetch whose -------------------------------------------------------------------


class TestWhoMayFetchACertificate:
    def test_the_cohorts_trainer_and_an_administrator_may_others_may_not(
        self, world: World
    ) -> None:
        path = f"/certificates/enrolments/{world.enrolments[OTHERS[0]]}.pdf"
        for person in (world.trainer, world.admin):
            r = person.device.get(path)
            assert r.status_code == 200, r.text
            assert OTHERS[0] in _text(r.content)
        # A learner may not fetch someone else's; nor may a trainer of no cohort of theirs.
        assert world.nhung.device.get(path).status_code == 403
        stranger = world.person([INSTRUCTOR], "cc-9", "Đỗ Cốt Cán Khác")
        assert stranger.device.get(path).status_code == 403
        assert world.admin.device.get("/certificates/enrolments/999999.pdf").status_code == 404

    def test_another_tenants_administrator_cannot_fetch_anything(
        self, world: World, platform_http: str, factories: Factories, db: Session
    ) -> None:
        other = TestPlatform.create(platform_http, issuer="https://other-lms.test", client_id="c2")
        factories.register(other, deployment_ids=["1"])
        device = world.device()
        sign_in(device, other, [INST_ADMIN, SYS_ADMIN], "admin-1", "Quản Trị Khác")
        r = device.get(f"/certificates/enrolments/{world.enrolments[NHUNG]}.pdf")
        assert r.status_code == 404
        assert _certificates(db) == []
        r = device.post(
            f"/admin/certificates/classes/{world.cls['id']}/zip",
            data={"csrf_token": device.headers["X-CSRF-Token"]},
        )
        assert r.status_code == 404
        assert world.cls["code"] not in device.get("/admin/certificates").text


# -- verification --------------------------------------------------------------------------


class TestVerification:
    def _issue(self, world: World, db: Session) -> Certificate:
        assert world.nhung.device.get(world.mine).status_code == 200
        (cert,) = _certificates(db, world.enrolments[NHUNG])
        return cert

    def test_a_real_certificate_is_confirmed_with_nothing_private(
        self, world: World, db: Session
    ) -> None:
        cert = self._issue(world, db)
        stranger = world.device()  # nobody signed in
        page = stranger.get(f"/verify/{cert.code}?lang=en")
        assert page.status_code == 200
        assert "This certificate is valid." in page.text
        for shown in (NHUNG, MODULE_TITLE, "26/11/2026", "11/12/2026", "Hoàn thành"):
            assert shown in page.text
        assert ISSUER["unit_name"] in page.text and "12/12/2026" in page.text
        for private in ("an@example.edu.vn", NHUNG_SUB, NHUNG_SCHOOL, "8,70", "8.70"):
            assert private not in page.text
        assert page.headers["x-robots-tag"].startswith("noindex")

        data = stranger.get(f"/verify/{cert.code}", headers={"Accept": "application/json"})
        assert data.status_code == 200
        body = data.json()
        assert body == {
            "status": "valid",
            "code": cert.code,
            "name": NHUNG,
            "module": f"Mô đun 4: {MODULE_TITLE}",
            "class_dates": {"start": "2026-11-26", "end": "2026-12-11"},
            "classification": "Hoàn thành",
            "issuing_unit": ISSUER["unit_name"],
            "issued_on": "2026-12-12",
        }

        # A code typed loosely (spaces, lower case, O for 0, l for 1) is still found.
        loose = cert.code.replace("-", " ").lower().replace("0", "o").replace("1", "l")
        r = world.device().get(f"/verify/{loose}", headers={"Accept": "application/json"})
        assert r.status_code == 200 and r.json()["code"] == cert.code

    def test_a_forged_code_is_not_confirmed(self, world: World, db: Session) -> None:
        cert = self._issue(world, db)
        forged_codes = [
            rules.new_code(),  # well formed, never issued
            cert.code[:-1] + ("0" if cert.code[-1] != "0" else "1"),  # one symbol changed
            "B727-ABCD",
            "B727-UUUU-UUUU-UUUU",
            "hello",
        ]
        stranger = world.device()
        for forged in forged_codes:
            page = stranger.get(f"/verify/{forged}?lang=en")
            assert page.status_code == 404, forged
            assert "No such certificate" in page.text
            assert NHUNG not in page.text
            r = stranger.get(f"/verify/{forged}", headers={"Accept": "application/json"})
            assert r.status_code == 404 and r.json()["code"] == "certificate_unknown"

    def test_a_result_taken_back_revokes_it_and_a_new_decision_reinstates_it(
        self, world: World, db: Session
    ) -> None:
        cert = self._issue(world, db)
        world.override(NHUNG, "4", "not_complete")
        page = world.device().get(f"/verify/{cert.code}?lang=en")
        assert page.status_code == 200
        assert "revoked" in page.text and "This certificate is valid." not in page.text
        (row,) = _certificates(db, world.enrolments[NHUNG])
        assert row.revoked_at is not None and row.revoked_reason
        r = world.device().get(f"/verify/{cert.code}", headers={"Accept": "application/json"})
        assert r.json()["status"] == "revoked"
        assert world.nhung.device.get(world.mine).status_code == 409

        # The override is removed: the computed result completes again; same code, valid.
        r = world.admin.device.post(
            f"/api/v1/grading/enrolments/{world.enrolments[NHUNG]}/override/clear",
            json={"reason": "Nhầm lẫn"},
        )
        assert r.status_code == 200, r.text
        assert world.nhung.device.get(world.mine).status_code == 200
        (row,) = _certificates(db, world.enrolments[NHUNG])
        assert row.code == cert.code and row.revoked_at is None
        r = world.device().get(f"/verify/{cert.code}", headers={"Accept": "application/json"})
        assert r.json()["status"] == "valid"

    def test_results_that_still_complete_cost_no_statement(self, world: World, db: Session) -> None:
        results = GradingService(db).refresh(world.cls["id"], [world.enrolments[NHUNG]])
        policy = GradePolicy(Weights(Decimal("0.3"), Decimal("0.2"), Decimal("0.5")))
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(str(args[2]))

        engine = db.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert CertificateService(db).sync(results, policy) == 0
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert statements == []


# -- the administrator ---------------------------------------------------------------------


class TestTheAdministrator:
    def test_sets_the_issuing_unit_with_a_checked_form(self, world: World, db: Session) -> None:
        admin = world.admin
        page = admin.device.get("/admin/certificates")
        assert page.status_code == 200
        assert ISSUER["unit_name"] in page.text
        assert 'aria-current="page">' in page.text

        r = admin.device.post(
            "/admin/certificates?lang=en", data={"csrf_token": admin.csrf, "unit_name": " "}
        )
        assert r.status_code == 422
        assert "This field is required." in r.text
        r = admin.device.post(
            "/admin/certificates",
            data={"csrf_token": admin.csrf, "unit_name": "x" * 256},
        )
        assert r.status_code == 422
        r = admin.device.post("/admin/certificates", data={"csrf_token": "forged", **ISSUER})
        assert r.status_code == 403
        r = admin.device.post(
            "/admin/certificates",
            data={"csrf_token": admin.csrf, "unit_name": "  Trung tâm   Bồi dưỡng  "},
        )
        assert r.status_code == 303
        db.expire_all()
        (issuer,) = db.scalars(select(CertificateIssuer)).all()
        assert issuer.unit_name == "Trung tâm Bồi dưỡng" and issuer.place is None

    def test_sees_eligible_and_issued_counts_per_class(self, world: World) -> None:
        world.nhung.device.get(world.mine)
        page = world.admin.device.get("/admin/certificates?lang=en")
        assert page.status_code == 200
        row = page.text[page.text.index(world.cls["code"]) :]
        cells = re.findall(r"<td[^>]*>\s*(\d+)\s*</td>", row)
        assert cells[:3] == ["6", "5", "1"]  # learners, eligible, issued
        # The page is the administrators'.
        assert world.nhung.device.get("/admin/certificates").status_code == 403
        assert world.trainer.device.get("/admin/certificates").status_code == 403

    def test_builds_the_zip_of_a_class_in_the_background(self, world: World, db: Session) -> None:
        admin = world.admin
        r = admin.device.post(
            f"/admin/certificates/classes/{world.cls['id']}/zip", data={"csrf_token": admin.csrf}
        )
        assert r.status_code == 303, r.text
        location = r.headers["location"]
        job_id = location.rsplit("/", 1)[-1]
        assert JOBS.wait(world.app.state.ctx.database, job_id, timeout=60)

        page = admin.device.get(location + "?lang=en")
        assert page.status_code == 200
        assert "The ZIP file is ready: 5 certificates." in page.text
        assert "http-equiv" not in page.text and "refresh" not in page.headers
        r = admin.device.get(f"{location}.zip")
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(r.content))
        names = sorted(archive.namelist())
        expected = sorted(rules.file_name(n, set()) for n in [NHUNG, *OTHERS])
        assert names == expected
        assert "Nguyen-Thi-Hong-Nhung.pdf" in names and "Do-Thi-Ngoc-Ha.pdf" in names
        for person in [NHUNG, *OTHERS]:
            assert person in _text(archive.read(rules.file_name(person, set()))), person
        # Five certificates were issued; the learner who did not complete has none.
        assert len(_certificates(db)) == 5
        assert _certificates(db, world.enrolments[FAILING]) == []
        # Another administrator of the same LMS may fetch it too.
        colleague = world.person([INST_ADMIN, SYS_ADMIN], "admin-2", "Quản trị hai")
        assert colleague.device.get(f"{location}.zip").status_code == 200

    def test_a_job_under_way_shows_its_progress_and_refreshes_itself(
        self, world: World, platform_http: str, factories: Factories
    ) -> None:
        deployment_id = _deployment_of(world)
        database = world.app.state.ctx.database
        job, new = JOBS.create(database, deployment_id, world.cls["id"], world.cls["code"])
        assert new
        # The row is the job: what another process running it would write is what shows.
        with database.session() as s:
            s.execute(
                update(CertificateJob)
                .where(CertificateJob.id == job.id)
                .values(state="running", total=150, done=42, owner="elsewhere:1:x")
            )
        page = world.admin.device.get(f"/admin/certificates/jobs/{job.id}?lang=en")
        assert page.status_code == 200
        assert "42 of 150" in page.text
        assert '<meta http-equiv="refresh" content="2">' in page.text
        assert page.headers["refresh"] == "2"
        assert "<script" not in page.text
        assert world.admin.device.get(f"/admin/certificates/jobs/{job.id}.zip").status_code == 409
        # Asking again for the same class while it runs does not start a second job.
        again, new = JOBS.create(database, deployment_id, world.cls["id"], world.cls["code"])
        assert again.id == job.id and not new

        other = TestPlatform.create(platform_http, issuer="https://third.test", client_id="c3")
        factories.register(other, deployment_ids=["1"])
        device = world.device()
        sign_in(device, other, [INST_ADMIN, SYS_ADMIN], "admin-1", "Quản Trị Khác")
        assert device.get(f"/admin/certificates/jobs/{job.id}").status_code == 404
        assert device.get(f"/admin/certificates/jobs/{job.id}.zip").status_code == 404

    def test_a_job_whose_process_died_shows_failed_and_can_start_again(self, world: World) -> None:
        deployment_id = _deployment_of(world)
        database = world.app.state.ctx.database
        job, _ = JOBS.create(database, deployment_id, world.cls["id"], world.cls["code"])
        # Its process stopped touching it three minutes ago (killed, or restarted).
        with database.session() as s:
            s.execute(
                update(CertificateJob)
                .where(CertificateJob.id == job.id)
                .values(
                    state="running",
                    total=5,
                    done=2,
                    owner="gone:1:x",
                    heartbeat_at=utcnow() - timedelta(minutes=3),
                )
            )
        page = world.admin.device.get(f"/admin/certificates/jobs/{job.id}?lang=en")
        assert page.status_code == 200
        assert "the server process doing it was stopped or restarted" in page.text
        assert "refresh" not in page.headers  # finished: it no longer spins
        listing = world.admin.device.get("/admin/certificates?lang=en")
        assert "Failed" in listing.text
        # Starting again makes a new job (the lost one is recorded as failed), which runs.
        r = world.admin.device.post(
            f"/admin/certificates/classes/{world.cls['id']}/zip",
            data={"csrf_token": world.admin.csrf},
        )
        assert r.status_code == 303
        new_id = r.headers["location"].rsplit("/", 1)[-1]
        assert new_id != job.id
        assert JOBS.wait(database, new_id, timeout=60)
        assert world.admin.device.get(f"/admin/certificates/jobs/{new_id}.zip").status_code == 200
        with database.session(readonly=True) as s:
            lost = s.get(CertificateJob, job.id)
            assert lost is not None and lost.state == "failed" and lost.finished_at is not None

    def test_finished_jobs_are_forgotten_after_a_while_and_beyond_twenty(
        self, world: World
    ) -> None:
        deployment_id = _deployment_of(world)
        database = world.app.state.ctx.database
        now = utcnow()
        with database.session() as s:
            for n in range(25):
                s.add(
                    CertificateJob(
                        id=f"old-{n:02d}",
                        deployment_id=deployment_id,
                        class_id=world.cls["id"],
                        class_code=world.cls["code"],
                        state="done",
                        owner="gone:1:x",
                        created_at=now - timedelta(minutes=60 - n),
                        finished_at=now - timedelta(minutes=59 - n),
                        zip_data=b"PK",
                        zip_size=2,
                    )
                )
            s.add(
                CertificateJob(
                    id="ancient",
                    deployment_id=deployment_id,
                    class_id=world.cls["id"],
                    class_code=world.cls["code"],
                    state="done",
                    owner="gone:1:x",
                    created_at=now - timedelta(hours=3),
                    finished_at=now - timedelta(hours=3),
                )
            )
        job, new = JOBS.create(database, deployment_id, world.cls["id"], world.cls["code"])
        assert new
        with database.session(readonly=True) as s:
            kept = set(s.scalars(select(CertificateJob.id)).all())
        assert "ancient" not in kept  # finished more than two hours ago
        assert len(kept) == 20 and job.id in kept  # the newest twenty, the new one among them
        assert "old-24" in kept and "old-05" not in kept

    def test_a_zip_needs_the_form_token_and_someone_to_certify(self, world: World) -> None:
        admin = world.admin
        path = f"/admin/certificates/classes/{world.cls['id']}/zip"
        assert admin.device.post(path, data={"csrf_token": "x"}).status_code == 403
        world.clock.now = vn(8)  # nobody is eligible before the end
        assert admin.device.post(path, data={"csrf_token": admin.csrf}).status_code == 409


def _deployment_of(world: World) -> int:
    from app.auth.dependencies import SESSION_COOKIE
    from app.launch.service import session_id_for

    token = world.admin.device.cookies.get(SESSION_COOKIE)
    assert token
    database = world.app.state.ctx.database
    from app.identity.models import WebSession

    with database.session(readonly=True) as db:
        row = db.get(WebSession, session_id_for(token))
        assert row is not None
        return int(row.deployment_id)


# -- the rules -----------------------------------------------------------------------------


class TestCodes:
    def test_a_code_is_prefixed_grouped_crockford_and_random(self) -> None:
        codes = {rules.new_code() for _ in range(500)}
        assert len(codes) == 500
        for code in codes:
            assert re.fullmatch(
                r"B727-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", code
            )

    @pytest.mark.parametrize(
        ("typed", "canonical"),
        [
            ("B727-7K3M-Q9XD-4TNP", "B727-7K3M-Q9XD-4TNP"),
            ("b727 7k3m q9xd 4tnp", "B727-7K3M-Q9XD-4TNP"),
            ("B7277K3MQ9XD4TNP", "B727-7K3M-Q9XD-4TNP"),
            ("B727-OIL0-0000-0000", "B727-0110-0000-0000"),
            ("B727-7K3M-Q9XD", None),
            ("B727-7K3M-Q9XD-4TNPX", None),
            ("B727-UUUU-UUUU-UUUU", None),
            ("X727-7K3M-Q9XD-4TNP", None),
            ("", None),
            ("B727-" + "0" * 100, None),
        ],
    )
    def test_typed_codes_are_normalised(self, typed: str, canonical: str | None) -> None:
        assert rules.normalise_code(typed) == canonical


class TestEligibility:
    POLICY = GradePolicy(
        Weights(Decimal("0.3"), Decimal("0.2"), Decimal("0.5")),
        tiers=(Tier("gioi", "Giỏi", "Very good", Decimal("8.5")),),
    )
    END = date(2026, 12, 11)

    def _check(self, result: rules.ResultFacts | None, today: date) -> rules.Eligibility:
        return rules.eligibility(result, self.POLICY, self.END, today)

    def test_complete_after_the_end(self) -> None:
        done = rules.ResultFacts(COMPLETE, True, False, Decimal("7"))
        assert self._check(done, date(2026, 12, 12)).eligible
        assert self._check(done, self.END).reason == "not_ended"  # the last day still counts
        tier = rules.ResultFacts("gioi", True, False, Decimal("9"))
        assert self._check(tier, date(2026, 12, 12)).eligible

    def test_an_override_does_not_wait(self) -> None:
        overridden = rules.ResultFacts(COMPLETE, True, True, Decimal("6"))
        assert self._check(overridden, date(2026, 12, 1)).eligible
        failed = rules.ResultFacts("not_complete", True, True, Decimal("4"))
        assert self._check(failed, date(2026, 12, 20)).reason == "not_complete"

    def test_reasons(self) -> None:
        after = date(2026, 12, 20)
        assert self._check(None, after).reason == "no_result"
        pending = rules.ResultFacts("incomplete", False, False, None)
        assert self._check(pending, after).reason == "not_final"
        assert (
            "%(end)s"
            in self._check(rules.ResultFacts(COMPLETE, True, False, None), self.END).message
        )

    def test_file_names_are_ascii_and_distinct(self) -> None:
        taken: set[str] = set()
        assert rules.file_name("Nguyễn Thị Hồng Nhung", taken) == "Nguyen-Thi-Hong-Nhung.pdf"
        assert rules.file_name("Nguyễn Thị Hồng Nhung", taken) == "Nguyen-Thi-Hong-Nhung-2.pdf"
        assert rules.file_name("Đỗ Đức", taken) == "Do-Duc.pdf"
        assert rules.file_name("???", taken) == "hoc-vien.pdf"
