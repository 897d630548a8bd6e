"""The per-process context every request reaches through ``request.app.state.ctx``.

It holds what is expensive to build or must be shared by threads: the engine, the HTTP
session with timeouts, the cache of platform keys, and the tool's secret. Nothing in it is
the source of truth; the database is, so several workers behave as one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import requests
from fastapi import Request

from app.config import Settings
from app.core.db import Database
from app.core.framing import FrameAncestors
from app.keys import crypto
from app.keys.service import KeyService
from lti.http import build_session
from lti.platform_keys import PlatformKeyCache

SECRET_NAME = "tool-secret"  # noqa: S105 - the name of a row, not a secret


@dataclass
class AppContext:
    settings: Settings
    database: Database
    http: requests.Session
    key_cache: PlatformKeyCache
    framing: FrameAncestors = field(default_factory=FrameAncestors)
    _secret: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(cls, settings: Settings, database: Database | None = None) -> AppContext:
        # The key-encryption keyring is process-wide (KeyService finds it); a malformed
        # configuration stops the start here (KeyEncryptionError).
        crypto.install(crypto.Keyring.from_settings(settings))
        http = build_session(settings.http_timeout_seconds)
        return cls(
            settings=settings,
            database=database or Database.from_url(settings.database_url),
            http=http,
            key_cache=PlatformKeyCache(http, settings.platform_jwks_cache_seconds),
            framing=FrameAncestors(
                settings.frame_ancestors.replace(",", " ").split(), demo=settings.demo
            ),
        )

    @property
    def secret(self) -> str:
        """The signing secret, configured or generated once and shared through the database."""
        if self._secret is None:
            with self._lock:
                if self._secret is None:
                    with self.database.session() as session:
                        configured = self.settings.secret_key
                        self._secret = KeyService(session).secret(
                            SECRET_NAME, configured.get_secret_value() if configured else None
                        )
        return self._secret


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx
