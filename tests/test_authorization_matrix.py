"""Every route × every identity against the running app, as written in tests/authz_matrix.py.

One world (tests/authz_world.py); each request runs in a savepoint that is rolled back, so
every request meets the same world. A refused request must answer the status of its cell
and leave the database as it was: the same row count and latest timestamp in every table,
and no INSERT, UPDATE or DELETE that touched a row. A route of the app without a row, or a
row without a route, fails the test: a new route needs one line in the matrix.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.config import Settings
from tests.authz_matrix import (
    BODIES,
    MATRIX,
    PARAMETERS,
    PARAMETERS_BY_ROUTE,
    QUERIES,
    SKIPPED,
    Row,
)
from tests.authz_world import IDENTITIES, AuthzWorld, build_world, fingerprint_query
from tests.factories import Factories
from tests.lti_platform import TestPlatform

PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


# -- the app's routes ----------------------------------------------------------------------


def app_routes(application: FastAPI) -> dict[str, str]:
    """``"METHOD /path/{param}"`` → the endpoint's name, for every route of the app (HEAD is
    GET's shadow and not listed); a mount is listed as ``"MOUNT /path"``."""
    from fastapi import routing

    contexts: Any = (
        routing.iter_route_contexts(application.routes)
        if hasattr(routing, "iter_route_contexts")
        else application.routes
    )
    out: dict[str, str] = {}
    for route in contexts:
        path = getattr(route, "path", "")
        methods = set(getattr(route, "methods", None) or ())
        endpoint = getattr(route, "endpoint", None)
        name = getattr(endpoint, "__qualname__", "") or type(route).__name__
        if not methods:
            out[f"MOUNT {path}"] = name
            continue
        if "GET" in methods:
            methods.discard("HEAD")
        for method in methods:
            out[f"{method} {path}"] = f"{getattr(endpoint, '__module__', '')}.{name}"
    return out


def unlisted(application: FastAPI) -> tuple[list[str], list[str]]:
    """(routes without a row, rows without a route)."""
    routes = app_routes(application)
    skipped = {k for k in routes if k.split(" ", 1)[1] in SKIPPED}
    missing = sorted(f"{k}  ({routes[k]})" for k in routes if k not in MATRIX and k not in skipped)
    extra = sorted(k for k in MATRIX if k not in routes)
    return missing, extra


# -- requests ------------------------------------------------------------------------------


def _fill(text: str, values: dict[str, str]) -> str:
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def _body_value(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and values[whole.group(1)].isdigit():
            return int(values[whole.group(1)])
        return _fill(value, values)
    if isinstance(value, dict):
        return {_fill(k, values): _body_value(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_body_value(v, values) for v in value]
    return value


def route_values(world: AuthzWorld, key: str) -> dict[str, str]:
    """The world's values for a route's parameters; fails on a parameter nobody named."""
    template = key.split(" ", 1)[1]
    renamed = PARAMETERS_BY_ROUTE.get(key, {})
    values = dict(world.values)
    for name in PLACEHOLDER.findall(template):
        if name not in PARAMETERS:
            pytest.fail(f"{key}: path parameter {{{name}}} is not in tests/authz_matrix.PARAMETERS")
        values[name] = world.values[renamed.get(name, name)]
    return values


def send(world: AuthzWorld, key: str, identity: str) -> Any:
    method, template = key.split(" ", 1)
    values = route_values(world, key)
    url = _fill(template, values)
    if key in QUERIES:
        url += "?" + _fill(QUERIES[key], {k: quote(v, safe="") for k, v in values.items()})
    client = world.use(identity)
    csrf = world.identities[identity].csrf
    body = _body_value(BODIES.get(key, {}), values)
    if method in ("GET", "DELETE"):
        headers = {"X-CSRF-Token": csrf} if csrf and method == "DELETE" else {}
        return client.request(method, url, headers=headers)
    if template.startswith("/api/"):
        headers = {"X-CSRF-Token": csrf} if csrf else {}
        return client.request(method, url, json=body, headers=headers)
    form = {k: str(v) for k, v in body.items()}
    if csrf:
        form["csrf_token"] = csrf
    return client.request(method, url, data=form)


# -- what a refused request must leave as it was -------------------------------------------


@pytest.fixture()
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """Every route, the demonstration LMS's too (they are only mounted with the demo on)."""
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


class TestEveryRouteHasARow:
    def test_the_matrix_lists_every_route_of_the_app_and_nothing_else(self, app: FastAPI) -> None:
        missing, extra = unlisted(app)
        assert not missing, "routes without a row in tests/authz_matrix.MATRIX:\n" + "\n".join(
            missing
        )
        assert not extra, "rows of tests/authz_matrix.MATRIX without a route:\n" + "\n".join(extra)

    def test_demo_routes_are_absent_without_the_demo(self, settings: Settings) -> None:
        from app.main import create_app

        quiet = create_app(settings.model_copy(update={"demo": False}))
        assert not [k for k in app_routes(quiet) if " /demo" in k]

    def test_every_parameter_names_something(self) -> None:
        for key in MATRIX:
            for name in PLACEHOLDER.findall(key.split(" ", 1)[1]):
                assert name in PARAMETERS, f"{key}: {{{name}}} is not in PARAMETERS"
        for key in list(BODIES) + list(PARAMETERS_BY_ROUTE) + list(QUERIES):
            assert key in MATRIX, f"{key}: a body or parameter for a route without a row"


class TestTheMatrixHolds:
    def test_every_route_as_every_identity(
        self, world: AuthzWorld, connection: Connection, app: FastAPI
    ) -> None:
        missing, extra = unlisted(app)
        assert not missing and not extra, (missing, extra)
        query = fingerprint_query()
        baseline = tuple(connection.execute(query).one())
        writes: list[str] = []
        tracking = [False]

        def watch(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if tracking[0] and WRITE.match(statement) and cursor.rowcount != 0:
                writes.append(" ".join(statement.split())[:160])

        event.listen(connection.engine, "after_cursor_execute", watch)
        failures: list[str] = []
        seen_table: list[str] = []
        started = time.perf_counter()
        try:
            for key in sorted(MATRIX):
                row: Row = MATRIX[key]
                for identity in IDENTITIES:
                    expected = row.expect(identity)
                    savepoint = connection.begin_nested()
                    writes.clear()
                    tracking[0] = True
                    try:
                        response = send(world, key, identity)
                    finally:
                        tracking[0] = False
                    status = response.status_code
                    where = f"{key} as {identity}"
                    seen = f"{status} {response.text[:200]!r}"
                    if row.public is not None:
                        if status != int(expected):
                            failures.append(f"{where}: public, expected {expected}, got {seen}")
                    elif expected == "ok":
                        if status in (400, 401, 403, 404) or status >= 500:
                            failures.append(f"{where}: expected allowed, got {seen}")
                    else:
                        if status != int(expected):
                            failures.append(f"{where}: expected {expected}, got {seen}")
                        after = tuple(connection.execute(query).one())
                        if after != baseline or writes:
                            failures.append(
                                f"{where}: refused ({status}) but wrote: {writes or 'counts'}"
                            )
                    savepoint.rollback()
                    seen_table.append(f"{key:70} {identity:14} {expected:>4} {status}")
        finally:
            event.remove(connection.engine, "after_cursor_execute", watch)
        elapsed = time.perf_counter() - started
        if os.environ.get("AUTHZ_DUMP"):
            Path(os.environ["AUTHZ_DUMP"]).write_text("\n".join(seen_table) + "\n")
        walked = len(MATRIX) * len(IDENTITIES)
        assert not failures, f"{len(failures)} of {walked} cells wrong:\n" + "\n".join(failures)
        assert elapsed < 60, f"the walk took {elapsed:.1f} s"
