"""A tenant's catalogue: seeded from the shipped Decision-4660 modules, edited by
administrators as new immutable versions, imported and exported in the shipped format."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.audit.rules import Actor, Subject
from app.audit.service import AuditLog, system_actor
from app.catalogue.models import Module, ModuleVersion
from app.catalogue.repository import CatalogueRepository
from app.core.errors import AppError, NotFound, ValidationFailed
from modules.catalogue import CatalogueImportError, ModuleSpec, load_shipped, parse_many


class ImportRefused(AppError):
    status_code = 422
    code = "import_refused"
    title = "The file was not imported"
    detail = "Nothing was changed. Correct the problems listed and import the file again."


def module_key(spec: ModuleSpec) -> str:
    if spec.number is not None:
        return f"{spec.track}-{spec.number}"
    return f"local-{spec.track}-{spec.local_code}"


def display_title(spec: ModuleSpec) -> str:
    for level in spec.levels:
        title = spec.titles.get(level)
        if title:
            return title
    return next(iter(spec.titles.values()), module_key(spec))


def spec_of(version: ModuleVersion) -> ModuleSpec:
    return ModuleSpec.model_validate(version.spec)


class CatalogueService:
    """``actor``: who edits or imports, for the audit log (``None``: reads and seeding only)."""

    def __init__(self, session: Session, actor: Actor | None = None) -> None:
        self.repo = CatalogueRepository(session)
        self.actor = actor

    def _log(
        self,
        deployment_id: int,
        action: str,
        module: Module,
        before: ModuleVersion | None,
        after: ModuleVersion,
        note: str | None,
    ) -> None:
        actor = self.actor or system_actor(self.repo.session, deployment_id)
        AuditLog(self.repo.session).record(
            actor,
            action,
            Subject("module", module.id, after.title_vi),
            {"version": before.version} if before is not None else None,
            {"version": after.version},
            note,
        )

    def ensure_seeded(self, deployment_id: int) -> None:
        """A tenant's first look at the catalogue copies the shipped modules in (version 1)."""
        if self.repo.count(deployment_id):
            return
        for spec in load_shipped():
            self._new_module(deployment_id, spec, note="blend727 catalogue", user_id=None)

    def modules(self, deployment_id: int) -> Sequence[tuple[Module, ModuleVersion]]:
        self.ensure_seeded(deployment_id)
        return self.repo.modules(deployment_id)

    def get(self, deployment_id: int, module_id: int) -> tuple[Module, ModuleVersion]:
        module = self.repo.module(deployment_id, module_id)
        if module is None or module.current_version_id is None:
            raise NotFound()
        version = self.repo.version(module.current_version_id)
        assert version is not None
        return module, version

    def versions(self, deployment_id: int, module_id: int) -> Sequence[ModuleVersion]:
        module, _ = self.get(deployment_id, module_id)
        return self.repo.versions(module.id)

    def update(
        self,
        deployment_id: int,
        module_id: int,
        data: Mapping[str, Any],
        *,
        user_id: int | None,
        note: str | None = None,
    ) -> ModuleVersion:
        """A new version from an edited spec; running classes keep the version they use."""
        module = self.repo.module_for_update(deployment_id, module_id)
        if module is None or module.current_version_id is None:
            raise NotFound()
        current = self.repo.version(module.current_version_id)
        assert current is not None
        try:
            spec = ModuleSpec.model_validate(dict(data))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first.get("loc", ()))
            raise ValidationFailed(
                "%(field)s: %(message)s",
                params={"field": field, "message": first.get("msg", "")},
            ) from exc
        if module_key(spec) != module.key:
            raise ValidationFailed(
                "%(field)s cannot change: it identifies the module",
                params={"field": "track/number"},
            )
        if spec.model_dump(mode="json") == current.spec:
            return current
        written = self._new_version(module, spec, note=note, user_id=user_id)
        self._log(deployment_id, "module.edit", module, current, written, note)
        return written

    def import_files(
        self, deployment_id: int, files: Mapping[str, str], *, user_id: int | None
    ) -> list[ModuleVersion]:
        """All or nothing: every file is validated before anything is written."""
        try:
            specs = parse_many(files)
        except CatalogueImportError as exc:
            error = ImportRefused()
            error.problem_extra = {  # type: ignore[attr-defined]
                "errors": [
                    {"file": p.file, "line": p.line, "field": p.field, "message": p.message}
                    for p in exc.problems
                ]
            }
            raise error from exc
        self.ensure_seeded(deployment_id)
        written = []
        for spec in specs:
            module = self.repo.module_by_key(deployment_id, module_key(spec))
            if module is None:
                version = self._new_module(deployment_id, spec, note="import", user_id=user_id)
                new = self.repo.module(deployment_id, version.module_id)
                assert new is not None
                self._log(deployment_id, "module.import", new, None, version, None)
                written.append(version)
            else:
                current = self.repo.version(module.current_version_id or 0)
                if current is not None and current.spec == spec.model_dump(mode="json"):
                    written.append(current)
                else:
                    version = self._new_version(module, spec, note="import", user_id=user_id)
                    self._log(deployment_id, "module.import", module, current, version, None)
                    written.append(version)
        return written

    def export(self, deployment_id: int, module_id: int) -> tuple[str, str]:
        _, version = self.get(deployment_id, module_id)
        spec = spec_of(version)
        return spec.filename, spec.to_toml()

    def _new_module(
        self, deployment_id: int, spec: ModuleSpec, *, note: str | None, user_id: int | None
    ) -> ModuleVersion:
        module = Module(
            deployment_id=deployment_id,
            key=module_key(spec),
            track=spec.track,
            number=spec.number,
        )
        self.repo.add(module)
        return self._new_version(module, spec, note=note, user_id=user_id)

    def _new_version(
        self, module: Module, spec: ModuleSpec, *, note: str | None, user_id: int | None
    ) -> ModuleVersion:
        version = ModuleVersion(
            module_id=module.id,
            version=self.repo.latest_version_number(module.id) + 1,
            title_vi=display_title(spec),
            spec=spec.model_dump(mode="json"),
            change_note=note,
            created_by_user_id=user_id,
        )
        self.repo.add(version)
        module.current_version_id = version.id
        self.repo.session.flush()
        return version
