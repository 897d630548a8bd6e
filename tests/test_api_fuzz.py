"""Property-based fuzzing of the JSON API from its own OpenAPI schema (schemathesis).

Every operation under ``/api/v1`` is called with generated path parameters, query strings and
bodies — as an administrator (with the CSRF header, so writes get past the guard and reach
the validators) and as nobody. Whatever is sent, the API must never answer 5xx, and every
4xx must be an RFC 9457 problem (``application/problem+json`` with ``type``, ``title`` and
``status`` equal to the HTTP status). Runs on SQLite and PostgreSQL: numbers too large for a
PostgreSQL integer column are exactly the kind of input that only one of them refuses.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from app.config import Settings
from app.main import create_app
from tests.conftest import TOOL_BASE_URL
from tests.helpers import new_class
from tests.lti_platform import TestPlatform

EXAMPLES = 12  # per operation and identity; ~50 operations → ~1,200 requests per database


def _api_schema() -> Any:
    """The schema the app publishes at /api/openapi.json (building it touches no database);
    each test then calls its own app, on its own rolled-back database."""
    app = create_app(Settings(database_url="sqlite://", secret_key="s" * 40, demo=False))
    loaded = schemathesis.openapi.from_dict(app.openapi())
    # Only our JSON API: the LTI endpoints speak form posts and redirects to LMSs.
    return loaded.include(path_regex=r"^/api/v1/")


schema = _api_schema()


@pytest.fixture()
def world(client: TestClient, admin: dict, platform: TestPlatform) -> dict[str, Any]:
    """A class with a wave so that generated ids sometimes hit real rows."""
    wave = client.post("/api/v1/waves", json={"name": "Đợt fuzz", "year": 2026}).json()
    cls = new_class(client, wave_id=wave["id"])
    return {"csrf": admin["csrf_token"], "cookies": dict(client.cookies), "class": cls}


def _check_problem(case: Any, response: Any) -> None:
    status = response.status_code
    where = f"{case.method} {case.formatted_path} → {status}: {response.text[:300]}"
    assert status < 500, where
    if 400 <= status < 500:
        content_type = (response.headers.get("content-type") or [""])[0]
        assert content_type.startswith("application/problem+json"), where
        body = response.json()
        assert body.get("status") == status, where
        assert isinstance(body.get("title"), str) and body["title"], where
        assert isinstance(body.get("type"), str) and body["type"], where


SETTINGS = hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.filterwarnings("ignore")
@schema.parametrize()
@SETTINGS
def test_as_an_administrator_no_input_gives_a_server_error(
    case: Any, app: FastAPI, world: dict
) -> None:
    response = case.call(
        app=app,
        base_url=TOOL_BASE_URL,
        headers={"X-CSRF-Token": world["csrf"], "Accept": "application/json"},
        cookies=world["cookies"],
    )
    _check_problem(case, response)


@pytest.mark.filterwarnings("ignore")
@schema.parametrize()
@SETTINGS
def test_as_nobody_every_answer_is_a_refusal_problem(case: Any, app: FastAPI) -> None:
    response = case.call(app=app, base_url=TOOL_BASE_URL, headers={"Accept": "application/json"})
    _check_problem(case, response)
    # /api/v1/me and the rest: nothing is readable or writable without a session.
    assert response.status_code in (400, 401, 403, 404, 405, 422), (
        f"{case.method} {case.formatted_path} answered {response.status_code} to nobody: "
        f"{response.text[:200]}"
    )


class TestNumbersOutOfRange:
    """What the fuzzer found first: ids too large for the database were a 500."""

    @pytest.mark.parametrize("value", [2**31, 2**63, 10**30])
    def test_an_id_too_large_is_a_422_problem_and_changes_nothing(
        self, client: TestClient, admin: dict, value: int
    ) -> None:
        for method, path, body in (
            ("GET", f"/api/v1/classes/{value}", None),
            ("POST", f"/api/v1/classes/{value}/cohorts/moves", {"cohort_id": 1, "enrolment_id": 1}),
            ("POST", "/api/v1/waves", {"name": "Đợt", "year": value}),
        ):
            response = client.request(method, path, json=body)
            assert response.status_code in (404, 422), (path, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        assert client.get("/api/v1/waves").json() == []
