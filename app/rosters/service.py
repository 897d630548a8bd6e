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
            return self.sync(deployment_id, class_id)
        except AppError as exc:
            log.warning("roster sync of class %s failed: %s", class_id, exc.log_detail)
            return None

    def sync(self, deployment_id: int, class_id: int) -> SyncResult:
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
                db, target.deployment_id, target.class_id, target.platform.id, members
            )


def apply_roster(
    db: Session, deployment_id: int, class_id: int, platform_id: int, members: Sequence[Member]
) -> SyncResult:
    """Apply a complete roster: idempotent, and nobody's record is ever deleted."""
    service = ClassService(db)
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
    # Learners who came from the roster and are no longer in it have left the course.
    for enrolment, _user in repo.active_enrolments(class_id):
        if enrolment.source == "nrps" and enrolment.user_id not in present:
            service.leave(deployment_id, class_id, enrolment.user_id)
            result.left += 1
    repo.touch_roster(class_id, now)
    db.flush()
    return result


def on_launch(
    db: Session, deployment_id: int, course_id: int | None, user_id: int, role: str
) -> list[int]:
    """A learner opening the course of exactly one class joins it (within the cap); a core
    trainer opening it is one of its trainers. Returns the classes whose roster is stale."""
    if course_id is None:
        return []
    repo = ClassRepository(db)
    classes: Sequence[TrainingClass] = repo.classes_for_course(deployment_id, course_id)
    service = ClassService(db)
    if len(classes) == 1:
        cls = classes[0]
        try:
            with db.begin_nested():
                if role == Role.TEACHER:
                    service.enrol(deployment_id, cls.id, user_id, source="launch")
                elif role == Role.TRAINER:
                    service.add_trainer(deployment_id, cls.id, user_id, source="launch")
        except ClassFull:
            pass
    course = db.get(Course, course_id)
    if course is None or not course.nrps_url:
        return []  # the LMS offers no member list for this course: nothing to sync
    now = utcnow()
    return [
        c.id
        for c in classes
        if c.roster_synced_at is None or now - c.roster_synced_at > STALE_AFTER
    ]
