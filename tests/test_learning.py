"""Learning items, hand-ins and grading as the people of a class see them: learners tick off
readings, take self-check quizzes and hand in work from their own devices; the core trainer
of their cohort grades it; the module result follows Circular 19 (complete only when every
component reaches the pass mark), can be overridden with a reason (audited), and is queued for
the LMS gradebook in the same transaction. Time comes from a fake clock.

The class runs module 4 (THCS), whose administrator added items before the class was made:
self-study 26/11–02/12/2026, in person 03–04/12, follow-up 05–11/12 (Vietnam dates).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.attendance.service import clock
from app.classes.models import TrainingClass
from app.config import Settings
from app.core.db import Database
from app.grading.models import ModuleResultRow, ResultChange
from app.grading.service import ResultSweeper
from app.identity.models import ResourceLink
from app.learning.models import ItemProgress, QuizAttempt, Submission, SubmissionGrade
from app.passback.models import OutboxStatus, ScoreOutbox
from tests.conftest import TOOL_BASE_URL
from tests.helpers import module_id, new_class, sign_in
from tests.lti_platform import INST_ADMIN, INSTRUCTOR, LEARNER, SYS_ADMIN, TestPlatform

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
MB = 1024 * 1024

QUIZ = [
    {
        "text": "Mục tiêu bài học viết theo?",
        "choices": ["Nội dung", "Năng lực", "Giờ"],
        "answer": 2,
    },
    {"text": "KHBD có 4 hoạt động?", "choices": ["Đúng", "Sai"], "answer": 1},
]
MATERIALS: list[dict[str, Any]] = [
    {
        "phase": "self_study",
        "kind": "document",
        "title": "Đọc tài liệu mô đun 4",
        "url": "https://lms.test/doc/1",
        "key": "doc-1",
        "due_day": 3,
    },
    {
        "phase": "self_study",
        "kind": "video",
        "title": "Video bài giảng",
        "url": "https://lms.test/video/1",
        "key": "video-1",
    },
    {
        "phase": "self_study",
        "kind": "quiz",
        "title": "Tự kiểm tra",
        "key": "quiz-1",
        "questions": QUIZ,
        "due_day": 7,
    },
    {
        "phase": "self_study",
        "kind": "link",
        "title": "Đọc thêm",
        "url": "https://lms.test/extra",
        "key": "extra-1",
        "required": False,
    },
    {"phase": "self_study", "kind": "reflection", "title": "Suy ngẫm", "key": "reflect-1"},
    {
        "phase": "in_person",
        "kind": "slides",
        "title": "Slide buổi học",
        "url": "https://lms.test/slides",
        "key": "slides-1",
    },
    {
        "phase": "follow_up",
        "kind": "document",
        "title": "Hướng dẫn viết KHBD",
        "url": "https://lms.test/doc/2",
        "key": "doc-2",
    },
    {
        "phase": "follow_up",
        "kind": "assignment",
        "title": "Kế hoạch bài dạy",
        "key": "plan-1",
        "due_day": 3,
    },
    {
        "phase": "follow_up",
        "kind": "assignment",
        "title": "Minh chứng áp dụng",
        "key": "proof-1",
        "required": False,
        "late": "refuse",
        "submission": ["link", "file"],
        "due_day": 2,
    },
]
#: Required items that are not assignments, in both online phases (the self-study score).
SELF_STUDY_ITEMS = ["doc-1", "video-1", "quiz-1", "reflect-1", "doc-2"]


def vn(day: int, hh: int = 9, mm: int = 0, ss: int = 0, month: int = 12) -> datetime:
    """Vietnam wall-clock time in 2026, as aware UTC."""
    return datetime(2026, month, day, hh, mm, ss, tzinfo=UTC) - timedelta(hours=7)


@dataclass
class FakeClock:
    now: datetime

    def set(self, value: datetime) -> None:
        self.now = value


@dataclass
class Person:
    device: TestClient
    me: dict[str, Any]
    name: str

    @property
    def csrf(self) -> str:
        return str(self.me["csrf_token"])

    @property
    def id(self) -> int:
        return int(self.me["user_id"])


@dataclass
class World:
    admin: Person
    cls: int
    other_cls: int  # module 5, no items in blend727
    learners: list[Person]  # hv-1, hv-2: cohort of `trainer`; hv-3: cohort of `cohort_trainer`
    outsider: Person  # a learner of other_cls
    trainer: Person
    cohort_trainer: Person  # the other cohort of the same class
    other_trainer: Person  # trainer of other_cls
    enrolments: dict[int, int]  # user id → enrolment id
    sessions: list[int]
    upload_dir: Path
    clock: FakeClock

    def enrolment(self, person: Person) -> int:
        return self.enrolments[person.id]


@pytest.fixture()
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"upload_dir": tmp_path / "uploads", "max_upload_mb": 1})


@pytest.fixture()
def fake_clock(app: FastAPI) -> Iterator[FakeClock]:
    fake = FakeClock(vn(27, month=11))  # the second day of self-study
    app.dependency_overrides[clock] = lambda: fake.now
    yield fake
    app.dependency_overrides.pop(clock, None)


def _give_items(admin: TestClient, key: str, materials: list[dict[str, Any]]) -> None:
    """The administrator adds the items to the module (a new version) before making classes."""
    mid = module_id(admin, key)
    spec = admin.get(f"/api/v1/modules/{mid}").json()["spec"]
    r = admin.put(
        f"/api/v1/modules/{mid}", json={"spec": {**spec, "materials": materials}, "note": "items"}
    )
    assert r.status_code == 200, r.text
    assert [m["key"] for m in r.json()["spec"]["materials"]] == [m["key"] for m in materials]


@pytest.fixture()
def world(
    app: FastAPI,
    client: TestClient,
    platform: TestPlatform,
    fake_clock: FakeClock,
    settings: Settings,
) -> Iterator[World]:
    devices: list[TestClient] = []

    def person(roles: list[str], sub: str, name: str) -> Person:
        device = TestClient(app, base_url=TOOL_BASE_URL, follow_redirects=False)
        devices.append(device)
        return Person(device, sign_in(device, platform, roles, sub, name), name)

    learners = [
        person([LEARNER], "hv-1", "Nguyễn Thị Học"),
        person([LEARNER], "hv-2", "Lê Văn Hai"),
        person([LEARNER], "hv-3", "Phạm Thị Ba"),
    ]
    outsider = person([LEARNER], "hv-9", "Trần Lớp Khác")
    trainer = person([INSTRUCTOR], "cc-1", "Trần Cốt Cán")
    cohort_trainer = person([INSTRUCTOR], "cc-2", "Đỗ Nhóm Hai")
    other_trainer = person([INSTRUCTOR], "cc-9", "Võ Lớp Khác")
    me = sign_in(client, platform, [INST_ADMIN, SYS_ADMIN], "admin-1", "Lê Quản Trị")
    admin = Person(client, me, "Lê Quản Trị")

    _give_items(client, "gvpt-4", MATERIALS)
    cls = new_class(client)["id"]
    other_cls = new_class(
        client,
        code="M5-THCS-01",
        name="Mô đun 5 — THCS — lớp 1",
        module_id=module_id(client, "gvpt-5"),
    )["id"]

    enrolments: dict[int, int] = {}
    for c, people in ((cls, learners), (other_cls, [outsider])):
        for p in people:
            r = client.post(f"/api/v1/classes/{c}/enrolments", json={"user_id": p.id})
            assert r.status_code == 201, r.text
            enrolments[p.id] = r.json()["id"]
    for c, trainers in ((cls, [trainer, cohort_trainer]), (other_cls, [other_trainer])):
        for t in trainers:
            r = client.post(f"/api/v1/classes/{c}/trainers", json={"user_id": t.id})
            assert r.status_code == 201, r.text
    client.post(f"/api/v1/classes/{other_cls}/cohorts/split").raise_for_status()
    cohorts = client.post(f"/api/v1/classes/{cls}/cohorts/split").json()
    cohort_of = {c["trainer_user_id"]: c["id"] for c in cohorts}
    assert set(cohort_of) == {trainer.id, cohort_trainer.id}
    for p, t in zip(learners, (trainer, trainer, cohort_trainer), strict=True):
        r = client.post(
            f"/api/v1/classes/{cls}/cohorts/moves",
            json={"enrolment_id": enrolments[p.id], "cohort_id": cohort_of[t.id]},
        )
        assert r.status_code == 200, r.text
    detail = client.get(f"/api/v1/classes/{cls}").json()
    assert detail["schedule"] == {
        "self_study": ["2026-11-26", "2026-12-02"],
        "in_person": ["2026-12-03", "2026-12-04"],
        "follow_up": ["2026-12-05", "2026-12-11"],
    }
    yield World(
        admin=admin,
        cls=cls,
        other_cls=other_cls,
        learners=learners,
        outsider=outsider,
        trainer=trainer,
        cohort_trainer=cohort_trainer,
        other_trainer=other_trainer,
        enrolments=enrolments,
        sessions=[s["id"] for s in detail["sessions"]],
        upload_dir=settings.upload_dir,
        clock=fake_clock,
    )
    for device in devices:
        device.close()


# -- what people do --------------------------------------------------------------------------


def me(w: World, p: Person, cls: int | None = None) -> dict[str, Any]:
    r = p.device.get(f"/api/v1/learning/classes/{cls or w.cls}/me")
    assert r.status_code == 200, r.text
    return r.json()


def item(w: World, p: Person, key: str) -> dict[str, Any]:
    return next(i for i in me(w, p)["items"] if i["key"] == key)


def tick(w: World, p: Person, key: str, done: bool = True, csrf: str | None = None):
    return p.device.post(
        f"/learn/classes/{w.cls}/items/{key}/done",
        data={"csrf_token": p.csrf if csrf is None else csrf, "done": "1" if done else "0"},
    )


def quiz(w: World, p: Person, answers: dict[str, str], key: str = "quiz-1"):
    """Answer a quiz as a browser does: post, then follow the redirect to the answers."""
    r = p.device.post(
        f"/learn/classes/{w.cls}/items/{key}/quiz", data={"csrf_token": p.csrf, **answers}
    )
    if r.status_code == 303:
        assert r.headers["location"].endswith(f"/items/{key}?answered=1")
        r = p.device.get(r.headers["location"])
    return r


def hand_in(
    w: World,
    p: Person,
    key: str,
    *,
    text: str | None = None,
    link: str | None = None,
    file: tuple[str, bytes, str] | None = None,
    cls: int | None = None,
):
    """The hand-in form as a browser posts it (multipart; an empty file input when no file)."""
    data = {"csrf_token": p.csrf}
    if text is not None:
        data["text"] = text
    if link is not None:
        data["link"] = link
    files = {"file": file or ("", b"", "application/octet-stream")}
    return p.device.post(
        f"/learn/classes/{cls or w.cls}/items/{key}/hand-in", data=data, files=files
    )


def grade(p: Person, submission_id: int, score: str, feedback: str = ""):
    return p.device.post(
        f"/grading/submissions/{submission_id}/grade",
        data={"csrf_token": p.csrf, "score": score, "feedback": feedback},
    )


def result(w: World, p: Person, learner: Person) -> dict[str, Any]:
    """The learner's result as the class results API gives it to ``p``."""
    r = p.device.get(f"/api/v1/grading/classes/{w.cls}/results")
    assert r.status_code == 200, r.text
    return next(x for x in r.json()["results"] if x["user_id"] == learner.id)


def history(p: Person, enrolment: int) -> list[dict[str, Any]]:
    r = p.device.get(f"/api/v1/grading/enrolments/{enrolment}/history")
    assert r.status_code == 200, r.text
    return list(r.json()["changes"])


def stored_files(w: World) -> list[Path]:
    if not w.upload_dir.exists():
        return []
    return sorted(p for p in w.upload_dir.rglob("*") if p.is_file())


def count(db: Session, model: type, **where: Any) -> int:
    db.expire_all()
    stmt = select(func.count()).select_from(model)
    for name, value in where.items():
        stmt = stmt.where(getattr(model, name) == value)
    return int(db.scalar(stmt) or 0)


def row_of(html: str, enrolment: int) -> list[str]:
    """The numeric cells of one learner's row on the grading class page."""
    rows = re.findall(r"<tr>(.*?)</tr>", html, flags=re.S)
    row = next(r for r in rows if f'href="/grading/enrolments/{enrolment}"' in r)
    return [c.strip() for c in re.findall(r"<td class=\"num\"[^>]*>(.*?)</td>", row, flags=re.S)]


def score_text(value: str) -> list[str]:
    """How a score may be written on a page (7,25 in Vietnamese, 7.25 in English)."""
    return [value, value.replace(".", ",")]


def shown(html: str, value: str) -> bool:
    return any(v in html for v in score_text(value))


def everyone_present(w: World) -> None:
    for session_id in w.sessions:
        r = w.admin.device.put(
            f"/api/v1/attendance/sessions/{session_id}/marks", json={"rest": "present"}
        )
        assert r.status_code == 200, r.text


# -- 1. items and progress -------------------------------------------------------------------


class TestLearnerSeesTheItemsOfTheirClass:
    def test_items_per_phase_with_due_dates_from_the_schedule(self, world: World) -> None:
        w = world
        hv1 = w.learners[0]
        landing = hv1.device.get("/learn")
        assert landing.status_code == 303
        assert landing.headers["location"] == f"/learn/classes/{w.cls}"

        data = me(w, hv1)
        assert data["enrolment_id"] == w.enrolment(hv1)
        items = {i["key"]: i for i in data["items"]}
        assert list(items) == [m["key"] for m in MATERIALS]
        assert {k: (i["phase"], i["mode"], i["due_on"]) for k, i in items.items()} == {
            "doc-1": ("self_study", "manual", "2026-11-28"),  # day 3 of self-study
            "video-1": ("self_study", "manual", "2026-12-02"),  # default: the phase's last day
            "quiz-1": ("self_study", "quiz", "2026-12-02"),
            "extra-1": ("self_study", "manual", "2026-12-02"),
            "reflect-1": ("self_study", "reflection", "2026-12-02"),
            "slides-1": ("in_person", "manual", "2026-12-04"),
            "doc-2": ("follow_up", "manual", "2026-12-11"),
            "plan-1": ("follow_up", "assignment", "2026-12-07"),
            "proof-1": ("follow_up", "assignment", "2026-12-06"),
        }
        # Due at the end of the day in Vietnam: 23:59:59 +07:00 is 16:59:59 UTC.
        assert items["doc-1"]["due_at"] == "2026-11-28T16:59:59+00:00"
        assert not any(i["done"] or i["overdue"] for i in items.values())
        assert data["progress"] == {
            "self_study": {"done": 0, "total": 4, "percent": 0},
            "follow_up": {"done": 0, "total": 2, "percent": 0},
        }

        page = hv1.device.get(f"/learn/classes/{w.cls}")
        assert page.status_code == 200
        html = page.text
        for m in MATERIALS:
            assert f'id="item-{m["key"]}"' in html
            assert m["title"] in html
        assert "28/11/2026" in html and "07/12/2026" in html
        # tick buttons: the readings of the online phases, optional ones too (not in-person)
        assert html.count('action="/learn/classes/') == 4
        assert "<script" not in html

    def test_my_learning_lists_every_class_of_a_learner(self, world: World) -> None:
        w = world
        hv1 = w.learners[0]
        r = w.admin.device.post(
            f"/api/v1/classes/{w.other_cls}/enrolments", json={"user_id": hv1.id}
        )
        assert r.status_code == 201
        page = hv1.device.get("/learn")
        assert page.status_code == 200
        assert f'href="/learn/classes/{w.cls}"' in page.text
        assert f'href="/learn/classes/{w.other_cls}"' in page.text
        other = me(w, hv1, w.other_cls)
        assert other["items"] == []
        assert other["progress"]["self_study"] == {"done": 0, "total": 0, "percent": None}
        assert hv1.device.get(f"/learn/classes/{w.other_cls}").status_code == 200
        nobody = w.trainer.device.get("/learn")
        assert nobody.status_code == 200 and "/learn/classes/" not in nobody.text

    def test_an_item_is_overdue_after_its_due_day_in_vietnam(self, world: World) -> None:
        w = world
        hv1 = w.learners[0]
        w.clock.set(vn(28, 23, 59, 59, month=11))
        assert item(w, hv1, "doc-1")["overdue"] is False
        w.clock.set(vn(29, 0, 0, 1, month=11))
        assert item(w, hv1, "doc-1")["overdue"] is True
        page = hv1.device.get(f"/learn/classes/{w.cls}").text
        assert re.search(r'id="item-doc-1" class="item overdue"', page)
        tick(w, hv1, "doc-1")
        assert item(w, hv1, "doc-1")["overdue"] is False

    def test_only_required_online_items_fall_overdue(self, world: World) -> None:
        w = world
        hv1 = w.learners[0]
        w.clock.set(vn(5))
        overdue = {i["key"] for i in me(w, hv1)["items"] if i["overdue"]}
        # Not the optional reading, nor the slides of the in-person days (no tick box).
        assert overdue == {"doc-1", "video-1", "quiz-1", "reflect-1"}
        page = hv1.device.get(f"/learn/classes/{w.cls}").text
        assert 'id="item-slides-1" class="item"' in page
        assert 'id="item-extra-1" class="item"' in page

    def test_a_learner_on_their_own_dates_gets_their_own_due_dates(self, world: World) -> None:
        w = world
        hv3 = w.learners[2]
        r = w.admin.device.post(
            f"/api/v1/classes/{w.cls}/enrolments/{w.enrolment(hv3)}/shifts",
            json={"delay_days": 7, "reason": "Nghỉ ốm"},
        )
        assert r.status_code == 201, r.text
        own = r.json()["schedule"]
        assert own["follow_up_start"] > "2026-12-05"
        mine = {i["key"]: i["due_on"] for i in me(w, hv3)["items"]}
        others = {i["key"]: i["due_on"] for i in me(w, w.learners[0])["items"]}
        assert mine["plan-1"] > others["plan-1"] == "2026-12-07"
        w.clock.set(vn(8, 10))  # late for the class, not for hv-3
        assert hand_in(w, hv3, "plan-1", text="Theo lịch riêng").status_code == 303
        assert item(w, hv3, "plan-1")["submission"]["late"] is False

    def test_a_reading_marked_done_and_undone_moves_progress_everywhere(
        self, world: World, db: Session
    ) -> None:
        w = world
        hv1, hv2 = w.learners[0], w.learners[1]
        e1 = w.enrolment(hv1)

        r = tick(w, hv1, "doc-1")
        assert r.status_code == 303
        assert r.headers["location"] == f"/learn/classes/{w.cls}#item-doc-1"
        doc = item(w, hv1, "doc-1")
        assert doc["done"] is True
        assert doc["done_at"] == w.clock.now.isoformat()
        assert me(w, hv1)["progress"]["self_study"] == {"done": 1, "total": 4, "percent": 25}
        assert me(w, hv2)["progress"]["self_study"]["done"] == 0  # only their own

        page = hv1.device.get(f"/learn/classes/{w.cls}").text
        assert re.search(r'<progress class="phase-progress" max="100" value="25">', page)
        assert re.search(r'id="item-doc-1" class="item done"', page)
        assert 'name="done" value="0"' in page  # it can be unticked

        for viewer in (w.trainer, w.admin):
            html = viewer.device.get(f"/grading/classes/{w.cls}")
            assert html.status_code == 200
            assert row_of(html.text, e1)[:2] == ["25%", "0%"]
            api = viewer.device.get(f"/api/v1/learning/classes/{w.cls}/progress").json()
            mine = next(x for x in api["learners"] if x["enrolment_id"] == e1)
            assert mine["progress"]["self_study"]["percent"] == 25
        # Each trainer sees their own cohort, the administrator the whole class.
        cohort = w.trainer.device.get(f"/api/v1/learning/classes/{w.cls}/progress").json()
        assert cohort["whole_class"] is False
        assert {x["user_id"] for x in cohort["learners"]} == {hv1.id, hv2.id}
        whole = w.admin.device.get(f"/api/v1/learning/classes/{w.cls}/progress").json()
        assert whole["whole_class"] is True
        assert {x["user_id"] for x in whole["learners"]} == {p.id for p in w.learners}
        other_cohort = w.cohort_trainer.device.get(f"/grading/classes/{w.cls}").text
        assert f'href="/grading/enrolments/{e1}"' not in other_cohort

        again = w.learners[0].device.put(
            f"/api/v1/learning/classes/{w.cls}/items/doc-1/done", json={"done": True}
        )
        assert again.json() == {"key": "doc-1", "done": True, "changed": False}
        assert count(db, ItemProgress, enrolment_id=e1) == 1

        r = tick(w, hv1, "doc-1", done=False)
        assert r.status_code == 303
        assert item(w, hv1, "doc-1")["done"] is False
        assert me(w, hv1)["progress"]["self_study"]["percent"] == 0
        assert row_of(w.trainer.device.get(f"/grading/classes/{w.cls}").text, e1)[0] == "0%"
        assert count(db, ItemProgress, enrolment_id=e1) == 0

    def test_optional_items_and_in_person_resources_do_not_count(self, world: World) -> None:
        w = world
        hv1 = w.learners[0]
        assert tick(w, hv1, "extra-1").status_code == 303
        data = me(w, hv1)
        assert next(i for i in data["items"] if i["key"] == "extra-1")["done"] is True
        assert data["progress"]["self_study"] == {"done": 0, "total": 4, "percent": 0}
        slides = hv1.device.put(
            f"/api/v1/learning/classes/{w.cls}/items/slides-1/done", json={"done": True}
        )
        assert slides.status_code == 200
        assert me(w, hv1)["progress"]["self_study"]["done"] == 0

    def test_items_recorded_by_the_tool_cannot_be_ticked_by_hand(
        self, world: World, db: Session
    ) -> None:
        w = world
        hv1 = w.learners[0]
        for key in ("quiz-1", "reflect-1", "plan-1"):
            r = hv1.device.put(
                f"/api/v1/learning/classes/{w.cls}/items/{key}/done", json={"done": True}
            )
            assert r.status_code == 409, (key, r.text)
        assert count(db, ItemProgress, enrolment_id=w.enrolment(hv1)) == 0

    def test_a_reading_has_no_hand_in_form(self, world: World) -> None:
        w = world
        page = w.learners[0].device.get(f"/learn/classes/{w.cls}/items/doc-1")
        assert page.status_code == 200
        assert "/hand-in" not in page.text
        assert 'href="https://lms.test/doc/1"' in page.text

    def test_a_learner_of_another_class_gets_403(self, world: World, db: Session) -> None:
        w = world
        out = w.outsider
        assert out.device.get(f"/learn/classes/{w.cls}").status_code == 403
        assert out.device.get(f"/learn/classes/{w.cls}/items/quiz-1").status_code == 403
        assert out.device.get(f"/api/v1/learning/classes/{w.cls}/me").status_code == 403
        assert tick(w, out, "doc-1").status_code == 403
        assert quiz(w, out, {"q0": "2", "q1": "1"}).status_code == 403
        refused = hand_in(w, out, "plan-1", file=("bai.pdf", PDF, "application/pdf"))
        assert refused.status_code == 403
        assert stored_files(w) == []
        api = out.device.post(
            f"/api/v1/learning/classes/{w.cls}/items/plan-1/submissions", json={"text": "x"}
        )
        assert api.status_code == 403
        # Trainers and administrators follow learners; they have no items of their own here.
        assert w.trainer.device.get(f"/learn/classes/{w.cls}").status_code == 403
        assert count(db, ItemProgress) == 0
        assert count(db, QuizAttempt) == 0
        assert count(db, Submission) == 0
        # A learner does not open the trainer's pages.
        assert out.device.get(f"/grading/classes/{w.other_cls}").status_code == 403
        assert out.device.get(f"/api/v1/learning/classes/{w.other_cls}/progress").status_code == 403

    def test_an_unknown_item_or_class_is_404(self, world: World) -> None:
        w = world
        hv1 = w.learners[0]
        base = f"/learn/classes/{w.cls}/items/no-such-item"
        assert hv1.device.get(base).status_code == 404
        assert tick(w, hv1, "no-such-item").status_code == 404
        assert quiz(w, hv1, {"q0": "1"}, key="no-such-item").status_code == 404
        assert hand_in(w, hv1, "no-such-item", text="x").status_code == 404
        api = f"/api/v1/learning/classes/{w.cls}/items/no-such-item"
        assert hv1.device.put(f"{api}/done", json={"done": True}).status_code == 404
        assert hv1.device.post(f"{api}/quiz", json={"answers": {"0": 1}}).status_code == 404
        assert hv1.device.post(f"{api}/submissions", json={"text": "x"}).status_code == 404
        assert hv1.device.get("/learn/classes/999999").status_code == 404
        assert hv1.device.get("/learn/files/999999").status_code == 404

    def test_a_tick_without_the_form_token_is_refused(self, world: World, db: Session) -> None:
        w = world
        hv1 = w.learners[0]
        assert tick(w, hv1, "doc-1", csrf="").status_code == 403
        assert tick(w, hv1, "doc-1", csrf=w.learners[1].csrf).status_code == 403
        del hv1.device.headers["X-CSRF-Token"]
        r = hv1.device.put(
            f"/api/v1/learning/classes/{w.cls}/items/doc-1/done", json={"done": True}
        )
        assert r.status_code == 403
        assert count(db, ItemProgress) == 0


# -- 2. self-check quizzes -------------------------------------------------------------------


class TestSelfCheckQuiz:
    def test_answers_are_graded_done_whatever_the_score_and_the_best_is_shown(
        self, world: World, db: Session
    ) -> None:
        w = world
        hv1 = w.learners[0]
        form = hv1.device.get(f"/learn/classes/{w.cls}/items/quiz-1")
        assert form.status_code == 200
        assert form.text.count('type="radio"') == 5
        assert 'name="q0" value="3"' in form.text and 'name="q1" value="2"' in form.text

        wrong = quiz(w, hv1, {"q0": "1", "q1": "2"})  # both wrong
        assert wrong.status_code == 200
        assert wrong.text.count("status-fail") == 2 and "status-pass" not in wrong.text
        state = item(w, hv1, "quiz-1")
        assert state["done"] is True  # a self-check: done whatever the score
        assert state["quiz_best"] == {"correct": 0, "total": 2}
        assert me(w, hv1)["progress"]["self_study"]["done"] == 1

        right = hv1.device.post(
            f"/api/v1/learning/classes/{w.cls}/items/quiz-1/quiz",
            json={"answers": {"0": 2, "1": 1}},
        )
        assert right.json() == {"key": "quiz-1", "correct": 2, "total": 2, "score": "10.00"}
        half = quiz(w, hv1, {"q0": "2"})  # an unanswered question counts as wrong
        assert half.status_code == 200 and half.text.count("status-pass") == 1
        assert item(w, hv1, "quiz-1")["quiz_best"] == {"correct": 2, "total": 2}
        assert "2/2" in hv1.device.get(f"/learn/classes/{w.cls}").text
        assert count(db, QuizAttempt, enrolment_id=w.enrolment(hv1)) == 3
        rows = db.scalars(select(QuizAttempt).order_by(QuizAttempt.id)).all()
        assert [r.answers for r in rows] == [[1, 2], [2, 1], [2, None]]
        # One completion only; taking it again keeps the first completion time.
        assert count(db, ItemProgress, enrolment_id=w.enrolment(hv1)) == 1

    @pytest.mark.parametrize(
        "answers",
        [{"q0": "4"}, {"q0": "0"}, {"q1": "3"}, {"q2": "1"}, {"q0": "two"}, {"q0": "-1"}],
        ids=["past-last-choice", "zero", "past-last-choice-q1", "no-such-question", "nan", "neg"],
    )
    def test_an_answer_out_of_range_is_422_and_nothing_is_written(
        self, world: World, db: Session, answers: dict[str, str]
    ) -> None:
        w = world
        hv1 = w.learners[0]
        r = quiz(w, hv1, {"q1": "1", **answers})
        assert r.status_code == 422
        assert count(db, QuizAttempt) == 0
        assert count(db, ItemProgress) == 0
        assert item(w, hv1, "quiz-1")["done"] is False

    def test_an_api_answer_out_of_range_is_422(self, world: World, db: Session) -> None:
        w = world
        url = f"/api/v1/learning/classes/{w.cls}/items/quiz-1/quiz"
        device = w.learners[0].device
        assert device.post(url, json={"answers": {"0": 9}}).status_code == 422
        assert device.post(url, json={"answers": {"7": 1}}).status_code == 422
        assert device.post(url, json={"answers": {"0": "x"}}).status_code == 422
        assert count(db, QuizAttempt) == 0

    def test_a_reading_is_not_a_quiz(self, world: World) -> None:
        w = world
        assert quiz(w, w.learners[0], {"q0": "1"}, key="doc-1").status_code == 409


# -- 3. hand-ins -----------------------------------------------------------------------------


class TestHandIn:
    def test_text_link_and_file_each_resubmission_is_a_new_attempt(
        self, world: World, db: Session
    ) -> None:
        w = world
        hv1 = w.learners[0]
        w.clock.set(vn(6))
        r = hand_in(w, hv1, "plan-1", text="  Kế hoạch bài dạy Toán 7, bản nháp  ")
        assert r.status_code == 303
        assert r.headers["location"] == f"/learn/classes/{w.cls}/items/plan-1?saved=1"
        first = item(w, hv1, "plan-1")
        assert first["done"] is True
        assert first["submission"]["attempt"] == 1
        assert first["submission"]["text"] == "Kế hoạch bài dạy Toán 7, bản nháp"
        assert first["submission"]["late"] is False
        assert me(w, hv1)["progress"]["follow_up"] == {"done": 1, "total": 2, "percent": 50}

        api = hv1.device.post(
            f"/api/v1/learning/classes/{w.cls}/items/plan-1/submissions",
            json={"link": "https://docs.example.vn/khbd-toan-7"},
        )
        assert api.status_code == 201, api.text
        assert api.json()["attempt"] == 2 and api.json()["late"] is False
        assert isinstance(api.json()["id"], int)

        r = hand_in(
            w, hv1, "plan-1", text="Bản cuối", file=("KHBD Toán 7.pdf", PDF, "application/pdf")
        )
        assert r.status_code == 303
        latest = item(w, hv1, "plan-1")["submission"]
        assert latest["attempt"] == 3 and latest["has_file"] is True
        assert latest["file_name"] == "KHBD Toán 7.pdf" and latest["text"] == "Bản cuối"
        files = stored_files(w)
        assert len(files) == 1 and files[0].read_bytes() == PDF
        assert count(db, Submission, enrolment_id=w.enrolment(hv1)) == 3

        page = hv1.device.get(f"/learn/classes/{w.cls}/items/plan-1?saved=1").text
        assert page.count('<div class="submission">') == 3  # every attempt is kept
        assert f'href="/learn/files/{latest["id"]}"' in page
        assert "https://docs.example.vn/khbd-toan-7" in page
        assert 'role="status"' in page

    def test_a_reflection_is_written_text_and_counts_as_done(self, world: World) -> None:
        w = world
        hv1 = w.learners[0]
        assert hand_in(w, hv1, "reflect-1", link="https://x.vn/a").status_code == 422
        assert hand_in(w, hv1, "reflect-1", text="Tôi học được…").status_code == 303
        assert item(w, hv1, "reflect-1")["done"] is True
        assert me(w, hv1)["progress"]["self_study"]["done"] == 1

    def test_late_after_the_due_day_in_vietnam(self, world: World) -> None:
        w = world
        hv1, hv2 = w.learners[0], w.learners[1]
        w.clock.set(vn(7, 23, 59, 59))  # plan-1 is due on 07/12
        assert hand_in(w, hv1, "plan-1", text="Đúng hạn").status_code == 303
        assert item(w, hv1, "plan-1")["submission"]["late"] is False
        w.clock.set(vn(8, 0, 0, 30))
        assert hand_in(w, hv2, "plan-1", text="Muộn nửa phút").status_code == 303
        late = item(w, hv2, "plan-1")["submission"]
        assert late["late"] is True
        assert re.search(
            r"status-fail\">[^<]+</span>",
            w.trainer.device.get(f"/grading/enrolments/{w.enrolment(hv2)}").text,
        )

    def test_dates_on_the_pages_are_vietnam_dates(self, world: World) -> None:
        w = world
        hv1 = w.learners[0]
        e1 = w.enrolment(hv1)
        w.clock.set(vn(8, 6, 15))  # 23:15 UTC on 07/12: late, handed in on 08/12 in Vietnam
        assert hand_in(w, hv1, "plan-1", text="Sáng sớm").status_code == 303
        assert tick(w, hv1, "doc-2").status_code == 303
        sub = item(w, hv1, "plan-1")["submission"]
        assert sub["late"] is True
        learner = hv1.device.get(f"/learn/classes/{w.cls}").text
        mine = hv1.device.get(f"/learn/classes/{w.cls}/items/plan-1").text
        w.clock.set(vn(9, 5, 45))
        grade(w.trainer, sub["id"], "8")
        trainer = w.trainer.device.get(f"/grading/enrolments/{e1}").text
        for html in (learner, mine, trainer):
            assert "08/12/2026" in html and "07/12/2026 ·" not in html
        assert "09/12/2026 05:45" in trainer  # the audit trail: day and time in Vietnam

    def test_refused_after_the_due_date_when_the_item_accepts_no_late_work(
        self, world: World, db: Session
    ) -> None:
        w = world
        hv1, hv2 = w.learners[0], w.learners[1]
        url = f"/api/v1/learning/classes/{w.cls}/items/proof-1/submissions"
        w.clock.set(vn(6, 22))  # proof-1 is due on 06/12
        assert hv1.device.post(url, json={"link": "https://x.vn/proof"}).status_code == 201
        w.clock.set(vn(7, 8))
        refused = hv2.device.post(url, json={"link": "https://x.vn/proof"})
        assert refused.status_code == 409
        assert refused.json()["code"] == "deadline_passed"
        page = hand_in(w, hv2, "proof-1", file=("minh-chung.pdf", PDF, "application/pdf"))
        assert page.status_code == 409
        assert count(db, Submission, enrolment_id=w.enrolment(hv2)) == 0
        assert stored_files(w) == []  # the file of the refused hand-in is removed again
        assert item(w, hv2, "proof-1")["done"] is False

    def test_refused_once_graded(self, world: World, db: Session) -> None:
        w = world
        hv1 = w.learners[0]
        w.clock.set(vn(6))
        hand_in(w, hv1, "plan-1", text="Bản cuối")
        sub = item(w, hv1, "plan-1")["submission"]["id"]
        assert grade(w.trainer, sub, "8").status_code == 303
        again = hand_in(w, hv1, "plan-1", file=("sua.pdf", PDF, "application/pdf"))
        assert again.status_code == 409
        api = hv1.device.post(
            f"/api/v1/learning/classes/{w.cls}/items/plan-1/submissions", json={"text": "sửa"}
        )
        assert api.status_code == 409 and api.json()["code"] == "already_graded"
        assert count(db, Submission, enrolment_id=w.enrolment(hv1)) == 1
        assert stored_files(w) == []
        page = hv1.device.get(f"/learn/classes/{w.cls}/items/plan-1").text
        assert "/hand-in" not in page  # no form any more

    @pytest.mark.parametrize("name", ["plan.exe", "plan.pdf.exe", "plan.html", "plan", ".pdf"])
    def test_a_file_type_not_allowed_is_422_and_nothing_is_kept(
        self, world: World, db: Session, name: str
    ) -> None:
        w = world
        r = hand_in(w, w.learners[0], "plan-1", file=(name, PDF, "application/pdf"))
        assert r.status_code == 422
        assert stored_files(w) == []
        assert count(db, Submission) == 0
        assert count(db, ItemProgress) == 0

    def test_a_file_over_the_size_cap_is_413_and_nothing_is_kept(
        self, world: World, db: Session
    ) -> None:
        w = world
        hv1 = w.learners[0]
        head = b"%PDF-1.4\n"  # a PDF's first bytes: only the size is wrong

        def pdf(size: int) -> bytes:
            return head + b"x" * (size - len(head))

        just_over = hand_in(w, hv1, "plan-1", file=("big.pdf", pdf(MB + 1), "application/pdf"))
        assert just_over.status_code == 413
        far_over = hand_in(w, hv1, "plan-1", file=("huge.pdf", pdf(3 * MB), "application/pdf"))
        assert far_over.status_code == 413
        assert stored_files(w) == []
        assert count(db, Submission) == 0
        exactly = hand_in(w, hv1, "plan-1", file=("max.pdf", pdf(MB), "application/pdf"))
        assert exactly.status_code == 303
        assert [p.stat().st_size for p in stored_files(w)] == [MB]

    def test_an_empty_hand_in_is_422(self, world: World, db: Session) -> None:
        w = world
        hv1 = w.learners[0]
        assert hand_in(w, hv1, "plan-1").status_code == 422
        assert hand_in(w, hv1, "plan-1", text="   \n ", link="").status_code == 422
        assert (
            hand_in(w, hv1, "plan-1", file=("empty.pdf", b"", "application/pdf")).status_code == 422
        )
        api = f"/api/v1/learning/classes/{w.cls}/items/plan-1/submissions"
        assert hv1.device.post(api, json={}).status_code == 422
        assert hv1.device.post(api, json={"text": " ", "link": None}).status_code == 422
        assert count(db, Submission) == 0
        assert stored_files(w) == []

    def test_what_the_item_does_not_take_is_422(self, world: World, db: Session) -> None:
        w = world
        hv1 = w.learners[0]
        w.clock.set(vn(5))
        assert hand_in(w, hv1, "proof-1", text="chỉ nhận link hoặc tệp").status_code == 422
        with_file = hand_in(w, hv1, "proof-1", text="x", file=("a.pdf", PDF, "application/pdf"))
        assert with_file.status_code == 422
        assert stored_files(w) == []  # stored while the form was read, removed on refusal
        for bad in ("javascript:alert(1)", "ftp://x.vn/a", "https://", "http://a b.vn"):
            assert hand_in(w, hv1, "plan-1", link=bad).status_code == 422, bad
        assert hand_in(w, hv1, "doc-1", text="đây là bài đọc").status_code == 409
        assert count(db, Submission) == 0

    def test_download_by_the_learner_their_trainer_and_an_administrator_only(
        self, world: World
    ) -> None:
        w = world
        hv1 = w.learners[0]
        w.clock.set(vn(6))
        hand_in(w, hv1, "plan-1", file=("..\\..\\Kế hoạch.pdf", PDF, "application/pdf"))
        sub = item(w, hv1, "plan-1")["submission"]
        assert sub["file_name"] == "Kế hoạch.pdf"  # no path parts kept
        url = f"/learn/files/{sub['id']}"
        for who in (hv1, w.trainer, w.admin):
            r = who.device.get(url)
            assert r.status_code == 200, who.name
            assert r.content == PDF
            assert r.headers["content-disposition"].startswith("attachment;")
            assert (
                "filename*=utf-8''K%E1%BA%BF%20ho%E1%BA%A1ch.pdf"
                in r.headers["content-disposition"]
            )
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["content-type"] == "application/pdf"
        for who in (w.learners[1], w.outsider, w.cohort_trainer, w.other_trainer):
            assert who.device.get(url).status_code in (403, 404), who.name
        assert w.learners[1].device.get(url).status_code == 403
        assert w.cohort_trainer.device.get(url).status_code == 403

    def test_a_hand_in_without_a_file_has_nothing_to_download(self, world: World) -> None:
        w = world
        hv1 = w.learners[0]
        hand_in(w, hv1, "plan-1", text="chỉ có chữ")
        sub = item(w, hv1, "plan-1")["submission"]["id"]
        assert hv1.device.get(f"/learn/files/{sub}").status_code == 404

    def test_a_hand_in_without_the_form_token_keeps_nothing(
        self, world: World, db: Session
    ) -> None:
        w = world
        hv1 = w.learners[0]
        r = hv1.device.post(
            f"/learn/classes/{w.cls}/items/plan-1/hand-in",
            data={"text": "x"},
            files={"file": ("a.pdf", PDF, "application/pdf")},
        )
        assert r.status_code == 403
        assert stored_files(w) == [] and count(db, Submission) == 0


# -- 4. grading and the module result --------------------------------------------------------


def _handed_in(w: World, learner: Person, *texts: str) -> list[int]:
    """Hand in ``texts`` in turn; the submission ids, oldest first."""
    ids = []
    for text in texts:
        assert hand_in(w, learner, "plan-1", text=text).status_code == 303
        ids.append(item(w, learner, "plan-1")["submission"]["id"])
    return ids


def _all_self_study_done(w: World, learner: Person) -> None:
    for key in ("doc-1", "video-1", "doc-2"):
        assert tick(w, learner, key).status_code == 303
    assert quiz(w, learner, {"q0": "1"}).status_code == 200
    assert hand_in(w, learner, "reflect-1", text="Suy ngẫm").status_code == 303


class TestTrainerGrades:
    def test_the_newest_hand_in_is_graded_and_becomes_the_follow_up_component(
        self, world: World, db: Session
    ) -> None:
        w = world
        hv1 = w.learners[0]
        e1 = w.enrolment(hv1)
        w.clock.set(vn(6))
        old, new = _handed_in(w, hv1, "Bản nháp", "Bản cuối")
        page = w.trainer.device.get(f"/grading/enrolments/{e1}")
        assert page.status_code == 200
        assert f'action="/grading/submissions/{new}/grade"' in page.text
        assert f'action="/grading/submissions/{old}/grade"' not in page.text
        klass = w.trainer.device.get(f"/grading/classes/{w.cls}").text
        assert row_of(klass, e1)[2] == "<strong>1</strong>"  # one hand-in to grade

        stale = grade(w.trainer, old, "9")
        assert stale.status_code == 409
        assert count(db, SubmissionGrade) == 0

        w.clock.set(vn(8, 14))
        r = grade(w.trainer, new, "7,5", "Mục tiêu rõ, cần thêm hoạt động luyện tập.")
        assert r.status_code == 303
        assert r.headers["location"] == f"/grading/enrolments/{e1}?saved=grade#item-plan-1"
        mine = item(w, hv1, "plan-1")
        assert mine["grade"] == {
            "score": "7.50",
            "feedback": "Mục tiêu rõ, cần thêm hoạt động luyện tập.",
        }
        assert me(w, hv1)["result"]["follow_up"] == "7.50"
        assert result(w, w.trainer, hv1)["follow_up"] == "7.50"
        assert row_of(w.trainer.device.get(f"/grading/classes/{w.cls}").text, e1)[2] == "0"
        learner_page = hv1.device.get(f"/learn/classes/{w.cls}/items/plan-1").text
        assert shown(learner_page, "7.50") and "cần thêm hoạt động" in learner_page
        changes = history(w.trainer, e1)
        assert [(c["field"], c["old"], c["new"], c["by"]) for c in changes] == [
            ("item:plan-1", None, "7.50", "Trần Cốt Cán")
        ]

        regrade = w.trainer.device.post(
            f"/api/v1/grading/submissions/{new}/grade", json={"score": 8}
        )
        assert regrade.status_code == 200, regrade.text
        assert regrade.json()["grade"]["score"] == "8.00"
        assert regrade.json()["result"]["components"]["follow_up"] == "8.00"
        assert count(db, SubmissionGrade, enrolment_id=e1) == 2  # a regrade keeps the first
        assert next((c["old"], c["new"]) for c in history(w.trainer, e1)) == ("7.50", "8.00")
        same = w.trainer.device.post(
            f"/api/v1/grading/submissions/{new}/grade", json={"score": "8.0"}
        )
        assert same.status_code == 422  # nothing would change

    @pytest.mark.parametrize("score", ["11", "-1", "7,555", "bảy", "", "nan", "inf"])
    def test_a_grade_that_is_not_0_to_10_is_422(
        self, world: World, db: Session, score: str
    ) -> None:
        w = world
        w.clock.set(vn(6))
        (sub,) = _handed_in(w, w.learners[0], "Bản cuối")
        assert grade(w.trainer, sub, score).status_code == 422
        assert count(db, SubmissionGrade) == 0

    def test_a_trainer_of_another_cohort_or_class_gets_403(self, world: World, db: Session) -> None:
        w = world
        hv1 = w.learners[0]
        e1 = w.enrolment(hv1)
        w.clock.set(vn(6))
        (sub,) = _handed_in(w, hv1, "Bản cuối")
        for who in (w.cohort_trainer, w.other_trainer):
            assert grade(who, sub, "9").status_code == 403, who.name
            api = who.device.post(f"/api/v1/grading/submissions/{sub}/grade", json={"score": 9})
            assert api.status_code == 403
            assert who.device.get(f"/grading/enrolments/{e1}").status_code == 403
            assert who.device.get(f"/api/v1/grading/enrolments/{e1}/history").status_code == 403
            override = who.device.put(
                f"/api/v1/grading/enrolments/{e1}/override",
                json={"score": "9", "classification": "complete", "reason": "x"},
            )
            assert override.status_code == 403
        assert w.other_trainer.device.get(f"/grading/classes/{w.cls}").status_code == 403
        # A learner cannot grade, not even their own work.
        assert grade(hv1, sub, "10").status_code == 403
        assert count(db, SubmissionGrade) == 0
        assert count(db, ResultChange) == 0


class TestModuleResult:
    def test_complete_only_when_every_component_reaches_the_pass_mark(
        self, world: World, db: Session
    ) -> None:
        w = world
        hv1 = w.learners[0]
        e1 = w.enrolment(hv1)
        everyone_present(w)
        _all_self_study_done(w, hv1)
        w.clock.set(vn(6))
        (sub,) = _handed_in(w, hv1, "Bản cuối")
        before = result(w, w.trainer, hv1)
        assert (before["self_study"], before["attendance"], before["follow_up"]) == (
            "10.00",
            "10.00",
            None,
        )
        assert before["classification"] == "incomplete" and before["score"] is None

        assert grade(w.trainer, sub, "4,5").status_code == 303
        low = result(w, w.trainer, hv1)
        # 0.3 × 10 + 0.2 × 10 + 0.5 × 4.5 = 7.25, but follow-up is below 5: not complete.
        assert (low["follow_up"], low["score"], low["classification"]) == (
            "4.50",
            "7.25",
            "not_complete",
        )
        assert low["final"] is True
        page = w.trainer.device.get(f"/grading/enrolments/{e1}").text
        pairs = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", page, flags=re.S))
        values = list(pairs.values())
        assert values[0] in score_text("10.00") and values[1] in score_text("10.00")
        assert values[2] in score_text("4.50")
        assert any(v in values[3] for v in score_text("7.25"))
        assert me(w, hv1)["result"]["classification"] == "not_complete"

        api = w.trainer.device.post(
            f"/api/v1/grading/submissions/{sub}/grade", json={"score": "5"}
        ).json()["result"]
        assert api["components"] == {
            "self_study": "10.00",
            "attendance": "10.00",
            "follow_up": "5.00",
        }
        assert (api["score"], api["classification"]) == ("7.50", "complete")
        assert {r["code"] for r in api["reasons"]} == {"all_pass"}

    def test_attendance_counts_every_session_of_the_class(self, world: World) -> None:
        w = world
        hv1 = w.learners[0]
        e1 = w.enrolment(hv1)
        r = w.admin.device.put(
            f"/api/v1/attendance/sessions/{w.sessions[0]}/marks",
            json={"marks": [{"enrolment_id": e1, "status": "late"}]},
        )
        assert r.status_code == 200
        # 1 point of 2 × 4 sessions.
        assert result(w, w.admin, hv1)["attendance"] == "1.25"

    def test_an_override_with_a_reason_is_shown_and_audited_and_can_be_removed(
        self, world: World, db: Session
    ) -> None:
        w = world
        hv1 = w.learners[0]
        e1 = w.enrolment(hv1)
        everyone_present(w)
        _all_self_study_done(w, hv1)
        w.clock.set(vn(6))
        (sub,) = _handed_in(w, hv1, "Bản cuối")
        grade(w.trainer, sub, "4,5")
        w.clock.set(vn(9, 10, 30))

        reason = "Đã nộp bản sửa trên giấy tại trường, được tổ chuyên môn chấm đạt"
        r = w.trainer.device.post(
            f"/grading/enrolments/{e1}/override",
            data={
                "csrf_token": w.trainer.csrf,
                "score": "6,5",
                "classification": "complete",
                "reason": reason,
            },
        )
        assert r.status_code == 303
        assert r.headers["location"] == f"/grading/enrolments/{e1}?saved=override"
        now = result(w, w.trainer, hv1)
        assert (now["score"], now["classification"], now["overridden"]) == (
            "6.50",
            "complete",
            True,
        )
        assert now["follow_up"] == "4.50"  # the components stay what they were
        assert me(w, hv1)["result"]["overridden"] is True
        page = w.trainer.device.get(f"/grading/enrolments/{e1}").text
        assert reason in page
        assert "tag-warn" in page
        assert "/override/clear" in page
        klass = w.admin.device.get(f"/grading/classes/{w.cls}").text
        assert "tag-warn" in klass

        changes = history(w.admin, e1)
        assert [(c["field"], c["old"], c["new"]) for c in changes[:2]] == [
            ("classification", "not_complete", "complete"),
            ("score", "7.25", "6.50"),
        ]
        assert {(c["by"], c["by_user_id"], c["reason"]) for c in changes[:2]} == {
            ("Trần Cốt Cán", w.trainer.id, reason)
        }
        assert changes[0]["at"] == w.clock.now.isoformat()
        assert "09/12/2026 10:30" in page  # when, in Vietnam time

        # The override stands while the components move.
        regrade = w.trainer.device.post(
            f"/api/v1/grading/submissions/{sub}/grade", json={"score": "3"}
        ).json()["result"]
        assert (regrade["score"], regrade["classification"]) == ("6.50", "complete")

        cleared = w.admin.device.post(
            f"/api/v1/grading/enrolments/{e1}/override/clear",
            json={"reason": "Tổ chuyên môn yêu cầu chấm lại theo bài trên hệ thống"},
        )
        assert cleared.status_code == 200, cleared.text
        back = cleared.json()
        # 0.3 × 10 + 0.2 × 10 + 0.5 × 3 = 6.5, follow-up below 5.
        assert (back["score"], back["classification"], back["overridden"]) == (
            "6.50",
            "not_complete",
            False,
        )
        assert result(w, w.trainer, hv1)["overridden"] is False
        top = history(w.trainer, e1)[0]
        assert (top["field"], top["old"], top["new"], top["by"]) == (
            "override",
            "6.50 complete",
            None,
            "Lê Quản Trị",
        )
        assert top["reason"] == "Tổ chuyên môn yêu cầu chấm lại theo bài trên hệ thống"
        assert "/override/clear" not in w.trainer.device.get(f"/grading/enrolments/{e1}").text
        assert count(db, ResultChange, enrolment_id=e1) == 5  # 2 grades, 2 override, 1 clear

    def test_an_override_or_its_removal_without_a_reason_is_422_and_writes_nothing(
        self, world: World, db: Session
    ) -> None:
        w = world
        hv1 = w.learners[0]
        e1 = w.enrolment(hv1)
        everyone_present(w)
        w.clock.set(vn(6))
        (sub,) = _handed_in(w, hv1, "Bản cuối")
        grade(w.trainer, sub, "8")
        before = result(w, w.trainer, hv1)
        changes = count(db, ResultChange)

        page = w.trainer.device.post(
            f"/grading/enrolments/{e1}/override",
            data={"csrf_token": w.trainer.csrf, "score": "9", "classification": "complete"},
        )
        assert page.status_code == 422
        url = f"/api/v1/grading/enrolments/{e1}/override"
        for body in (
            {"score": "9", "classification": "complete", "reason": "   "},
            {"score": "9", "classification": "complete", "reason": ""},
            {"score": "9", "classification": "complete"},
            {"score": "9", "classification": "incomplete", "reason": "x"},
            {"score": "9", "classification": "gioi", "reason": "x"},
            {"score": "4", "classification": "complete", "reason": "x"},  # below the pass mark
            {"score": "11", "classification": "complete", "reason": "x"},
        ):
            assert w.trainer.device.put(url, json=body).status_code == 422, body
        assert count(db, ResultChange) == changes
        assert result(w, w.trainer, hv1) == before
        row = db.scalars(select(ModuleResultRow).where(ModuleResultRow.enrolment_id == e1)).one()
        assert row.override_score is None and row.override_reason is None

        ok = w.trainer.device.put(
            url, json={"score": "9", "classification": "complete", "reason": "Minh chứng bổ sung"}
        )
        assert ok.status_code == 200
        changes = count(db, ResultChange)
        no_reason = w.trainer.device.post(
            f"/api/v1/grading/enrolments/{e1}/override/clear", json={"reason": " "}
        )
        assert no_reason.status_code == 422
        form = w.trainer.device.post(
            f"/grading/enrolments/{e1}/override/clear", data={"csrf_token": w.trainer.csrf}
        )
        assert form.status_code == 422
        assert count(db, ResultChange) == changes
        assert result(w, w.trainer, hv1)["overridden"] is True

    def test_removing_an_override_that_is_not_there_is_422(self, world: World) -> None:
        w = world
        e1 = w.enrolment(w.learners[0])
        r = w.trainer.device.post(
            f"/api/v1/grading/enrolments/{e1}/override/clear", json={"reason": "không có"}
        )
        assert r.status_code == 422


class TestManualComponents:
    def test_refused_when_the_module_has_items_for_the_component(
        self, world: World, db: Session
    ) -> None:
        w = world
        e1 = w.enrolment(w.learners[0])
        for component in ("self_study", "follow_up"):
            r = w.trainer.device.put(
                f"/api/v1/grading/enrolments/{e1}/manual",
                json={"component": component, "score": "8", "reason": "chấm trên giấy"},
            )
            assert r.status_code == 422, component
        page = w.trainer.device.get(f"/grading/enrolments/{e1}").text
        assert "/manual" not in page
        assert count(db, ResultChange) == 0

    def test_entered_by_hand_when_the_module_has_no_items_with_a_reason(
        self, world: World, db: Session
    ) -> None:
        w = world
        out = w.outsider
        e9 = w.enrolment(out)
        t = w.other_trainer
        page = t.device.get(f"/grading/enrolments/{e9}")
        assert page.status_code == 200
        assert page.text.count(f'action="/grading/enrolments/{e9}/manual"') == 2

        no_reason = t.device.post(
            f"/grading/enrolments/{e9}/manual",
            data={"csrf_token": t.csrf, "component": "follow_up", "score": "8"},
        )
        assert no_reason.status_code == 422
        r = t.device.post(
            f"/grading/enrolments/{e9}/manual",
            data={
                "csrf_token": t.csrf,
                "component": "follow_up",
                "score": "8,5",
                "reason": "Bài thu hoạch nộp trên LMS",
            },
        )
        assert r.status_code == 303
        api = t.device.put(
            f"/api/v1/grading/enrolments/{e9}/manual",
            json={"component": "self_study", "score": "6", "reason": "Hoàn thành trên LMS"},
        )
        assert api.status_code == 200, api.text
        found = api.json()
        assert found["components"]["follow_up"] == "8.50"
        assert found["components"]["self_study"] == "6.00"
        assert found["components"]["attendance"] == "0.00"  # no session attended
        assert found["classification"] == "not_complete"
        changes = history(t, e9)
        assert [(c["field"], c["old"], c["new"], c["reason"]) for c in changes] == [
            ("self_study", None, "6.00", "Hoàn thành trên LMS"),
            ("follow_up", None, "8.50", "Bài thu hoạch nộp trên LMS"),
        ]
        same = t.device.put(
            f"/api/v1/grading/enrolments/{e9}/manual",
            json={"component": "self_study", "score": "6.00", "reason": "lại"},
        )
        assert same.status_code == 422
        # The trainer of another class has no say.
        other = w.trainer.device.put(
            f"/api/v1/grading/enrolments/{e9}/manual",
            json={"component": "self_study", "score": "9", "reason": "x"},
        )
        assert other.status_code == 403
        assert count(db, ResultChange, enrolment_id=e9) == 2


# -- 5. results queued for the LMS -----------------------------------------------------------


@pytest.fixture()
def gradebook(world: World, platform: TestPlatform, db: Session) -> str:
    """The class is tied to an LMS activity whose gradebook column is coupled (AGS claim with
    ``lineitem``); returns the column's URL."""
    platform.enable_ags(2)
    platform.couple_line_item("rl-m4", label="Mô đun 4", score_maximum=10)
    claim = platform.ags_claim("rl-m4")
    assert "lineitem" in claim
    cls = db.get(TrainingClass, world.cls)
    assert cls is not None
    link = ResourceLink(
        deployment_id=cls.deployment_id, resource_link_id="rl-m4", ags_endpoint=claim, custom={}
    )
    db.add(link)
    db.flush()
    cls.resource_link_id = link.id
    db.commit()
    return str(claim["lineitem"])


def outbox(db: Session, learner: Person) -> list[ScoreOutbox]:
    db.expire_all()
    stmt = (
        select(ScoreOutbox)
        .where(ScoreOutbox.user_id == learner.id)
        .order_by(ScoreOutbox.score_timestamp, ScoreOutbox.id)
    )
    return list(db.scalars(stmt))


class TestResultsAreQueuedForTheLms:
    def test_a_grade_queues_a_pending_score_while_the_module_runs(
        self, world: World, gradebook: str, db: Session
    ) -> None:
        w = world
        hv1 = w.learners[0]
        everyone_present(w)
        w.clock.set(vn(6))
        (sub,) = _handed_in(w, hv1, "Bản cuối")
        queued = outbox(db, hv1)
        assert len(queued) == 1  # the attendance marks; the hand-in leaves the LMS state as is
        assert queued[-1].line_item_url == gradebook

        row = queued[-1]
        assert row.status == OutboxStatus.PENDING
        assert row.lms_user_id == "hv-1"
        assert row.score["gradingProgress"] == "Pending"
        assert row.score["activityProgress"] == "InProgress"
        assert row.score["scoreGiven"] is None  # Moodle drops a score that is not final
        assert row.score["scoreMaximum"] == "10"

        # The grade moves the result, but while the module runs the LMS would see the same
        # "in progress, pending, no score": nothing new is queued for it.
        assert grade(w.trainer, sub, "7,5").status_code == 303
        assert len(outbox(db, hv1)) == len(queued)
        results = w.trainer.device.get(f"/api/v1/grading/classes/{w.cls}/results").json()
        (mine,) = [r for r in results["results"] if r["user_id"] == hv1.id]
        assert mine["follow_up"] == "7.50"
        stored = db.get(TrainingClass, w.cls)
        assert stored is not None and stored.line_item_url == gradebook

    def test_a_refused_grade_queues_nothing(
        self, world: World, gradebook: str, db: Session
    ) -> None:
        w = world
        hv1 = w.learners[0]
        w.clock.set(vn(6))
        old, _new = _handed_in(w, hv1, "Bản nháp", "Bản cuối")
        before = len(outbox(db, hv1))
        assert grade(w.trainer, old, "7").status_code == 409
        assert grade(w.cohort_trainer, _new, "7").status_code == 403
        assert len(outbox(db, hv1)) == before

    def test_after_the_class_ended_the_final_score_is_queued_once(
        self, world: World, gradebook: str, db: Session, database: Database, http: requests.Session
    ) -> None:
        w = world
        hv1 = w.learners[0]
        everyone_present(w)
        _all_self_study_done(w, hv1)
        w.clock.set(vn(6))
        (sub,) = _handed_in(w, hv1, "Bản cuối")
        grade(w.trainer, sub, "7,5")
        running = outbox(db, hv1)
        assert running[-1].score["gradingProgress"] == "Pending"

        ended = vn(12, 8)  # the day after follow-up ends (11/12)
        w.clock.set(ended)
        sweep = ResultSweeper(database, http).run(ended)
        assert sweep["settled"] >= 1
        rows = outbox(db, hv1)
        assert len(rows) == len(running) + 1
        final = rows[-1]
        # 0.3 × 10 + 0.2 × 10 + 0.5 × 7.5 = 8.75
        assert final.score["gradingProgress"] == "FullyGraded"
        assert final.score["activityProgress"] == "Completed"
        assert final.score["scoreGiven"] == "8.75"
        assert final.score["comment"]  # the classification, in words
        assert final.status == OutboxStatus.PENDING

        # Nothing moved: nothing new, neither from another sweep nor from a write that
        # leaves the result as it was.
        ResultSweeper(database, http).run(ended + timedelta(hours=1))
        assert tick(w, hv1, "extra-1").status_code == 303  # an optional item
        assert len(outbox(db, hv1)) == len(rows)

        # A change after the end is sent as it is: final at once.
        w.trainer.device.post(f"/api/v1/grading/submissions/{sub}/grade", json={"score": "9"})
        after = outbox(db, hv1)[-1]
        assert after.score["gradingProgress"] == "FullyGraded"
        assert after.score["scoreGiven"] == "9.50"

    def test_an_unchanged_result_queues_nothing_new(
        self, world: World, gradebook: str, db: Session
    ) -> None:
        w = world
        hv1 = w.learners[0]
        w.clock.set(vn(6))
        (sub,) = _handed_in(w, hv1, "Bản cuối")
        grade(w.trainer, sub, "7,5", "tốt")
        before = len(outbox(db, hv1))
        # The feedback changes, the grade does not; an optional item; a reading (the score
        # moves, but while the module runs the LMS only sees "Pending").
        w.trainer.device.post(
            f"/api/v1/grading/submissions/{sub}/grade",
            json={"score": "7.5", "feedback": "tốt, cần bổ sung"},
        )
        tick(w, hv1, "extra-1")
        tick(w, hv1, "doc-1")
        assert len(outbox(db, hv1)) == before
        # A class without an LMS activity queues nothing at all.
        out = w.outsider
        w.other_trainer.device.put(
            f"/api/v1/grading/enrolments/{w.enrolment(out)}/manual",
            json={"component": "follow_up", "score": "8", "reason": "LMS"},
        )
        assert outbox(db, out) == []
