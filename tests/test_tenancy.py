"""Many platforms and many deployments at once; nothing of one shows in another."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.identity.models import Course, User, WebSession
from tests.factories import Factories
from tests.lti_platform import INST_ADMIN, SYS_ADMIN, TestPlatform


def _fresh_client(client: TestClient) -> TestClient:
    client.cookies.clear()
    return client


class TestSecondPlatformIsIsolated:
    def test_same_ids_on_two_platforms_are_two_people_and_two_courses(
        self,
        client: TestClient,
        platform: TestPlatform,
        platform_http: str,
        factories: Factories,
        db: Session,
    ) -> None:
        other = TestPlatform.create(
            platform_http, issuer="https://other-lms.test", client_id="client-1"
        )
        factories.register(other, deployment_ids=["1"])

        assert platform.launch(client, sub="42", name="An ở LMS một").status_code == 303
        assert "An ở LMS một" in client.get("/").text
        assert (
            other.launch(_fresh_client(client), sub="42", name="Bình ở LMS hai").status_code == 303
        )
        page = client.get("/").text
        assert "Bình ở LMS hai" in page and "An ở LMS một" not in page

        assert db.scalar(select(func.count()).select_from(User).where(User.sub == "42")) == 2
        assert (
            db.scalar(
                select(func.count()).select_from(Course).where(Course.context_id == "course-1")
            )
            == 2
        )

    def test_admin_sees_only_their_own_platform(
        self, client: TestClient, platform: TestPlatform, platform_http: str, factories: Factories
    ) -> None:
        other = TestPlatform.create(
            platform_http, issuer="https://other-lms.test", client_id="secret-client-B"
        )
        factories.register(other, deployment_ids=["99"])
        assert platform.launch(client, roles=[INST_ADMIN, SYS_ADMIN]).status_code == 303
        page = client.get("/admin/lti")
        assert page.status_code == 200
        assert platform.client_id in page.text
        assert "secret-client-B" not in page.text and "other-lms.test" not in page.text

    def test_a_platform_key_cannot_sign_for_another_platform(
        self, client: TestClient, platform: TestPlatform, platform_http: str, factories: Factories
    ) -> None:
        other = TestPlatform.create(
            platform_http, issuer="https://other-lms.test", client_id="client-2"
        )
        other.keys = [other.rotate_key(keep_old=False)]
        factories.register(other, deployment_ids=["1"])
        # A token claiming to be from `platform`, signed with the other platform's key.
        response = platform.launch(client, sign=lambda claims: other.sign(claims))
        assert response.status_code == 401
        assert "unknown_key" in response.text or "bad_signature" in response.text


class TestSecondDeploymentIsIsolated:
    def test_same_course_id_in_two_deployments_is_two_courses(
        self, client: TestClient, platform: TestPlatform, factories: Factories, db: Session
    ) -> None:
        factories.register(platform, deployment_ids=["1", "2"])
        assert platform.launch(client).status_code == 303
        platform.deployment_id = "2"
        assert platform.launch(_fresh_client(client)).status_code == 303
        courses = db.scalars(select(Course).where(Course.context_id == "course-1")).all()
        assert len({c.deployment_id for c in courses}) == 2
        sessions = db.scalars(select(WebSession)).all()
        assert {s.course_id for s in sessions} == {c.id for c in courses}
