"""The ``blend727`` command line."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from app.config import Settings, get_settings

app = typer.Typer(
    help="blend727 — LTI 1.3 tool for 7-2-7 blended in-service teacher training.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
platform_app = typer.Typer(
    help="LMS registrations (platforms and deployments).", no_args_is_help=True
)
keys_app = typer.Typer(help="The tool's signing keys.", no_args_is_help=True)
user_app = typer.Typer(help="People who have launched blend727.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(platform_app, name="platform")
app.add_typer(keys_app, name="keys")
app.add_typer(user_app, name="user")


def _settings() -> Settings:
    get_settings.cache_clear()
    return get_settings()


def _upgrade(settings: Settings) -> None:
    from app.core.migrate import upgrade

    upgrade(settings.database_url)


def _database(settings: Settings):  # type: ignore[no-untyped-def]
    from app.core.db import Database

    return Database.from_url(settings.database_url)


def _print_endpoints(settings: Settings) -> None:
    from app.launch.endpoints import lti_endpoints

    endpoints = lti_endpoints(settings.public_base_url)
    typer.echo("Tool endpoints (paste into the LMS):")
    typer.echo(f"  Tool URL / redirection URI : {endpoints['tool_url']}")
    typer.echo(f"  Initiate login URL         : {endpoints['login_url']}")
    typer.echo(f"  Public keyset (JWKS) URL   : {endpoints['jwks_url']}")
    typer.echo(f"  Deep linking URL           : {endpoints['deep_linking_url']}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema up to date (Alembic upgrade head)."""
    settings = _settings()
    _upgrade(settings)
    typer.echo(f"Database is up to date: {_redacted(settings.database_url)}")


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable URL)"


def _prepare(settings: Settings) -> None:
    from app.keys.service import KeyService

    _upgrade(settings)
    db = _database(settings)
    with db.session() as session:
        KeyService(session).ensure_key()
    db.engine.dispose()


def _run_server(host: str, port: int, workers: int) -> None:
    import uvicorn

    if workers > 1:
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=False,
            log_level="info",
        )
    else:
        from app.main import create_app

        uvicorn.run(
            create_app(_settings()), host=host, port=port, proxy_headers=False, log_level="info"
        )


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _metrics_dir(workers: int) -> str | None:
    """With several workers, every worker writes its metrics to one directory and a scrape
    adds them up: a fresh temporary one (returned, to remove at exit), or the operator's
    ``PROMETHEUS_MULTIPROC_DIR`` emptied of a previous run's files. Set before any worker
    imports prometheus_client."""
    if workers <= 1:
        return None
    existing = os.environ.get(MULTIPROC_ENV)
    if existing:
        folder = Path(existing)
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.db"):
            old.unlink(missing_ok=True)
        return None
    created = tempfile.mkdtemp(prefix="blend727-metrics-")
    os.environ[MULTIPROC_ENV] = created
    return created


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8727,
    workers: Annotated[
        int,
        typer.Option(min=1, help="Worker processes sharing the port (PostgreSQL for more than 1)."),
    ] = 1,
) -> None:
    """Bring the database schema up to date, then serve the tool."""
    settings = _settings()
    if workers > 1 and settings.database_url.startswith("sqlite"):
        typer.echo(
            f"--workers {workers} needs PostgreSQL: SQLite lets one process write at a time, "
            "so more workers would only queue up behind each other. Set "
            "BLEND727_DATABASE_URL=postgresql+psycopg://… or serve with --workers 1.",
            err=True,
        )
        raise typer.Exit(2)
    created = _metrics_dir(workers)
    try:
        _prepare(settings)
        _print_endpoints(settings)
        if workers > 1:
            typer.echo(
                f"Serving with {workers} worker processes; /metrics adds up all of them "
                f"({MULTIPROC_ENV}={os.environ[MULTIPROC_ENV]})."
            )
        _run_server(host, port, workers)
    finally:
        if created:
            shutil.rmtree(created, ignore_errors=True)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8727,
) -> None:
    """Seed demonstration data and serve with the built-in demonstration platform on."""
    os.environ["BLEND727_DEMO"] = "true"
    if "BLEND727_BASE_URL" not in os.environ:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        os.environ["BLEND727_BASE_URL"] = f"http://{shown}:{port}"
    settings = _settings()
    _prepare(settings)  # the app registers the demo platform itself when it starts
    typer.echo("")
    typer.echo(f"  blend727 demo: open {settings.public_base_url}/demo in your browser")
    typer.echo("")
    _run_server(host, port, 1)


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Send what is due once, then exit.")] = False,
    batch: Annotated[int, typer.Option(help="Scores claimed per round.")] = 50,
) -> None:
    """Send queued scores to the LMS until stopped (any number may run on PostgreSQL)."""
    import signal
    import time

    from app.grading.service import ResultSweeper
    from app.passback.service import OutboxWorker
    from lti.http import build_session

    settings = _settings()
    _prepare(settings)
    db = _database(settings)
    http = build_session(settings.http_timeout_seconds)
    sweeper = ResultSweeper(db, http)
    sender = OutboxWorker(db, http, batch=batch, before_round=sweeper.run_if_due)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    typer.echo(f"blend727 worker {sender.worker_id}: sending queued scores")
    while not stopping:
        result = sender.run_once()
        if result.claimed:
            typer.echo(
                f"sent {result.sent}, retrying {result.retried}, failed {result.failed}, "
                f"dead {result.dead}"
            )
        if once:
            break
        if result.claimed < batch:
            time.sleep(settings.worker_poll_seconds)


@platform_app.command("add")
def platform_add(
    issuer: Annotated[
        str, typer.Option(help="Platform ID (issuer), e.g. https://moodle.example.edu.vn")
    ],
    client_id: Annotated[str, typer.Option(help="Client ID the LMS gave the tool.")],
    deployment_id: Annotated[list[str], typer.Option(help="Deployment ID; repeat for several.")],
    auth_login_url: Annotated[str, typer.Option(help="Authentication request URL.")],
    token_url: Annotated[str, typer.Option(help="Access token URL.")],
    keyset_url: Annotated[str, typer.Option(help="Public keyset URL of the platform.")],
    name: Annotated[str, typer.Option(help="A name for people.")] = "",
    auth_audience: Annotated[str, typer.Option(help="Token audience, if not the token URL.")] = "",
    update: Annotated[bool, typer.Option(help="Update an existing registration.")] = False,
) -> None:
    """Register an LMS (issuer + client id) with one or more deployments."""
    from app.core.errors import AppError
    from app.platforms.service import PlatformInput, PlatformService

    settings = _settings()
    _upgrade(settings)
    db = _database(settings)
    try:
        with db.session() as session:
            platform = PlatformService(session).register(
                PlatformInput(
                    issuer=issuer,
                    client_id=client_id,
                    deployment_ids=deployment_id,
                    auth_login_url=auth_login_url,
                    token_url=token_url,
                    keyset_url=keyset_url,
                    name=name,
                    auth_audience=auth_audience or None,
                ),
                update=update,
            )
            typer.echo(
                f"Registered platform {platform.id}: {platform.issuer} "
                f"(client {platform.client_id})"
            )
    except AppError as exc:
        typer.echo(f"Error: {exc.detail % exc.params if exc.params else exc.detail}", err=True)
        raise typer.Exit(2) from exc
    _print_endpoints(settings)


@platform_app.command("list")
def platform_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List registered platforms, their deployments, and the tool's endpoints."""
    from app.launch.endpoints import lti_endpoints
    from app.platforms.service import PlatformService

    settings = _settings()
    _upgrade(settings)
    db = _database(settings)
    with db.session() as session:
        platforms = PlatformService(session).list()
        rows: list[dict[str, Any]] = [
            {
                "id": p.id,
                "name": p.name,
                "issuer": p.issuer,
                "client_id": p.client_id,
                "status": p.status,
                "demo": p.is_demo,
                "auth_login_url": p.auth_login_url,
                "token_url": p.token_url,
                "keyset_url": p.keyset_url,
                "deployments": [d.deployment_id for d in p.deployments],
            }
            for p in platforms
        ]
    if as_json:
        typer.echo(
            json.dumps(
                {"endpoints": lti_endpoints(settings.public_base_url), "platforms": rows}, indent=2
            )
        )
        return
    _print_endpoints(settings)
    typer.echo("")
    if not rows:
        typer.echo("No platform registered yet. Add one with: blend727 platform add --help")
    for row in rows:
        flag = " [demo]" if row["demo"] else ""
        typer.echo(f"#{row['id']} {row['name']}{flag} — {row['status']}")
        typer.echo(f"    issuer     : {row['issuer']}")
        typer.echo(f"    client id  : {row['client_id']}")
        typer.echo(f"    deployments: {', '.join(row['deployments'])}")
        typer.echo(f"    auth login : {row['auth_login_url']}")
        typer.echo(f"    token      : {row['token_url']}")
        typer.echo(f"    keyset     : {row['keyset_url']}")


def _set_platform_status(platform_id: int, status: str) -> None:
    from app.core.errors import NotFound
    from app.platforms.models import PlatformStatus
    from app.platforms.service import PlatformService

    settings = _settings()
    db = _database(settings)
    try:
        with db.session() as session:
            platform = PlatformService(session).set_status(platform_id, PlatformStatus(status))
            typer.echo(f"Platform {platform.id} ({platform.issuer}) is now {platform.status}.")
    except NotFound as exc:
        typer.echo(f"Error: no platform with id {platform_id}", err=True)
        raise typer.Exit(2) from exc


@platform_app.command("disable")
def platform_disable(platform_id: int) -> None:
    """Refuse every launch and session from a platform (reversible)."""
    _set_platform_status(platform_id, "disabled")


@platform_app.command("enable")
def platform_enable(platform_id: int) -> None:
    """Accept launches from a platform again."""
    _set_platform_status(platform_id, "active")


@keys_app.command("rotate")
def keys_rotate(
    retire_days: Annotated[
        int | None, typer.Option(help="Days the old key stays published (default from settings).")
    ] = None,
) -> None:
    """Create a new signing key; the old one stays published until it expires."""
    from app.keys.service import KeyService

    settings = _settings()
    _upgrade(settings)
    days = settings.key_retire_days if retire_days is None else retire_days
    db = _database(settings)
    with db.session() as session:
        new, retired = KeyService(session).rotate(timedelta(days=days))
        typer.echo(f"New signing key: {new.kid}")
        for key in retired:
            typer.echo(
                f"Retiring key {key.kid}: published until {key.retires_at:%Y-%m-%d %H:%M} UTC"
            )


@keys_app.command("list")
def keys_list() -> None:
    """List the tool's keys and which are published."""
    from app.core.time import utcnow
    from app.keys.repository import KeyRepository

    settings = _settings()
    _upgrade(settings)
    db = _database(settings)
    now = utcnow()
    with db.session() as session:
        for key in KeyRepository(session).all():
            if key.retires_at is None:
                state = "current"
            elif key.retires_at > now:
                state = f"retiring, published until {key.retires_at:%Y-%m-%d %H:%M} UTC"
            else:
                state = "expired, no longer published"
            typer.echo(f"{key.kid}  created {key.created_at:%Y-%m-%d %H:%M} UTC  {state}")


def _set_user(issuer: str, client_id: str | None, sub: str, disable: bool, reason: str) -> None:
    from app.core.time import utcnow
    from app.identity.repository import IdentityRepository
    from app.platforms.repository import PlatformRepository

    settings = _settings()
    db = _database(settings)
    with db.session() as session:
        repo = PlatformRepository(session)
        candidates = (
            [p for p in [repo.by_issuer_and_client(issuer, client_id)] if p]
            if client_id
            else list(repo.by_issuer(issuer))
        )
        if len(candidates) != 1:
            typer.echo(
                "Error: name exactly one platform (--issuer, and --client-id if needed).", err=True
            )
            raise typer.Exit(2)
        user = IdentityRepository(session).set_user_disabled(
            candidates[0].id, sub, utcnow() if disable else None, reason or None
        )
        if user is None:
            typer.echo(f"Error: no user {sub!r} on that platform.", err=True)
            raise typer.Exit(2)
        typer.echo(
            f"User {user.display_name} ({sub}) is now {'disabled' if disable else 'enabled'}."
        )


@user_app.command("disable")
def user_disable(
    issuer: Annotated[str, typer.Option()],
    sub: Annotated[str, typer.Option(help="The LMS user id (LTI sub).")],
    client_id: Annotated[str | None, typer.Option()] = None,
    reason: Annotated[str, typer.Option()] = "",
) -> None:
    """Keep a person out even when the LMS sends a valid launch; ends their sessions."""
    _set_user(issuer, client_id, sub, True, reason)


@user_app.command("enable")
def user_enable(
    issuer: Annotated[str, typer.Option()],
    sub: Annotated[str, typer.Option()],
    client_id: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Let a disabled person in again."""
    _set_user(issuer, client_id, sub, False, "")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)


if __name__ == "__main__":
    main()
