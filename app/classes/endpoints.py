"""JSON API for waves, classes, enrolments, cohorts, support periods and compliance.

Thin: parse, call ``ClassService``, shape the answer. Errors are RFC 9457 problem+json
(see app/core/handlers.py); nothing is written when a request is refused.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from app.audit.service import actor_of
from app.auth.api import ApiAdmin, ApiAnyone, ApiTrainer
from app.auth.dependencies import DbSession, ReadDbSession, Viewer
from app.classes.models import ClassSession, TrainingClass, Wave
from app.classes.rules import RuleResult
from app.classes.schemas import (
    ClassCreate,
    CohortMove,
    CohortTrainer,
    EnrolmentCreate,
    FallbackSet,
    ShiftCreate,
    SupportLogCreate,
    WaveCreate,
    WaveOut,
)
from app.classes.service import ClassService, CohortView, stored_schedule
from app.core.i18n import get_translations
from app.core.state import get_context
from app.core.templating import request_locale
from app.core.time import local, utcnow
from app.identity.repository import IdentityRepository
from app.rosters.service import RosterService

router = APIRouter(prefix="/api/v1", tags=["classes"])


def _today() -> Any:
    return local(utcnow()).date()


def wave_out(wave: Wave) -> dict[str, Any]:
    return WaveOut(
        id=wave.id, name=wave.name, year=wave.year, description=wave.description
    ).model_dump()


def session_out(row: ClassSession) -> dict[str, Any]:
    return {
        "id": row.id,
        "date": row.date.isoformat(),
        "part": row.part,
        "venue": row.venue,
        "room": row.room,
        "virtual_url": row.virtual_url,
    }


def class_out(service: ClassService, cls: TrainingClass, *, detail: bool = False) -> dict[str, Any]:
    schedule = stored_schedule(cls)
    out: dict[str, Any] = {
        "id": cls.id,
        "code": cls.code,
        "name": cls.name,
        "wave_id": cls.wave_id,
        "module_version_id": cls.module_version_id,
        "level": cls.level,
        "programme": cls.programme,
        "capacity": cls.capacity,
        "enrolled": cls.enrolled_count,
        "starts_on": cls.starts_on.isoformat(),
        "ends_on": cls.ends_on.isoformat(),
        "schedule": {
            "self_study": [_d(schedule.self_study_start), _d(schedule.self_study_end)],
            "in_person": [d.isoformat() for d in schedule.in_person_dates],
            "follow_up": [_d(schedule.follow_up_start), _d(schedule.follow_up_end)],
        },
        "virtual_fallback": None
        if cls.virtual_fallback_url is None
        else {
            "url": cls.virtual_fallback_url,
            "reason": cls.virtual_fallback_reason,
            "decided_on": _d(cls.virtual_fallback_decided_on),
        },
        "course_id": cls.course_id,
    }
    if detail:
        out["sessions"] = [session_out(s) for s in service.repo.sessions(cls.id)]
        out["cohorts"] = [cohort_out(v) for v in service.cohort_views(cls)]
        out["trainers"] = [
            {"user_id": u.id, "name": u.display_name} for _, u in service.repo.trainers(cls.id)
        ]
    return out


def cohort_out(view: CohortView) -> dict[str, Any]:
    return {
        "id": view.cohort.id,
        "name": view.cohort.name,
        "size": view.size,
        "trainer_user_id": view.cohort.trainer_user_id,
        "trainer_name": view.trainer.display_name if view.trainer else None,
        "support_periods": str(view.support_periods),
    }


def _d(value: Any) -> str | None:
    return value.isoformat() if value else None


def rule_out(request: Request, result: RuleResult) -> dict[str, Any]:
    translations = get_translations(request_locale(request))

    def t(text: str) -> str:
        translated = translations.gettext(text)
        try:
            return translated % result.params
        except (KeyError, ValueError, TypeError):
            return translated

    return {
        "code": result.code,
        "status": result.status.value,
        "rule": t(result.rule),
        "detail": t(result.detail),
        "params": {
            k: (str(v) if not isinstance(v, int | str) else v) for k, v in result.params.items()
        },
    }


# -- waves ---------------------------------------------------------------------------------


@router.get("/waves", summary="Waves (đợt) of this LMS")
def list_waves(viewer: Viewer = ApiAdmin, db: Session = ReadDbSession) -> list[dict[str, Any]]:
    return [wave_out(w) for w in ClassService(db).repo.waves(viewer.deployment_id)]


@router.post("/waves", status_code=status.HTTP_201_CREATED, summary="Create a wave")
def create_wave(
    data: WaveCreate, viewer: Viewer = ApiAdmin, db: Session = DbSession
) -> dict[str, Any]:
    return wave_out(ClassService(db, actor_of(viewer)).create_wave(viewer.deployment_id, data))


@router.get("/waves/{wave_id}/compliance", summary="Every rule for every class of a wave")
def wave_compliance(
    wave_id: int, request: Request, viewer: Viewer = ApiAdmin, db: Session = ReadDbSession
) -> dict[str, Any]:
    service = ClassService(db)
    wave = service.get_wave(viewer.deployment_id, wave_id)
    rows = service.repo.classes(viewer.deployment_id, wave.id)
    by_class = service.compliance_many(rows, _today())
    classes = []
    for cls in rows:
        results = by_class[cls.id]
        classes.append(
            {
                "class_id": cls.id,
                "code": cls.code,
                "name": cls.name,
                "passed": all(r.status.value != "fail" for r in results),
                "rules": [rule_out(request, r) for r in results],
            }
        )
    return {"wave": wave_out(wave), "classes": classes}


# -- classes -------------------------------------------------------------------------------


@router.get("/classes", summary="Classes of this LMS")
def list_classes(
    wave_id: int | None = None, viewer: Viewer = ApiAdmin, db: Session = ReadDbSession
) -> list[dict[str, Any]]:
    service = ClassService(db)
    return [class_out(service, c) for c in service.repo.classes(viewer.deployment_id, wave_id)]


@router.post(
    "/classes",
    status_code=status.HTTP_201_CREATED,
    summary="Create a class; its schedule is computed",
)
def create_class(
    data: ClassCreate, viewer: Viewer = ApiAdmin, db: Session = DbSession
) -> dict[str, Any]:
    service = ClassService(db, actor_of(viewer))
    return class_out(service, service.create_class(viewer.deployment_id, data), detail=True)


@router.get("/classes/{class_id}", summary="A class with its schedule, sessions and cohorts")
def get_class(
    class_id: int, viewer: Viewer = ApiAdmin, db: Session = ReadDbSession
) -> dict[str, Any]:
    service = ClassService(db)
    return class_out(service, service.get_class(viewer.deployment_id, class_id), detail=True)


@router.put(
    "/classes/{class_id}/fallback", summary="Move in-person sessions to a virtual classroom"
)
def set_fallback(
    class_id: int, data: FallbackSet, viewer: Viewer = ApiAdmin, db: Session = DbSession
) -> dict[str, Any]:
    service = ClassService(db, actor_of(viewer))
    return class_out(
        service, service.set_fallback(viewer.deployment_id, class_id, data), detail=True
    )


@router.delete("/classes/{class_id}/fallback", summary="Back to in-person sessions")
def clear_fallback(
    class_id: int, viewer: Viewer = ApiAdmin, db: Session = DbSession
) -> dict[str, Any]:
    service = ClassService(db, actor_of(viewer))
    return class_out(service, service.clear_fallback(viewer.deployment_id, class_id), detail=True)


@router.get("/classes/{class_id}/compliance", summary="Every rule for one class, pass/fail and why")
def class_compliance(
    class_id: int, request: Request, viewer: Viewer = ApiAdmin, db: Session = ReadDbSession
) -> dict[str, Any]:
    results = ClassService(db).compliance(viewer.deployment_id, class_id, _today())
    return {
        "class_id": class_id,
        "passed": all(r.status.value != "fail" for r in results),
        "rules": [rule_out(request, r) for r in results],
    }


@router.post(
    "/classes/{class_id}/enrolments",
    status_code=status.HTTP_201_CREATED,
    summary="Enrol a learner (within the cap)",
)
def enrol(
    class_id: int, data: EnrolmentCreate, viewer: Viewer = ApiAdmin, db: Session = DbSession
) -> dict[str, Any]:
    enrolment = ClassService(db, actor_of(viewer)).enrol(
        viewer.deployment_id, class_id, data.user_id
    )
    return {"id": enrolment.id, "user_id": enrolment.user_id, "status": enrolment.status}


@router.delete(
    "/classes/{class_id}/enrolments/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Mark a learner as left",
)
def leave(class_id: int, user_id: int, viewer: Viewer = ApiAdmin, db: Session = DbSession) -> None:
    ClassService(db, actor_of(viewer)).leave(viewer.deployment_id, class_id, user_id)


@router.post(
    "/classes/{class_id}/enrolments/{enrolment_id}/shifts",
    status_code=status.HTTP_201_CREATED,
    summary="Shift one learner's dates",
)
def shift(
    class_id: int,
    enrolment_id: int,
    data: ShiftCreate,
    viewer: Viewer = ApiAdmin,
    db: Session = DbSession,
) -> dict[str, Any]:
    enrolment = ClassService(db, actor_of(viewer)).shift(
        viewer.deployment_id, class_id, enrolment_id, data, viewer.user.id
    )
    return {"id": enrolment.id, "schedule": enrolment.own_schedule}


@router.post(
    "/classes/{class_id}/trainers",
    status_code=status.HTTP_201_CREATED,
    summary="Add a core trainer to a class",
)
def add_trainer(
    class_id: int, data: EnrolmentCreate, viewer: Viewer = ApiAdmin, db: Session = DbSession
) -> dict[str, Any]:
    ClassService(db, actor_of(viewer)).add_trainer(viewer.deployment_id, class_id, data.user_id)
    return {"class_id": class_id, "user_id": data.user_id}


@router.post(
    "/classes/{class_id}/cohorts/split", summary="Split the class into cohorts of at most 50"
)
def split(
    class_id: int, viewer: Viewer = ApiAdmin, db: Session = DbSession
) -> list[dict[str, Any]]:
    service = ClassService(db, actor_of(viewer))
    service.split_cohorts(viewer.deployment_id, class_id)
    return [
        cohort_out(v)
        for v in service.cohort_views(service.get_class(viewer.deployment_id, class_id))
    ]


@router.post("/classes/{class_id}/cohorts/moves", summary="Move a learner to another cohort")
def move(
    class_id: int, data: CohortMove, viewer: Viewer = ApiAdmin, db: Session = DbSession
) -> dict[str, Any]:
    enrolment = ClassService(db, actor_of(viewer)).move(
        viewer.deployment_id, class_id, data.enrolment_id, data.cohort_id
    )
    return {"enrolment_id": enrolment.id, "cohort_id": enrolment.cohort_id}


@router.put(
    "/classes/{class_id}/cohorts/{cohort_id}/trainer", summary="Set a cohort's core trainer"
)
def set_trainer(
    class_id: int,
    cohort_id: int,
    data: CohortTrainer,
    viewer: Viewer = ApiAdmin,
    db: Session = DbSession,
) -> dict[str, Any]:
    cohort = ClassService(db, actor_of(viewer)).set_cohort_trainer(
        viewer.deployment_id, class_id, cohort_id, data.trainer_user_id
    )
    return {"id": cohort.id, "trainer_user_id": cohort.trainer_user_id}


@router.post(
    "/classes/{class_id}/cohorts/{cohort_id}/support",
    status_code=status.HTTP_201_CREATED,
    summary="Log support periods (the cohort's trainer)",
)
def log_support(
    class_id: int,
    cohort_id: int,
    data: SupportLogCreate,
    viewer: Viewer = ApiTrainer,
    db: Session = DbSession,
) -> dict[str, Any]:
    row = ClassService(db, actor_of(viewer)).log_support(
        viewer.deployment_id, class_id, cohort_id, viewer.user.id, data
    )
    return {
        "id": row.id,
        "date": row.date.isoformat(),
        "form": row.form,
        "periods": str(row.periods),
    }


@router.get("/me/cohorts", summary="The signed-in core trainer's cohorts")
def my_cohorts(viewer: Viewer = ApiTrainer, db: Session = ReadDbSession) -> list[dict[str, Any]]:
    service = ClassService(db)
    out = []
    for cohort, cls in service.repo.cohorts_of_trainer(viewer.deployment_id, viewer.user.id):
        view = next(v for v in service.cohort_views(cls) if v.cohort.id == cohort.id)
        out.append(cohort_out(view) | {"class_id": cls.id, "class_name": cls.name})
    return out


@router.get("/me/schedule", summary="The signed-in learner's own dates")
def my_schedule(viewer: Viewer = ApiAnyone, db: Session = ReadDbSession) -> list[dict[str, Any]]:
    service = ClassService(db)
    out = []
    for enrolment, cls in service.repo.enrolments_of_user(viewer.deployment_id, viewer.user.id):
        schedule = service.learner_schedule(cls, enrolment)
        out.append(
            {
                "class_id": cls.id,
                "class_name": cls.name,
                "self_study": [_d(schedule.self_study_start), _d(schedule.self_study_end)],
                "in_person": [d.isoformat() for d in schedule.in_person_dates],
                "follow_up": [_d(schedule.follow_up_start), _d(schedule.follow_up_end)],
                "shifted": enrolment.own_schedule is not None,
                "ical_path": f"/ical/learner/{enrolment.ical_token}.ics",
            }
        )
    return out


# -- courses and rosters --------------------------------------------------------------------


class CourseLink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    course_id: int | None


@router.get("/courses", summary="LMS courses of this deployment that have launched blend727")
def list_courses(viewer: Viewer = ApiAdmin, db: Session = ReadDbSession) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "context_id": c.context_id,
            "label": c.label,
            "title": c.title,
            "has_roster": bool(c.nrps_url),
        }
        for c in IdentityRepository(db).courses(viewer.deployment_id)
    ]


@router.put(
    "/classes/{class_id}/course", summary="Link a class to the LMS course its learners come from"
)
def link_course(
    class_id: int, data: CourseLink, viewer: Viewer = ApiAdmin, db: Session = DbSession
) -> dict[str, Any]:
    service = ClassService(db, actor_of(viewer))
    cls = service.link_course(viewer.deployment_id, class_id, data.course_id)
    return class_out(service, cls)


@router.post(
    "/classes/{class_id}/roster/sync", summary="Fetch the class list from the LMS (NRPS) now"
)
def sync_roster(class_id: int, request: Request, viewer: Viewer = ApiAdmin) -> dict[str, Any]:
    ctx = get_context(request)
    result = RosterService(ctx.database, ctx.http).sync(
        viewer.deployment_id, class_id, actor=actor_of(viewer)
    )
    return result.as_dict()
