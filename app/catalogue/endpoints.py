"""JSON API of the module catalogue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from app.audit.service import actor_of
from app.auth.api import ApiAdmin
from app.auth.dependencies import DbSession, Viewer
from app.catalogue.models import Module, ModuleVersion
from app.catalogue.service import CatalogueService
from app.core.files import content_disposition
from modules.catalogue import MAX_FILE_CHARS

router = APIRouter(prefix="/api/v1/modules", tags=["catalogue"])


class ModuleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: dict[str, Any]
    note: str | None = Field(default=None, max_length=500)


class ModuleImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: dict[str, str] = Field(min_length=1, max_length=50)


def module_out(module: Module, version: ModuleVersion, *, spec: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": module.id,
        "key": module.key,
        "track": module.track,
        "number": module.number,
        "title": version.title_vi,
        "version": version.version,
        "version_id": version.id,
    }
    if spec:
        out["spec"] = version.spec
    return out


@router.get("", summary="The catalogue (seeded from Decision 4660 on first use)")
def list_modules(viewer: Viewer = ApiAdmin, db: Session = DbSession) -> list[dict[str, Any]]:
    return [module_out(m, v) for m, v in CatalogueService(db).modules(viewer.deployment_id)]


@router.get("/{module_id}", summary="A module, its current spec and its versions")
def get_module(
    module_id: int, viewer: Viewer = ApiAdmin, db: Session = DbSession
) -> dict[str, Any]:
    service = CatalogueService(db)
    module, version = service.get(viewer.deployment_id, module_id)
    out = module_out(module, version, spec=True)
    out["versions"] = [
        {
            "version": v.version,
            "id": v.id,
            "note": v.change_note,
            "created_at": v.created_at.isoformat(),
        }
        for v in service.versions(viewer.deployment_id, module_id)
    ]
    return out


@router.put("/{module_id}", summary="Edit a module: writes a new version")
def update_module(
    module_id: int, data: ModuleUpdate, viewer: Viewer = ApiAdmin, db: Session = DbSession
) -> dict[str, Any]:
    service = CatalogueService(db, actor_of(viewer))
    service.update(
        viewer.deployment_id, module_id, data.spec, user_id=viewer.user.id, note=data.note
    )
    module, version = service.get(viewer.deployment_id, module_id)
    return module_out(module, version, spec=True)


@router.post(
    "/import", status_code=status.HTTP_201_CREATED, summary="Import module files (all or nothing)"
)
def import_modules(
    data: ModuleImport, viewer: Viewer = ApiAdmin, db: Session = DbSession
) -> list[dict[str, Any]]:
    too_big = [name for name, text in data.files.items() if len(text) > MAX_FILE_CHARS]
    if too_big:
        from app.core.errors import PayloadTooLarge

        raise PayloadTooLarge(params={"field": too_big[0]})
    versions = CatalogueService(db, actor_of(viewer)).import_files(
        viewer.deployment_id, data.files, user_id=viewer.user.id
    )
    return [{"version_id": v.id, "title": v.title_vi, "version": v.version} for v in versions]


@router.get("/{module_id}/export", summary="The module as a file of the import format")
def export_module(module_id: int, viewer: Viewer = ApiAdmin, db: Session = DbSession) -> Response:
    filename, text = CatalogueService(db).export(viewer.deployment_id, module_id)
    return Response(
        text,
        media_type="application/toml; charset=utf-8",
        headers={"Content-Disposition": content_disposition(filename)},
    )
