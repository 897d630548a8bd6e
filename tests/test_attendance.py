"""Attendance as the people in the room see it: a core trainer marks their cohort on one
screen, shows a rotating check-in code, and learners check themselves in from their own
phones; refused check-ins say why. Time comes from a fake clock, never from sleeping.

Each person works on their own device (their own TestClient: their own cookies).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.attendance.endpoints import api as attendance_api
from app.attendance.endpoints import pages as attendance_pages
from app.attendance.models import AttendanceChange, CheckinRecord
from app.attendance.service import DEVICE_COOKIE, clock
from app.classes.models import Enrolment
from app.config import Settings
from app.core.db import Database
from app.main import create_app
from tests.conftest import TOOL_BASE_URL
from tests.helpers import new_class, sign_in
from tests.lti_platform import INST_ADMIN, INSTRUCTOR, LEARNER, SYS_ADMIN, TestPlatform


def at(hh: int, mm: int, ss: int = 0, day: int = 3) -> datetime:
    """Vietnam wall-clock time on December ``day``, 2026 (the class's in-person days are
    3 and 4 December), as aware UTC."""
    return datetime(2026, 12, day, hh, mm, ss, tzinfo=UTC) - timedelta(hours=7)


@pytest.fixture()
def app(settings: Settings, database: Database) -> FastAPI:
    """The app, with the attendance routers until app/main.py includes them."""
    application = create_app(settings, database)
    paths = {getattr(route, "path", "") for route in application.routes}
    if "/attendance/sessions/{session_id}" not in paths:
        application.include_router(attendance_pages)
        application.include_router(attendance_api)
    return application


@dataclass
class FakeClock:
    now: datetime

    def set(self, value: datetime) -> None:
        self.now = value

    def tick(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture()
def fake_clock(app: FastAPI) -> Iterator[FakeClock]:
    fake = FakeClock(at(7, 20))
    app.dependency_overrides[clock] = lambda: fake.now
    yield fake
    app.dependency_overrides.pop(clock, None)


@dataclass
class Person:
    device: TestClient
    me: dict[str, Any]
    sub: str
    name: str
    roles: list[str] = field(default_factory=lambda: [LEARNER])

    @property
    def csrf(self) -> str:
        return str(self.me["csrf_token"])


@dataclass
class World:
    admin: TestClient
    cls: dict[str, Any]
    other_cls: dict[str, Any]
    sessions: list[dict[str, Any]]
    other_sessions: list[dict[str, Any]]
    trainer: Person
    other_trainer: Person
    learners: list[Person]
    outsider: Person
    enrolments: dict[int, int]  # user id → enrolment id
    platform: TestPlatform
    new_device: Any

    @property
    def morning(self) -> int:
        return int(self.sessions[0]["id"])

    @property
    def afternoon(self) -> int:
        return int(self.sessions[1]["id"])


@pytest.fixture()
def world(
    app: FastAPI, client: TestClient, platform: TestPlatform, fake_clock: FakeClock
) -> Iterator[World]:
    devices: list[TestClient] = []

    def new_device() -> TestClient:
        device = TestClient(app, base_url=TOOL_BASE_URL, follow_redirects=False)
        devices.append(device)
        return device

    def person(roles: list[str], sub: str, name: str) -> Person:
        device = new_device()
        return Person(device, sign_in(device, platform, roles, sub, name), sub, name, roles)

    learners = [
        person([LEARNER], "hv-1", "Nguyễn Thị Học"),
        person([LEARNER], "hv-2", "Lê Văn Hai"),
        person([LEARNER], "hv-3", "Phạm Thị Ba"),
    ]
    outsider = person([LEARNER], "hv-9", "Trần Lớp Khác")
    trainer = person([INSTRUCTOR], "cc-1", "Trần Cốt Cán")
    other_trainer = person([INSTRUCTOR], "cc-2", "Đỗ Cốt Cán")

    sign_in(client, platform, [INST_ADMIN, SYS_ADMIN], "admin-1", "Quản trị")
    cls = new_class(client)
    other_cls = new_class(client, code="M4-THCS-02", name="Mô đun 4 — THCS — lớp 2")
    enrolments = {}
    for learner in learners:
        r = client.post(
            f"/api/v1/classes/{cls['id']}/enrolments", json={"user_id": learner.me["user_id"]}
        )
        enrolments[learner.me["user_id"]] = r.json()["id"]
    r = client.post(
        f"/api/v1/classes/{other_cls['id']}/enrolments", json={"user_id": outsider.me["user_id"]}
    )
    enrolments[outsider.me["user_id"]] = r.json()["id"]
    for c, t in ((cls, trainer), (other_cls, other_trainer)):
        client.post(f"/api/v1/classes/{c['id']}/trainers", json={"user_id": t.me["user_id"]})
        client.post(f"/api/v1/classes/{c['id']}/cohorts/split")
    sessions = client.get(f"/api/v1/classes/{cls['id']}").json()["sessions"]
    other_sessions = client.get(f"/api/v1/classes/{other_cls['id']}").json()["sessions"]
    assert [(s["date"], s["part"]) for s in sessions] == [
        ("2026-12-03", "morning"),
        ("2026-12-03", "afternoon"),
        ("2026-12-04", "morning"),
        ("2026-12-04", "afternoon"),
    ]
    yield World(
        client,
        cls,
        other_cls,
        sessions,
        other_sessions,
        trainer,
        other_trainer,
        learners,
        outsider,
        enrolments,
        platform,
        new_device,
    )
    for device in devices:
        device.close()


def open_checkin(w: World, session_id: int, late_after: int = 15, who: Person | None = None):
    trainer = who or w.trainer
    return trainer.device.post(
        f"/attendance/sessions/{session_id}/checkin/open",
        data={"csrf_token": trainer.csrf, "late_after_minutes": str(late_after)},
    )


def screen(w: World, session_id: int) -> dict[str, Any]:
    """What the trainer's code screen shows now."""
    r = w.trainer.device.get(
        f"/attendance/sessions/{session_id}/code.json", headers={"Accept": "application/json"}
    )
    assert r.status_code == 200, r.text
    return r.json()


def check_in(learner: Person, session_id: int, code: str, **params: str):
    """What a learner does after scanning: open the link, tap "Check in"."""
    form = learner.device.get(f"/attendance/checkin/{session_id}", params={"c": code} | params)
    assert form.status_code in (200, 403), form.text
    return learner.device.post(
        f"/attendance/checkin/{session_id}",
        data={"csrf_token": learner.csrf, "code": code},
        params=params,
    )


def marks(w: World, session_id: int, who: Person | None = None) -> dict[int, dict[str, Any]]:
    r = (who or w.trainer).device.get(f"/api/v1/attendance/sessions/{session_id}/marks")
    assert r.status_code == 200, r.text
    return {m["user_id"]: m for m in r.json()["marks"]}


def uid(person: Person) -> int:
    return int(person.me["user_id"])


# -- the trainer's sheet ---------------------------------------------------------------------


class TestTrainerMarksACohortOnOneScreen:
    def test_one_form_one_submit(self, world: World, db: Session) -> None:
        w = world
        page = w.trainer.device.get(f"/attendance/sessions/{w.morning}")
        assert page.status_code == 200
        html = page.text
        assert 'name="viewport"' in html  # the phone layout of base.html
        for learner in w.learners:
            assert learner.name in html
            e = w.enrolments[uid(learner)]
            assert html.count(f'name="status-{e}"') == 4  # present, late, excused, absent
        assert w.outsider.name not in html
        assert "<script" not in html and "style=" not in html  # CSP: no inline script/style
        assert html.count("<form") == 3  # sign out, open check-in, the sheet

        e1, e2, e3 = (w.enrolments[uid(p)] for p in w.learners)
        form = {
            "csrf_token": w.trainer.csrf,
            f"status-{e1}": "present",
            f"status-{e2}": "absent",
            f"note-{e2}": "Ốm, có giấy xin phép sau",
            f"status-{e3}": "excused",
            f"note-{e1}": "",
        }
        r = w.trainer.device.post(f"/attendance/sessions/{w.morning}", data=form)
        assert r.status_code == 303
        assert r.headers["location"] == f"/attendance/sessions/{w.morning}?saved=3"
        now = marks(w, w.morning)
        assert [now[uid(p)]["status"] for p in w.learners] == ["present", "absent", "excused"]
        assert now[uid(w.learners[1])]["note"] == "Ốm, có giấy xin phép sau"
        assert now[uid(w.learners[0])]["source"] == "manual"

        again = w.trainer.device.post(f"/attendance/sessions/{w.morning}", data=form)
        assert again.headers["location"].endswith("?saved=0")  # nothing changed, no history

        form[f"status-{e2}"] = "excused"
        w.trainer.device.post(f"/attendance/sessions/{w.morning}", data=form)
        page = w.trainer.device.get(f"/attendance/sessions/{w.morning}?saved=1").text
        assert f'name="status-{e2}" value="excused" checked' in page
        history = w.trainer.device.get(f"/api/v1/attendance/sessions/{w.morning}/history").json()
        changes = [(h["old_status"], h["new_status"]) for h in history if h["enrolment_id"] == e2]
        assert changes == [(None, "absent"), ("absent", "excused")]
        assert history[-1]["by_name"] == "Trần Cốt Cán"
        rows = db.scalars(select(AttendanceChange).where(AttendanceChange.enrolment_id == e2))
        assert len(list(rows)) == 2

    def test_mark_everyone_else_present(self, world: World) -> None:
        w = world
        e2 = w.enrolments[uid(w.learners[1])]
        r = w.trainer.device.post(
            f"/attendance/sessions/{w.morning}",
            data={"csrf_token": w.trainer.csrf, f"status-{e2}": "late", "rest": "present"},
        )
        assert r.headers["location"].endswith("?saved=3")
        now = marks(w, w.morning)
        assert [now[uid(p)]["status"] for p in w.learners] == ["present", "late", "present"]

    def test_forged_or_foreign_marks_are_refused(self, world: World) -> None:
        w = world
        e1 = w.enrolments[uid(w.learners[0])]
        url = f"/attendance/sessions/{w.morning}"
        no_csrf = w.trainer.device.post(url, data={f"status-{e1}": "present"})
        assert no_csrf.status_code == 403
        foreign = w.enrolments[uid(w.outsider)]
        other = w.trainer.device.post(
            url, data={"csrf_token": w.trainer.csrf, f"status-{foreign}": "present"}
        )
        assert other.status_code == 403
        bad = w.trainer.device.post(
            url, data={"csrf_token": w.trainer.csrf, f"status-{e1}": "sick"}
        )
        assert bad.status_code == 422
        note_only = w.trainer.device.post(
            url, data={"csrf_token": w.trainer.csrf, f"note-{e1}": "?"}
        )
        assert note_only.status_code == 422
        assert all(m["status"] is None for m in marks(w, w.morning).values())

    def test_a_trainer_of_another_class_gets_403(self, world: World) -> None:
        w = world
        other = w.other_trainer
        e1 = w.enrolments[uid(w.learners[0])]
        assert other.device.get(f"/attendance/sessions/{w.morning}").status_code == 403
        post = other.device.post(
            f"/attendance/sessions/{w.morning}",
            data={"csrf_token": other.csrf, f"status-{e1}": "absent"},
        )
        assert post.status_code == 403
        assert open_checkin(w, w.morning, who=other).status_code == 403
        assert other.device.get(f"/attendance/sessions/{w.morning}/checkin").status_code == 403
        assert other.device.get(f"/attendance/sessions/{w.morning}/code.json").status_code == 403
        api = other.device.put(
            f"/api/v1/attendance/sessions/{w.morning}/marks",
            json={"marks": [{"enrolment_id": e1, "status": "absent"}]},
        )
        assert api.status_code == 403
        assert api.headers["content-type"].startswith("application/problem+json")
        scores = other.device.get(f"/api/v1/attendance/classes/{w.cls['id']}/scores")
        assert scores.status_code == 403
        # A learner is no marker either; an unknown session is simply not found.
        assert w.learners[0].device.get(f"/attendance/sessions/{w.morning}").status_code == 403
        assert w.trainer.device.get("/attendance/sessions/999999").status_code == 404
        # Their own class works.
        own = other.device.get(f"/attendance/sessions/{w.other_sessions[0]['id']}")
        assert own.status_code == 200 and w.outsider.name in own.text

    def test_admin_marks_the_whole_class_and_a_trainer_only_their_cohort(
        self, world: World, db: Session
    ) -> None:
        w = world
        second = Person(w.new_device(), {}, "cc-3", "Vũ Cốt Cán Hai", [INSTRUCTOR])
        second.me = sign_in(second.device, w.platform, second.roles, second.sub, second.name)
        w.admin.post(f"/api/v1/classes/{w.cls['id']}/trainers", json={"user_id": uid(second)})
        cohorts = w.admin.post(f"/api/v1/classes/{w.cls['id']}/cohorts/split").json()
        assert len(cohorts) == 2
        mine = next(c["id"] for c in cohorts if c["trainer_user_id"] == uid(w.trainer))
        members = set(
            db.scalars(select(Enrolment.user_id).where(Enrolment.cohort_id == mine)).all()
        )
        assert 0 < len(members) < 3
        assert set(marks(w, w.morning)) == members
        assert set(marks(w, w.morning, who=second)) == {uid(p) for p in w.learners} - members
        admin_view = w.admin.get(f"/api/v1/attendance/sessions/{w.morning}/marks").json()
        assert admin_view["whole_class"] is True
        assert {m["user_id"] for m in admin_view["marks"]} == {uid(p) for p in w.learners}

    def test_the_class_link_opens_the_session_running_now(
        self, world: World, fake_clock: FakeClock
    ) -> None:
        w = world
        fake_clock.set(at(14, 0))
        r = w.trainer.device.get(f"/attendance/classes/{w.cls['id']}")
        assert r.status_code == 303
        assert r.headers["location"] == f"/attendance/sessions/{w.afternoon}"
        fake_clock.set(at(12, 0, day=10))  # after the class: the last session
        r = w.trainer.device.get(f"/attendance/classes/{w.cls['id']}")
        assert r.headers["location"] == f"/attendance/sessions/{w.sessions[-1]['id']}"


# -- self check-in ---------------------------------------------------------------------------


class TestSelfCheckIn:
    def test_the_code_screen_shows_a_rotating_code_and_its_qr(
        self, world: World, fake_clock: FakeClock
    ) -> None:
        w = world
        closed = w.trainer.device.get(f"/attendance/sessions/{w.morning}/checkin")
        assert closed.status_code == 200 and "checkin/open" in closed.text
        assert screen(w, w.morning)["open"] is False
        assert open_checkin(w, w.morning).status_code == 303
        fake_clock.set(at(7, 35, 1))
        page = w.trainer.device.get(f"/attendance/sessions/{w.morning}/checkin")
        assert page.status_code == 200
        assert '<script src="/static/attendance.js" defer></script>' in page.text
        assert 'id="checkin-qr-path"' in page.text and "style=" not in page.text
        first = screen(w, w.morning)
        assert first["open"] is True and re.fullmatch(r"\d{6}", first["code"])
        assert f"{first['code'][:3]} {first['code'][3:]}" in page.text
        assert first["url"] == f"{TOOL_BASE_URL}/attendance/checkin/{w.morning}?c={first['code']}"
        assert first["qr"]["size"] > 21 and first["qr"]["path"].startswith("M4 4h7")
        assert first["expires_in"] == 14 and first["step_seconds"] == 15
        fake_clock.tick(13)
        assert screen(w, w.morning)["code"] == first["code"]
        fake_clock.tick(1)
        assert screen(w, w.morning)["code"] != first["code"]  # a new window, a new code

    def test_the_current_code_checks_in_present_once(
        self, world: World, fake_clock: FakeClock, db: Session
    ) -> None:
        w = world
        open_checkin(w, w.morning)
        fake_clock.set(at(7, 40))
        learner = w.learners[0]
        code = screen(w, w.morning)["code"]
        form = learner.device.get(f"/attendance/checkin/{w.morning}", params={"c": code})
        assert form.status_code == 200 and f'value="{code}"' in form.text
        assert DEVICE_COOKIE in form.headers.get("set-cookie", "")
        r = learner.device.post(
            f"/attendance/checkin/{w.morning}",
            data={"csrf_token": learner.csrf, "code": code},
            params={"lang": "en"},
        )
        assert r.status_code == 200, r.text
        assert "You are checked in: present." in r.text
        again = check_in(learner, w.morning, code, lang="en")
        assert again.status_code == 200
        assert "You were already checked in to this session." in again.text
        mark = marks(w, w.morning)[uid(learner)]
        assert (mark["status"], mark["source"]) == ("present", "checkin")
        assert screen(w, w.morning)["checked_in"] == 1
        assert len(db.scalars(select(CheckinRecord)).all()) == 1

    def test_after_the_late_threshold_it_is_late(self, world: World, fake_clock: FakeClock) -> None:
        w = world
        open_checkin(w, w.morning, late_after=10)
        fake_clock.set(at(7, 40, 0))  # exactly 10 minutes: still on time
        assert check_in(w.learners[0], w.morning, screen(w, w.morning)["code"]).status_code == 200
        fake_clock.set(at(7, 40, 1))
        r = check_in(w.learners[1], w.morning, screen(w, w.morning)["code"], lang="en")
        assert "You are checked in, but late." in r.text
        now = marks(w, w.morning)
        assert now[uid(w.learners[0])]["status"] == "present"
        assert now[uid(w.learners[1])]["status"] == "late"

    def test_an_attendance_code_replayed_from_an_earlier_window_is_refused(
        self, world: World, fake_clock: FakeClock
    ) -> None:
        w = world
        open_checkin(w, w.morning)
        fake_clock.set(at(7, 45, 0))
        old = screen(w, w.morning)["code"]
        fake_clock.tick(30)  # two windows later: a photo of the screen, forwarded
        r = check_in(w.learners[0], w.morning, old, lang="en")
        assert r.status_code == 409
        assert "The code has changed" in r.text
        assert "Scan the code on the screen again." in r.text
        assert 'name="code"' in r.text  # the form is there to try again
        api = w.learners[0].device.post(
            f"/api/v1/attendance/sessions/{w.morning}/checkin", json={"code": old}
        )
        assert api.status_code == 409 and api.json()["code"] == "code_changed"
        assert marks(w, w.morning)[uid(w.learners[0])]["status"] is None

    def test_the_previous_window_is_still_accepted(
        self, world: World, fake_clock: FakeClock
    ) -> None:
        w = world
        open_checkin(w, w.morning)
        fake_clock.set(at(7, 45, 14))
        shown = screen(w, w.morning)["code"]
        fake_clock.tick(5)  # the window turned while the learner tapped
        assert check_in(w.learners[0], w.morning, shown).status_code == 200

    def test_another_sessions_code_is_refused(self, world: World, fake_clock: FakeClock) -> None:
        w = world
        other_session = int(w.other_sessions[0]["id"])
        open_checkin(w, w.morning)
        open_checkin(w, other_session, who=w.other_trainer)
        fake_clock.set(at(8, 0))
        r = w.other_trainer.device.get(f"/attendance/sessions/{other_session}/code.json")
        foreign = r.json()["code"]
        assert foreign != screen(w, w.morning)["code"]
        refused = check_in(w.learners[0], w.morning, foreign, lang="en")
        assert refused.status_code == 422
        assert "This code is not for this session" in refused.text
        api = w.learners[0].device.post(
            f"/api/v1/attendance/sessions/{w.morning}/checkin", json={"code": "12ab"}
        )
        assert api.status_code == 422 and api.json()["code"] == "code_malformed"

    def test_before_the_start_and_after_the_end_are_refused(
        self, world: World, fake_clock: FakeClock
    ) -> None:
        w = world
        fake_clock.set(at(7, 0))
        open_checkin(w, w.morning)
        fake_clock.set(at(7, 29, 59))
        early = check_in(w.learners[0], w.morning, screen(w, w.morning)["code"], lang="en")
        assert early.status_code == 409
        assert "The session has not started" in early.text and "07:30" in early.text
        fake_clock.set(at(11, 30, 1))
        late = check_in(w.learners[0], w.morning, screen(w, w.morning)["code"], lang="en")
        assert late.status_code == 409
        assert "The session has ended" in late.text and "11:30" in late.text
        assert marks(w, w.morning)[uid(w.learners[0])]["status"] is None
        # Opening check-in after the end is refused too: the sheet is the way then.
        assert open_checkin(w, w.afternoon).status_code == 303
        fake_clock.set(at(17, 5))
        assert open_checkin(w, w.afternoon).status_code == 409

    def test_not_opened_or_closed_check_in_is_refused(
        self, world: World, fake_clock: FakeClock
    ) -> None:
        w = world
        fake_clock.set(at(8, 0))
        not_open = check_in(w.learners[0], w.morning, "123456", lang="en")
        assert not_open.status_code == 409 and "Check-in is not open" in not_open.text
        open_checkin(w, w.morning)
        code = screen(w, w.morning)["code"]
        closed = w.trainer.device.post(
            f"/attendance/sessions/{w.morning}/checkin/close",
            data={"csrf_token": w.trainer.csrf},
        )
        assert closed.status_code == 303
        r = check_in(w.learners[0], w.morning, code, lang="en")
        assert r.status_code == 409 and "Check-in is closed" in r.text

    def test_one_device_cannot_check_in_a_second_person_at_the_same_moment(
        self, world: World, fake_clock: FakeClock
    ) -> None:
        w = world
        open_checkin(w, w.morning)
        fake_clock.set(at(7, 40))
        phone = w.learners[0].device
        code = screen(w, w.morning)["code"]
        assert check_in(w.learners[0], w.morning, code).status_code == 200
        assert phone.cookies.get(DEVICE_COOKIE)

        # A friend launches blend727 on the same phone (the launch replaces the session
        # cookie; the device cookie stays) and uses the code on the screen.
        friend = w.learners[1]
        assert w.platform.launch(phone, roles=[LEARNER], sub=friend.sub, name=friend.name)
        me = phone.get("/api/v1/me").json()
        assert me["user_id"] == uid(friend)
        on_phone = Person(phone, me, friend.sub, friend.name)
        fake_clock.tick(5)
        r = check_in(on_phone, w.morning, code, lang="en")
        assert r.status_code == 409
        assert "This device has just checked in someone else" in r.text
        fake_clock.tick(15)  # the next code, still the same moment on this phone
        r = check_in(on_phone, w.morning, screen(w, w.morning)["code"], lang="en")
        assert r.status_code == 409
        assert marks(w, w.morning)[uid(friend)]["status"] is None

        # From their own phone it works.
        assert check_in(friend, w.morning, screen(w, w.morning)["code"]).status_code == 200
        assert marks(w, w.morning)[uid(friend)]["status"] == "present"

    def test_a_learner_of_another_class_is_refused(
        self, world: World, fake_clock: FakeClock
    ) -> None:
        w = world
        open_checkin(w, w.morning)
        fake_clock.set(at(7, 45))
        code = screen(w, w.morning)["code"]
        form = w.outsider.device.get(f"/attendance/checkin/{w.morning}", params={"c": code})
        assert form.status_code == 403 and 'name="code"' not in form.text
        r = check_in(w.outsider, w.morning, code, lang="en")
        assert r.status_code == 403
        assert "You are not a learner of this class" in r.text
        # And a trainer is not checked in either.
        assert check_in(w.trainer, w.morning, code).status_code == 403

    def test_the_learner_finds_todays_sessions(self, world: World, fake_clock: FakeClock) -> None:
        w = world
        open_checkin(w, w.morning)
        fake_clock.set(at(8, 0))
        page = w.learners[0].device.get("/attendance/checkin")
        assert page.status_code == 200
        assert f'action="/attendance/checkin/{w.morning}"' in page.text
        assert f'action="/attendance/checkin/{w.afternoon}"' not in page.text  # not open yet
        assert DEVICE_COOKIE in page.headers.get("set-cookie", "")

    def test_the_json_api_checks_in_the_same_way(self, world: World, fake_clock: FakeClock) -> None:
        w = world
        opened = w.trainer.device.put(
            f"/api/v1/attendance/sessions/{w.afternoon}/checkin-window",
            json={"late_after_minutes": 5},
        )
        assert opened.status_code == 200 and opened.json()["open"] is True
        fake_clock.set(at(13, 40))
        code = screen(w, w.afternoon)["code"]
        learner = w.learners[2]
        url = f"/api/v1/attendance/sessions/{w.afternoon}/checkin"
        no_csrf = learner.device.post(url, json={"code": code}, headers={"X-CSRF-Token": ""})
        assert no_csrf.status_code == 403
        r = learner.device.post(url, json={"code": code})
        assert r.status_code == 200
        assert r.json()["status"] == "late" and r.json()["already"] is False
        assert learner.device.post(url, json={"code": code}).json()["already"] is True
        gone = w.trainer.device.delete(f"/api/v1/attendance/sessions/{w.afternoon}/checkin-window")
        assert gone.status_code == 204
        assert screen(w, w.afternoon)["open"] is False


class TestVirtualSessions:
    def test_fallback_sessions_take_attendance_the_same_way(
        self, world: World, fake_clock: FakeClock
    ) -> None:
        w = world
        r = w.admin.put(
            f"/api/v1/classes/{w.cls['id']}/fallback",
            json={
                "url": "https://meet.example.vn/m4-lop1",
                "reason": "Dịch bệnh",
                "decided_on": "2026-12-01",
            },
        )
        assert r.status_code == 200, r.text
        open_checkin(w, w.morning)
        sheet = w.trainer.device.get(f"/attendance/sessions/{w.morning}").text
        assert "https://meet.example.vn/m4-lop1" in sheet
        fake_clock.set(at(7, 35))
        learner = w.learners[0]
        code = screen(w, w.morning)["code"]
        form = learner.device.get(f"/attendance/checkin/{w.morning}", params={"c": code})
        assert "https://meet.example.vn/m4-lop1" in form.text
        assert check_in(learner, w.morning, code).status_code == 200
        fake_clock.tick(60)
        replay = check_in(w.learners[1], w.morning, code)
        assert replay.status_code == 409
        api = w.trainer.device.get(f"/api/v1/attendance/sessions/{w.morning}/marks").json()
        assert api["session"]["virtual_url"] == "https://meet.example.vn/m4-lop1"
        assert marks(w, w.morning)[uid(learner)]["status"] == "present"


class TestAttendanceScore:
    def test_moodle_defaults_over_every_session_of_the_class(
        self, world: World, fake_clock: FakeClock
    ) -> None:
        w = world
        e1, e2, _ = (w.enrolments[uid(p)] for p in w.learners)
        put = w.trainer.device.put(
            f"/api/v1/attendance/sessions/{w.morning}/marks",
            json={
                "marks": [
                    {"enrolment_id": e1, "status": "present"},
                    {"enrolment_id": e2, "status": "excused", "note": "Họp chuyên môn"},
                ]
            },
        )
        assert put.status_code == 200, put.text
        assert put.json()["changed"] == 2
        w.trainer.device.put(
            f"/api/v1/attendance/sessions/{w.afternoon}/marks",
            json={
                "marks": [
                    {"enrolment_id": e1, "status": "late"},
                    {"enrolment_id": e2, "status": "absent"},
                ]
            },
        )
        body = w.trainer.device.get(f"/api/v1/attendance/classes/{w.cls['id']}/scores").json()
        assert body["sessions"] == 4  # the second day is not held yet: it counts 0
        scores = {s["user_id"]: s for s in body["scores"]}
        first, second, third = (scores[uid(p)] for p in w.learners)
        # (present 2 + late 1) / (2 × 4 sessions) × 10
        assert first["score"] == "3.75"
        assert first["marks"] == ["present", "late", None, None]
        # (excused 1 + absent 0) / 8 × 10
        assert second["score"] == "1.25"
        assert third["score"] == "0.00"

    def test_the_api_refuses_bad_writes(self, world: World) -> None:
        w = world
        e1 = w.enrolments[uid(w.learners[0])]
        url = f"/api/v1/attendance/sessions/{w.morning}/marks"
        body = {"marks": [{"enrolment_id": e1, "status": "present"}]}
        assert w.trainer.device.put(url, json=body, headers={"X-CSRF-Token": ""}).status_code == 403
        bad = w.trainer.device.put(url, json={"marks": [{"enrolment_id": e1, "status": "ill"}]})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"]
        assert w.trainer.device.put(url, json=body | {"extra": 1}).status_code == 422
        ok = w.trainer.device.put(url, json=body)
        assert ok.status_code == 200
        kept = w.trainer.device.put(
            url, json={"marks": [{"enrolment_id": e1, "status": "present", "note": "Đến sớm"}]}
        )
        assert kept.json()["changed"] == 1
        same = w.trainer.device.put(url, json=body)  # note null: kept, nothing changes
        assert same.json()["changed"] == 0
        mark = next(m for m in same.json()["marks"] if m["enrolment_id"] == e1)
        assert mark["note"] == "Đến sớm"
