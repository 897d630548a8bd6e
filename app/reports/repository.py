"""Queries of the overview, the targets and the reports.

Learners are counted by grouped queries — a fixed number whatever the number of learners,
never one per learner — and every query is scoped to one deployment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, and_, delete, distinct, func, or_, select
from sqlalchemy.orm import Session

from app.catalogue.models import Module, ModuleVersion
from app.classes.models import Enrolment, EnrolmentStatus, TrainingClass
from app.grading.models import ModuleResultRow
from app.grading.rules import COMPLETE, INCOMPLETE
from app.identity.models import User
from app.reports.models import Target


@dataclass(frozen=True)
class RawGroup:
    """One row of the grouped count, before names are attached (``None`` = not given)."""

    wave_id: int | None
    version_id: int
    level: str
    district: str | None
    school: str | None
    status: str
    classification: str
    final: bool
    count: int


class ReportRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- counting learners -----------------------------------------------------------------
    def groups(self, deployment_id: int, start: date, end: date) -> list[RawGroup]:
        """Learners of the deployment's classes that end within [start, end], counted by
        wave, module version, level, district, school, status, classification and final."""
        keys = (
            TrainingClass.wave_id,
            TrainingClass.module_version_id,
            TrainingClass.level,
            User.district,
            User.school,
            Enrolment.status,
            ModuleResultRow.classification,
            ModuleResultRow.final,
        )
        stmt = (
            select(*keys, func.count())
            .select_from(Enrolment)
            .join(TrainingClass, TrainingClass.id == Enrolment.class_id)
            .join(User, User.id == Enrolment.user_id)
            .outerjoin(ModuleResultRow, ModuleResultRow.enrolment_id == Enrolment.id)
            .where(
                TrainingClass.deployment_id == deployment_id,
                TrainingClass.ends_on >= start,
                TrainingClass.ends_on <= end,
            )
            .group_by(*keys)
        )
        out = []
        for row in self.session.execute(stmt).all():
            wave_id, version_id, level, district, school, status, classification, final, n = row
            out.append(
                RawGroup(
                    wave_id=wave_id,
                    version_id=version_id,
                    level=level,
                    district=district,
                    school=school,
                    status=status,
                    # No result row yet: nothing scored, so not final.
                    classification=classification or INCOMPLETE,
                    final=bool(final),
                    count=int(n),
                )
            )
        return out

    def version_ids(self, deployment_id: int) -> set[int]:
        """Module versions that the deployment's classes use."""
        stmt = (
            select(TrainingClass.module_version_id)
            .where(TrainingClass.deployment_id == deployment_id)
            .distinct()
        )
        return {int(v) for v in self.session.scalars(stmt).all()}

    def completed_learners(
        self,
        deployment_id: int,
        *,
        track: str,
        until: date,
        level: str | None = None,
        district: str | None = None,
        module_key: str | None = None,
        tiers: Mapping[int, Sequence[str]] | None = None,
    ) -> int:
        """Distinct learners of ``track`` (and of the level, district, module when given) who
        completed a module in a class of the deployment that ended by ``until``.

        Completing is ``complete`` or a tier of the class's module version (``tiers``:
        version id → the tier codes of its policy)."""
        completes: list[ColumnElement[bool]] = [ModuleResultRow.classification == COMPLETE]
        for version_id, codes in (tiers or {}).items():
            if codes:
                completes.append(
                    and_(
                        TrainingClass.module_version_id == version_id,
                        ModuleResultRow.classification.in_(list(codes)),
                    )
                )
        stmt = (
            select(func.count(distinct(Enrolment.user_id)))
            .select_from(Enrolment)
            .join(TrainingClass, TrainingClass.id == Enrolment.class_id)
            .join(ModuleVersion, ModuleVersion.id == TrainingClass.module_version_id)
            .join(Module, Module.id == ModuleVersion.module_id)
            .join(ModuleResultRow, ModuleResultRow.enrolment_id == Enrolment.id)
            .where(
                TrainingClass.deployment_id == deployment_id,
                Module.deployment_id == deployment_id,
                Module.track == track,
                TrainingClass.ends_on <= until,
                or_(*completes),
            )
        )
        if level:
            stmt = stmt.where(TrainingClass.level == level)
        if module_key:
            stmt = stmt.where(Module.key == module_key)
        if district:
            stmt = stmt.join(User, User.id == Enrolment.user_id).where(
                func.trim(User.district) == district.strip()
            )
        return int(self.session.scalar(stmt) or 0)

    def districts(self, deployment_id: int) -> list[str]:
        """Districts of the people enrolled in the deployment's classes (for the forms)."""
        stmt = (
            select(func.trim(User.district))
            .select_from(Enrolment)
            .join(TrainingClass, TrainingClass.id == Enrolment.class_id)
            .join(User, User.id == Enrolment.user_id)
            .where(
                TrainingClass.deployment_id == deployment_id,
                User.district.is_not(None),
                Enrolment.status == EnrolmentStatus.ACTIVE.value,
            )
            .distinct()
        )
        return [d for d in self.session.scalars(stmt).all() if d]

    # -- classes whose compliance the overview shows ---------------------------------------
    def classes_to_check(
        self, deployment_id: int, start: date, end: date, today: date
    ) -> Sequence[TrainingClass]:
        """Classes that end in the period, and every class that has not ended yet."""
        stmt = (
            select(TrainingClass)
            .where(
                TrainingClass.deployment_id == deployment_id,
                or_(
                    and_(TrainingClass.ends_on >= start, TrainingClass.ends_on <= end),
                    TrainingClass.ends_on >= today,
                ),
            )
            .order_by(TrainingClass.starts_on, TrainingClass.code)
        )
        return self.session.scalars(stmt).all()

    # -- targets ---------------------------------------------------------------------------
    def targets(self, deployment_id: int) -> Sequence[Target]:
        stmt = (
            select(Target)
            .where(Target.deployment_id == deployment_id)
            .order_by(Target.due_on, Target.id)
        )
        return self.session.scalars(stmt).all()

    def target(self, deployment_id: int, target_id: int) -> Target | None:
        stmt = select(Target).where(Target.deployment_id == deployment_id, Target.id == target_id)
        return self.session.scalars(stmt).first()

    def add(self, obj: object) -> None:
        self.session.add(obj)
        self.session.flush()

    def delete_target(self, deployment_id: int, target_id: int) -> int:
        stmt = delete(Target).where(Target.deployment_id == deployment_id, Target.id == target_id)
        result = self.session.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)
