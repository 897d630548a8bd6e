"""The administrator's overview, the targets and the reports for the next level up.

Reads go through ``ReportRepository`` (grouped counts) and the pure rules of
``app/reports/rules.py``; nothing here runs a query per learner. Report building is
synchronous: the endpoints are plain ``def`` routes, so FastAPI runs them in its thread pool
and a province-wide report never blocks the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from app.audit.rules import Actor, Subject
from app.audit.service import AuditLog, system_actor
from app.catalogue.repository import CatalogueRepository
from app.classes.models import EnrolmentStatus, TrainingClass
from app.classes.repository import ClassRepository
from app.classes.rules import RuleResult, Status
from app.classes.service import ClassService
from app.core.errors import NotFound, ValidationFailed
from app.grading.rules import GradePolicy
from app.grading.service import policy_of
from app.reports.models import Target
from app.reports.repository import ReportRepository
from app.reports.rules import (
    Counts,
    LearnerGroup,
    ModuleInfo,
    Period,
    Report,
    TargetProgress,
    TierColumn,
    build_report,
    completing_tiers,
    completion_test,
    name_key,
    tally,
    target_progress,
    tier_columns,
    total,
)
from app.reports.schemas import TargetCreate

LEVEL_ORDER = ("tieu_hoc", "thcs", "thpt")


@dataclass(frozen=True)
class Line:
    """One row of an overview table: what is counted (``key`` for programs, ``name`` for
    people, ``""`` when not given) and its counts."""

    key: str
    name: str
    counts: Counts
    detail: str = ""  # a school's district, a module's title


@dataclass(frozen=True)
class ComplianceWarning:
    class_id: int
    class_code: str
    class_name: str
    ends_on: date
    rule: RuleResult


@dataclass(frozen=True)
class TargetView:
    target: Target
    progress: TargetProgress
    module: ModuleInfo | None


@dataclass(frozen=True)
class Overview:
    period: Period
    tiers: tuple[TierColumn, ...]
    total: Counts
    by_wave: list[Line]
    by_module: list[Line]
    by_level: list[Line]
    by_district: list[Line]
    by_school: list[Line]
    warnings: list[ComplianceWarning]
    classes_checked: int
    targets: list[TargetView]


@dataclass(frozen=True)
class _Data:
    groups: list[LearnerGroup]
    policies: dict[int, GradePolicy]
    modules: dict[str, ModuleInfo]
    wave_order: dict[int, int]
    tiers: tuple[TierColumn, ...]


def target_fields(target: Target) -> dict[str, Any]:
    """A target as the audit log keeps it (the fields it has)."""
    fields = {
        "name": target.name,
        "track": target.track,
        "level": target.level,
        "district": target.district,
        "module_key": target.module_key,
        "staff_count": target.staff_count,
        "percent": target.percent,
        "due_on": target.due_on,
        "note": target.note,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _subject(target: Target) -> Subject:
    return Subject("target", target.id, target.name)


class ReportService:
    """``actor``: who changes the targets, for the audit log (the tool itself when
    ``None``)."""

    def __init__(self, session: Session, actor: Actor | None = None) -> None:
        self.session = session
        self.actor = actor
        self.repo = ReportRepository(session)
        self.catalogue = CatalogueRepository(session)
        self.classes = ClassRepository(session)

    # -- reading -----------------------------------------------------------------------------
    def modules(self, deployment_id: int) -> dict[str, ModuleInfo]:
        """The catalogue's modules by key, titled by their current version (read only: a
        catalogue not seeded yet has none)."""
        return {
            m.key: ModuleInfo(m.key, m.track, m.number, v.title_vi)
            for m, v in self.catalogue.modules(deployment_id)
        }

    def _policies(self, version_ids: set[int]) -> tuple[dict[int, GradePolicy], dict[int, str]]:
        found = self.catalogue.versions_with_modules(version_ids)
        policies = {vid: policy_of(dict(v.spec)) for vid, (_m, v) in found.items()}
        keys = {vid: m.key for vid, (m, _v) in found.items()}
        return policies, keys

    def _data(self, deployment_id: int, period: Period) -> _Data:
        raw = self.repo.groups(deployment_id, period.start, period.end)
        policies, version_keys = self._policies({r.version_id for r in raw})
        modules = self.modules(deployment_id)
        waves = self.classes.waves(deployment_id)
        wave_names = {w.id: w.name for w in waves}
        groups = []
        for r in raw:
            key = version_keys.get(r.version_id, f"#{r.version_id}")
            module = modules.get(key)
            groups.append(
                LearnerGroup(
                    version_id=r.version_id,
                    module_key=key,
                    track=module.track if module else "",
                    level=r.level,
                    wave_id=r.wave_id,
                    wave=wave_names.get(r.wave_id) if r.wave_id is not None else None,
                    district=(r.district or "").strip(),
                    school=(r.school or "").strip(),
                    active=r.status == EnrolmentStatus.ACTIVE.value,
                    classification=r.classification,
                    final=r.final,
                    count=r.count,
                )
            )
        return _Data(
            groups=groups,
            policies=policies,
            modules=modules,
            wave_order={w.id: i for i, w in enumerate(waves)},
            tiers=tier_columns(policies.values()),
        )

    def report(self, deployment_id: int, period: Period) -> Report:
        data = self._data(deployment_id, period)
        return build_report(
            period,
            data.groups,
            completion_test(data.policies),
            data.modules,
            data.wave_order,
            data.tiers,
        )

    def overview(self, deployment_id: int, period: Period, today: date) -> Overview:
        data = self._data(deployment_id, period)
        completes = completion_test(data.policies)
        groups = data.groups

        waves = tally(groups, completes, lambda g: (g.wave_id, g.wave))
        by_wave = [
            Line(str(wid) if wid is not None else "", name or "", counts)
            for (wid, name), counts in sorted(
                waves.items(),
                key=lambda i: (i[0][0] is None, data.wave_order.get(i[0][0] or 0, 0)),
            )
        ]
        modules = tally(groups, completes, lambda g: g.module_key)

        def module_of(key: str) -> ModuleInfo:
            return data.modules.get(key) or ModuleInfo(key, "", None, key)

        by_module = [
            Line(key, module_of(key).label, counts, detail=module_of(key).title)
            for key, counts in sorted(modules.items(), key=lambda i: module_of(i[0]).order)
        ]
        levels = tally(groups, completes, lambda g: g.level)
        by_level = [
            Line(level, level, counts)
            for level, counts in sorted(
                levels.items(),
                key=lambda i: (
                    LEVEL_ORDER.index(i[0]) if i[0] in LEVEL_ORDER else len(LEVEL_ORDER),
                    i[0],
                ),
            )
        ]
        districts = tally(groups, completes, lambda g: g.district)
        by_district = [
            Line(d, d, counts)
            for d, counts in sorted(districts.items(), key=lambda i: name_key(i[0]))
        ]
        schools = tally(groups, completes, lambda g: (g.district, g.school))
        by_school = [
            Line(s, s, counts, detail=d)
            for (d, s), counts in sorted(
                schools.items(), key=lambda i: (name_key(i[0][0]), name_key(i[0][1]))
            )
        ]
        classes = self.repo.classes_to_check(deployment_id, period.start, period.end, today)
        warnings = self._warnings(classes, today)
        return Overview(
            period=period,
            tiers=data.tiers,
            total=total(groups, completes),
            by_wave=by_wave,
            by_module=by_module,
            by_level=by_level,
            by_district=by_district,
            by_school=by_school,
            warnings=warnings,
            classes_checked=len(classes),
            targets=self.targets(deployment_id, today),
        )

    def _warnings(self, classes: Sequence[TrainingClass], today: date) -> list[ComplianceWarning]:
        results = ClassService(self.session).compliance_many(classes, today)
        return [
            ComplianceWarning(cls.id, cls.code, cls.name, cls.ends_on, rule)
            for cls in classes
            for rule in results.get(cls.id, [])
            if rule.status == Status.FAIL
        ]

    # -- targets -----------------------------------------------------------------------------
    def targets(self, deployment_id: int, today: date) -> list[TargetView]:
        targets = self.repo.targets(deployment_id)
        if not targets:
            return []
        policies, _ = self._policies(self.repo.version_ids(deployment_id))
        tiers = completing_tiers(policies)
        modules = self.modules(deployment_id)
        views = []
        for target in targets:
            achieved = self.repo.completed_learners(
                deployment_id,
                track=target.track,
                until=target.due_on,
                level=target.level,
                district=target.district,
                module_key=target.module_key,
                tiers=tiers,
            )
            progress = target_progress(
                target.staff_count, Decimal(target.percent), achieved, target.due_on, today
            )
            module = modules.get(target.module_key) if target.module_key else None
            views.append(TargetView(target, progress, module))
        return views

    def create_target(self, deployment_id: int, data: TargetCreate) -> Target:
        district = (data.district or "").strip() or None
        module_key = (data.module_key or "").strip() or None
        if module_key is not None:
            module = self.catalogue.module_by_key(deployment_id, module_key)
            if module is None:
                raise ValidationFailed(
                    "Choose a module of this catalogue.", params={"field": "module_key"}
                )
            if module.track != data.track:
                raise ValidationFailed(
                    "This module is for the other staff group; choose one of this group.",
                    params={"field": "module_key"},
                )
        target = Target(
            deployment_id=deployment_id,
            name=data.name,
            track=data.track,
            level=data.level.value if data.level is not None else None,
            district=district,
            module_key=module_key,
            staff_count=data.staff_count,
            percent=data.percent.quantize(Decimal("0.01")),
            due_on=data.due_on,
            note=(data.note or "").strip() or None,
        )
        self.repo.add(target)
        self._log(deployment_id, "target.add", _subject(target), None, target_fields(target))
        return target

    def delete_target(self, deployment_id: int, target_id: int) -> None:
        target = self.repo.target(deployment_id, target_id)
        if target is None:
            raise NotFound()
        subject, before = _subject(target), target_fields(target)
        if not self.repo.delete_target(deployment_id, target_id):
            raise NotFound()
        self._log(deployment_id, "target.delete", subject, before, None)

    def _log(
        self,
        deployment_id: int,
        action: str,
        subject: Subject,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        """The change in the audit log, in this unit of work."""
        actor = self.actor or system_actor(self.session, deployment_id)
        AuditLog(self.session).record(actor, action, subject, before, after)

    def districts(self, deployment_id: int) -> list[str]:
        return sorted(self.repo.districts(deployment_id), key=name_key)
