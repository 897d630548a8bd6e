"""Backups of one tenant: `blend727 export` / `blend727 import` as JSON lines.

The round trip builds a tenant the way people do (real launches, a class, self-study, a
check-in, marks, a file handed in and graded, scores queued for the LMS), exports it, imports
it into a fresh database that already holds another platform (so every id changes), launches
the same people there and compares what the pages and the API show them.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, create_engine, func, select
from sqlalchemy import text as sql
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.attendance.service import clock
from app.backup.service import BackupError, export_tenant, import_tenant
from app.backup.tenant import (
    EXCLUDED_TABLES,
    GLOBAL_TABLES,
    REFERENCES,
    base_type,
    decoder,
    tenant_tables,
    unclassified_tables,
)
from app.cli import app as cli
from app.config import Settings
from app.core.db import Database, build_engine
from app.core.migrate import upgrade_connection
from app.main import create_app
from app.models import metadata
from app.platforms.models import Platform
from app.platforms.service import PlatformInput, PlatformService
from tests.conftest import TOOL_BASE_URL, _pg_unreachable_reason, _pg_url
from tests.factories import Factories
from tests.lti_platform import INST_ADMIN, INSTRUCTOR, LEARNER, SYS_ADMIN, TestPlatform
from tests.test_whole_path import CLASS_CODE, ITEMS, Clock, Device, _launch, _lms, vn


class TestEveryTableIsClassified:
    def test_each_table_is_the_tenants_or_named_global_or_excluded(self) -> None:
        assert unclassified_tables(metadata) == [], (
            "add the table to GLOBAL_TABLES or EXCLUDED_TABLES in app/backup/tenant.py, or "
            "give it a non-nullable foreign key to a tenant table"
        )
        names = {t.name for t in tenant_tables(metadata)}
        assert {"platform", "deployment", "app_user", "training_class", "enrolment"} <= names
        assert {"submission", "certificate", "score_outbox", "attendance_mark"} <= names
        assert not names & (set(GLOBAL_TABLES) | set(EXCLUDED_TABLES))

    def test_tenant_rows_refer_only_to_tenant_rows(self) -> None:
        names = {t.name for t in tenant_tables(metadata)}
        for entry in tenant_tables(metadata):
            for fk in entry.table.foreign_keys:
                assert fk.column.table.name in names, (entry.name, fk.column.table.name)
                assert fk.column.table.name != entry.name, f"{entry.name} refers to itself"

    def test_ids_without_a_foreign_key_say_what_they_name(self) -> None:
        """An integer ``…_id`` column that is no foreign key (e.g. one breaking a cycle) must
        carry ``info={"references": "table.column"}``, or an import would keep stale ids."""
        for entry in tenant_tables(metadata):
            for column in entry.table.columns:
                if (
                    column.name.endswith("_id")
                    and isinstance(base_type(column), Integer)
                    and not column.foreign_keys
                    and not column.primary_key
                ):
                    assert column.info.get(REFERENCES), f"{entry.name}.{column.name}"
            for column, _target in entry.soft_references:
                assert column.nullable, f"{entry.name}.{column.name} is set after the insert"

    def test_every_column_type_can_be_written_and_read_back(self) -> None:
        for entry in tenant_tables(metadata):
            for column in entry.table.columns:
                decoder(column)  # raises for a type backups do not know

    def test_a_new_table_is_covered_or_flagged_without_touching_the_backup_code(self) -> None:
        scratch = MetaData()
        Table("platform", scratch, Column("id", Integer, primary_key=True))
        Table(
            "feedback",
            scratch,
            Column("id", Integer, primary_key=True),
            Column("platform_id", ForeignKey("platform.id"), nullable=False),
        )
        Table("loose", scratch, Column("id", Integer, primary_key=True))
        assert [t.name for t in tenant_tables(scratch)] == ["platform", "feedback"]
        assert unclassified_tables(scratch) == ["loose"]


# -- the round trip ----------------------------------------------------------------------------


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(
        inprocess_worker=False,
        database_url="sqlite://",
        base_url=TOOL_BASE_URL,
        secret_key="test-secret-" + "x" * 32,
        demo=False,
        upload_dir=tmp_path / "uploads",
    )


@pytest.fixture()
def target(engine: Engine, tmp_path: Path) -> Iterator[Database]:
    """A fresh, migrated database of the same kind as the source."""
    if engine.dialect.name == "sqlite":
        eng = build_engine(f"sqlite:///{tmp_path / 'target.db'}")
        with eng.begin() as conn:
            upgrade_connection(conn)
        yield Database(eng)
        eng.dispose()
        return
    url = _pg_url()
    schema = f"r_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(sql(f'CREATE SCHEMA "{schema}"'))
    eng = build_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    with eng.begin() as conn:
        upgrade_connection(conn)
    try:
        yield Database(eng)
    finally:
        eng.dispose()
        with admin.begin() as conn:
            conn.execute(sql(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _build_tenant(app: FastAPI, lms: TestPlatform, fake: Clock) -> dict[str, Any]:
    """What people do in a class, through the pages and the API."""
    admin = _launch(app, lms, [INST_ADMIN, SYS_ADMIN], "2", "Lê Quản Trị")
    modules = admin.client.get("/api/v1/modules").json()
    module_id = next(m["id"] for m in modules if m["key"] == "gvpt-4")
    spec = admin.client.get(f"/api/v1/modules/{module_id}").json()["spec"]
    r = admin.client.put(
        f"/api/v1/modules/{module_id}",
        json={"spec": {**spec, "materials": ITEMS}, "note": "Học liệu"},
    )
    assert r.status_code == 200, r.text
    course = admin.client.get("/api/v1/courses").json()[0]
    r = admin.client.post(
        "/api/v1/classes",
        json={
            "code": CLASS_CODE,
            "name": "Mô đun 4 — THCS — lớp 1",
            "module_id": module_id,
            "level": "thcs",
            "in_person_dates": ["2026-12-03", "2026-12-04"],
            "venue": "Trường THCS Nguyễn Du",
            "course_id": course["id"],
        },
    )
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    learner = _launch(app, lms, [LEARNER], "101", "Nguyễn Thị Học")
    other = _launch(app, lms, [LEARNER], "102", "Phạm Văn Bạn")
    trainer = _launch(app, lms, [INSTRUCTOR], "201", "Trần Cốt Cán")
    assert admin.client.post(f"/api/v1/classes/{cid}/cohorts/split").status_code in (200, 201)
    assert learner.form(f"/learn/classes/{cid}/items/doc/done", {"done": "1"}).status_code == 303
    r = learner.form(f"/learn/classes/{cid}/items/quiz/quiz", {"q0": "2", "q1": "2"})
    assert r.status_code == 303
    r = other.form(f"/learn/classes/{cid}/items/reflect/hand-in", {"text": "Suy ngẫm của tôi."})
    assert r.status_code == 303
    sessions = admin.client.get(f"/api/v1/classes/{cid}").json()["sessions"]
    progress = trainer.client.get(f"/api/v1/learning/classes/{cid}/progress").json()
    (row,) = [x for x in progress["learners"] if x["user_id"] == learner.user_id]
    fake.now = vn(3, 7, 25)
    first = sessions[0]["id"]
    r = trainer.form(f"/attendance/sessions/{first}/checkin/open", {"late_after_minutes": "15"})
    assert r.status_code == 303
    fake.now = vn(3, 7, 40)
    code = trainer.client.get(f"/attendance/sessions/{first}/code.json").json()["code"]
    assert learner.form(f"/attendance/checkin/{first}", {"code": code}).status_code == 200
    fake.now = vn(3, 16)
    r = trainer.client.put(
        f"/api/v1/attendance/sessions/{sessions[1]['id']}/marks",
        json={"marks": [{"enrolment_id": row["enrolment_id"], "status": "late"}]},
    )
    assert r.status_code == 200, r.text
    fake.now = vn(8, 21)
    r = learner.client.post(
        f"/learn/classes/{cid}/items/plan/hand-in",
        data={"csrf_token": learner.csrf, "text": ""},
        files={"file": ("Kế hoạch bài dạy.pdf", b"%PDF-1.4 lesson plan", "application/pdf")},
    )
    assert r.status_code == 303, r.text
    mine = learner.client.get(f"/api/v1/learning/classes/{cid}/me").json()
    handed = next(i for i in mine["items"] if i["key"] == "plan")["submission"]
    grade = {"score": "8", "feedback": "Tốt"}
    r = trainer.form(f"/grading/submissions/{handed['id']}/grade", grade)
    assert r.status_code == 303, r.text
    return {"admin": admin, "learner": learner, "trainer": trainer, "class_id": cid}


_ID_KEY = re.compile(r"(^id$|_id$|_ids$|^csrf_token$)")
_NUMBERED = re.compile(r"/\d+(?=[/?#\"'.]|$)")


def _without_ids(value: Any) -> Any:
    """An API answer with its database ids taken out (they differ after an import)."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if not _ID_KEY.search(k)}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    if isinstance(value, str):
        return _NUMBERED.sub("/N", value)
    return value


def _visible_text(html: str) -> str:
    """What a person reads on a page: no markup, no scripts, no attribute values."""
    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    text = unescape(re.sub(r"<[^>]+>", " ", html))
    return " ".join(text.split())


def _what_people_see(people: dict[str, Any]) -> dict[str, Any]:
    admin: Device = people["admin"]
    learner: Device = people["learner"]
    trainer: Device = people["trainer"]
    cid = next(
        c["id"] for c in admin.client.get("/api/v1/classes").json() if c["code"] == CLASS_CODE
    )
    progress = trainer.client.get(f"/api/v1/learning/classes/{cid}/progress").json()
    (row,) = [x for x in progress["learners"] if x["user_id"] == learner.user_id]
    mine = learner.client.get(f"/api/v1/learning/classes/{cid}/me").json()
    handed = next(i for i in mine["items"] if i["key"] == "plan")["submission"]
    api = {
        "class": admin.client.get(f"/api/v1/classes/{cid}").json(),
        "classes": admin.client.get("/api/v1/classes").json(),
        "modules": admin.client.get("/api/v1/modules").json(),
        "progress": progress,
        "mine": mine,
        "results": trainer.client.get(f"/api/v1/grading/classes/{cid}/results").json(),
    }
    pages = {
        path: who.client.get(path)
        for who, path in (
            (learner, "/"),
            (learner, f"/learn/classes/{cid}"),
            (trainer, f"/grading/classes/{cid}"),
            (trainer, f"/grading/enrolments/{row['enrolment_id']}"),
            (admin, f"/admin/classes/{cid}"),
        )
    }
    for path, page in pages.items():
        assert page.status_code == 200, (path, page.text[:500])
    download = trainer.client.get(f"/learn/files/{handed['id']}")
    assert download.status_code == 200
    return {
        "api": _without_ids(api),
        "pages": [_NUMBERED.sub("/N", _visible_text(p.text)) for p in pages.values()],
        "file": download.content,
    }


def _count(database: Database, model: type) -> int:
    with database.session(readonly=True) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


class TestRoundTrip:
    def test_an_imported_tenant_shows_people_the_same_pages(
        self,
        app: FastAPI,
        client: TestClient,
        db: Session,
        settings: Settings,
        platform_http: str,
        target: Database,
        tmp_path: Path,
    ) -> None:
        fake = Clock(vn(27, 20, month=11))
        app.dependency_overrides[clock] = lambda: fake.now
        lms = _lms(platform_http, client.get("/lti/jwks.json").json())
        PlatformService(db).register(
            PlatformInput(
                issuer=lms.issuer,
                client_id=lms.client_id,
                auth_login_url=lms.auth_login_url,
                token_url=lms.served_token_url,
                keyset_url=lms.keyset_url,
                deployment_ids=["1"],
            )
        )
        db.commit()
        people = _build_tenant(app, lms, fake)
        before = _what_people_see(people)
        source = db.scalar(select(Platform).where(Platform.issuer == lms.issuer))
        assert source is not None

        buffer = io.StringIO()
        exported = export_tenant(db, source.id, buffer, upload_dir=settings.upload_dir)
        lines = buffer.getvalue().splitlines()
        header = json.loads(lines[0])
        assert header["format"] == "blend727-tenant" and header["files"] == "included"
        assert header["alembic_revision"] and header["tables"][0] == "platform"
        assert all(set(json.loads(x)) <= {"table", "row", "file", "data", "end"} for x in lines[1:])
        assert exported.files == 1 and exported.rows["submission"] == 2
        assert exported.rows["quiz_attempt"] == 1 and exported.rows["attendance_mark"] >= 1
        assert "web_session" not in exported.rows and "tool_key" not in exported.rows

        # The target already serves another LMS, so every id of the import changes.
        with target.session() as session:
            neighbour = TestPlatform.create(
                platform_http, issuer="https://other.test", client_id="x"
            )
            row = Factories(session).register(neighbour, deployment_ids=["9"])
            Factories(session).users(row, 7)
        uploads = tmp_path / "target-uploads"
        platforms = _count(target, Platform)
        dry = import_tenant(target, lines, upload_dir=uploads, dry_run=True)
        assert dry.rows == exported.rows and dry.files == 1
        assert _count(target, Platform) == platforms and not uploads.exists()

        done = import_tenant(target, lines, upload_dir=uploads)
        assert done.rows == exported.rows and done.platform_id != source.id
        with pytest.raises(BackupError, match="already has the platform"):
            import_tenant(target, lines, upload_dir=uploads)

        restored = create_app(
            Settings(**{**settings.model_dump(), "upload_dir": uploads}), target
        )
        restored.dependency_overrides[clock] = lambda: fake.now
        with TestClient(restored, base_url=TOOL_BASE_URL):
            again = {
                "admin": _launch(restored, lms, [INST_ADMIN, SYS_ADMIN], "2", "Lê Quản Trị"),
                "learner": _launch(restored, lms, [LEARNER], "101", "Nguyễn Thị Học"),
                "trainer": _launch(restored, lms, [INSTRUCTOR], "201", "Trần Cốt Cán"),
            }
            assert again["learner"].user_id != people["learner"].user_id
            after = _what_people_see(again)
        assert after["file"] == before["file"] == b"%PDF-1.4 lesson plan"
        assert after["api"] == before["api"]
        for seen_before, seen_after in zip(before["pages"], after["pages"], strict=True):
            assert seen_after == seen_before

    def test_a_damaged_or_cut_file_imports_nothing(
        self, db: Session, factories: Factories, platform: TestPlatform, target: Database,
        tmp_path: Path,
    ) -> None:
        row = db.scalar(select(Platform).where(Platform.issuer == platform.issuer))
        assert row is not None
        factories.users(row, 3)
        buffer = io.StringIO()
        export_tenant(db, row.id, buffer, upload_dir=tmp_path)
        lines = buffer.getvalue().splitlines()
        before = _count(target, Platform)
        with pytest.raises(BackupError, match="no end line"):
            import_tenant(target, lines[:-1], upload_dir=tmp_path)
        broken = [*lines[:-1], lines[-1].replace('"app_user":3', '"app_user":4')]
        with pytest.raises(BackupError, match="do not add up"):
            import_tenant(target, broken, upload_dir=tmp_path)
        with pytest.raises(BackupError, match="not a file made by"):
            import_tenant(target, ['{"format": "x"}'], upload_dir=tmp_path)
        assert _count(target, Platform) == before


# -- the command line -----------------------------------------------------------------------


runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgresql"])
def source_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'source.db'}"
        return
    url = _pg_url()
    reason = _pg_unreachable_reason(url)
    if reason:
        pytest.skip(reason)
    schema = f"b_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(sql(f'CREATE SCHEMA "{schema}"'))
    yield f"{url}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sql(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


class TestCommands:
    def test_export_then_import_elsewhere(self, source_url: str, tmp_path: Path) -> None:
        """From SQLite or PostgreSQL into a fresh SQLite file (the move between kinds)."""
        base = {"BLEND727_BASE_URL": "https://blend727.example.edu.vn"}
        src = {**base, "BLEND727_DATABASE_URL": source_url}
        dst = {**base, "BLEND727_DATABASE_URL": f"sqlite:///{tmp_path / 'restored.db'}"}
        add = [
            "platform", "add", "--issuer", "https://moodle.sgd.edu.vn", "--client-id", "c1",
            "--deployment-id", "1", "--deployment-id", "2",
            "--auth-login-url", "https://moodle.sgd.edu.vn/auth",
            "--token-url", "https://moodle.sgd.edu.vn/token",
            "--keyset-url", "https://moodle.sgd.edu.vn/certs", "--name", "Sở GD&ĐT",
        ]  # fmt: skip
        assert runner.invoke(cli, add, env=src).exit_code == 0
        backup = tmp_path / "tenant.jsonl.gz"
        result = runner.invoke(
            cli,
            ["export", "--issuer", "https://moodle.sgd.edu.vn", "-o", str(backup)],
            env=src,
        )
        assert result.exit_code == 0, result.output
        assert "Exported https://moodle.sgd.edu.vn (client c1): 3 rows" in result.output
        assert backup.stat().st_mode & 0o077 == 0  # personal data: the owner's only
        result = runner.invoke(cli, ["import", str(backup), "--dry-run"], env=dst)
        assert result.exit_code == 0, result.output
        assert "would import" in result.output and "deployment" in result.output
        listed = runner.invoke(cli, ["platform", "list"], env=dst).output
        assert "No platform registered yet" in listed
        result = runner.invoke(cli, ["import", str(backup)], env=dst)
        assert result.exit_code == 0 and "Imported" in result.output, result.output
        listed = runner.invoke(cli, ["platform", "list", "--json"], env=dst).output
        assert json.loads(listed)["platforms"][0]["deployments"] == ["1", "2"]
        result = runner.invoke(cli, ["import", str(backup)], env=dst)
        assert result.exit_code == 2 and "already has the platform" in result.output

    def test_an_unknown_platform_is_an_error(self, tmp_path: Path) -> None:
        env = {"BLEND727_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
        result = runner.invoke(cli, ["export", "--issuer", "https://nowhere", "-o", "-"], env=env)
        assert result.exit_code == 2 and "no platform with issuer" in result.output
