"""Changes to people that an operator makes: keeping a person out (``blend727 user disable``)
and letting them in again. Each change writes one audit event in the person's platform, so
that platform's administrators see it in their log.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session

from app.audit.rules import Actor, Subject
from app.audit.service import AuditLog
from app.core.errors import NotFound
from app.core.time import utcnow
from app.identity.models import User
from app.identity.repository import IdentityRepository

#: How the audit log names a person's access.
ENABLED = "enabled"
DISABLED = "disabled"


@dataclass(frozen=True)
class UserChange:
    user: User
    changed: bool  # False: the person already was so; nothing was written


class UserService:
    """``actor``: who makes the change (the operator at the command line:
    ``Actor.operator()``); the tool itself when ``None``."""

    def __init__(self, session: Session, actor: Actor | None = None) -> None:
        self.session = session
        self.repo = IdentityRepository(session)
        self.actor = actor

    def set_disabled(
        self,
        platform_id: int,
        sub: str,
        disabled: bool,
        reason: str | None = None,
        now: datetime | None = None,
    ) -> UserChange:
        """Disable (ending their sessions) or enable the person ``sub`` of a platform. A
        person already so is left as they are (no event); an unknown one is ``NotFound``."""
        user = self.repo.user_by_sub(platform_id, sub)
        if user is None:
            raise NotFound()
        reason = (reason or "").strip() or None
        was = DISABLED if user.disabled_at is not None else ENABLED
        wanted = DISABLED if disabled else ENABLED
        if was == wanted:
            return UserChange(user, False)
        self.repo.set_user_disabled(
            platform_id, sub, (now or utcnow()) if disabled else None, reason if disabled else None
        )
        # The person's platform is the event's tenant, whoever acts (its administrators
        # read it; the operator's own ``Actor.operator()`` names no tenant).
        actor = replace(self.actor or Actor.system(None, None), platform_id=user.platform_id)
        AuditLog(self.session).record(
            actor,
            "user.disable" if disabled else "user.enable",
            Subject("user", user.id, user.display_name),
            {"status": was},
            {"status": wanted},
            reason,
        )
        return UserChange(user, True)
