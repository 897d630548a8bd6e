"""Factories for test data, written through the same services the app uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from app.identity.models import User
from app.platforms.models import Platform
from app.platforms.service import PlatformInput, PlatformService

if TYPE_CHECKING:
    from tests.lti_platform import TestPlatform


class Factories:
    """Rows for tests, written through the app's own services where one exists."""

    def __init__(self, db: Session) -> None:
        self.db = db

    def register(
        self, platform: TestPlatform, *, deployment_ids: list[str], served_token: bool = False
    ) -> Platform:
        """Register ``platform``; ``served_token`` points the token URL at the endpoint the
        test platform really serves (needed for NRPS and AGS)."""
        row = PlatformService(self.db).register(
            PlatformInput(
                issuer=platform.issuer,
                client_id=platform.client_id,
                auth_login_url=platform.auth_login_url,
                token_url=platform.served_token_url if served_token else platform.token_url,
                keyset_url=platform.keyset_url,
                deployment_ids=deployment_ids,
                name=f"Test LMS {platform.slug}",
            ),
            update=True,
        )
        self.db.commit()
        return row

    def users(
        self, platform: Platform, count: int, *, schools: list[str] | None = None, prefix: str = "u"
    ) -> list[User]:
        """People the LMS knows (as NRPS would report them), spread over ``schools``."""
        rows = [
            User(
                platform_id=platform.id,
                sub=f"{prefix}{i}",
                name=f"Giáo viên {prefix}{i}",
                school=(schools[i % len(schools)] if schools else None),
            )
            for i in range(count)
        ]
        self.db.add_all(rows)
        self.db.commit()
        return rows
