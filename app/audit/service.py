"""Writing the audit log (``AuditLog.record``, called by each domain's service in the same
transaction as the change it describes) and reading it (``AuditService``, administrators of
one platform only).

A service records after its checks pass and before it returns: a refused change raises
before anything is written, and a change rolled back takes its event with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.audit.repository import AuditRepository
from app.audit.rules import (
    MAX_LABEL_CHARS,
    MAX_REASON_CHARS,
    WORKER,
    Actor,
    AuditQuery,
    Subject,
    changes,
    clip,
    encode_cursor,
    json_value,
)
from app.core.errors import Forbidden
from app.core.logs import request_id_var
from app.core.time import utcnow

if TYPE_CHECKING:
    from app.auth.dependencies import Viewer


def actor_of(viewer: Viewer) -> Actor:
    """The signed-in person as the log names them (their name as the LMS gives it today)."""
    return Actor.person(
        viewer.user.id, viewer.user.display_name, viewer.platform_id, viewer.deployment_id
    )


def system_actor(session: Session, deployment_id: int, label: str = WORKER) -> Actor:
    """The tool itself acting in a deployment's tenant (a seed, a background sync)."""
    from app.platforms.models import Deployment

    deployment = session.get(Deployment, deployment_id)
    return Actor.system(deployment.platform_id if deployment else None, deployment_id, label)


class AuditLog:
    """``AuditLog(session).record(actor, action, subject, before, after, reason)``."""

    def __init__(self, session: Session) -> None:
        self.repo = AuditRepository(session)

    def record(
        self,
        actor: Actor,
        action: str,
        subject: Subject,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        reason: str | None = None,
        *,
        context: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> AuditEvent:
        """One event; with both ``before`` and ``after`` only the fields that changed are
        kept. ``context`` names where the change happened (the session of an attendance
        mark) and is kept in ``after`` whether it changed or not. Never pass file contents,
        tokens or secrets."""
        old, new = changes(before, after)
        if context:
            new = {**(new or {}), **{k: json_value(v) for k, v in context.items()}}
        return self.repo.add(
            AuditEvent(
                occurred_at=at or utcnow(),
                platform_id=actor.platform_id,
                deployment_id=actor.deployment_id,
                actor_user_id=actor.user_id,
                actor_label=clip(actor.label, MAX_LABEL_CHARS) or "—",
                action=action,
                object_type=subject.type,
                object_id=None if subject.id is None else str(subject.id)[:80],
                object_label=clip(subject.label, MAX_LABEL_CHARS),
                class_id=subject.class_id,
                before=old,
                after=new,
                reason=clip(reason, MAX_REASON_CHARS),
                request_id=request_id_var.get(),
            )
        )


@dataclass(frozen=True)
class AuditPage:
    events: Sequence[AuditEvent]
    next_cursor: str | None


class AuditService:
    """The log as administrators read it: their own platform's events only."""

    def __init__(self, session: Session) -> None:
        self.repo = AuditRepository(session)

    @staticmethod
    def _platform(viewer: Viewer) -> int:
        if not viewer.is_admin:
            raise Forbidden()
        return viewer.platform_id

    def search(self, viewer: Viewer, query: AuditQuery) -> AuditPage:
        return self._page(self._platform(viewer), query)

    def each(
        self, viewer: Viewer, query: AuditQuery, below_id: int | None = None
    ) -> Iterator[AuditEvent]:
        """Every event the filters select (the cursor and limit ignored), newest first;
        with ``below_id`` (what ``export`` returns) only those written before it."""
        return self.repo.each(
            self._platform(viewer), replace(query, cursor=None), below_id=below_id
        )

    def export(self, viewer: Viewer, query: AuditQuery) -> int:
        """Log that ``viewer`` takes the events the filters select out of blend727 (people's
        names and grades, in bulk): one ``audit.export`` event with the filters. Returns its
        id: the export holds the events written before it (not itself, nor what is logged
        while it is streamed)."""
        self._platform(viewer)
        event = AuditLog(self.repo.session).record(
            actor_of(viewer), "audit.export", Subject("audit_log", None), None, query.params()
        )
        self.repo.session.flush()
        return event.id

    def installation(self, query: AuditQuery, platform_id: int | None = None) -> AuditPage:
        """For the operator's command line: the installation's events (or a platform's)."""
        return self._page(platform_id, query)

    def _page(self, platform_id: int | None, query: AuditQuery) -> AuditPage:
        rows = list(self.repo.page(platform_id, query, query.limit + 1))
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        cursor = encode_cursor(rows[-1].occurred_at, rows[-1].id) if more and rows else None
        return AuditPage(rows, cursor)
