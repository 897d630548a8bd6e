"""Settings, read once from ``BLEND727_*`` environment variables.

Every tunable lives here so that an operator reads one file to learn what can be set.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide configuration; ``get_settings()`` caches one instance."""

    model_config = SettingsConfigDict(env_prefix="BLEND727_", extra="ignore")

    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{Path.cwd() / 'blend727.db'}",
        description="SQLAlchemy URL. SQLite file by default; postgresql+psycopg://… in production.",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8727",
        description="Public URL of the tool, as the LMS and browsers reach it (no trailing slash).",
    )
    secret_key: str | None = Field(
        default=None,
        description=(
            "Secret for signing cookies and OIDC nonces. When unset, one is generated and kept "
            "in the database, so every worker sharing that database agrees on it."
        ),
    )
    demo: bool = Field(default=False, description="Switch on the built-in demonstration platform.")
    default_locale: str = Field(
        default="vi", description="Locale when a launch does not ask for one."
    )
    timezone: str = Field(default="Asia/Ho_Chi_Minh")
    session_lifetime_seconds: int = Field(default=8 * 3600, ge=60)
    jwt_leeway_seconds: int = Field(
        default=60, ge=0, le=600, description="Clock skew accepted on id_token exp/iat/nbf."
    )
    http_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Timeout of every outgoing request to a platform."
    )
    platform_jwks_cache_seconds: int = Field(default=3600, ge=0)
    key_retire_days: int = Field(
        default=7, ge=0, description="How long a rotated-out signing key stays published."
    )
    max_launch_body_bytes: int = Field(default=64 * 1024, ge=4096)
    log_level: str = Field(default="INFO")
    inprocess_worker: bool = Field(
        default=True,
        description="Send queued scores from inside `blend727 serve` (small installations); "
        "run `blend727 worker` processes instead when this is off.",
    )
    upload_dir: Path = Field(
        default_factory=lambda: Path.cwd() / "var" / "uploads",
        description="Where handed-in files are kept: outside the web root, never served by path.",
    )
    max_upload_mb: int = Field(
        default=20, ge=1, le=500, description="Largest file a learner may hand in."
    )
    worker_poll_seconds: float = Field(default=2.0, gt=0, le=300)
    metrics_token: str | None = Field(
        default=None,
        description="Bearer token Prometheus sends to read /metrics. Unset: /metrics answers "
        "only programs on this machine that do not come through a proxy.",
    )

    @property
    def https(self) -> bool:
        """Cookies need ``SameSite=None; Secure`` to survive Moodle's iframe, which needs HTTPS."""
        return self.base_url.lower().startswith("https://")

    @property
    def public_base_url(self) -> str:
        return self.base_url.rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
