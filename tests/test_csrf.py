"""Every request that changes something carries the CSRF token of its own session: forms
in a ``csrf_token`` field (403 page otherwise), the JSON API in an ``X-CSRF-Token`` header
(403 problem otherwise). Each non-GET route of the app is sent as someone allowed to use it
(tests/authz_matrix.py), with its minimal valid body, once without a token and once with the
token of another session — and must refuse and write nothing.

Exceptions (``NO_CSRF``): the LTI login and launch, posted cross-site by the LMS before any
session exists (the OIDC ``state`` cookie and nonce protect them), and the demonstration
LMS's authorization endpoint, which plays the LMS.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.config import Settings
from tests.authz_matrix import BODIES, MATRIX
from tests.authz_world import IDENTITIES, AuthzWorld, build_world, fingerprint_query
from tests.factories import Factories
from tests.lti_platform import TestPlatform
from tests.test_authorization_matrix import WRITE, _body_value, _fill, app_routes, route_values

NO_CSRF = {
    "POST /lti/login": "OIDC login initiation, posted by the LMS; no session exists yet",
    "POST /lti/launch": "the launch, posted by the LMS; the signed id_token, nonce and state are "
    "the proof",
    "POST /lti/launch/confirm": "the launch checked through the LMS's platform storage, posted by "
    "blend727's own page in the LMS's frame (checked by Origin / Sec-Fetch-Site) with the signed "
    "id_token; no session exists yet",
    "POST /demo/auth": "the demonstration LMS's authorization endpoint (it plays the LMS)",
}
#: Who tries each route: the first of these the matrix allows.
TRIERS = ("admin", "trainer_own", "teacher", "trainer_other", "admin_other")


@pytest.fixture()
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update={"demo": True, "upload_dir": tmp_path / "uploads"})


@pytest.fixture()
def world(
    app: FastAPI,
    client: TestClient,
    platform: TestPlatform,
    platform_http: str,
    factories: Factories,
    db: Session,
) -> Iterator[AuthzWorld]:
    yield from build_world(app, client, platform, platform_http, factories, db)


def writes_of(world: AuthzWorld) -> list[str]:
    return sorted(
        k for k in app_routes(world.app) if not k.startswith(("GET ", "MOUNT ")) and k in MATRIX
    )


def _send(world: AuthzWorld, key: str, identity: str, token: str | None) -> Any:
    """The route as ``identity`` with ``token`` as its CSRF token (None: no token at all)."""
    method, template = key.split(" ", 1)
    values = route_values(world, key)
    url = _fill(template, values)
    client = world.use(identity)
    body = _body_value(BODIES.get(key, {}), values)
    if template.startswith("/api/") or method == "DELETE":
        headers = {"X-CSRF-Token": token} if token is not None else {}
        return client.request(method, url, json=body or None, headers=headers)
    form = {k: str(v) for k, v in body.items()}
    if token is not None:
        form["csrf_token"] = token
    return client.request(method, url, data=form)


class TestEveryWriteNeedsItsSessionsToken:
    def test_the_exceptions_are_public_routes(self, app: FastAPI) -> None:
        routes = app_routes(app)
        for key in NO_CSRF:
            assert key in routes and MATRIX[key].public, key

    def test_without_or_with_another_sessions_token_nothing_is_written(
        self, world: AuthzWorld, connection: Connection
    ) -> None:
        query = fingerprint_query()
        baseline = tuple(connection.execute(query).one())
        writes: list[str] = []
        tracking = [False]

        def watch(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if tracking[0] and WRITE.match(statement) and cursor.rowcount != 0:
                writes.append(" ".join(statement.split())[:120])

        failures: list[str] = []
        tried = 0
        event.listen(connection.engine, "after_cursor_execute", watch)
        try:
            for key in writes_of(world):
                if key in NO_CSRF:
                    continue
                row = MATRIX[key]
                identity = next((i for i in TRIERS if row.expect(i) == "ok"), None)
                assert identity is not None, f"{key}: nobody may use it"
                other = "admin_other" if identity != "admin_other" else "admin"
                forged = world.identities[other].csrf
                api = key.split(" ", 1)[1].startswith("/api/")
                for label, token in (("no token", None), ("another session's token", forged)):
                    tried += 1
                    savepoint = connection.begin_nested()
                    writes.clear()
                    tracking[0] = True
                    try:
                        response = _send(world, key, identity, token)
                    finally:
                        tracking[0] = False
                    where = f"{key} as {identity} with {label}"
                    kind = response.headers.get("content-type", "")
                    if response.status_code != 403:
                        failures.append(f"{where}: {response.status_code} {response.text[:160]!r}")
                    elif api and not (
                        kind.startswith("application/problem+json")
                        and response.json().get("code") == "csrf_failed"
                    ):
                        failures.append(
                            f"{where}: not a csrf_failed problem: {response.text[:160]}"
                        )
                    elif not api and not kind.startswith("text/html"):
                        failures.append(f"{where}: not a page: {kind}")
                    after = tuple(connection.execute(query).one())
                    if after != baseline or writes:
                        failures.append(f"{where}: refused but wrote {writes or 'rows'}")
                    savepoint.rollback()
        finally:
            event.remove(connection.engine, "after_cursor_execute", watch)
        assert tried > 50
        assert not failures, f"{len(failures)} of {tried} refusals wrong:\n" + "\n".join(failures)

    def test_the_same_requests_with_the_right_token_get_through(
        self, world: AuthzWorld, connection: Connection
    ) -> None:
        """The control: with its own token each of those requests is not refused for CSRF."""
        for key in writes_of(world):
            if key in NO_CSRF:
                continue
            row = MATRIX[key]
            identity = next(i for i in TRIERS if row.expect(i) == "ok")
            savepoint = connection.begin_nested()
            response = _send(world, key, identity, world.identities[identity].csrf)
            savepoint.rollback()
            assert response.status_code != 403, f"{key} as {identity}: {response.text[:200]}"


def test_identities_are_the_matrix_columns() -> None:
    assert IDENTITIES[0] == "anonymous" and set(TRIERS) < set(IDENTITIES)
