"""Helpers shared by the API and page tests: signing in through the test platform and
creating a class the way an administrator would."""

from __future__ import annotations

import socket

from fastapi.testclient import TestClient

from tests.lti_platform import TestPlatform


def sign_in(
    client: TestClient, platform: TestPlatform, roles: list[str], sub: str, name: str
) -> dict:
    client.cookies.clear()
    assert platform.launch(client, roles=roles, sub=sub, name=name).status_code == 303
    me = client.get("/api/v1/me").json()
    client.headers["X-CSRF-Token"] = me["csrf_token"]
    return me


def module_id(client: TestClient, key: str = "gvpt-4") -> int:
    modules = client.get("/api/v1/modules").json()
    return next(m["id"] for m in modules if m["key"] == key)


def new_class(client: TestClient, **overrides) -> dict:
    body = {
        "code": "M4-THCS-01",
        "name": "Mô đun 4 — THCS — lớp 1",
        "module_id": module_id(client),
        "level": "thcs",
        "in_person_dates": ["2026-12-03", "2026-12-04"],
        "venue": "Trường THCS Nguyễn Du",
        "room": "P.201",
    }
    body.update(overrides)
    response = client.post("/api/v1/classes", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def closed_port_url(path: str = "/") -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
