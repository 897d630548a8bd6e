"""Settings, read once from ``BLEND727_*`` environment variables.

Every tunable lives here so that an operator reads one file to learn what can be set.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
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
    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Secret for signing cookies and OIDC nonces. When unset, one is generated and kept "
            "in the database (encrypted like the signing keys), so every worker sharing that "
            "database agrees on it."
        ),
    )
    key_encryption_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key that encrypts the private signing keys and the generated secret in the "
            "database: 32 random bytes in base64 (`openssl rand -base64 32`). Several, "
            "separated by commas: the first encrypts, all decrypt (to move to a new key, put "
            "it first, run `blend727 keys reencrypt`, then drop the old one)."
        ),
    )
    key_encryption_key_file: Path | None = Field(
        default=None,
        description="A file holding the key-encryption key(s) instead (one per line); "
        "readable by the service account only.",
    )
    demo: bool = Field(default=False, description="Switch on the built-in demonstration platform.")
    frame_ancestors: str = Field(
        default="",
        description="Other sites (origins, space- or comma-separated) that may show blend727 in "
        "a frame, besides the registered LMSs (their issuer and login addresses) — e.g. an LMS "
        "whose pages live on another host than its issuer.",
    )
    demo_platform_url: str | None = Field(
        default=None,
        description=(
            "Address of the demonstration LMS: the same server under another host name (for "
            "example http://localhost:8727 beside a tool on http://127.0.0.1:8727) makes its "
            "framed launch cross-site, as Moodle's is. Unset: the tool's own address."
        ),
    )
    cross_site_cookies: bool | None = Field(
        default=None,
        description=(
            "Send cookies as SameSite=None; Secure; Partitioned, which a cross-site LMS iframe "
            "needs. Unset: on when base_url is https. Browsers accept Secure cookies from "
            "http://localhost and http://127.0.0.1, so switching it on lets a local LMS on "
            "another host name frame the tool over plain HTTP."
        ),
    )
    default_locale: str = Field(
        default="vi", description="Locale when a launch does not ask for one."
    )
    timezone: str = Field(default="Asia/Ho_Chi_Minh")
    session_lifetime_seconds: int = Field(default=8 * 3600, ge=60)
    verify_misses_per_minute: int = Field(
        default=20,
        ge=1,
        description="Unknown certificate codes one client address may check per minute on "
        "/verify before it gets 429 until the minute ends.",
    )
    jwt_leeway_seconds: int = Field(
        default=60, ge=0, le=600, description="Clock skew accepted on id_token exp/iat/nbf."
    )
    http_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Timeout of every outgoing request to a platform."
    )
    platform_jwks_cache_seconds: int = Field(default=3600, ge=0)
    key_retire_days: int = Field(
        default=7,
        ge=0,
        description="How long a rotated-out signing key stays published; also how long the "
        "key published ahead must have been in the JWKS before a scheduled rotation "
        "(`keys rotate --if-older-than`) makes it current.",
    )
    max_launch_body_bytes: int = Field(default=64 * 1024, ge=4096)
    log_level: str = Field(default="INFO")
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`json`: one JSON object per line (time, level, logger, message, "
        "request_id and the record's extra fields) and an access line per request.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated IP addresses or networks (CIDR) of reverse proxies whose "
        "X-Forwarded-For/-Proto/-Host are believed; from anyone else they are ignored.",
    )
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
    worker_lease_seconds: float = Field(
        default=120.0,
        ge=1,
        le=3600,
        description="How long a worker holds the scores it claimed: a worker that dies while "
        "sending leaves them to another worker after this long. Keep it well above twice "
        "BLEND727_HTTP_TIMEOUT_SECONDS (a worker renews its claim before sending when less "
        "than that is left).",
    )
    registration_allow_http_loopback: bool = Field(
        default=False,
        description="Dynamic registration: accept http:// platform addresses on 127.0.0.1 or "
        "localhost (tests and demonstrations only; the demo turns it on).",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_proxies(cls, value: str) -> str:
        from app.core.proxy import parse_networks

        parse_networks(value)  # raises ValueError naming the bad entry
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    def startup_warnings(self) -> list[str]:
        """What an operator should fix before production (logged at start-up and printed by
        `blend727 serve`); nothing for the demonstration."""
        if self.demo:
            return []
        warnings = []
        if not self.https:
            warnings.append(
                f"BLEND727_BASE_URL is {self.public_base_url}, not https://: inside the LMS's "
                "iframe browsers drop the tool's cookies without HTTPS, and launches travel "
                "unencrypted. Serve blend727 behind HTTPS (a reverse proxy; see "
                "BLEND727_TRUSTED_PROXIES)."
            )
        if self.key_encryption_key is None and self.key_encryption_key_file is None:
            warnings.append(
                "The tool's private signing keys are stored unencrypted in the database: set "
                "BLEND727_KEY_ENCRYPTION_KEY_FILE (or BLEND727_KEY_ENCRYPTION_KEY) to 32 random "
                "bytes in base64 (openssl rand -base64 32); see the README, Operations."
            )
        return warnings

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
    def secure_cookies(self) -> bool:
        """``SameSite=None; Secure; Partitioned`` cookies (else ``SameSite=Lax``)."""
        return self.https if self.cross_site_cookies is None else self.cross_site_cookies

    @property
    def public_base_url(self) -> str:
        return self.base_url.rstrip("/")

    @property
    def demo_platform_base_url(self) -> str:
        return (self.demo_platform_url or self.base_url).rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
