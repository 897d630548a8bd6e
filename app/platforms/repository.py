"""Queries for platforms and deployments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from app.platforms.models import (
    Deployment,
    Platform,
    PlatformInvitation,
    PlatformRecord,
    PlatformStatus,
)

# Statements on the launch path are built once: constructing a select costs more Python
# than SQLite spends running it.
_RECORD_COLUMNS = [
    Platform.id,
    Platform.issuer,
    Platform.client_id,
    Platform.name,
    Platform.auth_login_url,
    Platform.token_url,
    Platform.keyset_url,
    Platform.auth_audience,
    Platform.status,
    Platform.is_demo,
]
_RECORDS_BY_ISSUER = (
    select(*_RECORD_COLUMNS).where(Platform.issuer == bindparam("issuer")).order_by(Platform.id)
)
_DEPLOYMENT_PK = select(Deployment.id).where(
    Deployment.platform_id == bindparam("platform_id"),
    Deployment.deployment_id == bindparam("deployment_id"),
)


class PlatformRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, platform_id: int) -> Platform | None:
        return self.session.get(Platform, platform_id)

    def by_issuer(self, issuer: str) -> Sequence[Platform]:
        stmt = select(Platform).where(Platform.issuer == issuer).order_by(Platform.id)
        return self.session.scalars(stmt).all()

    def records_by_issuer(self, issuer: str) -> list[PlatformRecord]:
        rows = self.session.connection().execute(_RECORDS_BY_ISSUER, {"issuer": issuer})
        return [PlatformRecord(**row._asdict()) for row in rows]

    def by_issuer_and_client(self, issuer: str, client_id: str) -> Platform | None:
        stmt = select(Platform).where(Platform.issuer == issuer, Platform.client_id == client_id)
        return self.session.scalars(stmt).first()

    def frame_urls(self, *, include_demo: bool = False) -> list[str]:
        """Issuer and authorization URLs of every active platform: the LMSs whose pages may
        frame the tool (app.core.framing)."""
        stmt = select(Platform.issuer, Platform.auth_login_url).where(
            Platform.status == PlatformStatus.ACTIVE
        )
        if not include_demo:
            stmt = stmt.where(Platform.is_demo.is_(False))
        return [url for row in self.session.execute(stmt) for url in row]

    def list_with_deployments(self) -> Sequence[Platform]:
        stmt = (
            select(Platform)
            .options(selectinload(Platform.deployments))
            .order_by(Platform.is_demo, Platform.id)
        )
        return self.session.scalars(stmt).all()

    def deployment(self, platform_id: int, deployment_id: str) -> Deployment | None:
        stmt = select(Deployment).where(
            Deployment.platform_id == platform_id, Deployment.deployment_id == deployment_id
        )
        return self.session.scalars(stmt).first()

    def record_for_deployment(self, deployment_pk: int) -> PlatformRecord | None:
        stmt = (
            select(*_RECORD_COLUMNS)
            .join(Deployment, Deployment.platform_id == Platform.id)
            .where(Deployment.id == deployment_pk)
        )
        row = self.session.execute(stmt).first()
        return PlatformRecord(**row._asdict()) if row else None

    def deployment_pk(self, platform_id: int, deployment_id: str) -> int | None:
        params = {"platform_id": platform_id, "deployment_id": deployment_id}
        return self.session.connection().execute(_DEPLOYMENT_PK, params).scalar()

    def deployments_of(self, platform_id: int) -> Sequence[Deployment]:
        stmt = (
            select(Deployment).where(Deployment.platform_id == platform_id).order_by(Deployment.id)
        )
        return self.session.scalars(stmt).all()

    def demo_platform(self) -> Platform | None:
        stmt = select(Platform).where(Platform.is_demo.is_(True)).order_by(Platform.id)
        return self.session.scalars(stmt).first()

    def add(self, platform: Platform) -> Platform:
        self.session.add(platform)
        self.session.flush()
        return platform

    def add_deployment(self, deployment: Deployment) -> Deployment:
        self.session.add(deployment)
        self.session.flush()
        return deployment

    def count_pending(self) -> int:
        stmt = (
            select(func.count())
            .select_from(Platform)
            .where(Platform.status == PlatformStatus.PENDING)
        )
        return int(self.session.scalar(stmt) or 0)

    def delete(self, platform_id: int) -> None:
        """Remove a platform; its deployments go with it (``ON DELETE CASCADE``)."""
        self.session.execute(delete(Platform).where(Platform.id == platform_id))

    # -- invitations to register dynamically ---------------------------------------------
    def add_invitation(self, invitation: PlatformInvitation) -> PlatformInvitation:
        self.session.add(invitation)
        self.session.flush()
        return invitation

    def invitation_by_hash(self, token_hash: str) -> PlatformInvitation | None:
        stmt = select(PlatformInvitation).where(PlatformInvitation.token_hash == token_hash)
        return self.session.scalars(stmt).first()

    def claim_invitation(self, token_hash: str, now: datetime) -> PlatformInvitation | None:
        """Mark an open invitation used, atomically: of two registrations racing with the same
        invitation, exactly one gets it back."""
        stmt = (
            update(PlatformInvitation)
            .where(
                PlatformInvitation.token_hash == token_hash,
                PlatformInvitation.used_at.is_(None),
                PlatformInvitation.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if self.session.execute(stmt).rowcount != 1:  # type: ignore[attr-defined]
            return None
        invitation = self.invitation_by_hash(token_hash)
        if invitation is not None:
            self.session.refresh(invitation)
        return invitation

    def open_invitations(self, now: datetime) -> Sequence[PlatformInvitation]:
        stmt = (
            select(PlatformInvitation)
            .where(PlatformInvitation.used_at.is_(None), PlatformInvitation.expires_at > now)
            .order_by(PlatformInvitation.expires_at)
        )
        return self.session.scalars(stmt).all()
