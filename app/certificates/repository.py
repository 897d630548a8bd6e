"""Queries for certificates and their issuer. Lookups that start from an id a request
carries are scoped by deployment; a code is looked up by its unique index alone (the public
verification page has no tenant)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.catalogue.models import ModuleVersion
from app.certificates.models import Certificate, CertificateIssuer, CertificateJob
from app.classes.models import Enrolment, EnrolmentStatus, TrainingClass
from app.core.upsert import insert_if_absent
from app.grading.models import ModuleResultRow
from app.identity.models import User


@dataclass(frozen=True)
class LearnerRow:
    """An active learner of a class with their stored module result (if any)."""

    enrolment: Enrolment
    user: User
    result: ModuleResultRow | None


@dataclass(frozen=True)
class ResultLine:
    """The few columns the class overview needs per active learner."""

    enrolment_id: int
    class_id: int
    own_schedule: dict[str, Any] | None
    classification: str | None
    final: bool
    overridden: bool
    score: Decimal | None


@dataclass(frozen=True)
class Revoked:
    """A certificate just revoked."""

    id: int
    deployment_id: int
    enrolment_id: int


class CertificateRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def flush(self) -> None:
        self.session.flush()

    # -- the issuer ------------------------------------------------------------------------
    def issuer(self, deployment_id: int) -> CertificateIssuer | None:
        return self.session.get(CertificateIssuer, deployment_id)

    def add(self, obj: object) -> None:
        self.session.add(obj)

    # -- certificates ----------------------------------------------------------------------
    def by_code(self, code: str) -> Certificate | None:
        return self.session.scalars(select(Certificate).where(Certificate.code == code)).first()

    def by_enrolment(self, enrolment_id: int) -> Certificate | None:
        stmt = select(Certificate).where(Certificate.enrolment_id == enrolment_id)
        return self.session.scalars(stmt).first()

    def by_enrolments(self, enrolment_ids: Sequence[int]) -> dict[int, Certificate]:
        if not enrolment_ids:
            return {}
        stmt = select(Certificate).where(Certificate.enrolment_id.in_(enrolment_ids))
        return {c.enrolment_id: c for c in self.session.scalars(stmt)}

    def insert_if_absent(self, values: dict[str, Any]) -> bool:
        """One certificate per enrolment, whoever asks at the same time: True if inserted."""
        return insert_if_absent(self.session, Certificate, values, conflict=("enrolment_id",))

    def revoke(self, enrolment_ids: Sequence[int], at: datetime, reason: str) -> list[Revoked]:
        """Revoke the valid certificates of these enrolments in one statement; returns those
        revoked (already revoked ones are left as they are)."""
        if not enrolment_ids:
            return []
        result = self.session.execute(
            update(Certificate)
            .where(Certificate.enrolment_id.in_(enrolment_ids), Certificate.revoked_at.is_(None))
            .values(revoked_at=at, revoked_reason=reason)
            .returning(Certificate.id, Certificate.deployment_id, Certificate.enrolment_id)
        )
        return [Revoked(int(i), int(d), int(e)) for i, d, e in result.all()]

    def learners_of(self, enrolment_ids: Sequence[int]) -> dict[int, tuple[User, int]]:
        """The learner and class of each of these enrolments, in one query."""
        if not enrolment_ids:
            return {}
        stmt = (
            select(Enrolment.id, Enrolment.class_id, User)
            .join(User, User.id == Enrolment.user_id)
            .where(Enrolment.id.in_(enrolment_ids))
        )
        return {e: (u, c) for e, c, u in self.session.execute(stmt)}

    # -- classes and learners --------------------------------------------------------------
    def get_class(self, deployment_id: int, class_id: int) -> TrainingClass | None:
        stmt = select(TrainingClass).where(
            TrainingClass.deployment_id == deployment_id, TrainingClass.id == class_id
        )
        return self.session.scalars(stmt).first()

    def classes(self, deployment_id: int) -> Sequence[TrainingClass]:
        stmt = (
            select(TrainingClass)
            .where(TrainingClass.deployment_id == deployment_id)
            .order_by(TrainingClass.ends_on.desc(), TrainingClass.code)
        )
        return self.session.scalars(stmt).all()

    def versions(self, version_ids: set[int]) -> dict[int, ModuleVersion]:
        if not version_ids:
            return {}
        stmt = select(ModuleVersion).where(ModuleVersion.id.in_(version_ids))
        return {v.id: v for v in self.session.scalars(stmt)}

    def learners(
        self, class_id: int, enrolment_ids: Sequence[int] | None = None
    ) -> list[LearnerRow]:
        """Active learners of a class (or those of ``enrolment_ids``) with their result, by
        name."""
        stmt = (
            select(Enrolment, User, ModuleResultRow)
            .join(User, User.id == Enrolment.user_id)
            .outerjoin(ModuleResultRow, ModuleResultRow.enrolment_id == Enrolment.id)
            .where(Enrolment.class_id == class_id, Enrolment.status == EnrolmentStatus.ACTIVE)
            .order_by(User.name, User.id)
        )
        if enrolment_ids is not None:
            stmt = stmt.where(Enrolment.id.in_(enrolment_ids))
        return [LearnerRow(e, u, r) for e, u, r in self.session.execute(stmt).all()]

    def result_lines(self, deployment_id: int) -> list[ResultLine]:
        """Every active learner of the tenant's classes with their stored result."""
        stmt = (
            select(
                Enrolment.id,
                Enrolment.class_id,
                Enrolment.own_schedule,
                ModuleResultRow.classification,
                ModuleResultRow.final,
                ModuleResultRow.override_score,
                ModuleResultRow.score,
            )
            .join(TrainingClass, TrainingClass.id == Enrolment.class_id)
            .outerjoin(ModuleResultRow, ModuleResultRow.enrolment_id == Enrolment.id)
            .where(
                TrainingClass.deployment_id == deployment_id,
                Enrolment.status == EnrolmentStatus.ACTIVE,
            )
        )
        return [
            ResultLine(
                enrolment_id=int(eid),
                class_id=int(cid),
                own_schedule=own,
                classification=classification,
                final=bool(final),
                overridden=override is not None,
                score=score,
            )
            for eid, cid, own, classification, final, override, score in self.session.execute(
                stmt
            ).all()
        ]

    def issued_counts(self, deployment_id: int) -> dict[int, int]:
        """Valid (not revoked) certificates per class of the tenant."""
        stmt = (
            select(Enrolment.class_id, func.count())
            .select_from(Certificate)
            .join(Enrolment, Enrolment.id == Certificate.enrolment_id)
            .where(Certificate.deployment_id == deployment_id, Certificate.revoked_at.is_(None))
            .group_by(Enrolment.class_id)
        )
        return {int(c): int(n) for c, n in self.session.execute(stmt).all()}


class CertificateJobRepository:
    """The ZIP jobs (``app.certificates.jobs``): every process reads and writes them here."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, deployment_id: int, job_id: str) -> CertificateJob | None:
        stmt = select(CertificateJob).where(
            CertificateJob.id == job_id, CertificateJob.deployment_id == deployment_id
        )
        return self.session.scalars(stmt).first()

    def by_id(self, job_id: str) -> CertificateJob | None:
        return self.session.get(CertificateJob, job_id)

    def recent(self, deployment_id: int, limit: int) -> Sequence[CertificateJob]:
        stmt = (
            select(CertificateJob)
            .where(CertificateJob.deployment_id == deployment_id)
            .order_by(CertificateJob.created_at.desc(), CertificateJob.id)
            .limit(limit)
        )
        return self.session.scalars(stmt).all()

    def lock_class(self, class_id: int) -> None:
        """Serialise job creation per class (PostgreSQL row lock; SQLite writers already
        take turns), so two processes never start two jobs for one class."""
        self.session.execute(
            select(TrainingClass.id).where(TrainingClass.id == class_id).with_for_update()
        )

    def under_way(self, deployment_id: int, class_id: int) -> CertificateJob | None:
        stmt = select(CertificateJob).where(
            CertificateJob.deployment_id == deployment_id,
            CertificateJob.class_id == class_id,
            CertificateJob.state.in_(("queued", "running")),
        )
        return self.session.scalars(stmt).first()

    def add(self, job: CertificateJob) -> None:
        self.session.add(job)
        self.session.flush()

    def fail_lost(self, heartbeat_before: datetime, now: datetime, error: str) -> int:
        """Mark failed the jobs whose process stopped touching them."""
        result = self.session.execute(
            update(CertificateJob)
            .where(
                CertificateJob.state.in_(("queued", "running")),
                CertificateJob.heartbeat_at < heartbeat_before,
            )
            .values(state="failed", finished_at=now, error=error)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def start(self, job_id: str, owner: str, now: datetime) -> bool:
        """queued → running, only for its owner and only once."""
        result = self.session.execute(
            update(CertificateJob)
            .where(
                CertificateJob.id == job_id,
                CertificateJob.owner == owner,
                CertificateJob.state == "queued",
            )
            .values(state="running", heartbeat_at=now)
        )
        return bool(getattr(result, "rowcount", 0))

    def progress(self, job_id: str, owner: str, done: int, total: int, now: datetime) -> None:
        self.session.execute(
            update(CertificateJob)
            .where(CertificateJob.id == job_id, CertificateJob.owner == owner)
            .values(done=done, total=total, heartbeat_at=now)
        )
        # The owner's jobs waiting for a thread are alive too.
        self.session.execute(
            update(CertificateJob)
            .where(CertificateJob.owner == owner, CertificateJob.state == "queued")
            .values(heartbeat_at=now)
        )

    def finish(self, job_id: str, owner: str, now: datetime, **values: Any) -> bool:
        result = self.session.execute(
            update(CertificateJob)
            .where(
                CertificateJob.id == job_id,
                CertificateJob.owner == owner,
                CertificateJob.state.in_(("queued", "running")),
            )
            .values(finished_at=now, heartbeat_at=now, **values)
        )
        return bool(getattr(result, "rowcount", 0))

    def zip_data(self, deployment_id: int, job_id: str) -> bytes | None:
        stmt = select(CertificateJob.zip_data).where(
            CertificateJob.id == job_id,
            CertificateJob.deployment_id == deployment_id,
            CertificateJob.state == "done",
        )
        return self.session.scalar(stmt)

    def prune(self, finished_before: datetime, keep_per_deployment: int) -> int:
        """Forget finished jobs older than ``finished_before``, and all but the newest
        ``keep_per_deployment`` jobs of each deployment (finished ones only)."""
        result = self.session.execute(
            delete(CertificateJob).where(
                CertificateJob.state.in_(("done", "failed")),
                CertificateJob.finished_at < finished_before,
            )
        )
        gone = int(getattr(result, "rowcount", 0) or 0)
        crowded = self.session.execute(
            select(CertificateJob.deployment_id)
            .group_by(CertificateJob.deployment_id)
            .having(func.count() > keep_per_deployment)
        ).scalars()
        for deployment_id in list(crowded):
            keep = (
                select(CertificateJob.id)
                .where(CertificateJob.deployment_id == deployment_id)
                .order_by(CertificateJob.created_at.desc(), CertificateJob.id)
                .limit(keep_per_deployment)
            )
            result = self.session.execute(
                delete(CertificateJob).where(
                    CertificateJob.deployment_id == deployment_id,
                    CertificateJob.state.in_(("done", "failed")),
                    CertificateJob.id.not_in(keep),
                )
            )
            gone += int(getattr(result, "rowcount", 0) or 0)
        return gone
