"""Logs an operator can feed to a log store: JSON lines with the request id on every record
of a request (thread pool included), an access line per request, and never a key or secret."""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.config import Settings
from app.core.db import Database
from app.core.logs import JsonFormatter, TextFormatter, configure_logging, request_id_var
from app.keys.crypto import Keyring
from app.keys.service import KeyService
from app.main import create_app
from app.passback.service import OutboxWorker
from lti.http import build_session
from lti.services import TokenCache
from tests.conftest import TOOL_BASE_URL
from tests.helpers import sign_in
from tests.lti_platform import INSTRUCTOR, LEARNER, TestPlatform
from tests.test_passback_e2e import _drain, _lms, _queue, _register

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _json_settings(settings: Settings, **changes: object) -> Settings:
    return Settings(**{**settings.model_dump(), "log_format": "json", **changes})


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    level = logging.getLogger().level
    yield
    configure_logging("text", "INFO")  # takes our JSON handler away again
    logging.getLogger().setLevel(level)


@pytest.fixture()
def json_app(settings: Settings, database: Database) -> Iterator[FastAPI]:
    app = create_app(_json_settings(settings), database)

    @app.get("/_test/sync")
    def in_the_thread_pool() -> dict[str, str]:  # a plain def: Starlette's thread pool
        logging.getLogger("blend727.test").info("from a thread", extra={"reason": "testing"})
        return {"ok": "yes"}

    yield app


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


class TestJsonLines:
    def test_every_record_of_a_launch_carries_its_request_id(
        self,
        json_app: FastAPI,
        platform: TestPlatform,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        with TestClient(json_app, base_url=TOOL_BASE_URL, follow_redirects=False) as client:
            capsys.readouterr()
            response = platform.launch(client, roles=[LEARNER], sub="hv-1", name="Trần Văn A")
            assert response.status_code == 303
        request_id = response.headers["x-request-id"]
        lines = _lines(capsys.readouterr().err)
        accepted = [x for x in lines if x["message"] == "launch accepted"]
        assert len(accepted) == 1
        assert accepted[0]["request_id"] == request_id
        assert accepted[0]["role"] == "teacher" and accepted[0]["logger"] == "blend727.launch"
        assert accepted[0]["message_type"] == "LtiResourceLinkRequest"
        assert accepted[0]["level"] == "INFO" and ISO_UTC.match(accepted[0]["time"])
        access = [x for x in lines if x["logger"] == "blend727.access"]
        assert [(a["method"], a["route"], a["status"]) for a in access] == [
            ("GET", "/lti/login", 302),
            ("POST", "/lti/launch", 303),
        ]
        assert access[1]["request_id"] == request_id and access[1]["ms"] >= 0
        assert access[0]["request_id"] != request_id

    def test_records_from_the_thread_pool_carry_the_request_id(
        self, json_app: FastAPI, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with TestClient(json_app, base_url=TOOL_BASE_URL) as client:
            capsys.readouterr()
            response = client.get("/_test/sync")
        [line] = [x for x in _lines(capsys.readouterr().err) if x["logger"] == "blend727.test"]
        assert line["request_id"] == response.headers["x-request-id"]
        assert line["reason"] == "testing" and line["message"] == "from a thread"
        assert request_id_var.get() is None  # nothing leaks out of the request

    def test_a_refused_request_logs_its_reason(
        self, json_app: FastAPI, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with TestClient(json_app, base_url=TOOL_BASE_URL) as client:
            capsys.readouterr()
            response = client.get("/lti/launch")
        lines = _lines(capsys.readouterr().err)
        [refusal] = [x for x in lines if x["logger"] == "blend727.errors"]
        assert refusal["reason"] == "method_not_allowed" and refusal["level"] == "WARNING"
        assert refusal["request_id"] == response.headers["x-request-id"]
        [access] = [x for x in lines if x["logger"] == "blend727.access"]
        assert access["status"] == response.status_code and access["route"] == "/lti/launch"

    def test_the_route_is_logged_not_the_tokens_in_the_path(
        self, json_app: FastAPI, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with TestClient(json_app, base_url=TOOL_BASE_URL) as client:
            capsys.readouterr()
            client.get("/ical/learner/SeCrEtToKeN123.ics?x=1")
        lines = [x for x in _lines(capsys.readouterr().err) if x["logger"] != "httpx"]
        assert lines and "SeCrEtToKeN123" not in json.dumps(lines)
        [access] = [x for x in lines if x["logger"] == "blend727.access"]
        assert access["route"] == "/ical/learner/{token}.ics"


class TestRequestIds:
    @pytest.mark.parametrize("incoming", ["req-42", "6f1c2a9e-7b1d-4c3e-9a0f-2b8c5d7e1f30"])
    def test_a_plain_incoming_id_is_kept(self, client: TestClient, incoming: str) -> None:
        response = client.get("/healthz", headers={"X-Request-ID": incoming})
        assert response.headers["x-request-id"] == incoming

    @pytest.mark.parametrize("incoming", ["a" * 65, "evil id", "x\\u2028y", "<script>", "a;b"])
    def test_anything_else_is_replaced(self, client: TestClient, incoming: str) -> None:
        response = client.get("/healthz", headers={"X-Request-ID": incoming})
        assert response.headers["x-request-id"] != incoming
        assert re.fullmatch(r"[0-9a-f]{16}", response.headers["x-request-id"])


class TestFormats:
    def _record(self, **extra: object) -> logging.LogRecord:
        token = request_id_var.set("abc123")
        try:
            record = logging.getLogger("blend727.x").makeRecord(
                "blend727.x", logging.INFO, __file__, 1, "hello %s", ("world",), None, extra=extra
            )
        finally:
            request_id_var.reset(token)
        return record

    def test_json_has_the_fields_and_the_extras(self) -> None:
        configure_logging("text", "INFO")  # installs the record factory
        line = json.loads(JsonFormatter().format(self._record(role="learner", count=3)))
        assert line["message"] == "hello world" and line["request_id"] == "abc123"
        assert line["role"] == "learner" and line["count"] == 3 and line["logger"] == "blend727.x"
        assert ISO_UTC.match(line["time"])

    def test_text_stays_the_default_with_the_id_in_brackets(self) -> None:
        configure_logging("text", "INFO")
        assert Settings().log_format == "text"
        assert "blend727.x [abc123] hello world" in TextFormatter().format(self._record())


class TestNoSecretInLogs:
    """A launch, a score sent to the LMS and a rotation, all logged at DEBUG: no private key,
    no key-encryption key, no cookie secret anywhere in what was written."""

    def test_launch_scores_and_rotation(
        self,
        settings: Settings,
        database: Database,
        db: Session,
        platform: TestPlatform,
        platform_http: str,
        caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        kek = base64.b64encode(os.urandom(32)).decode()
        configured = _json_settings(settings, key_encryption_key=kek, secret_key=None)
        KeyService(db, Keyring.parse(kek)).encrypt_stored()
        db.commit()
        caplog.set_level(logging.DEBUG)
        app = create_app(configured, database)
        try:
            with TestClient(app, base_url=TOOL_BASE_URL, follow_redirects=False) as client:
                sign_in(client, platform, [INSTRUCTOR], "gv-1", "Nguyễn Thị Lan")
                client.get("/lti/launch")  # a refusal
                secret = app.state.ctx.secret
                lms = _lms(platform_http, client.get("/lti/jwks.json").json())
                platform_id, deployment_pk = _register(db, lms)
                _queue(db, platform_id, deployment_pk, lms, 2)
                db.commit()
                worker = OutboxWorker(
                    database, build_session(5), rng=random.Random(1), token_cache=TokenCache()
                )
                _drain(worker)
                assert lms.client_assertions and lms.token_refusals == []
                rotation = KeyService(db).rotate(timedelta(days=7))
                db.commit()
                assert rotation.rotated
                client.get("/lti/jwks.json")
            pems = [KeyService(db).signing_key().private_key_pem]
        finally:
            configure_logging("text", "INFO")  # write no more JSON to the captured stderr
        formatter = JsonFormatter()
        written = capsys.readouterr().err + "\n".join(formatter.format(r) for r in caplog.records)
        assert "launch accepted" in written and "blend727.access" in written
        for forbidden in ["PRIVATE KEY", kek, secret, *pems, "enc:v1:"]:
            assert forbidden not in written
