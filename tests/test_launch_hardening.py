"""Hostile-but-signed content must never reach a 500: the database gets clean text."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.identity.models import User
from tests.lti_platform import TestPlatform


class TestUnstorableTextInClaims:
    def test_nul_and_lone_surrogates_in_signed_claims_are_cleaned(
        self, client: TestClient, platform: TestPlatform, db: Session
    ) -> None:
        response = platform.launch(
            client,
            name="Lan\x00 \ud800Nguyễn",
            context={"id": "c-1", "title": "Mô\x00 đun"},
            mutate=lambda c: c.update(
                {"https://purl.imsglobal.org/spec/lti/claim/custom": {"k\x00": "v\udfff"}}
            ),
        )
        assert response.status_code == 303, response.text
        user = db.scalars(select(User)).one()
        assert "\x00" not in (user.name or "")
        assert user.name is not None and user.name.startswith("Lan")
        assert client.get("/").status_code == 200

    def test_nul_in_login_parameters_is_refused_cleanly(
        self, client: TestClient, platform: TestPlatform
    ) -> None:
        response = client.get("/lti/login?iss=https://lms.test%00&login_hint=1")
        assert response.status_code == 400
        assert "malformed_token" in response.text

    def test_nul_in_posted_form_is_refused_cleanly(self, client: TestClient) -> None:
        response = client.post("/lti/launch", data={"id_token": "a\x00b", "state": "s"})
        assert response.status_code == 400
