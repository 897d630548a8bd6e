"""The tool's signing keys: published at /lti/jwks.json, rotated without downtime."""

from __future__ import annotations

from datetime import timedelta

import jwt
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.core.time import utcnow
from app.keys.service import KeyService


def _kids(client: TestClient) -> list[str]:
    response = client.get("/lti/jwks.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return [k["kid"] for k in response.json()["keys"]]


class TestJwksPublishesUsableKeys:
    def test_first_request_creates_one_rs256_key(self, client: TestClient, db: Session) -> None:
        with_key = KeyService(db)
        with_key.ensure_key()
        db.commit()
        body = client.get("/lti/jwks.json").json()
        assert len(body["keys"]) == 1
        key = body["keys"][0]
        assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
        assert "d" not in key and "p" not in key, "private parts must never be published"

    def test_a_signature_made_with_the_current_key_verifies_with_the_jwks(
        self, client: TestClient, db: Session
    ) -> None:
        signing = KeyService(db).signing_key()
        db.commit()
        token = jwt.encode(
            {"iss": "tool"}, signing.private_key, algorithm="RS256", headers={"kid": signing.kid}
        )
        jwks = client.get("/lti/jwks.json").json()
        public = jwt.PyJWKSet.from_dict(jwks)[signing.kid]
        assert jwt.decode(token, public.key, algorithms=["RS256"]) == {"iss": "tool"}


class TestKeyRotation:
    def test_rotation_publishes_both_keys_until_the_old_one_expires(
        self, client: TestClient, db: Session
    ) -> None:
        service = KeyService(db)
        old = service.ensure_key()
        db.commit()
        new, retired = service.rotate(timedelta(days=7))
        db.commit()
        assert [k.kid for k in retired] == [old.kid]
        kids = _kids(client)
        # A platform fetching our JWKS at launch time sees both: the new one signs from now.
        assert set(kids) == {old.kid, new.kid}
        assert KeyService(db).signing_key().kid == new.kid

    def test_expired_key_is_no_longer_published(self, client: TestClient, db: Session) -> None:
        service = KeyService(db)
        old = service.ensure_key()
        db.commit()
        new, _ = service.rotate(timedelta(days=7))
        old.retires_at = utcnow() - timedelta(seconds=1)
        db.commit()
        assert _kids(client) == [new.kid]

    def test_rotating_twice_keeps_every_unexpired_key(
        self, client: TestClient, db: Session
    ) -> None:
        service = KeyService(db)
        first = service.ensure_key()
        second, _ = service.rotate(timedelta(days=7))
        third, retired = service.rotate(timedelta(days=7))
        db.commit()
        assert {k.kid for k in retired} == {second.kid}
        assert set(_kids(client)) == {first.kid, second.kid, third.kid}
