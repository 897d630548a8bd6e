"""A learner's whole path through a module, in one test: launch from the LMS activity,
self-study items, check-in by code on an in-person day, a follow-up hand-in, the core
trainer's grade — and the module result arriving in the LMS gradebook through the outbox,
checked by the test platform's AGS endpoint (bearer token, score media type and fields).

Everyone works on their own device (their own TestClient); time comes from a fake clock.
The class's dates: self-study 26 Nov – 2 Dec, in person 3–4 Dec, follow-up 5–11 Dec 2026.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.attendance.service import clock
from app.classes.models import TrainingClass
from app.config import Settings
from app.core.db import Database
from app.grading.service import ResultSweeper
from app.passback.models import ScoreOutbox
from app.passback.service import OutboxWorker
from app.platforms.service import PlatformInput, PlatformService
from lti.http import build_session
from lti.services import TokenCache
from tests.conftest import TOOL_BASE_URL
from tests.lti_platform import INST_ADMIN, INSTRUCTOR, LEARNER, SYS_ADMIN, TestPlatform

AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
CUSTOM_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/custom"
CLASS_CODE = "M4-THCS-WP"

ITEMS: list[dict[str, Any]] = [
    {
        "phase": "self_study",
        "kind": "document",
        "key": "doc",
        "title": "Tài liệu mô đun 4",
        "url": "https://lms.example.edu.vn/mod/resource/view.php?id=5",
        "due_day": 3,
    },
    {
        "phase": "self_study",
        "kind": "quiz",
        "key": "quiz",
        "title": "Tự kiểm tra",
        "questions": [
            {"text": "Mấy ngày học trực tiếp?", "choices": ["1", "2", "7"], "answer": 2},
            {
                "text": "Một nhóm cốt cán khoảng bao nhiêu người?",
                "choices": ["50", "150"],
                "answer": 1,
            },
        ],
    },
    {
        "phase": "self_study",
        "kind": "reflection",
        "key": "reflect",
        "title": "Suy ngẫm",
    },
    {
        "phase": "follow_up",
        "kind": "assignment",
        "key": "plan",
        "title": "Kế hoạch bài dạy",
        "due_day": 7,
    },
]


def vn(day: int, hh: int, mm: int = 0, month: int = 12) -> datetime:
    """Vietnam wall-clock time in 2026, as aware UTC."""
    return datetime(2026, month, day, hh, mm, tzinfo=UTC) - timedelta(hours=7)


@dataclass
class Clock:
    now: datetime


@pytest.fixture()
def fake_clock(app: FastAPI) -> Iterator[Clock]:
    fake = Clock(vn(27, 20, month=11))
    app.dependency_overrides[clock] = lambda: fake.now
    yield fake
    app.dependency_overrides.pop(clock, None)


@pytest.fixture()
def settings(tmp_path) -> Settings:
    return Settings(
        inprocess_worker=False,
        database_url="sqlite://",
        base_url=TOOL_BASE_URL,
        secret_key="test-secret-" + "x" * 32,
        demo=False,
        upload_dir=tmp_path / "uploads",
    )


@dataclass
class Device:
    client: TestClient
    csrf: str
    user_id: int
    sub: str

    def form(self, path: str, data: dict[str, str], **kw: Any) -> Any:
        return self.client.post(path, data={"csrf_token": self.csrf, **data}, **kw)


def _lms(platform_http: str, tool_jwks: dict[str, Any]) -> TestPlatform:
    """A Moodle-like platform whose activity sends grades (a coupled line item)."""
    lms = TestPlatform.create(
        platform_http, issuer=f"https://moodle-{uuid.uuid4().hex[:6]}.test", client_id="wp"
    )
    lms.trust_tool_jwks(tool_jwks)
    lms.enable_ags(2)
    lms.couple_line_item("rl-1", label="Mô đun 4", score_maximum=10)
    return lms


def _launch(app: FastAPI, lms: TestPlatform, roles: list[str], sub: str, name: str) -> Device:
    """A launch from the activity the administrator placed with deep linking: the AGS claim
    and the deep-linked custom parameters, as Moodle sends them."""
    device = TestClient(app, base_url=TOOL_BASE_URL, follow_redirects=False)

    def activity(claims: dict[str, Any]) -> None:
        claims[AGS_CLAIM] = lms.ags_claim("rl-1")
        claims[CUSTOM_CLAIM] = {"module_key": "gvpt-4", "level": "thcs", "class_code": CLASS_CODE}

    response = lms.launch(device, roles=roles, sub=sub, name=name, mutate=activity)
    assert response.status_code == 303, response.text
    me = device.get("/api/v1/me").json()
    device.headers["X-CSRF-Token"] = me["csrf_token"]
    return Device(device, me["csrf_token"], int(me["user_id"]), sub)


def _template_msgids() -> list[str]:
    """English sentences (2+ words, no placeholder) of the learning and grading templates."""
    from babel.messages.extract import extract_from_file

    from app.core.templating import TEMPLATE_DIR

    ids: set[str] = set()
    for path in sorted(TEMPLATE_DIR.glob("*.html")):
        if not path.name.startswith(("learn_", "grading_", "_learning", "_progress")):
            continue
        for _line, message, _comments, _context in extract_from_file(
            "jinja2",
            str(path),
            options={"extensions": "jinja2.ext.i18n", "trim_blocks": "True"},
        ):
            for m in message if isinstance(message, tuple) else (message,):
                if m and "%(" not in m and len(m.split()) >= 2:
                    ids.add(m)
    return sorted(ids)


def _english_on(page: str, msgids: list[str]) -> list[str]:
    text = unescape(page)
    return sorted(m for m in msgids if m in text)


class TestALearnersWholePath:
    def test_launch_items_checkin_hand_in_grade_and_the_score_in_the_lms(
        self,
        app: FastAPI,
        client: TestClient,
        database: Database,
        db: Session,
        platform_http: str,
        fake_clock: Clock,
    ) -> None:
        lms = _lms(platform_http, client.get("/lti/jwks.json").json())
        PlatformService(db).register(
            PlatformInput(
                issuer=lms.issuer,
                client_id=lms.client_id,
                auth_login_url=lms.auth_login_url,
                token_url=lms.served_token_url,
                keyset_url=lms.keyset_url,
                deployment_ids=["1"],
            )
        )
        db.commit()

        # The administrator adds items to module 4 and opens a class in the activity's course.
        admin = _launch(app, lms, [INST_ADMIN, SYS_ADMIN], "2", "Lê Quản Trị")
        modules = admin.client.get("/api/v1/modules").json()
        module_id = next(m["id"] for m in modules if m["key"] == "gvpt-4")
        spec = admin.client.get(f"/api/v1/modules/{module_id}").json()["spec"]
        r = admin.client.put(
            f"/api/v1/modules/{module_id}",
            json={"spec": {**spec, "materials": ITEMS}, "note": "Học liệu"},
        )
        assert r.status_code == 200, r.text
        course = admin.client.get("/api/v1/courses").json()[0]
        r = admin.client.post(
            "/api/v1/classes",
            json={
                "code": CLASS_CODE,
                "name": "Mô đun 4 — THCS — lớp 1",
                "module_id": module_id,
                "level": "thcs",
                "in_person_dates": ["2026-12-03", "2026-12-04"],
                "venue": "Trường THCS Nguyễn Du",
                "course_id": course["id"],
            },
        )
        assert r.status_code == 201, r.text
        cls = r.json()

        # The learner and the core trainer open the activity: both join the class.
        learner = _launch(app, lms, [LEARNER], "101", "Nguyễn Thị Học")
        trainer = _launch(app, lms, [INSTRUCTOR], "201", "Trần Cốt Cán")
        r = admin.client.post(f"/api/v1/classes/{cls['id']}/cohorts/split")
        assert r.status_code in (200, 201), r.text

        # Self-study (27 Nov): read, take the quiz, write a reflection.
        page = learner.client.get(f"/learn/classes/{cls['id']}")
        assert page.status_code == 200
        assert "Tài liệu mô đun 4" in page.text and "28/11/2026" in page.text  # due day 3
        assert (
            learner.form(f"/learn/classes/{cls['id']}/items/doc/done", {"done": "1"}).status_code
            == 303
        )
        r = learner.form(f"/learn/classes/{cls['id']}/items/quiz/quiz", {"q0": "2", "q1": "2"})
        assert r.status_code == 303
        r = learner.client.get(r.headers["location"])  # the answers, after post/redirect/get
        assert r.status_code == 200 and "1/2" in r.text.replace(" ", "")
        r = learner.form(
            f"/learn/classes/{cls['id']}/items/reflect/hand-in",
            {"text": "Tôi sẽ lập kế hoạch theo năng lực."},
        )
        assert r.status_code == 303, r.text
        mine = learner.client.get(f"/api/v1/learning/classes/{cls['id']}/me").json()
        assert mine["progress"]["self_study"] == {"done": 3, "total": 3, "percent": 100}

        # The trainer sees it in their cohort.
        progress = trainer.client.get(f"/api/v1/learning/classes/{cls['id']}/progress").json()
        (row,) = [x for x in progress["learners"] if x["user_id"] == learner.user_id]
        assert row["progress"]["self_study"]["percent"] == 100

        # In person (3 Dec, morning): the learner checks in with the code on the screen.
        sessions = admin.client.get(f"/api/v1/classes/{cls['id']}").json()["sessions"]
        first = sessions[0]["id"]
        fake_clock.now = vn(3, 7, 25)
        r = trainer.form(f"/attendance/sessions/{first}/checkin/open", {"late_after_minutes": "15"})
        assert r.status_code == 303, r.text
        fake_clock.now = vn(3, 7, 40)
        code = trainer.client.get(f"/attendance/sessions/{first}/code.json").json()["code"]
        learner.client.get(f"/attendance/checkin/{first}", params={"c": code})
        r = learner.form(f"/attendance/checkin/{first}", {"code": code})
        assert r.status_code == 200, r.text
        # The trainer marks the other sessions: present, present, late.
        for session, status in zip(sessions[1:], ("present", "present", "late"), strict=True):
            fake_clock.now = vn(int(session["date"][-2:]), 16)
            r = trainer.client.put(
                f"/api/v1/attendance/sessions/{session['id']}/marks",
                json={"marks": [{"enrolment_id": row["enrolment_id"], "status": status}]},
            )
            assert r.status_code == 200, r.text

        # Follow-up (8 Dec): the learner hands in a lesson plan as a file; the trainer grades it.
        fake_clock.now = vn(8, 21)
        r = learner.client.post(
            f"/learn/classes/{cls['id']}/items/plan/hand-in",
            data={"csrf_token": learner.csrf, "text": ""},
            files={"file": ("Kế hoạch bài dạy.pdf", b"%PDF-1.4 lesson plan", "application/pdf")},
        )
        assert r.status_code == 303, r.text
        mine = learner.client.get(f"/api/v1/learning/classes/{cls['id']}/me").json()
        handed = next(i for i in mine["items"] if i["key"] == "plan")["submission"]
        assert handed["has_file"] and not handed["late"]
        download = trainer.client.get(f"/learn/files/{handed['id']}")
        assert download.status_code == 200 and download.content == b"%PDF-1.4 lesson plan"
        assert download.headers["content-disposition"].startswith("attachment")
        r = trainer.form(
            f"/grading/submissions/{handed['id']}/grade", {"score": "8", "feedback": "Tốt"}
        )
        assert r.status_code == 303, r.text

        # The Vietnamese pages of all three people speak Vietnamese.
        msgids = _template_msgids()
        for who, path in (
            (learner, f"/learn/classes/{cls['id']}"),
            (learner, f"/learn/classes/{cls['id']}/items/plan"),
            (learner, f"/learn/classes/{cls['id']}/items/quiz"),
            (trainer, f"/grading/classes/{cls['id']}"),
            (trainer, f"/grading/enrolments/{row['enrolment_id']}"),
            (admin, f"/grading/classes/{cls['id']}"),
        ):
            page = who.client.get(path)
            assert page.status_code == 200, (path, page.text)
            assert not _english_on(page.text, msgids), (path, _english_on(page.text, msgids))

        # While the module runs, the LMS is told "in progress, pending", with no score.
        results = trainer.client.get(f"/api/v1/grading/classes/{cls['id']}/results").json()
        (result,) = [x for x in results["results"] if x["user_id"] == learner.user_id]
        assert result == result | {
            "self_study": "10.00",
            "attendance": "8.75",
            "follow_up": "8.00",
            "score": "8.75",
            "classification": "complete",
        }
        worker = OutboxWorker(
            database,
            build_session(5),
            rng=random.Random(3),
            token_cache=TokenCache(),
            before_round=ResultSweeper(database, build_session(5)).run,
        )
        worker.run_once(now=fake_clock.now)
        line_item = db.scalar(
            select(TrainingClass.line_item_url).where(TrainingClass.id == cls["id"])
        )
        assert line_item == lms.ags_claim("rl-1")["lineitem"]
        (pending,) = lms.applied_scores(user_id=learner.sub)
        assert pending["body"]["gradingProgress"] == "Pending"
        assert "scoreGiven" not in pending["body"]

        # After the module (12 Dec) the sweep settles the result; the LMS receives 8.75/10.
        fake_clock.now = vn(12, 9)
        for _ in range(5):
            worker.run_once(now=fake_clock.now)
        final = lms.applied_scores(user_id=learner.sub)[-1]
        assert final["body"]["gradingProgress"] == "FullyGraded"
        assert final["body"]["activityProgress"] == "Completed"
        assert Decimal(str(final["body"]["scoreGiven"])) == Decimal("8.75")
        assert final["body"]["scoreMaximum"] == 10
        held = lms.grade(line_item, learner.sub)
        assert held is not None and Decimal(str(held["final_grade"])) == Decimal("8.75")
        # Nothing is sent twice: one Pending, one FullyGraded.
        assert len(lms.applied_scores(user_id=learner.sub)) == 2
        assert db.scalars(select(ScoreOutbox.status)).all().count("sent") >= 2
