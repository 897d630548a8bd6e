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
audit_app = typer.Typer(help="The audit log of changes.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(platform_app, name="platform")
app.add_typer(keys_app, name="keys")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")


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
    from app.platforms.service import lti_endpoints

    endpoints = lti_endpoints(settings.public_base_url)
    typer.echo("Tool endpoints (paste into the LMS):")
    typer.echo(f"  Tool URL / redirection URI : {endpoints['tool_url']}")
    typer.echo(f"  Initiate login URL         : {endpoints['login_url']}")
    typer.echo(f"  Public keyset (JWKS) URL   : {endpoints['jwks_url']}")
    typer.echo(f"  Deep linking URL           : {endpoints['deep_linking_url']}")
    typer.echo(f"  Dynamic registration URL   : {endpoints['registration_url']}")


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


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(2)


def _install_keyring(settings: Settings) -> None:
    """The key-encryption keyring of this process (app/keys/crypto.py), from the settings."""
    from app.keys import crypto

    try:
        crypto.install(crypto.Keyring.from_settings(settings))
    except crypto.KeyEncryptionError as exc:
        raise _fail(str(exc)) from None


def _prepare(settings: Settings) -> None:
    """Schema up to date, stored keys readable, a current key and one published ahead;
    warnings for what production should not run with."""
    from app.keys.crypto import KeyEncryptionError
    from app.keys.service import KeyService

    for warning in settings.startup_warnings():
        typer.echo(f"Warning: {warning}", err=True)
    _upgrade(settings)
    _install_keyring(settings)
    db = _database(settings)
    try:
        with db.session() as session:
            state = KeyService(session).prepare()
    except KeyEncryptionError as exc:
        raise _fail(f"cannot start: {exc}") from None
    finally:
        db.engine.dispose()
    if state.plaintext:
        typer.echo(
            f"Warning: {state.plaintext} stored private keys/secrets are not encrypted yet: "
            "run `blend727 keys encrypt` once every server has the key-encryption key.",
            err=True,
        )


def _run_server(host: str, port: int, workers: int) -> None:
    import uvicorn

    settings = _settings()
    # JSON logs: uvicorn's own loggers write through blend727's JSON handler, and the access
    # line comes from the app (route, status, ms, request id) instead of uvicorn's.
    log_options: dict[str, Any] = {"log_level": "info"}
    if settings.log_format == "json":
        from app.core.logs import configure_logging

        configure_logging(settings.log_format, settings.log_level)
        log_options.update(log_config=None, access_log=False)
    if workers > 1:
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=False,
            **log_options,
        )
    else:
        from app.main import create_app

        uvicorn.run(create_app(settings), host=host, port=port, proxy_headers=False, **log_options)


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
    sender = OutboxWorker(
        db,
        http,
        batch=batch,
        before_round=sweeper.run_if_due,
        lease=timedelta(seconds=settings.worker_lease_seconds),
        send_timeout=settings.http_timeout_seconds,
    )
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    typer.echo(f"blend727 worker {sender.worker_id}: sending queued scores")
    while not stopping:
        try:
            result = sender.run_once()
        except Exception as exc:
            # The database restarting or failing over must not end the worker: what it had
            # claimed is reclaimed when the lease runs out; try again after a pause.
            typer.echo(f"round failed ({type(exc).__name__}); trying again shortly", err=True)
            if once:
                raise typer.Exit(1) from None
            time.sleep(max(settings.worker_poll_seconds, 1.0))
            continue
        if result.claimed:
            typer.echo(
                f"sent {result.sent}, retrying {result.retried}, failed {result.failed}, "
                f"dead {result.dead}, waiting behind a failing LMS {result.deferred}"
            )
        if once:
            break
        if result.claimed < batch:
            time.sleep(settings.worker_poll_seconds)


@platform_app.command("add")
def platform_add(
    issuer: Annotated[
        str | None, typer.Option(help="Platform ID (issuer), e.g. https://moodle.example.edu.vn")
    ] = None,
    client_id: Annotated[str | None, typer.Option(help="Client ID the LMS gave the tool.")] = None,
    deployment_id: Annotated[
        list[str] | None, typer.Option(help="Deployment ID; repeat for several.")
    ] = None,
    auth_login_url: Annotated[str | None, typer.Option(help="Authentication request URL.")] = None,
    token_url: Annotated[str | None, typer.Option(help="Access token URL.")] = None,
    keyset_url: Annotated[
        str | None, typer.Option(help="Public keyset URL of the platform.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="A name for people.")] = None,
    auth_audience: Annotated[
        str | None, typer.Option(help="Token audience, if not the token URL.")
    ] = None,
    from_json: Annotated[
        Path | None,
        typer.Option(
            help="Read the values from a JSON file: our names (issuer, client_id, "
            "deployment_id, auth_login_url, token_url, keyset_url, name, auth_audience) or "
            'Moodle\'s ("Platform ID", "Client ID", "Deployment ID", "Public keyset '
            'URL", "Access token URL", "Authentication request URL"). Options given '
            "as well override the file; deployment IDs are added.",
            dir_okay=False,
        ),
    ] = None,
    update: Annotated[bool, typer.Option(help="Update an existing registration.")] = False,
) -> None:
    """Register an LMS (issuer + client id) with one or more deployments."""
    from app.core.errors import AppError
    from app.platforms.service import PlatformInput, PlatformService, platform_input_from_json

    try:
        base = PlatformInput(
            issuer="",
            client_id="",
            auth_login_url="",
            token_url="",
            keyset_url="",
            deployment_ids=[],
        )
        if from_json is not None:
            try:
                text = from_json.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                typer.echo(f"Error: cannot read {from_json}: {exc}", err=True)
                raise typer.Exit(2) from exc
            base = platform_input_from_json(text)
        data = PlatformInput(
            issuer=issuer if issuer is not None else base.issuer,
            client_id=client_id if client_id is not None else base.client_id,
            deployment_ids=[*base.deployment_ids, *(deployment_id or [])],
            auth_login_url=auth_login_url if auth_login_url is not None else base.auth_login_url,
            token_url=token_url if token_url is not None else base.token_url,
            keyset_url=keyset_url if keyset_url is not None else base.keyset_url,
            name=name if name is not None else base.name,
            auth_audience=auth_audience if auth_audience is not None else base.auth_audience,
        )
        settings = _settings()
        _upgrade(settings)
        db = _database(settings)
        with db.session() as session:
            platform = PlatformService(session).register(data, update=update)
            typer.echo(
                f"Registered platform {platform.id}: {platform.issuer} "
                f"(client {platform.client_id})"
            )
    except AppError as exc:
        typer.echo(f"Error: {_message(exc)}", err=True)
        raise typer.Exit(2) from exc
    _print_endpoints(settings)


def _message(exc: Any) -> str:
    """An AppError in English for the terminal (message ids are English)."""
    try:
        return str(exc.detail % exc.params if exc.params else exc.detail)
    except (KeyError, ValueError, TypeError):
        return str(exc.detail)


@platform_app.command("list")
def platform_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List registered platforms, their deployments, and the tool's endpoints."""
    from app.platforms.service import PlatformService, lti_endpoints

    settings = _settings()
    _upgrade(settings)
    db = _database(settings)
    with db.session() as session:
        service = PlatformService(session)
        platforms = service.list()
        invitations: list[dict[str, Any]] = [
            {"id": i.id, "name": i.name, "expires_at": i.expires_at.isoformat()}
            for i in service.open_invitations()
        ]
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
                {
                    "endpoints": lti_endpoints(settings.public_base_url),
                    "platforms": rows,
                    "invitations": invitations,
                },
                indent=2,
            )
        )
        return
    _print_endpoints(settings)
    typer.echo("")
    if not rows:
        typer.echo(
            "No platform registered yet. Add one with: blend727 platform add --help, "
            "or invite one: blend727 platform invite --help"
        )
    for row in rows:
        flag = " [demo]" if row["demo"] else ""
        typer.echo(f"#{row['id']} {row['name']}{flag} — {row['status']}")
        typer.echo(f"    issuer     : {row['issuer']}")
        typer.echo(f"    client id  : {row['client_id']}")
        typer.echo(f"    deployments: {', '.join(row['deployments'])}")
        typer.echo(f"    auth login : {row['auth_login_url']}")
        typer.echo(f"    token      : {row['token_url']}")
        typer.echo(f"    keyset     : {row['keyset_url']}")
        if row["status"] == "pending":
            typer.echo(
                f"    registered itself and waits for approval: "
                f"blend727 platform approve {row['id']} (or reject {row['id']})"
            )
    for inv in invitations:
        label = f" “{inv['name']}”" if inv["name"] else ""
        until = str(inv["expires_at"])[:16].replace("T", " ")
        typer.echo(f"Invitation {inv['id']}{label}: open until {until} UTC")


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


def _platform_change(platform_id: int, change: str) -> None:
    from app.core.errors import AppError, NotFound
    from app.platforms.service import PlatformService

    settings = _settings()
    _upgrade(settings)
    db = _database(settings)
    try:
        with db.session() as session:
            service = PlatformService(session)
            if change == "approve":
                platform = service.approve(platform_id)
                typer.echo(f"Platform {platform.id} ({platform.issuer}) is now {platform.status}.")
            else:
                platform = service.reject(platform_id)
                typer.echo(f"Platform {platform.id} ({platform.issuer}) has been removed.")
    except NotFound as exc:
        typer.echo(f"Error: no platform with id {platform_id}", err=True)
        raise typer.Exit(2) from exc
    except AppError as exc:
        typer.echo(f"Error: {_message(exc)}", err=True)
        raise typer.Exit(2) from exc


@platform_app.command("approve")
def platform_approve(platform_id: int) -> None:
    """Accept launches from a platform that registered itself (dynamic registration)."""
    _platform_change(platform_id, "approve")


@platform_app.command("reject")
def platform_reject(platform_id: int) -> None:
    """Remove a registration that is waiting for approval."""
    _platform_change(platform_id, "reject")


@platform_app.command("invite")
def platform_invite(
    name: Annotated[str, typer.Option(help="Name of the LMS, for people.")] = "",
    expires_hours: Annotated[
        int, typer.Option(help="Hours the invitation stays valid (once).", min=1, max=2160)
    ] = 72,
) -> None:
    """Print a one-time dynamic registration URL: an LMS registered with it is active at once."""
    from app.core.errors import AppError
    from app.platforms.service import PlatformService, lti_endpoints

    settings = _settings()
    _upgrade(settings)
    db = _database(settings)
    try:
        with db.session() as session:
            token, invitation = PlatformService(session).invite(
                name=name, expires_hours=expires_hours
            )
            expires = f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC"
    except AppError as exc:
        typer.echo(f"Error: {_message(exc)}", err=True)
        raise typer.Exit(2) from exc
    url = f"{lti_endpoints(settings.public_base_url)['registration_url']}?invite={token}"
    typer.echo("Dynamic registration URL (works once; paste it into the LMS's tool URL):")
    typer.echo(f"  {url}")
    typer.echo(f"Valid until {expires}. Only a hash of it is kept: it cannot be shown again.")


@keys_app.command("rotate")
def keys_rotate(
    retire_days: Annotated[
        int | None, typer.Option(help="Days the old key stays published (default from settings).")
    ] = None,
    if_older_than: Annotated[
        int | None,
        typer.Option(
            help="Only when the current key is at least this many days old, and the key "
            "published ahead has been published for the retire period: safe to run daily "
            "from a timer."
        ),
    ] = None,
) -> None:
    """Make the key published ahead current and publish a new one ahead; the old key stays
    published until it expires. Platforms holding a cached JWKS keep verifying throughout."""
    from app.keys.crypto import KeyEncryptionError
    from app.keys.service import KeyService

    settings = _settings()
    _upgrade(settings)
    _install_keyring(settings)
    days = settings.key_retire_days if retire_days is None else retire_days
    db = _database(settings)
    try:
        with db.session() as session:
            service = KeyService(session)
            service.verify()
            due_after = None if if_older_than is None else timedelta(days=if_older_than)
            published = timedelta(days=settings.key_retire_days)
            rotation = service.rotate(
                timedelta(days=days),
                if_older_than=due_after,
                min_published=None if due_after is None else published,
            )
            if rotation.activated is not None:
                typer.echo(f"New signing key: {rotation.activated.kid}")
                for key in rotation.retired:
                    typer.echo(
                        f"Retiring key {key.kid}: published until "
                        f"{key.retires_at:%Y-%m-%d %H:%M} UTC"
                    )
            elif rotation.reason == "not_due":
                typer.echo(f"Not due: the current key is younger than {if_older_than} days.")
            elif rotation.reason == "published_too_recently":
                typer.echo(
                    "Not yet: the key published ahead has been published for less than "
                    f"{settings.key_retire_days} days (BLEND727_KEY_RETIRE_DAYS)."
                )
            else:
                typer.echo(
                    "No key was published ahead yet, so none could take over without risk: "
                    "one is published now and becomes current at the next rotation."
                )
            if rotation.created is not None:
                typer.echo(f"Published ahead for the next rotation: {rotation.created.kid}")
    except KeyEncryptionError as exc:
        raise _fail(str(exc)) from None


@keys_app.command("list")
def keys_list() -> None:
    """List the tool's keys, which are published and how they are stored."""
    from app.core.time import utcnow
    from app.keys.crypto import Keyring
    from app.keys.repository import KeyRepository

    settings = _settings()
    _upgrade(settings)
    db = _database(settings)
    now = utcnow()
    with db.session() as session:
        repo = KeyRepository(session)
        current = repo.current()
        for key in repo.all():
            if key.retires_at is not None:
                state = (
                    f"retiring, published until {key.retires_at:%Y-%m-%d %H:%M} UTC"
                    if key.retires_at > now
                    else "expired, no longer published"
                )
            elif key.activated_at is None:
                state = "next, published ahead"
            elif current is not None and key.id == current.id:
                state = "current"
            else:
                state = "active (retired at the next rotation)"
            kek = Keyring.encrypted_with(key.private_key_pem)
            stored = f"encrypted (key {kek})" if kek else "not encrypted"
            typer.echo(
                f"{key.kid}  created {key.created_at:%Y-%m-%d %H:%M} UTC  {state}  [{stored}]"
            )


def _encrypt_stored(reencrypt: bool) -> None:
    from app.keys.crypto import KeyEncryptionError
    from app.keys.service import KeyService

    settings = _settings()
    _upgrade(settings)
    _install_keyring(settings)
    db = _database(settings)
    try:
        with db.session() as session:
            service = KeyService(session)
            service.verify()
            changed = service.encrypt_stored(reencrypt=reencrypt)
            primary = service.keyring.primary
    except KeyEncryptionError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"{changed} stored private keys/secrets written encrypted with key {primary}.")


@keys_app.command("encrypt")
def keys_encrypt() -> None:
    """Encrypt the private keys and secrets still stored in plaintext with the configured
    key-encryption key (BLEND727_KEY_ENCRYPTION_KEY or _FILE). Configure every server first."""
    _encrypt_stored(reencrypt=False)


@keys_app.command("reencrypt")
def keys_reencrypt() -> None:
    """Move every stored private key and secret to the first configured key-encryption key
    (list the new key first and the old one after it; drop the old one afterwards)."""
    _encrypt_stored(reencrypt=True)


def _open_text(path: str, mode: str, *, gz: bool | None = None) -> Any:
    """A text file, gzip-compressed when its name ends in .gz; ``-`` is stdin/stdout."""
    import gzip

    if path == "-":
        return sys.stdout if "w" in mode else sys.stdin
    if path.endswith(".gz") if gz is None else gz:
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


@app.command("export")
def export_command(
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="File to write (a name ending in .gz is compressed; '-' is standard output).",
        ),
    ],
    platform_id: Annotated[int | None, typer.Option(help="The platform's id.")] = None,
    issuer: Annotated[str | None, typer.Option(help="Or its issuer …")] = None,
    client_id: Annotated[str | None, typer.Option(help="… and client id.")] = None,
    files: Annotated[
        bool,
        typer.Option(
            "--files/--no-files",
            help="Include the handed-in files (base64), or only list them (then copy "
            "BLEND727_UPLOAD_DIR yourself).",
        ),
    ] = True,
) -> None:
    """Back up one LMS registration and everything hanging off it (users, courses, classes,
    attendance, learning, grades, certificates, outbox) as JSON lines."""
    from sqlalchemy.orm import Session

    from app.backup.service import BackupError, export_tenant, find_platform

    settings = _settings()
    _upgrade(settings)
    db = _database(settings)
    partial = None if output == "-" else output + ".part"
    try:
        with db.engine.connect() as connection:
            if db.dialect == "postgresql":  # one snapshot for every table
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with Session(bind=connection) as session:
                platform = find_platform(
                    session, platform_id=platform_id, issuer=issuer, client_id=client_id
                )
                if partial is not None:  # personal data: readable by the owner only
                    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
                out = _open_text(partial or "-", "w", gz=output.endswith(".gz"))
                try:
                    summary = export_tenant(
                        session,
                        platform.id,
                        out,
                        upload_dir=settings.upload_dir,
                        include_files=files,
                    )
                finally:
                    if out is not sys.stdout:
                        out.close()
        if partial is not None:
            os.replace(partial, output)
    except BackupError as exc:
        if partial is not None and os.path.exists(partial):
            os.unlink(partial)
        raise _fail(str(exc)) from None
    typer.echo(
        f"Exported {summary.issuer} (client {summary.client_id}): {summary.total_rows} rows, "
        f"{summary.files} files ({summary.file_bytes} bytes"
        f"{'' if files else ', referenced only'}) to {output}",
        err=True,
    )
    for key in summary.missing_files:
        typer.echo(f"Warning: handed-in file {key} is missing from the upload directory", err=True)


@app.command("import")
def import_command(
    path: Annotated[
        str,
        typer.Argument(help="A file made by `blend727 export` (.gz read compressed; '-' stdin)."),
    ],
    dry_run: Annotated[
        bool, typer.Option(help="Check everything and print the counts; write nothing.")
    ] = False,
) -> None:
    """Restore a tenant exported by `blend727 export` into this database (empty or holding
    other platforms): new ids, all or nothing."""
    from app.backup.service import BackupError, import_tenant

    settings = _settings()
    _upgrade(settings)
    db = _database(settings)
    try:
        source = _open_text(path, "r")
    except OSError as exc:
        raise _fail(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        summary = import_tenant(db, source, upload_dir=settings.upload_dir, dry_run=dry_run)
    except BackupError as exc:
        raise _fail(f"{exc}") from None
    except (OSError, EOFError, UnicodeError) as exc:
        raise _fail(f"cannot read {path}: {exc}") from None
    finally:
        if source is not sys.stdin:
            source.close()
    what = "Dry run, nothing written: would import" if dry_run else "Imported"
    typer.echo(f"{what} {summary.issuer} (client {summary.client_id})")
    for table, count in summary.rows.items():
        if count:
            typer.echo(f"  {table:<28} {count}")
    typer.echo(f"  {'rows':<28} {summary.total_rows}")
    typer.echo(f"  {'files':<28} {summary.files} ({summary.file_bytes} bytes)")
    if summary.platform_id is not None and not dry_run:
        typer.echo(f"Platform id here: {summary.platform_id}")
    for key in summary.missing_files:
        typer.echo(
            f"Warning: handed-in file {key} is not in {settings.upload_dir} (copy it there)",
            err=True,
        )


def _set_user(issuer: str, client_id: str | None, sub: str, disable: bool, reason: str) -> None:
    from app.audit.rules import Actor
    from app.core.errors import NotFound
    from app.identity.service import UserService
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
        try:
            done = UserService(session, Actor.operator()).set_disabled(
                candidates[0].id, sub, disable, reason
            )
        except NotFound:
            typer.echo(f"Error: no user {sub!r} on that platform.", err=True)
            raise typer.Exit(2) from None
        state = "disabled" if disable else "enabled"
        typer.echo(
            f"User {done.user.display_name} ({sub}) is now {state}."
            if done.changed
            else f"User {done.user.display_name} ({sub}) was already {state}: nothing changed."
        )


@user_app.command("disable")
def user_disable(
    issuer: Annotated[str, typer.Option()],
    sub: Annotated[str, typer.Option(help="The LMS user id (LTI sub).")],
    client_id: Annotated[str | None, typer.Option()] = None,
    reason: Annotated[str, typer.Option(help="Why (kept, and shown in the audit log).")] = "",
) -> None:
    """Keep a person out even when the LMS sends a valid launch; ends their sessions. The
    platform's administrators see it in their audit log."""
    _set_user(issuer, client_id, sub, True, reason)


@user_app.command("enable")
def user_enable(
    issuer: Annotated[str, typer.Option()],
    sub: Annotated[str, typer.Option()],
    client_id: Annotated[str | None, typer.Option()] = None,
    reason: Annotated[str, typer.Option(help="Why (shown in the audit log).")] = "",
) -> None:
    """Let a disabled person in again."""
    _set_user(issuer, client_id, sub, False, reason)


@audit_app.command("list")
def audit_list(
    platform_id: Annotated[
        int | None,
        typer.Option(help="A platform's events; without it, the installation's own events."),
    ] = None,
    action: Annotated[str, typer.Option(help="An action code or group (platform, keys…).")] = "",
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    cursor: Annotated[str, typer.Option(help="The next page's cursor printed last time.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Newest changes first: by default the installation's own (platform registrations and
    their approval, status and invitations, key rotations), which no administrator's page
    shows."""
    from app.audit.rules import parse_query
    from app.audit.service import AuditService
    from app.audit.text import describe
    from app.core.errors import AppError

    settings = _settings()
    _upgrade(settings)
    db = _database(settings)
    try:
        query = parse_query({"action": action, "limit": str(limit), "cursor": cursor})
    except AppError as exc:
        typer.echo(f"Error: {_message(exc)}", err=True)
        raise typer.Exit(2) from exc
    with db.session(readonly=True) as session:
        found = AuditService(session).installation(query, platform_id)
        rows = [
            {
                "id": e.id,
                "occurred_at": e.occurred_at.isoformat(),
                "actor": e.actor_label,
                "action": e.action,
                "object": {"type": e.object_type, "id": e.object_id, "label": e.object_label},
                "before": e.before,
                "after": e.after,
                "reason": e.reason,
                "text": describe(e, "en"),
            }
            for e in found.events
        ]
    if as_json:
        typer.echo(json.dumps({"events": rows, "next_cursor": found.next_cursor}, indent=2))
        return
    if not rows:
        typer.echo("No changes recorded.")
    for row in rows:
        typer.echo(f"{str(row['occurred_at'])[:19].replace('T', ' ')} UTC  {row['text']}")
    if found.next_cursor:
        typer.echo(f"More: blend727 audit list --cursor {found.next_cursor}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)


if __name__ == "__main__":
    main()
