"""Queries for modules and module versions."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.catalogue.models import Module, ModuleVersion


class CatalogueRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def modules(self, deployment_id: int) -> Sequence[tuple[Module, ModuleVersion]]:
        stmt = (
            select(Module, ModuleVersion)
            .join(ModuleVersion, ModuleVersion.id == Module.current_version_id)
            .where(Module.deployment_id == deployment_id)
            .order_by(Module.track.desc(), Module.number, Module.key)
        )
        return [(row[0], row[1]) for row in self.session.execute(stmt).all()]

    def module(self, deployment_id: int, module_id: int) -> Module | None:
        stmt = select(Module).where(Module.deployment_id == deployment_id, Module.id == module_id)
        return self.session.scalars(stmt).first()

    def module_by_key(self, deployment_id: int, key: str) -> Module | None:
        stmt = select(Module).where(Module.deployment_id == deployment_id, Module.key == key)
        return self.session.scalars(stmt).first()

    def count(self, deployment_id: int) -> int:
        stmt = select(func.count()).select_from(Module).where(Module.deployment_id == deployment_id)
        return int(self.session.scalar(stmt) or 0)

    def version(self, version_id: int) -> ModuleVersion | None:
        return self.session.get(ModuleVersion, version_id)

    def versions_with_modules(
        self, version_ids: set[int]
    ) -> dict[int, tuple[Module, ModuleVersion]]:
        """Module versions by id, each with its module, in one query."""
        if not version_ids:
            return {}
        stmt = (
            select(ModuleVersion, Module)
            .join(Module, Module.id == ModuleVersion.module_id)
            .where(ModuleVersion.id.in_(version_ids))
        )
        return {v.id: (m, v) for v, m in self.session.execute(stmt).all()}

    def module_for_update(self, deployment_id: int, module_id: int) -> Module | None:
        """The module row, locked until the end of the transaction (PostgreSQL), so two
        simultaneous edits number their versions one after the other."""
        stmt = (
            select(Module)
            .where(Module.deployment_id == deployment_id, Module.id == module_id)
            .with_for_update()
        )
        return self.session.scalars(stmt).first()

    def versions(self, module_id: int) -> Sequence[ModuleVersion]:
        stmt = (
            select(ModuleVersion)
            .where(ModuleVersion.module_id == module_id)
            .order_by(ModuleVersion.version.desc())
        )
        return self.session.scalars(stmt).all()

    def latest_version_number(self, module_id: int) -> int:
        stmt = select(func.max(ModuleVersion.version)).where(ModuleVersion.module_id == module_id)
        return int(self.session.scalar(stmt) or 0)

    def add(self, obj: object) -> None:
        self.session.add(obj)
        self.session.flush()
