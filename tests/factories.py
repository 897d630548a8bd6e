"""Factories for test data, written through the same services the app uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from app.platforms.models import Platform
from app.platforms.service import PlatformInput, PlatformService

if TYPE_CHECKING:
    from tests.lti_platform import TestPlatform


class Factories:
    def __init__(self, db: Session) -> None:
        self.db = db

    def register(self, platform: TestPlatform, *, deployment_ids: list[str]) -> Platform:
        row = PlatformService(self.db).register(
            PlatformInput(
                issuer=platform.issuer,
                client_id=platform.client_id,
                auth_login_url=platform.auth_login_url,
                token_url=platform.token_url,
                keyset_url=platform.keyset_url,
                deployment_ids=deployment_ids,
                name=f"Test LMS {platform.slug}",
            ),
            update=True,
        )
        self.db.commit()
        return row
