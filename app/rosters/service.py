"""Class rosters from the LMS.

NRPS gives the course's members; learners are enrolled (within the cap), instructors become
the class's core trainers, and people who left are marked as left, never deleted. The LMS
call happens outside any database transaction (it may take seconds); the result is applied
in one short transaction. Launches feed the roster too: a learner who opens the activity of
a class is enrolled in it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import requests
from sqlalchemy.orm import Session

from app.audit.rules import Actor
from app.classes.models import EnrolmentStatus, TrainingClass
from app.classes.repository import ClassRepository
from app.classes.service import ClassFull, ClassService
from app.core.db import Database
from app.core.errors import AppError, NotFound, ValidationFailed
from app.core.time import utcnow
from app.identity.models import Course, Role
from app.identity.repository import IdentityRepository
from app.keys.service import KeyService
from app.platforms.repository import PlatformRepository
from lti.nrps import Member, fetch_members
from lti.roles import map_roles
from lti.services import ServiceError

STALE_AFTER = timedelta(minutes=10)
# Pages of 50 (a cohort's size) keep each answer small: Moodle builds a page in PHP memory.
PAGE_SIZE = 50
log = logging.getLogger("blend727.rosters")


class RosterUnavailable(AppError):
    status_code = 502
    code = "roster_unavailable"
    title = "The LMS did not give the class list"
    detail = (
        "blend727 could not read the course's members from the LMS (%(kind)s). Try again later."
    )


@dataclass
class SyncResult:
    members: int = 0
    enrolled: int = 0
    already: int = 0
    left: int = 0
    trainers: int = 0
    refused_full: int = 0
    ignored: int = 0
    #: Learners kept because the LMS listed no learner at all (see apply_roster).
    kept: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "members": self.members,
            "enrolled": self.enrolled,
            "already": self.already,
            "left": self.left,
            "trainers": self.trainers,
            "refused_full": self.refused_full,
            "ignored": self.ignored,
            "kept": self.kept,
        }


@dataclass(frozen=True)
class _Target:
    class_id: int
    deployment_id: int
    platform: Any
    nrps_url: str


class RosterService:
    def __init__(self, database: Database, http: requests.Session) -> None:
        self.database = database
        self.http = http

    def _target(self, deployment_id: int, class_id: int) -> _Target:
        with self.database.session(readonly=True) as db:
            cls = ClassRepository(db).get_class(deployment_id, class_id)
            if cls is None:
                raise NotFound()
            course = db.get(Course, cls.course_id) if cls.course_id else None
            if course is None or not course.nrps_url:
                raise ValidationFailed(
                    "This class is not linked to an LMS course with a member list yet: open "
                    "blend727 from that course once, then link the class to it",
                    params={"field": "course_id"},
                    code="no_roster_source",
                )
            platform = PlatformRepository(db).record_for_deployment(deployment_id)
            assert platform is not None
            return _Target(cls.id, deployment_id, platform, course.nrps_url)

    def sync_if_stale(self, deployment_id: int, class_id: int) -> SyncResult | None:
        """Background sync after a launch: only one process wins the claim, so a wave's
        morning rush triggers one NRPS call per class, not one per launch."""
        with self.database.session() as db:
            claimed = ClassRepository(db).claim_roster_sync(class_id, utcnow(), STALE_AFTER)
        if not claimed:
            return None
        try:
            return self.sync(deployment_id, class_id)  # the tool's own: actor "system (worker)"
        except AppError as exc:
            log.warning("roster sync of class %s failed: %s", class_id, exc.log_detail)
            return None

    def sync(self, deployment_id: int, class_id: int, actor: Actor | None = None) -> SyncResult:
        """Fetch and apply the roster; ``actor`` is who asked (``None``: the tool itself)."""
        target = self._target(deployment_id, class_id)
        with self.database.session(readonly=True) as db:
            tool_key = KeyService(db).signing_key()
        try:
            members = fetch_members(
                registration=target.platform,
                context_memberships_url=target.nrps_url,
                tool_key=tool_key,
                http=self.http,
                limit=PAGE_SIZE,
            )
        except ServiceError as exc:
            raise RosterUnavailable(params={"kind": exc.kind}, log_detail=str(exc)) from exc
        with self.database.session() as db:
            return apply_roster(
                db, target.deployment_id, target.class_id, target.platform.id, members, actor
            )


def apply_roster(
    db: Session,
    deployment_id: int,
    class_id: int,
    platform_id: int,
    members: Sequence[Member],
    actor: Actor | None = None,
) -> SyncResult:
    """Apply a complete roster: idempotent, and nobody's record is ever deleted. Each
    enrolment, departure and trainer it brings is in the audit log under ``actor`` (the tool
    itself when ``None``)."""
    service = ClassService(db, actor or Actor.system(platform_id, deployment_id))
    identity = IdentityRepository(db)
    repo = ClassRepository(db)
    result = SyncResult(members=len(members))
    present_learners: list[int] = []
    now = utcnow()
    for member in members:
        values: dict[str, Any] = {
            "platform_id": platform_id,
            "sub": member.user_id,
            "created_at": now,
        }
        for name in ("name", "given_name", "family_name", "email"):
            value = getattr(member, name)
            if value:
                values[name] = value[:320] if name == "email" else value[:255]
        update_cols = [k for k in values if k not in ("platform_id", "sub", "created_at")]
        user_id, _ = identity.upsert_user(values, update_cols or ["sub"])
        role = map_roles(member.roles)
        active = member.status == "Active"
        if role == Role.TEACHER:
            if active:
                present_learners.append(user_id)
            elif (
                row := repo.enrolment(class_id, user_id)
            ) is not None and row.status == EnrolmentStatus.ACTIVE:
                service.leave(deployment_id, class_id, user_id)
                result.left += 1
        elif role == Role.TRAINER and active:
            service.add_trainer(deployment_id, class_id, user_id, source="nrps")
            result.trainers += 1
        else:
            result.ignored += 1
    # One bulk enrolment for the whole roster (a fixed number of statements).
    already = {
        u
        for u, e in repo.enrolments_for_users(class_id, present_learners).items()
        if e.status == EnrolmentStatus.ACTIVE
    }
    result.already = len(already)
    enrolled, refused = service.enrol_many(
        deployment_id, class_id, [u for u in present_learners if u not in already], source="nrps"
    )
    result.enrolled, result.refused_full = len(enrolled), len(refused)
    present = set(present_learners)
    # Learners who came from the roster and are no longer in it have left the course — but a
    # list with no learner at all (a privacy setting changed, an LMS answering an empty page)
    # is far likelier a fault than a whole class leaving at once: nobody is marked as left
    # then, and the result says so. Learners named Inactive above still leave one by one.
    missing = [
        enrolment.user_id
        for enrolment, _user in repo.active_enrolments(class_id)
        if enrolment.source == "nrps" and enrolment.user_id not in present
    ]
    if missing and not present_learners:
        result.kept = len(missing)
        log.warning(
            "class %s: the LMS listed no learner; %d enrolled learners kept", class_id, len(missing)
        )
        missing = []
    for user_id in missing:
        service.leave(deployment_id, class_id, user_id)
        result.left += 1
    repo.touch_roster(class_id, now)
    db.flush()
    return result


#: The custom parameter a deep-linked activity carries to name its class (app/deeplink).
CLASS_CODE_PARAM = "class_code"


def class_code_of(custom: Any) -> str | None:
    """The ``class_code`` custom parameter of a launch (Moodle sends custom parameters as
    strings; a value of another type names no class)."""
    if not isinstance(custom, dict):
        return None
    value = custom.get(CLASS_CODE_PARAM)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def _class_of_link(
    db: Session,
    repo: ClassRepository,
    deployment_id: int,
    course_id: int | None,
    resource_link_id: int,
    class_code: str,
) -> TrainingClass | None:
    """The class a launch's ``class_code`` names. A class without a resource link is tied to
    the launch's (and to its course, when it has none); a class tied to another link stays
    tied to that first one. ``None`` (logged) when the code names no class of this deployment
    or a class of another course (an activity copied there keeps its custom parameters): the
    launch goes on as if it carried no code."""
    cls = repo.class_by_code(deployment_id, class_code)  # scoped: never another tenant's
    if cls is None:
        log.warning(
            "launch from resource link %s names class code %r, which is not a class of "
            "deployment %s: ignored",
            resource_link_id,
            class_code,
            deployment_id,
        )
        return None
    if cls.resource_link_id is None:
        # two first launches at once: the row lock makes the second see the first's tie
        db.refresh(cls, with_for_update=True)
    if cls.course_id is not None and course_id is not None and cls.course_id != course_id:
        log.warning(
            "launch from resource link %s (course %s) names class %s (%s) of course %s: ignored",
            resource_link_id,
            course_id,
            cls.id,
            cls.code,
            cls.course_id,
        )
        return None
    if cls.resource_link_id is None:
        cls.resource_link_id = resource_link_id
        if cls.course_id is None:
            cls.course_id = course_id
        db.flush()
        log.info("class %s (%s) tied to resource link %s", cls.id, cls.code, resource_link_id)
    elif cls.resource_link_id != resource_link_id:
        log.info(
            "launch from resource link %s names class %s (%s), which stays tied to resource "
            "link %s",
            resource_link_id,
            cls.id,
            cls.code,
            cls.resource_link_id,
        )
    return cls


def _join(
    db: Session,
    service: ClassService,
    deployment_id: int,
    cls: TrainingClass,
    user_id: int,
    role: str,
) -> None:
    """A learner joins the class (within the cap); a core trainer becomes one of its trainers."""
    try:
        with db.begin_nested():
            if role == Role.TEACHER:
                service.enrol(deployment_id, cls.id, user_id, source="launch")
            elif role == Role.TRAINER:
                service.add_trainer(deployment_id, cls.id, user_id, source="launch")
    except ClassFull:
        pass


def on_launch(
    db: Session,
    deployment_id: int,
    course_id: int | None,
    user_id: int,
    role: str,
    *,
    resource_link_id: int | None = None,
    class_code: str | None = None,
    actor: Actor | None = None,
) -> list[int]:
    """A learner opening the activity of a class joins it (within the cap); a core trainer
    opening it is one of its trainers. The class is the one the launch's ``class_code`` names
    (a deep-linked activity; see ``_class_of_link``), else the course's class when the course
    has exactly one. Returns the classes whose roster is stale."""
    repo = ClassRepository(db)
    service = ClassService(db, actor)  # the launching person joins: they are the actor
    named: TrainingClass | None = None
    if class_code and resource_link_id is not None:
        named = _class_of_link(db, repo, deployment_id, course_id, resource_link_id, class_code)
        if named is not None:
            _join(db, service, deployment_id, named, user_id, role)
    if course_id is None:
        return []
    classes: Sequence[TrainingClass] = repo.classes_for_course(deployment_id, course_id)
    if named is None and len(classes) == 1:
        _join(db, service, deployment_id, classes[0], user_id, role)
    course = db.get(Course, course_id)
    if course is None or not course.nrps_url:
        return []  # the LMS offers no member list for this course: nothing to sync
    now = utcnow()
    return [
        c.id
        for c in classes
        if c.roster_synced_at is None or now - c.roster_synced_at > STALE_AFTER
    ]
