"""The ``blend727`` command line, run as an administrator would, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from app.cli import app
from tests.conftest import _pg_unreachable_reason, _pg_url

runner = CliRunner()

COMMANDS = [
    [],
    ["serve"],
    ["demo"],
    ["db"],
    ["db", "upgrade"],
    ["platform"],
    ["platform", "add"],
    ["platform", "list"],
    ["platform", "enable"],
    ["platform", "disable"],
    ["platform", "approve"],
    ["platform", "reject"],
    ["platform", "invite"],
    ["keys"],
    ["keys", "rotate"],
    ["keys", "list"],
    ["keys", "encrypt"],
    ["keys", "reencrypt"],
    ["export"],
    ["import"],
    ["user", "disable"],
    ["user", "enable"],
    ["audit"],
    ["audit", "list"],
]


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for a CLI run against an empty database of each kind."""
    env = {"BLEND727_BASE_URL": "https://blend727.example.edu.vn"}
    if request.param == "sqlite":
        env["BLEND727_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
        yield env
        return
    url = _pg_url()
    reason = _pg_unreachable_reason(url)
    if reason:
        pytest.skip(reason)
    schema = f"c_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    env["BLEND727_DATABASE_URL"] = f"{url}?options=-csearch_path%3D{schema}"
    yield env
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


ADD = [
    "platform",
    "add",
    "--issuer",
    "https://moodle.example.edu.vn",
    "--client-id",
    "AbC123",
    "--deployment-id",
    "3",
    "--deployment-id",
    "4",
    "--auth-login-url",
    "https://moodle.example.edu.vn/mod/lti/auth.php",
    "--token-url",
    "https://moodle.example.edu.vn/mod/lti/token.php",
    "--keyset-url",
    "https://moodle.example.edu.vn/mod/lti/certs.php",
    "--name",
    "Moodle Sở GD&ĐT",
]


class TestEveryCommandHasHelp:
    @pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
    def test_help(self, command: list[str]) -> None:
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage" in result.output


class TestPlatformRegistration:
    def test_add_then_list_shows_platform_deployments_and_endpoints(
        self, cli_env: dict[str, str]
    ) -> None:
        code, out = run(cli_env, *ADD)
        assert code == 0, out
        assert "https://blend727.example.edu.vn/lti/login" in out
        code, out = run(cli_env, "platform", "list")
        assert code == 0, out
        assert "Moodle Sở GD&ĐT" in out
        assert "3, 4" in out
        for url in ("/lti/login", "/lti/launch", "/lti/jwks.json"):
            assert "https://blend727.example.edu.vn" + url in out

    def test_list_json_is_machine_readable(self, cli_env: dict[str, str]) -> None:
        run(cli_env, *ADD)
        code, out = run(cli_env, "platform", "list", "--json")
        assert code == 0
        data = json.loads(out)
        assert data["endpoints"]["jwks_url"] == "https://blend727.example.edu.vn/lti/jwks.json"
        assert data["platforms"][0]["deployments"] == ["3", "4"]
        assert data["platforms"][0]["status"] == "active"

    def test_duplicate_is_refused_without_update(self, cli_env: dict[str, str]) -> None:
        assert run(cli_env, *ADD)[0] == 0
        code, out = run(cli_env, *ADD)
        assert code == 2
        assert "already registered" in out
        code, out = run(cli_env, *ADD, "--update", "--deployment-id", "5")
        assert code == 0, out
        assert "3, 4, 5" in run(cli_env, "platform", "list")[1]

    def test_bad_url_is_refused_and_writes_nothing(self, cli_env: dict[str, str]) -> None:
        bad = [
            a if a != "https://moodle.example.edu.vn/mod/lti/token.php" else "ftp://x" for a in ADD
        ]
        code, out = run(cli_env, *bad)
        assert code == 2
        assert "token_url" in out
        assert "No platform registered yet" in run(cli_env, "platform", "list")[1]

    def test_disable_and_enable(self, cli_env: dict[str, str]) -> None:
        run(cli_env, *ADD)
        code, out = run(cli_env, "platform", "disable", "1")
        assert code == 0 and "disabled" in out
        assert (
            json.loads(run(cli_env, "platform", "list", "--json")[1])["platforms"][0]["status"]
            == "disabled"
        )
        code, out = run(cli_env, "platform", "enable", "1")
        assert code == 0 and "active" in out
        assert run(cli_env, "platform", "disable", "99")[0] == 2


class TestKeysCommands:
    def test_rotate_keeps_old_key_published(self, cli_env: dict[str, str]) -> None:
        assert run(cli_env, "db", "upgrade")[0] == 0
        code, out = run(cli_env, "keys", "rotate")
        assert code == 0, out
        first = out.split("New signing key: ")[1].split()[0]
        code, out = run(cli_env, "keys", "rotate", "--retire-days", "3")
        assert code == 0
        second = out.split("New signing key: ")[1].split()[0]
        assert f"Retiring key {first}" in out
        code, out = run(cli_env, "keys", "list")
        assert f"{second}" in out and "current" in out
        assert f"{first}" in out and "retiring, published until" in out


    def test_a_daily_scheduled_rotation_waits_until_it_is_due(
        self, cli_env: dict[str, str]
    ) -> None:
        code, out = run(cli_env, "keys", "rotate")  # the first key and the one published ahead
        assert code == 0 and "Published ahead for the next rotation" in out, out
        code, out = run(cli_env, "keys", "rotate", "--if-older-than", "90")
        assert code == 0 and "Not due" in out, out
        code, out = run(cli_env, "keys", "list")
        assert "current" in out and "next, published ahead" in out


def _kek() -> str:
    import base64

    return base64.b64encode(os.urandom(32)).decode()


class TestKeyEncryptionCommands:
    def test_encrypt_reencrypt_and_a_wrong_key_refused(self, cli_env: dict[str, str]) -> None:
        from app.keys.crypto import Keyring

        assert run(cli_env, "keys", "rotate")[0] == 0
        old, new = _kek(), _kek()
        old_id, new_id = Keyring.parse(old).primary, Keyring.parse(new).primary
        with_old = {**cli_env, "BLEND727_KEY_ENCRYPTION_KEY": old}
        code, out = run(with_old, "keys", "encrypt")
        assert code == 0, out
        assert f"2 stored private keys/secrets written encrypted with key {old_id}" in out
        code, out = run(with_old, "keys", "list")
        assert out.count(f"[encrypted (key {old_id})]") == 2, out
        outputs = [out]
        # A wrong key, or none at all: a clear error, nothing written.
        code, out = run({**cli_env, "BLEND727_KEY_ENCRYPTION_KEY": new}, "keys", "rotate")
        assert code == 2 and f"encrypted with key id {old_id}" in out, out
        outputs.append(out)
        code, out = run(cli_env, "keys", "rotate")
        assert code == 2 and "no key-encryption key is configured" in out, out
        outputs.append(out)
        # Moving to a new key: list it first, re-encrypt, drop the old one.
        both = {**cli_env, "BLEND727_KEY_ENCRYPTION_KEY": f"{new},{old}"}
        code, out = run(both, "keys", "reencrypt")
        assert code == 0 and f"written encrypted with key {new_id}" in out, out
        with_new = {**cli_env, "BLEND727_KEY_ENCRYPTION_KEY": new}
        code, out = run(with_new, "keys", "rotate")
        assert code == 0 and "New signing key" in out, out
        outputs.append(out + run(with_new, "keys", "list")[1])
        for shown in outputs:
            assert "PRIVATE KEY" not in shown and old not in shown and new not in shown

    def test_a_malformed_key_is_refused(self, cli_env: dict[str, str]) -> None:
        code, out = run({**cli_env, "BLEND727_KEY_ENCRYPTION_KEY": "short"}, "keys", "encrypt")
        assert code == 2 and "not 32 bytes in base64" in out and "short" not in out


class TestServeWarnings:
    def test_plain_http_and_unencrypted_keys_are_warned_about(
        self, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import app.cli as cli

        monkeypatch.setattr(cli, "_run_server", lambda *a: None)
        env = {**cli_env, "BLEND727_BASE_URL": "http://blend727.example.edu.vn"}
        code, out = run(env, "serve")
        assert code == 0, out
        assert "Warning: BLEND727_BASE_URL is http://blend727.example.edu.vn, not https://" in out
        assert "Warning: The tool's private signing keys are stored unencrypted" in out
        env = {**cli_env, "BLEND727_KEY_ENCRYPTION_KEY": _kek()}
        code, out = run(env, "serve")
        assert code == 0 and "Warning" in out and "run `blend727 keys encrypt`" in out, out
        assert run(env, "keys", "encrypt")[0] == 0
        code, out = run(env, "serve")
        assert code == 0 and "Warning" not in out, out


class TestUserCommands:
    def test_unknown_user_or_platform_is_an_error(self, cli_env: dict[str, str]) -> None:
        run(cli_env, *ADD)
        code, out = run(cli_env, "user", "disable", "--issuer", "https://nowhere", "--sub", "1")
        assert code == 2 and "exactly one platform" in out
        code, out = run(
            cli_env, "user", "disable", "--issuer", "https://moodle.example.edu.vn", "--sub", "1"
        )
        assert code == 2 and "no user" in out


class TestServeWorkers:
    def test_several_workers_on_sqlite_are_refused_with_the_reason(self, tmp_path: Path) -> None:
        env = {"BLEND727_DATABASE_URL": f"sqlite:///{tmp_path / 'one.db'}"}
        code, out = run(env, "serve", "--workers", "2")
        assert code == 2
        assert "--workers 2 needs PostgreSQL" in out and "--workers 1" in out
        assert not (tmp_path / "one.db").exists()  # refused before touching anything

    def test_metrics_directory_fresh_or_emptied(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from app.cli import MULTIPROC_ENV, _metrics_dir

        monkeypatch.setenv(MULTIPROC_ENV, "-")  # whatever _metrics_dir sets is undone after
        monkeypatch.delenv(MULTIPROC_ENV)
        assert _metrics_dir(1) is None and MULTIPROC_ENV not in os.environ
        created = _metrics_dir(2)
        assert created is not None and os.environ[MULTIPROC_ENV] == created
        assert Path(created).is_dir() and not any(Path(created).iterdir())
        Path(created).rmdir()
        # The operator's own directory is kept, emptied of the last run's counts.
        mine = tmp_path / "prom"
        mine.mkdir()
        (mine / "counter_123.db").write_bytes(b"old")
        (mine / "notes.txt").write_text("kept")
        monkeypatch.setenv(MULTIPROC_ENV, str(mine))
        assert _metrics_dir(4) is None
        assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TestDemoCommandServes:
    """The README's first command, for real: a process serving the demo over HTTP."""

    def test_demo_serves_and_a_teacher_can_launch(self, tmp_path: Path) -> None:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLEND727_")}
        env["BLEND727_DATABASE_URL"] = f"sqlite:///{tmp_path / 'demo.db'}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "demo", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "demo did not start in 30 s"
                time.sleep(0.2)
            with httpx.Client(base_url=base, follow_redirects=True, timeout=10) as client:
                page = client.get("/demo/start/teacher")  # login → auth form
                assert page.status_code == 200
                import re

                form = dict(re.findall(r'name="(id_token|state)" value="([^"]+)"', page.text))
                home = client.post("/lti/launch", data=form)
                assert home.status_code == 200
                assert "Nguyễn Thị Lan" in home.text
        finally:
            proc.terminate()
            proc.wait(timeout=10)
