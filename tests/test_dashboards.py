"""The dashboards as their people see them: a teacher's timeline of the module on the start
page, and a core trainer's cohort on one screen with at-risk flags, sorting and filtering by
query parameters, marking and grading from there, and a CSV export. The at-risk rules are
also tested as plain functions (no HTTP, no database). Time comes from a fake clock.

The class runs module 4 (THCS): self-study 26/11–02/12/2026, in person 03–04/12 (P.201,
Trường THCS Nguyễn Du), follow-up 05–11/12 (Vietnam dates). Pages are read in English
(``/lang/en``) so that the assertions hold before and after the Vietnamese catalogue grows;
the CSV is always Vietnamese.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import unescape
from typing import Any, ClassVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.attendance.models import AttendanceMark
from app.attendance.service import clock
from app.classes.models import Cohort, Enrolment
from app.core.i18n import gettext
from app.dashboards import rules
from app.dashboards.rules import (
    Flag,
    FollowUp,
    LearnerRow,
    ResultFacts,
    SessionMark,
    at_risk,
    due,
    position,
    row_query,
    select_rows,
)
from app.grading.rules import MESSAGES, GradePolicy, Weights
from app.identity.models import User
from app.learning.models import ItemProgress, Submission, SubmissionGrade
from app.learning.rules import PhaseProgress, items_of
from app.schedule.rules import Schedule
from tests.conftest import TOOL_BASE_URL
from tests.helpers import module_id, new_class, sign_in
from tests.lti_platform import INST_ADMIN, INSTRUCTOR, LEARNER, SYS_ADMIN, TestPlatform

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
        "due_day": 5,
    },
    {"phase": "self_study", "kind": "reflection", "title": "Suy ngẫm", "key": "reflect-1"},
    {
        "phase": "follow_up",
        "kind": "assignment",
        "title": "Kế hoạch bài dạy",
        "key": "plan-1",
        "due_day": 3,
    },
]
SELF_STUDY = ["doc-1", "video-1", "reflect-1"]


def vn(day: int, hh: int = 9, mm: int = 0, month: int = 12) -> datetime:
    """Vietnam wall-clock time in 2026, as aware UTC."""
    return datetime(2026, month, day, hh, mm, tzinfo=UTC) - timedelta(hours=7)


# -- 1. the rules, as plain functions ----------------------------------------------------------

SCHEDULE = Schedule(
    self_study_start=date(2026, 11, 26),
    self_study_end=date(2026, 12, 2),
    in_person_dates=(date(2026, 12, 3), date(2026, 12, 4)),
    follow_up_start=date(2026, 12, 5),
    follow_up_end=date(2026, 12, 11),
)
SPEC = {"materials": MATERIALS}
POLICY = GradePolicy(
    weights=Weights(Decimal("0.3"), Decimal("0.2"), Decimal("0.5")), pass_threshold=Decimal(5)
)
SESSIONS = [
    (date(2026, 12, 3), "morning"),
    (date(2026, 12, 3), "afternoon"),
    (date(2026, 12, 4), "morning"),
    (date(2026, 12, 4), "afternoon"),
]


def flags_of(
    now: datetime,
    *,
    done: tuple[str, ...] = (),
    marks: tuple[str | None, ...] = (None, None, None, None),
    result: ResultFacts | None = None,
    schedule: Schedule = SCHEDULE,
) -> list[Flag]:
    items = items_of(SPEC, schedule)
    return list(
        at_risk(
            schedule=schedule,
            items=items,
            done=done,
            marks=[SessionMark(d, p, m) for (d, p), m in zip(SESSIONS, marks, strict=True)],
            result=result,
            policy=POLICY,
            today=(now + timedelta(hours=7)).date(),
            now=now,
        )
    )


class TestWhereALearnerStands:
    def test_before_during_between_and_after(self) -> None:
        gap = Schedule(  # in person on Thursday and the next Monday
            self_study_start=date(2026, 11, 26),
            self_study_end=date(2026, 12, 2),
            in_person_dates=(date(2026, 12, 3), date(2026, 12, 7)),
            follow_up_start=date(2026, 12, 8),
            follow_up_end=date(2026, 12, 14),
        )
        assert position(SCHEDULE, date(2026, 11, 20)) == rules.Position(
            "before", next_phase="self_study", next_on=date(2026, 11, 26), days_to_next=6
        )
        assert position(SCHEDULE, date(2026, 11, 27)) == rules.Position(
            "in_phase", "self_study", 2, 7
        )
        assert position(SCHEDULE, date(2026, 12, 4)) == rules.Position(
            "in_phase", "in_person", 2, 2
        )
        assert position(SCHEDULE, date(2026, 12, 11)) == rules.Position(
            "in_phase", "follow_up", 7, 7
        )
        assert position(gap, date(2026, 12, 5)) == rules.Position(
            "between", next_phase="in_person", next_on=date(2026, 12, 7), days_to_next=2
        )
        assert position(SCHEDULE, date(2026, 12, 12)).state == "after"

    def test_overdue_items_first_then_the_next_one_due(self) -> None:
        items = items_of(SPEC, SCHEDULE)
        # 29/11: doc-1 (due 28/11) is overdue, video-1 (due 30/11) is next.
        found = due(items, [], vn(29, month=11))
        assert [i.key for i in found.overdue] == ["doc-1"]
        assert found.next is not None and found.next.key == "video-1"
        found = due(items, ["doc-1"], vn(28, 23, 59, month=11))  # still 28/11 in Vietnam
        assert found.overdue == () and found.next is not None and found.next.key == "video-1"
        assert due(items, [*SELF_STUDY, "plan-1"], vn(1)) == rules.Due((), None)


class TestAtRiskRules:
    def test_not_started_from_day_3_of_the_learners_own_self_study(self) -> None:
        assert flags_of(vn(27, 22, month=11)) == []  # day 2
        assert flags_of(vn(28, 8, month=11)) == [
            Flag("not_started", rules.NOT_STARTED, {"day": 3, "date": date(2026, 11, 28)})
        ]
        assert flags_of(vn(28, 8, month=11), done=("video-1",)) == []
        # A learner whose dates were moved two days later reaches day 3 on 30/11.
        shifted = Schedule(
            self_study_start=date(2026, 11, 28),
            self_study_end=date(2026, 12, 4),
            in_person_dates=(date(2026, 12, 7), date(2026, 12, 8)),
            follow_up_start=date(2026, 12, 9),
            follow_up_end=date(2026, 12, 15),
        )
        assert flags_of(vn(29, month=11), schedule=shifted) == []
        assert [f.params for f in flags_of(vn(30, month=11), schedule=shifted)] == [
            {"day": 3, "date": date(2026, 11, 30)}
        ]

    def test_not_started_with_a_short_self_study_or_none_in_blend727(self) -> None:
        short = replace(SCHEDULE, self_study_start=date(2026, 12, 1))
        assert rules.not_started(short, items_of(SPEC, short), [], date(2026, 12, 2)) == Flag(
            "not_started", rules.NOT_STARTED, {"day": 2, "date": date(2026, 12, 2)}
        )
        none_here = items_of({"materials": MATERIALS[3:]}, SCHEDULE)
        assert rules.not_started(SCHEDULE, none_here, [], date(2026, 12, 2)) is None

    def test_missed_session_only_when_marked_absent(self) -> None:
        everything = (*SELF_STUDY, "plan-1")
        assert (
            flags_of(vn(4, 18), done=everything, marks=("present", "late", "excused", None)) == []
        )
        assert flags_of(
            vn(4, 18), done=everything, marks=("present", "absent", None, "absent")
        ) == [
            Flag("missed_session", rules.ABSENT["afternoon"], {"date": date(2026, 12, 3)}),
            Flag("missed_session", rules.ABSENT["afternoon"], {"date": date(2026, 12, 4)}),
        ]
        assert (
            flags_of(vn(4, 18), done=everything, marks=("absent", None, None, None))[0].message
            == "Absent from the morning session of %(date)s"
        )

    def test_follow_up_overdue_after_the_end_of_its_due_day_in_vietnam(self) -> None:
        done = tuple(SELF_STUDY)
        assert flags_of(vn(7, 23, 59), done=done) == []  # plan-1 is due on 07/12
        assert flags_of(vn(8, 0, 1), done=done) == [
            Flag(
                "follow_up_overdue",
                rules.FOLLOW_UP_OVERDUE,
                {"item": "Kế hoạch bài dạy", "date": date(2026, 12, 7)},
            )
        ]
        assert flags_of(vn(8), done=(*done, "plan-1")) == []

    def test_below_the_pass_line_names_each_component_and_its_score(self) -> None:
        done = (*SELF_STUDY, "plan-1")
        passing = ResultFacts(
            "complete", True, Decimal("7.10"), Decimal(10), Decimal(10), Decimal(5)
        )
        assert flags_of(vn(12), done=done, result=passing) == []
        assert flags_of(vn(12), done=done, result=ResultFacts()) == []  # incomplete: not yet
        failing = replace(passing, classification="not_complete", attendance=Decimal("2.50"))
        assert flags_of(vn(12), done=done, result=failing) == [
            Flag(
                "below_pass",
                MESSAGES["below_attendance"],
                {"score": Decimal("2.50"), "threshold": Decimal(5)},
            )
        ]
        set_by_trainer = replace(passing, classification="not_complete", overridden=True)
        assert flags_of(vn(12), done=done, result=set_by_trainer) == [
            Flag("below_pass", rules.SET_BELOW_PASS)
        ]

    def test_every_flag_of_a_learner_in_order(self) -> None:
        failing = ResultFacts("not_complete", True, Decimal(2), Decimal(0), Decimal(5), Decimal(3))
        found = flags_of(vn(12), marks=("absent", None, None, None), result=failing)
        assert [f.code for f in found] == [
            "not_started",
            "missed_session",
            "follow_up_overdue",
            "below_pass",
            "below_pass",
        ]


class TestFollowUpStatus:
    def test_one_word_per_learner_from_their_assignments(self) -> None:
        items = items_of(SPEC, SCHEDULE)
        hand_in = rules.LatestHandIn
        assert rules.follow_up(items, {}, vn(6)).status == "open"
        assert rules.follow_up(items, {}, vn(8)) == FollowUp(total=1, overdue=1)
        waiting = rules.follow_up(items, {"plan-1": hand_in(7, graded=False)}, vn(8))
        assert (waiting.status, waiting.to_grade_key) == ("to_grade", "plan-1")
        assert rules.follow_up(items, {"plan-1": hand_in(7, graded=True)}, vn(8)).status == "graded"
        assert rules.follow_up(
            items_of({"materials": MATERIALS[:3]}, SCHEDULE), {}, vn(8)
        ).status == ("none")


def _row(
    eid: int,
    name: str,
    *,
    percent: int = 0,
    flags: int = 0,
    to_grade: int = 0,
    school: str = "THCS A",
    score: str | None = None,
) -> LearnerRow:
    return LearnerRow(
        enrolment_id=eid,
        name=name,
        school=school,
        email=None,
        schedule=SCHEDULE,
        shifted=False,
        progress={
            "self_study": PhaseProgress("self_study", percent, 100),
            "in_person": PhaseProgress("in_person", 0, 4),
            "follow_up": PhaseProgress("follow_up", 0, 0),
        },
        marks=(None, None, None, None),
        follow_up=FollowUp(total=1, handed_in=to_grade, to_grade=to_grade),
        result=ResultFacts(score=Decimal(score)) if score else None,
        flags=tuple(Flag("missed_session", "x") for _ in range(flags)),
    )


class TestSortAndFilterRules:
    ROWS: ClassVar[list[LearnerRow]] = [
        _row(1, "Nguyễn Văn Bình", percent=80, school="THCS Lê Lợi", score="6"),
        _row(2, "Đỗ Thị An", percent=20, flags=2, score="4"),
        _row(3, "Lê Hải", percent=50, flags=1, to_grade=1),
    ]

    def names(self, **query: str) -> list[str]:
        return [r.name for r in select_rows(self.ROWS, row_query(**query))]

    def test_sorts(self) -> None:
        assert self.names() == ["Đỗ Thị An", "Lê Hải", "Nguyễn Văn Bình"]  # Đ sorts as D
        assert self.names(sort="progress") == ["Đỗ Thị An", "Lê Hải", "Nguyễn Văn Bình"]
        assert self.names(sort="progress", order="desc") == [
            "Nguyễn Văn Bình",
            "Lê Hải",
            "Đỗ Thị An",
        ]
        assert self.names(sort="risk") == ["Đỗ Thị An", "Lê Hải", "Nguyễn Văn Bình"]
        assert self.names(sort="score") == ["Lê Hải", "Đỗ Thị An", "Nguyễn Văn Bình"]
        assert self.names(sort="nonsense") == self.names()

    def test_filters_and_search_without_diacritics(self) -> None:
        assert self.names(flag="at_risk") == ["Đỗ Thị An", "Lê Hải"]
        assert self.names(flag="to_grade") == ["Lê Hải"]
        assert self.names(flag="not_started") == []
        assert self.names(q="do thi") == ["Đỗ Thị An"]
        assert self.names(q="LE LOI") == ["Nguyễn Văn Bình"]
        assert self.names(flag="bogus") == self.names()

    def test_a_view_is_reproduced_by_its_query_parameters(self) -> None:
        assert row_query().params == {}
        assert row_query("risk").params == {"sort": "risk"}
        assert row_query("risk", order="asc").params == {"sort": "risk", "dir": "asc"}
        assert row_query("progress", "at_risk", "  hải  ").params == {
            "sort": "progress",
            "flag": "at_risk",
            "q": "hải",
        }


# -- 2. the pages --------------------------------------------------------------------------------


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

    def page(self, url: str, status: int = 200) -> str:
        r = self.device.get(url)
        assert r.status_code == status, r.text
        return unescape(r.text)


@dataclass
class World:
    admin: Person
    cls: int
    cohort: int  # the cohort of `trainer`: hv-1, hv-2, hv-3
    other_cohort: int  # the cohort of `cohort_trainer`: hv-4
    learners: list[Person]
    trainer: Person
    cohort_trainer: Person
    other_trainer: Person  # trainer of another class
    enrolments: dict[int, int]  # user id → enrolment id
    sessions: list[int]
    clock: FakeClock

    def enrolment(self, person: Person) -> int:
        return self.enrolments[person.id]


@pytest.fixture()
def fake_clock(app: FastAPI) -> Iterator[FakeClock]:
    fake = FakeClock(vn(27, month=11))  # the second day of self-study
    app.dependency_overrides[clock] = lambda: fake.now
    yield fake
    app.dependency_overrides.pop(clock, None)


def _give_items(admin: TestClient, key: str, materials: list[dict[str, Any]]) -> None:
    mid = module_id(admin, key)
    spec = admin.get(f"/api/v1/modules/{mid}").json()["spec"]
    r = admin.put(
        f"/api/v1/modules/{mid}", json={"spec": {**spec, "materials": materials}, "note": "items"}
    )
    assert r.status_code == 200, r.text


@pytest.fixture()
def world(
    app: FastAPI, client: TestClient, platform: TestPlatform, fake_clock: FakeClock
) -> Iterator[World]:
    devices: list[TestClient] = []

    def person(roles: list[str], sub: str, name: str) -> Person:
        device = TestClient(app, base_url=TOOL_BASE_URL, follow_redirects=False)
        devices.append(device)
        me = sign_in(device, platform, roles, sub, name)
        assert device.get("/lang/en").status_code == 303
        return Person(device, me, name)

    learners = [
        person([LEARNER], "hv-1", "Nguyễn Thị Học"),
        person([LEARNER], "hv-2", "Lê Văn Hai"),
        person([LEARNER], "hv-3", "Phạm Thị Ba"),
        person([LEARNER], "hv-4", "Võ Nhóm Khác"),
    ]
    trainer = person([INSTRUCTOR], "cc-1", "Trần Cốt Cán")
    cohort_trainer = person([INSTRUCTOR], "cc-2", "Đỗ Nhóm Hai")
    other_trainer = person([INSTRUCTOR], "cc-9", "Võ Lớp Khác")
    me = sign_in(client, platform, [INST_ADMIN, SYS_ADMIN], "admin-1", "Lê Quản Trị")
    assert client.get("/lang/en").status_code == 303
    admin = Person(client, me, "Lê Quản Trị")

    _give_items(client, "gvpt-4", MATERIALS)
    cls = new_class(client)["id"]
    other_cls = new_class(client, code="M4-THCS-02", name="Mô đun 4 — THCS — lớp 2")["id"]
    enrolments: dict[int, int] = {}
    for p in learners:
        r = client.post(f"/api/v1/classes/{cls}/enrolments", json={"user_id": p.id})
        assert r.status_code == 201, r.text
        enrolments[p.id] = r.json()["id"]
    for c, trainers in ((cls, [trainer, cohort_trainer]), (other_cls, [other_trainer])):
        for t in trainers:
            r = client.post(f"/api/v1/classes/{c}/trainers", json={"user_id": t.id})
            assert r.status_code == 201, r.text
    client.post(f"/api/v1/classes/{other_cls}/cohorts/split").raise_for_status()
    cohorts = client.post(f"/api/v1/classes/{cls}/cohorts/split").json()
    cohort_of = {c["trainer_user_id"]: c["id"] for c in cohorts}
    for p, t in zip(learners, (trainer, trainer, trainer, cohort_trainer), strict=True):
        r = client.post(
            f"/api/v1/classes/{cls}/cohorts/moves",
            json={"enrolment_id": enrolments[p.id], "cohort_id": cohort_of[t.id]},
        )
        assert r.status_code == 200, r.text
    detail = client.get(f"/api/v1/classes/{cls}").json()
    yield World(
        admin=admin,
        cls=cls,
        cohort=cohort_of[trainer.id],
        other_cohort=cohort_of[cohort_trainer.id],
        learners=learners,
        trainer=trainer,
        cohort_trainer=cohort_trainer,
        other_trainer=other_trainer,
        enrolments=enrolments,
        sessions=[s["id"] for s in detail["sessions"]],
        clock=fake_clock,
    )
    for device in devices:
        device.close()


# -- what people do --------------------------------------------------------------------------


def tick(w: World, p: Person, key: str) -> None:
    r = p.device.post(
        f"/learn/classes/{w.cls}/items/{key}/done", data={"csrf_token": p.csrf, "done": "1"}
    )
    assert r.status_code == 303, r.text


def hand_in(w: World, p: Person, key: str, text: str) -> int:
    r = p.device.post(
        f"/learn/classes/{w.cls}/items/{key}/hand-in",
        data={"csrf_token": p.csrf, "text": text},
        files={"file": ("", b"", "application/octet-stream")},
    )
    assert r.status_code == 303, r.text
    me = p.device.get(f"/api/v1/learning/classes/{w.cls}/me").json()
    return int(next(i for i in me["items"] if i["key"] == key)["submission"]["id"])


def grade(p: Person, submission_id: int, score: str, feedback: str = "") -> None:
    r = p.device.post(
        f"/grading/submissions/{submission_id}/grade",
        data={"csrf_token": p.csrf, "score": score, "feedback": feedback},
    )
    assert r.status_code == 303, r.text


def mark(w: World, session_index: int, **statuses: str) -> None:
    """The admin marks learners (by sub: hv1="absent") at one session."""
    subs = {f"hv{i + 1}": p for i, p in enumerate(w.learners)}
    marks = [
        {"enrolment_id": w.enrolment(subs[sub]), "status": status}
        for sub, status in statuses.items()
    ]
    r = w.admin.device.put(
        f"/api/v1/attendance/sessions/{w.sessions[session_index]}/marks", json={"marks": marks}
    )
    assert r.status_code == 200, r.text


def everyone_present(w: World) -> None:
    for session_id in w.sessions:
        r = w.admin.device.put(
            f"/api/v1/attendance/sessions/{session_id}/marks", json={"rest": "present"}
        )
        assert r.status_code == 200, r.text


def row_html(html: str, enrolment: int) -> str:
    match = re.search(rf'<tr id="learner-{enrolment}".*?</tr>', html, flags=re.S)
    assert match is not None, f"no row for enrolment {enrolment}"
    return match.group(0)


def shown_rows(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr id="learner-(\d+)"', html)]


def marks_shown(html: str, enrolment: int) -> list[str]:
    """What a screen reader says of each attendance mark in a learner's row."""
    row = row_html(html, enrolment)
    return re.findall(r'<span class="visually-hidden">(.*?)</span>', row, re.S)


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# -- 3. the teacher's timeline -------------------------------------------------------------------


class TestTeacherTimeline:
    def test_today_in_self_study_and_what_is_due_next(self, world: World) -> None:
        w = world
        hv1 = w.learners[0]
        page = hv1.page("/")
        now = text_of(page)
        assert "Today, Friday 27/11/2026: Self-study, day 2 of 7" in now
        assert "Due next: Đọc tài liệu mô đun 4 (Due 28/11/2026)" in now
        assert f'href="/learn/classes/{w.cls}#item-doc-1"' in page
        assert 'aria-current="step"' in page and "You are here" in page
        assert "26/11/2026 – 02/12/2026" in page and "05/12/2026 – 11/12/2026" in page
        assert re.search(r'href="/ical/learner/[^"]+\.ics"', page)

        tick(w, hv1, "doc-1")
        w.clock.set(vn(1))  # 01/12: video-1 (due 30/11) overdue, reflect-1 due 02/12
        now = text_of(hv1.page("/"))
        assert "Self-study, day 6 of 7" in now
        assert "1 item is overdue: Video bài giảng (Due 30/11/2026)" in now
        assert "Due next: Suy ngẫm (Due 02/12/2026)" in now

    def test_before_the_module_and_between_phases(self, world: World) -> None:
        w = world
        w.clock.set(vn(20, month=11))
        assert "the module starts in 6 days, on 26/11/2026." in text_of(w.learners[0].page("/"))
        w.clock.set(vn(20))
        assert "the module has ended." in text_of(w.learners[0].page("/"))

    def test_sessions_with_their_room_or_virtual_link_and_my_marks(self, world: World) -> None:
        w = world
        hv1 = w.learners[0]
        w.clock.set(vn(3, 8))
        mark(w, 0, hv1="present")
        page = hv1.page("/")
        text = text_of(page)
        assert "Today, Thursday 03/12/2026: In person, day 1 of 2" in text
        assert "Thursday 03/12/2026 · morning P.201, Trường THCS Nguyễn Du Present" in text
        assert "Friday 04/12/2026 · afternoon P.201, Trường THCS Nguyễn Du" in text
        assert "Attended 1 of 4 sessions" in text
        assert 'href="/attendance/checkin"' in page  # today is an in-person day

        r = w.admin.device.put(
            f"/api/v1/classes/{w.cls}/fallback",
            json={
                "url": "https://meet.example.vn/lop-4",
                "reason": "Bão số 9",
                "decided_on": "2026-12-02",
            },
        )
        assert r.status_code == 200, r.text
        page = hv1.page("/")
        assert page.count('href="https://meet.example.vn/lop-4"') == 5  # banner + 4 sessions
        assert "P.201" not in page

    def test_follow_up_hand_in_grade_feedback_result_and_certificate(self, world: World) -> None:
        w = world
        hv1 = w.learners[0]
        for key in ("doc-1", "video-1"):
            tick(w, hv1, key)
        hand_in(w, hv1, "reflect-1", "Suy ngẫm của tôi")
        everyone_present(w)
        w.clock.set(vn(6))
        sub = hand_in(w, hv1, "plan-1", "Kế hoạch bài dạy của tôi")
        page = text_of(hv1.page("/"))
        assert "Today, Sunday 06/12/2026: Follow-up, day 2 of 7" in page
        assert "Kế hoạch bài dạy · Handed in 06/12/2026 Waiting for a grade" in page
        assert "Download my certificate" not in page

        w.clock.set(vn(8))
        grade(w.trainer, sub, "8,5", "Mục tiêu rõ ràng, cần thêm luyện tập.")
        page = hv1.page("/")
        text = text_of(page)
        assert "Grade: 8.50" in text
        assert "Feedback from your core trainer Mục tiêu rõ ràng, cần thêm luyện tập." in text
        assert "Result Complete · 9.25/10" in text  # 0.3×10 + 0.2×10 + 0.5×8.5 = 9.25
        # The certificate is offered once it can be issued: after the module (11/12) ends.
        assert "/certificates/" not in page
        w.clock.set(vn(12))
        page = hv1.page("/")
        assert f'href="/certificates/classes/{w.cls}/mine.pdf"' in page
        # Another learner's page shows neither the grade nor a certificate.
        other = w.learners[1].page("/")
        assert "Mục tiêu rõ ràng" not in other and "/certificates/" not in other


# -- 4. the core trainer's cohort ----------------------------------------------------------------


def board(w: World, who: Person | None = None, query: str = "") -> str:
    return (who or w.trainer).page(f"/cohorts/{w.cohort}{query}")


class TestCohortOnOneScreen:
    def test_each_learner_with_progress_marks_follow_up_and_result(self, world: World) -> None:
        w = world
        hv1, hv2, hv3, _ = w.learners
        for key in ("doc-1", "video-1"):
            tick(w, hv1, key)
        hand_in(w, hv1, "reflect-1", "Suy ngẫm")
        tick(w, hv2, "doc-1")
        w.clock.set(vn(3, 18))
        mark(w, 0, hv1="present", hv2="late", hv3="excused")
        mark(w, 1, hv1="present", hv2="present", hv3="present")
        w.clock.set(vn(6))
        sub = hand_in(w, hv1, "plan-1", "Kế hoạch")
        hand_in(w, hv2, "plan-1", "Kế hoạch 2")
        grade(w.trainer, sub, "8")

        page = board(w)
        assert "Nhóm 1 — Mô đun 4 — THCS — lớp 1" in text_of(page)
        assert shown_rows(page) == [w.enrolment(p) for p in (hv2, hv1, hv3)]  # by name
        assert "Võ Nhóm Khác" not in page  # another trainer's cohort

        r1 = text_of(row_html(page, w.enrolment(hv1)))
        assert "Nguyễn Thị Học" in r1
        assert "100%" in r1  # self-study: 3 of 3
        assert marks_shown(page, w.enrolment(hv1)) == [
            "03/12 morning: Present",
            "03/12 afternoon: Present",
            "04/12 morning: Not marked",
            "04/12 afternoon: Not marked",
        ]
        assert "2/4" in r1
        assert "Graded" in r1 and "Grade: 8.00" in r1
        assert "8.00 · Complete" in r1  # 0.3×10 + 0.2×5 + 0.5×8

        r2 = row_html(page, w.enrolment(hv2))
        assert marks_shown(page, w.enrolment(hv2))[:2] == [
            "03/12 morning: Late",
            "03/12 afternoon: Present",
        ]
        assert "Waiting for a grade" in text_of(r2)
        e2 = w.enrolment(hv2)
        assert f'href="/cohorts/{w.cohort}?open={e2}#item-{e2}-plan-1"' in r2
        assert "33%" in text_of(r2)  # self-study: 1 of 3

        r3 = text_of(row_html(page, w.enrolment(hv3)))
        assert marks_shown(page, w.enrolment(hv3))[0] == "03/12 morning: Excused"
        assert "Not handed in yet" in r3
        summary = text_of(page.split('class="card dash-summary"')[1].split("</section>")[0])
        assert "3 learners" in summary and "1 hand-in to grade" in summary
        assert "0/40 support periods" in summary
        for session in w.sessions:
            assert f'href="/attendance/sessions/{session}"' in page

    def test_support_periods_against_the_minimum_logged_from_the_dashboard(
        self, world: World
    ) -> None:
        w = world
        r = w.trainer.device.post(
            f"/trainer/cohorts/{w.cohort}/support",
            data={
                "csrf_token": w.trainer.csrf,
                "day": "2026-11-27",
                "form": "online",
                "periods": "7.5",
                "note": "Diễn đàn",
            },
        )
        assert r.status_code == 303
        assert r.headers["location"] == f"/cohorts/{w.cohort}?saved=support#support"
        page = board(w)
        assert "Support periods: 7.5 of at least 40" in text_of(page)
        assert 'aria-valuenow="18"' in page  # 7.5 of 40
        assert f'action="/trainer/cohorts/{w.cohort}/support"' in page
        # An administrator sees the trainer's periods, without the trainer's form.
        admin_page = board(w, w.admin)
        assert "Support periods: 7.5 of at least 40" in text_of(admin_page)
        assert "Core trainer: Trần Cốt Cán" in text_of(admin_page)
        assert "/support" not in admin_page.split('id="support"')[1]


def flags_shown(page: str, enrolment: int) -> list[str]:
    row = row_html(page, enrolment)
    return [text_of(f) for f in re.findall(r'<li class="flag flag-[^"]+">(.*?)</li>', row, re.S)]


class TestAtRiskFlagsOnTheDashboard:
    def test_not_started_by_day_3_and_not_before(self, world: World) -> None:
        w = world
        hv1, hv2, hv3, _ = w.learners
        tick(w, hv2, "video-1")
        w.clock.set(vn(27, 23, month=11))  # day 2, late evening
        page = board(w)
        assert all(flags_shown(page, w.enrolment(p)) == [] for p in (hv1, hv2, hv3))
        assert "0 at risk" in text_of(page)
        w.clock.set(vn(28, 7, month=11))  # day 3
        page = board(w)
        reason = "Has not started self-study by day 3 (28/11/2026)"
        assert flags_shown(page, w.enrolment(hv1)) == [reason]
        assert flags_shown(page, w.enrolment(hv3)) == [reason]
        assert flags_shown(page, w.enrolment(hv2)) == []
        assert 'class="risk"' in row_html(page, w.enrolment(hv1))
        assert 'class="risk"' not in row_html(page, w.enrolment(hv2))

    def test_day_3_counts_from_the_learners_own_dates(self, world: World) -> None:
        w = world
        hv1 = w.learners[0]
        r = w.admin.device.post(
            f"/api/v1/classes/{w.cls}/enrolments/{w.enrolment(hv1)}/shifts",
            json={"delay_days": 4, "reason": "Ốm"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["schedule"]["self_study_start"] == "2026-11-30"
        w.clock.set(vn(1))  # the class's day 6, hv-1's day 2
        page = board(w)
        assert flags_shown(page, w.enrolment(hv1)) == []
        assert flags_shown(page, w.enrolment(w.learners[1])) != []  # on the class's dates
        assert "own dates" in text_of(row_html(page, w.enrolment(hv1)))
        w.clock.set(vn(2))
        assert flags_shown(board(w), w.enrolment(hv1)) == [
            "Has not started self-study by day 3 (02/12/2026)"
        ]

    def test_missed_session_only_for_an_absence(self, world: World) -> None:
        w = world
        hv1, hv2, hv3, _ = w.learners
        for p in (hv1, hv2, hv3):
            tick(w, p, "doc-1")
        w.clock.set(vn(4, 18))
        mark(w, 0, hv1="absent", hv2="excused", hv3="late")
        mark(w, 3, hv1="absent")
        page = board(w)
        assert flags_shown(page, w.enrolment(hv1)) == [
            "Absent from the morning session of 03/12/2026",
            "Absent from the afternoon session of 04/12/2026",
        ]
        assert flags_shown(page, w.enrolment(hv2)) == []
        assert flags_shown(page, w.enrolment(hv3)) == []

    def test_follow_up_overdue_after_its_due_day(self, world: World) -> None:
        w = world
        hv1, hv2, hv3, _ = w.learners
        for p in (hv1, hv2, hv3):
            tick(w, p, "doc-1")
        w.clock.set(vn(6))
        hand_in(w, hv2, "plan-1", "Kế hoạch")
        w.clock.set(vn(7, 23, 30))  # due 07/12: not overdue yet
        assert all(flags_shown(board(w), w.enrolment(p)) == [] for p in (hv1, hv2, hv3))
        w.clock.set(vn(8, 8))
        page = board(w)
        reason = "“Kế hoạch bài dạy” was due on 07/12/2026 and is not done"
        assert flags_shown(page, w.enrolment(hv1)) == [reason]
        assert flags_shown(page, w.enrolment(hv2)) == []
        assert "Overdue" in text_of(row_html(page, w.enrolment(hv1)))

    def test_result_below_the_pass_line(self, world: World) -> None:
        w = world
        hv1, hv2, _, _ = w.learners
        for p in (hv1, hv2):
            for key in ("doc-1", "video-1"):
                tick(w, p, key)
            hand_in(w, p, "reflect-1", "Suy ngẫm")
        everyone_present(w)
        w.clock.set(vn(6))
        grade(w.trainer, hand_in(w, hv1, "plan-1", "Kế hoạch sơ sài"), "3,5")
        grade(w.trainer, hand_in(w, hv2, "plan-1", "Kế hoạch tốt"), "7")
        page = board(w)
        assert flags_shown(page, w.enrolment(hv1)) == [
            "Follow-up scored 3.50, below the pass mark of 5.0"
        ]
        assert "Not complete" in text_of(row_html(page, w.enrolment(hv1)))
        assert flags_shown(page, w.enrolment(hv2)) == []
        assert "Complete" in text_of(row_html(page, w.enrolment(hv2)))
        # In Vietnamese, the scores are written with a decimal comma.
        w.trainer.device.get("/lang/vi")
        assert "3,50" in flags_shown(board(w), w.enrolment(hv1))[0]


class TestSortAndFilterByQuery:
    def _setup(self, w: World) -> tuple[int, int, int]:
        hv1, hv2, hv3, _ = w.learners
        for key in ("doc-1", "video-1"):
            tick(w, hv1, key)
        tick(w, hv3, "doc-1")
        w.clock.set(vn(28, month=11))  # day 3: hv-2 has not started
        return w.enrolment(hv1), w.enrolment(hv2), w.enrolment(hv3)

    def test_sort_by_progress_either_way(self, world: World) -> None:
        e1, e2, e3 = self._setup(world)
        assert shown_rows(board(world, query="?sort=progress")) == [e2, e3, e1]
        assert shown_rows(board(world, query="?sort=progress&dir=desc")) == [e1, e3, e2]
        assert shown_rows(board(world)) == [e2, e1, e3]  # by name: Lê, Nguyễn, Phạm

    def test_filter_at_risk_and_search(self, world: World) -> None:
        _, e2, e3 = self._setup(world)
        page = board(world, query="?flag=at_risk")
        assert shown_rows(page) == [e2]
        assert "Showing 1 of 3 learners." in text_of(page)
        assert '<option value="at_risk" selected>' in page
        assert shown_rows(board(world, query="?flag=not_started&sort=risk")) == [e2]
        assert shown_rows(board(world, query="?q=pham")) == [e3]  # without diacritics
        empty = board(world, query="?flag=below_pass")
        assert shown_rows(empty) == [] and "No learner matches." in text_of(empty)

    def test_sort_links_keep_the_filter_and_reverse_on_a_second_tap(self, world: World) -> None:
        self._setup(world)
        page = board(world, query="?flag=at_risk&sort=progress")
        assert f'href="/cohorts/{world.cohort}?sort=progress&amp;dir=desc&amp;flag=at_risk"' in (
            world.trainer.device.get(f"/cohorts/{world.cohort}?flag=at_risk&sort=progress").text
        )
        assert 'aria-sort="ascending"' in page
        csv_link = f'href="/cohorts/{world.cohort}/learners.csv?sort=progress&amp;flag=at_risk"'
        assert (
            csv_link
            in world.trainer.device.get(f"/cohorts/{world.cohort}?flag=at_risk&sort=progress").text
        )

    def test_unknown_values_fall_back_to_the_default_view(self, world: World) -> None:
        e1, e2, e3 = self._setup(world)
        assert shown_rows(board(world, query="?sort=%3Cx%3E&flag=nope&dir=up&open=abc")) == [
            e2,
            e1,
            e3,
        ]


class TestMarkAndGradeFromTheDashboard:
    def test_open_a_learner_mark_their_attendance_and_grade_their_hand_in(
        self, world: World, db: Session
    ) -> None:
        w = world
        hv1 = w.learners[0]
        e1 = w.enrolment(hv1)
        w.clock.set(vn(6))
        sub = hand_in(w, hv1, "plan-1", "Kế hoạch bài dạy lớp 7")
        page = board(w, query=f"?flag=to_grade&open={e1}")
        assert 'aria-expanded="true"' in row_html(page, e1)
        panel = page.split('<tr class="opened">')[1].split("</tr>")[0]
        assert "Kế hoạch bài dạy lớp 7" in panel  # the work, to read before grading
        assert f'href="/grading/enrolments/{e1}"' in panel
        assert f'action="/cohorts/{w.cohort}/learners/{e1}/attendance"' in panel
        assert f'action="/cohorts/{w.cohort}/submissions/{sub}/grade"' in panel
        assert '<input type="hidden" name="flag" value="to_grade">' in panel

        r = w.trainer.device.post(
            f"/cohorts/{w.cohort}/learners/{e1}/attendance",
            data={
                "csrf_token": w.trainer.csrf,
                f"status-{w.sessions[0]}": "present",
                f"status-{w.sessions[1]}": "absent",
                f"status-{w.sessions[2]}": "",
                "flag": "to_grade",
            },
        )
        assert r.status_code == 303, r.text
        assert r.headers["location"] == (
            f"/cohorts/{w.cohort}?flag=to_grade&open={e1}&saved=marks#learner-{e1}"
        )
        db.expire_all()
        marks = {
            m.session_id: m.status
            for m in db.scalars(select(AttendanceMark).where(AttendanceMark.enrolment_id == e1))
        }
        assert marks == {w.sessions[0]: "present", w.sessions[1]: "absent"}

        r = w.trainer.device.post(
            f"/cohorts/{w.cohort}/submissions/{sub}/grade",
            data={"csrf_token": w.trainer.csrf, "score": "7,5", "feedback": "Tốt"},
        )
        assert r.status_code == 303, r.text
        assert r.headers["location"] == f"/cohorts/{w.cohort}?open={e1}&saved=grade#learner-{e1}"
        db.expire_all()
        graded = db.scalars(select(SubmissionGrade).where(SubmissionGrade.enrolment_id == e1)).one()
        assert (graded.score, graded.feedback) == (Decimal("7.50"), "Tốt")
        page = board(w, query=f"?open={e1}&saved=grade")
        assert "Grade saved." in page
        row = text_of(row_html(page, e1))
        assert "Grade: 7.50" in row and "Graded" in row
        assert "Absent from the afternoon session of 03/12/2026" in row

    def test_refused_without_the_form_token_or_for_someone_elses_learner(
        self, world: World, db: Session
    ) -> None:
        w = world
        hv1, hv4 = w.learners[0], w.learners[3]
        w.clock.set(vn(6))
        sub = hand_in(w, hv1, "plan-1", "Kế hoạch")
        other_sub = hand_in(w, hv4, "plan-1", "Kế hoạch nhóm 2")
        url = f"/cohorts/{w.cohort}/learners/{w.enrolment(hv1)}/attendance"
        status = {f"status-{w.sessions[0]}": "present"}
        assert w.trainer.device.post(url, data=status).status_code == 403
        for who in (w.cohort_trainer, w.other_trainer):
            r = who.device.post(url, data={"csrf_token": who.csrf, **status})
            assert r.status_code == 403, who.name
        # hv-4 is in the other cohort: not a learner of this one, even for an administrator.
        hv4_url = f"/cohorts/{w.cohort}/learners/{w.enrolment(hv4)}/attendance"
        r = w.admin.device.post(hv4_url, data={"csrf_token": w.admin.csrf, **status})
        assert r.status_code == 404
        r = w.trainer.device.post(
            f"/cohorts/{w.cohort}/submissions/{other_sub}/grade",
            data={"csrf_token": w.trainer.csrf, "score": "9"},
        )
        assert r.status_code == 404
        r = w.trainer.device.post(
            f"/cohorts/{w.cohort}/submissions/{sub}/grade",
            data={"csrf_token": w.trainer.csrf, "score": "11"},
        )
        assert r.status_code == 422
        assert db.scalars(select(AttendanceMark)).all() == []
        assert db.scalars(select(SubmissionGrade)).all() == []


class TestWhoMayOpenACohort:
    def test_only_its_trainer_or_an_administrator(self, world: World) -> None:
        w = world
        urls = [f"/cohorts/{w.cohort}", f"/cohorts/{w.cohort}/learners.csv"]
        for url in urls:
            assert w.trainer.device.get(url).status_code == 200
            assert w.admin.device.get(url).status_code == 200
            for who in (w.cohort_trainer, w.other_trainer, w.learners[0]):
                assert who.device.get(url).status_code == 403, (url, who.name)
        assert w.cohort_trainer.device.get(f"/cohorts/{w.other_cohort}").status_code == 200
        assert w.admin.device.get(f"/cohorts/{w.other_cohort + 999}").status_code == 404
        with TestClient(w.trainer.device.app, base_url=TOOL_BASE_URL) as anonymous:
            assert anonymous.get(f"/cohorts/{w.cohort}").status_code == 401

    def test_an_administrator_of_another_lms_gets_404(
        self, world: World, app: FastAPI, platform_http: str, factories: Any
    ) -> None:
        other = TestPlatform.create(platform_http, issuer="https://lms2.test", client_id="c-2")
        factories.register(other, deployment_ids=["1"])
        device = TestClient(app, base_url=TOOL_BASE_URL, follow_redirects=False)
        sign_in(device, other, [INST_ADMIN, SYS_ADMIN], "admin-9", "Quản trị khác")
        assert device.get(f"/cohorts/{world.cohort}").status_code == 404
        device.close()

    def test_the_start_page_leads_a_trainer_to_their_cohort(self, world: World) -> None:
        w = world
        home = w.trainer.page("/")
        assert f'href="/cohorts/{w.cohort}"' in home
        assert "3 learners" in text_of(home)
        assert f'href="/cohorts/{w.other_cohort}"' not in home


class TestCsvExport:
    def test_vietnamese_headings_bom_and_rows_matching_the_data(self, world: World) -> None:
        w = world
        hv1 = w.learners[0]
        for key in ("doc-1", "video-1"):
            tick(w, hv1, key)
        hand_in(w, hv1, "reflect-1", "Suy ngẫm")
        w.clock.set(vn(4, 18))
        mark(w, 0, hv1="present", hv2="absent")
        mark(w, 1, hv1="late")
        w.clock.set(vn(6))
        grade(w.trainer, hand_in(w, hv1, "plan-1", "Kế hoạch"), "8,25")

        r = w.trainer.device.get(f"/cohorts/{w.cohort}/learners.csv")
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        assert r.headers["content-disposition"] == 'attachment; filename="nhom-M4-THCS-01-1.csv"'
        assert r.content.startswith(b"\xef\xbb\xbf")
        table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        head, rows = table[0], table[1:]
        first = ("Row number", "Full name", "School", "Email", "Self-study (%)")
        assert head[:5] == [gettext("vi", h) for h in first]
        assert head[2] == "Trường"
        assert head[5] == gettext("vi", "Morning of %(date)s", date="03/12/2026")
        assert head[-1] == gettext("vi", "At risk")
        assert len(head) == 5 + 4 + 9
        by_name = {row[1]: dict(zip(head, row, strict=True)) for row in rows}
        assert [row[1] for row in rows] == ["Lê Văn Hai", "Nguyễn Thị Học", "Phạm Thị Ba"]
        assert [row[0] for row in rows] == ["1", "2", "3"]

        def col(name: str, **params: str) -> str:
            return gettext("vi", name, **params)

        hoc = by_name["Nguyễn Thị Học"]
        assert hoc[col("Self-study (%)")] == "100"
        assert hoc[col("Morning of %(date)s", date="03/12/2026")] == "Có mặt"
        assert hoc[col("Afternoon of %(date)s", date="03/12/2026")] == "Đi muộn"
        assert hoc[col("Morning of %(date)s", date="04/12/2026")] == ""
        assert hoc[col("Sessions attended")] == "2"
        assert hoc[col("Follow-up (%)")] == "100"
        assert hoc[col("Self-study score")] == "10,00"
        assert hoc[col("Attendance score")] == "3,75"  # (2 + 1) / (2 × 4) × 10
        assert hoc[col("Follow-up score")] == "8,25"
        assert hoc[col("Result")] == "Chưa hoàn thành"  # attendance below 5
        assert hoc[col("At risk")] == gettext(
            "vi", MESSAGES["below_attendance"], score="3,75", threshold="5,0"
        )
        hai = by_name["Lê Văn Hai"]
        assert hai[col("Morning of %(date)s", date="03/12/2026")] == "Vắng"
        assert hai[col("Self-study (%)")] == "0"
        assert hai[col("Result")] == "Chưa đủ điểm thành phần"
        assert hai[col("At risk")] == "; ".join(
            [
                gettext("vi", rules.NOT_STARTED, day="3", date="28/11/2026"),
                gettext("vi", rules.ABSENT["morning"], date="03/12/2026"),
            ]
        )
        assert by_name["Phạm Thị Ba"][col("Morning of %(date)s", date="03/12/2026")] == ""

    def test_the_export_follows_the_filter_and_neutralises_formulas(
        self, world: World, db: Session
    ) -> None:
        w = world
        hv2 = w.learners[1]
        user = db.get(User, hv2.id)
        assert user is not None
        user.name = '=HYPERLINK("http://x")'
        db.commit()
        tick(w, w.learners[0], "doc-1")
        w.clock.set(vn(28, month=11))
        r = w.trainer.device.get(f"/cohorts/{w.cohort}/learners.csv?flag=not_started")
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))[1:]
        assert [x[1] for x in rows] == ['\'=HYPERLINK("http://x")', "Phạm Thị Ba"]


# -- 5. a fixed number of queries, whatever the size of the cohort -----------------------------


class TestQueriesDoNotGrowWithTheCohort:
    def _cohort_of(
        self,
        client: TestClient,
        db: Session,
        platform_row: Any,
        factories: Any,
        *,
        size: int,
        code: str,
        trainer_id: int,
    ) -> int:
        cls = new_class(client, code=code, name=f"Lớp {code}")["id"]
        for user in factories.users(platform_row, size, prefix=f"{code}-", schools=["THCS A"]):
            r = client.post(f"/api/v1/classes/{cls}/enrolments", json={"user_id": user.id})
            assert r.status_code == 201, r.text
        client.post(f"/api/v1/classes/{cls}/trainers", json={"user_id": trainer_id})
        (cohort,) = client.post(f"/api/v1/classes/{cls}/cohorts/split").json()
        sessions = client.get(f"/api/v1/classes/{cls}").json()["sessions"]
        # Every learner has done something of everything the page shows.
        enrolments = db.scalars(select(Enrolment).where(Enrolment.class_id == cls)).all()
        for i, e in enumerate(enrolments):
            db.add(ItemProgress(enrolment_id=e.id, item_key="doc-1", source="learner"))
            db.add(
                AttendanceMark(
                    session_id=sessions[0]["id"],
                    enrolment_id=e.id,
                    status=("present", "absent")[i % 2],
                )
            )
            sub = Submission(enrolment_id=e.id, item_key="plan-1", attempt=1, text="x" * 100)
            db.add(sub)
            db.flush()
            if i % 3:
                db.add(
                    SubmissionGrade(
                        submission_id=sub.id,
                        enrolment_id=e.id,
                        item_key="plan-1",
                        score=Decimal(i % 10),
                    )
                )
        db.flush()
        from app.grading.service import GradingService

        GradingService(db).refresh(cls)
        db.commit()
        assert db.get(Cohort, cohort["id"]) is not None
        return int(cohort["id"])

    def test_the_same_count_for_5_and_for_40_learners(
        self,
        app: FastAPI,
        client: TestClient,
        platform: TestPlatform,
        platform_row: Any,
        factories: Any,
        db: Session,
        engine: Engine,
    ) -> None:
        app.dependency_overrides[clock] = lambda: vn(8)
        trainer = TestClient(app, base_url=TOOL_BASE_URL, follow_redirects=False)
        me = sign_in(trainer, platform, [INSTRUCTOR], "cc-1", "Trần Cốt Cán")
        sign_in(client, platform, [INST_ADMIN, SYS_ADMIN], "admin-1", "Quản trị")
        _give_items(client, "gvpt-4", MATERIALS)
        small = self._cohort_of(
            client, db, platform_row, factories, size=5, code="M4-A", trainer_id=me["user_id"]
        )
        large = self._cohort_of(
            client, db, platform_row, factories, size=40, code="M4-B", trainer_id=me["user_id"]
        )
        first = db.scalars(select(Enrolment).where(Enrolment.cohort_id == small)).first()
        other = db.scalars(select(Enrolment).where(Enrolment.cohort_id == large)).first()
        assert first is not None and other is not None

        statements: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        def queries(url: str) -> int:
            statements.clear()
            r = trainer.get(url)
            assert r.status_code == 200, r.text
            return len(statements)

        event.listen(engine, "before_cursor_execute", count)
        try:
            for suffix in ("", "?sort=risk&flag=at_risk", "/learners.csv"):
                five = queries(f"/cohorts/{small}{suffix}")
                forty = queries(f"/cohorts/{large}{suffix}")
                assert five == forty, (suffix, five, forty)
                assert five <= 15, five
            opened_five = queries(f"/cohorts/{small}?open={first.id}")
            opened_forty = queries(f"/cohorts/{large}?open={other.id}")
            assert opened_five == opened_forty
            assert len(shown_rows(trainer.get(f"/cohorts/{large}").text)) == 40
        finally:
            event.remove(engine, "before_cursor_execute", count)
            trainer.close()
            app.dependency_overrides.pop(clock, None)
