"""Demonstration data: one wave and one running class of module 4, so that a newcomer who
clicks "teacher", "core trainer" or "administrator" sees a live 7-2-7 schedule, a cohort and
the compliance rules at work. Idempotent; only ever touches the demo platform's tenant."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from app.catalogue.service import CatalogueService
from app.classes.models import Level, TrainingClass
from app.classes.repository import ClassRepository
from app.classes.schemas import ClassCreate, SupportLogCreate, WaveCreate
from app.classes.service import ClassService
from app.core.time import local, utcnow
from app.core.upsert import upsert_returning_id
from app.demo.service import DEMO_DEPLOYMENT_ID, PERSONAS
from app.identity.models import Course, User
from app.platforms.models import Platform
from app.platforms.repository import PlatformRepository
from app.schedule.service import calendar_for

DEMO_CLASS_CODE = "M4-THCS-DEMO"
SCHOOLS = ["THCS Nguyễn Du", "THCS Lê Quý Đôn", "THCS Trần Quốc Toản"]
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Võ", "Đặng", "Bùi"]
GIVEN = ["An", "Bình", "Chi", "Dũng", "Giang", "Hà", "Hải", "Hoa", "Khánh", "Linh", "Mai", "Nam"]


ETEP = "https://taphuan.csdl.edu.vn/"
DEMO_ITEMS: list[dict[str, object]] = [
    {
        "phase": "self_study",
        "kind": "document",
        "title": "Đọc tài liệu mô đun 4 (phần 1: kế hoạch dạy học)",
        "url": ETEP,
        "due_day": 3,
    },
    {
        "phase": "self_study",
        "kind": "video",
        "title": "Xem video bài giảng: xây dựng kế hoạch bài dạy theo hướng phát triển năng lực",
        "url": ETEP,
        "due_day": 5,
    },
    {
        "phase": "self_study",
        "kind": "quiz",
        "title": "Tự kiểm tra: mô hình bồi dưỡng 7-2-7",
        "questions": [
            {
                "text": "Mỗi mô đun có mấy ngày học trực tiếp?",
                "choices": ["1 ngày", "2 ngày", "7 ngày"],
                "answer": 2,
            },
            {
                "text": "Một giáo viên cốt cán hỗ trợ khoảng bao nhiêu giáo viên đại trà?",
                "choices": ["20", "50", "150"],
                "answer": 2,
            },
        ],
    },
    {
        "phase": "self_study",
        "kind": "reflection",
        "title": "Suy ngẫm: kế hoạch dạy học hiện nay của thầy/cô",
        "description": "Viết ngắn (5–10 dòng): điều gì thầy/cô muốn thay đổi sau mô đun này?",
    },
    {
        "phase": "in_person",
        "kind": "slides",
        "title": "Slide hai ngày học trực tiếp",
        "url": ETEP,
    },
    {
        "phase": "follow_up",
        "kind": "assignment",
        "title": "Nộp kế hoạch bài dạy minh hoạ",
        "description": "Một kế hoạch bài dạy của thầy/cô, xây dựng theo mô đun (tệp Word/PDF, "
        "đường dẫn hoặc văn bản).",
        "due_day": 7,
    },
    {
        "phase": "follow_up",
        "kind": "forum",
        "title": "Thảo luận trong nhóm cốt cán",
        "url": ETEP,
        "required": False,
    },
]


def seed_demo(session: Session, platform: Platform) -> None:
    repo = PlatformRepository(session)
    deployment_pk = repo.deployment_pk(platform.id, DEMO_DEPLOYMENT_ID)
    assert deployment_pk is not None
    classes = ClassRepository(session)
    if classes.class_by_code(deployment_pk, DEMO_CLASS_CODE) is not None:
        return
    now = utcnow()

    def person(sub: str, name: str | None, school: str | None) -> int:
        values = {
            "platform_id": platform.id,
            "sub": sub,
            "name": name,
            "school": school,
            "created_at": now,
        }
        return upsert_returning_id(
            session, User, values, conflict=("platform_id", "sub"), update=["school"]
        )

    teacher = person(PERSONAS["teacher"].sub, PERSONAS["teacher"].name, SCHOOLS[0])
    trainer = person(PERSONAS["trainer"].sub, PERSONAS["trainer"].name, SCHOOLS[1])
    second_trainer = person("201", "Đỗ Thị Thu", SCHOOLS[2])
    learners = [teacher] + [
        person(str(300 + i), f"{FAMILY[i % 10]} {GIVEN[i % 12]} {i}", SCHOOLS[i % 3])
        for i in range(59)
    ]
    course_id = upsert_returning_id(
        session,
        Course,
        {
            "deployment_id": deployment_pk,
            "context_id": "demo-course-1",
            "label": "BDTX-M4",
            "title": "Bồi dưỡng thường xuyên — Mô đun 4 (demo)",
            "context_types": [],
            "created_at": now,
            "updated_at": now,
        },
        conflict=("deployment_id", "context_id"),
        update=["label", "title"],
    )

    catalogue = CatalogueService(session)
    module, version = next((m, v) for m, v in catalogue.modules(deployment_pk) if m.key == "gvpt-4")
    if not version.spec.get("materials"):
        # The shipped modules carry no items (they are the LMS's and the trainers'); the demo
        # adds some, as an administrator would, so that every kind of item can be tried.
        catalogue.update(
            deployment_pk,
            module.id,
            {**version.spec, "materials": DEMO_ITEMS},
            user_id=None,
            note="Học liệu minh hoạ của bản demo",
        )
    service = ClassService(session)
    wave = service.repo.wave_by_name(deployment_pk, "Đợt 1") or service.create_wave(
        deployment_pk, WaveCreate(name="Đợt 1", year=local(now).year, description="Mô đun 4")
    )
    # A class in full swing: self-study began a few days ago, the in-person days are next.
    today = local(now).date()
    calendar = calendar_for(session, deployment_pk, around=today.year)
    first = calendar.next_working_day(today + timedelta(days=3))
    in_person = calendar.working_days_from(first, 2)
    cls: TrainingClass = service.create_class(
        deployment_pk,
        ClassCreate(
            code=DEMO_CLASS_CODE,
            name="Mô đun 4 — THCS — lớp demo",
            module_id=module.id,
            level=Level.THCS,
            wave_id=wave.id,
            in_person_dates=in_person,
            venue="Trường THCS Nguyễn Du, Quận 7",
            room="Phòng 201",
            course_id=course_id,
        ),
    )
    for user_id in learners:
        service.enrol(deployment_pk, cls.id, user_id, source="demo")
    for user_id in (trainer, second_trainer):
        service.add_trainer(deployment_pk, cls.id, user_id)
    cohorts = service.split_cohorts(deployment_pk, cls.id)
    mine = next(c for c in cohorts if c.trainer_user_id == trainer)
    service.log_support(
        deployment_pk,
        cls.id,
        mine.id,
        trainer,
        SupportLogCreate(
            date=today, form="online", periods=Decimal(6), note="Hỗ trợ tự học trên LMS"
        ),
    )
