"""The tool's signing keys: published at /lti/jwks.json, rotated without downtime (publish
ahead), encrypted at rest."""

from __future__ import annotations

import base64
import os
import random
from datetime import timedelta

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.config import Settings
from app.core.db import Database
from app.core.state import SECRET_NAME, AppContext
from app.core.time import utcnow
from app.keys import crypto
from app.keys.crypto import KeyEncryptionError, Keyring
from app.keys.models import ToolKey, ToolSecret
from app.keys.repository import KeyRepository
from app.keys.service import KeyService
from app.main import create_app
from app.passback.service import OutboxWorker
from lti.http import build_session
from lti.services import TokenCache
from tests.conftest import TOOL_BASE_URL
from tests.test_passback_e2e import _drain, _lms, _queue, _register


def _kids(client: TestClient) -> list[str]:
    response = client.get("/lti/jwks.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return [k["kid"] for k in response.json()["keys"]]


def _with(settings: Settings, **changes: object) -> Settings:
    """The settings with ``changes``, validated as if they came from the environment."""
    return Settings(**{**settings.model_dump(), **changes})


def _new_kek() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _verify(token: str, jwks: dict) -> dict:
    kid = jwt.get_unverified_header(token)["kid"]
    keys = {k["kid"]: k for k in jwks["keys"]}
    if kid not in keys:
        raise LookupError(f"kid {kid} is not in the JWKS")
    public = jwt.PyJWK(keys[kid], algorithm="RS256")
    return jwt.decode(token, public.key, algorithms=["RS256"])


def _sign(service: KeyService, claims: dict) -> str:
    signing = service.signing_key()
    return jwt.encode(claims, signing.private_key, algorithm="RS256", headers={"kid": signing.kid})


class TestJwksPublishesUsableKeys:
    def test_the_current_key_and_the_next_one_are_published(
        self, client: TestClient, db: Session
    ) -> None:
        service = KeyService(db)
        current, following = service.ensure_key(), service.ensure_next()
        db.commit()
        body = client.get("/lti/jwks.json").json()
        assert {k["kid"] for k in body["keys"]} == {current.kid, following.kid}
        for key in body["keys"]:
            assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
            assert "d" not in key and "p" not in key, "private parts must never be published"
        assert service.signing_key().kid == current.kid != following.kid

    def test_a_signature_made_with_the_current_key_verifies_with_the_jwks(
        self, client: TestClient, db: Session
    ) -> None:
        token = _sign(KeyService(db), {"iss": "tool"})
        db.commit()
        assert _verify(token, client.get("/lti/jwks.json").json()) == {"iss": "tool"}


class TestKeyRotation:
    def test_rotation_activates_the_key_published_ahead_and_publishes_the_next(
        self, client: TestClient, db: Session
    ) -> None:
        service = KeyService(db)
        old, ahead = service.ensure_key(), service.ensure_next()
        db.commit()
        rotation = service.rotate(timedelta(days=7))
        db.commit()
        assert rotation.rotated and rotation.activated is not None
        assert rotation.activated.kid == ahead.kid
        assert [k.kid for k in rotation.retired] == [old.kid]
        assert rotation.created is not None
        assert set(_kids(client)) == {old.kid, ahead.kid, rotation.created.kid}
        assert KeyService(db).signing_key().kid == ahead.kid

    def test_a_platform_holding_the_jwks_from_before_verifies_scores_sent_after(
        self, client: TestClient, database: Database, db: Session, platform_http: str
    ) -> None:
        before = client.get("/lti/jwks.json").json()  # what a platform cached yesterday
        rotation = KeyService(db).rotate(timedelta(days=7))
        db.commit()
        assert rotation.activated is not None
        assert rotation.activated.kid in {k["kid"] for k in before["keys"]}
        lms = _lms(platform_http, before)  # never refetches our JWKS
        platform_id, deployment_pk = _register(db, lms)
        expected = _queue(db, platform_id, deployment_pk, lms, 3)
        db.commit()
        worker = OutboxWorker(
            database, build_session(5), rng=random.Random(1), token_cache=TokenCache()
        )
        _drain(worker)
        assert lms.token_refusals == []
        assert {a["header"]["kid"] for a in lms.client_assertions} == {rotation.activated.kid}
        assert {sub for sub in expected if lms.applied_scores(user_id=sub)} == set(expected)

    def test_what_the_old_key_signed_verifies_until_it_is_retired(
        self, client: TestClient, db: Session
    ) -> None:
        service = KeyService(db)
        old = service.ensure_key()
        token = _sign(service, {"sub": "moodle"})
        db.commit()
        service.rotate(timedelta(days=7))
        db.commit()
        assert _verify(token, client.get("/lti/jwks.json").json()) == {"sub": "moodle"}
        old.retires_at = utcnow() - timedelta(seconds=1)
        db.commit()
        assert old.kid not in _kids(client)
        with pytest.raises(LookupError):
            _verify(token, client.get("/lti/jwks.json").json())

    def test_rotating_twice_keeps_every_unexpired_key(
        self, client: TestClient, db: Session
    ) -> None:
        service = KeyService(db)
        first = service.ensure_key()
        one = service.rotate(timedelta(days=7))
        two = service.rotate(timedelta(days=7))
        db.commit()
        assert one.activated and two.activated and two.created
        assert {k.kid for k in two.retired} == {one.activated.kid}
        published = {first.kid, one.activated.kid, two.activated.kid, two.created.kid}
        assert set(_kids(client)) == published
        assert service.signing_key().kid == two.activated.kid

    def test_if_older_than_does_nothing_while_the_current_key_is_young(
        self, db: Session
    ) -> None:
        service = KeyService(db)
        current = service.ensure_key()
        current.activated_at = utcnow() - timedelta(days=10)
        db.flush()
        rotation = service.rotate(timedelta(days=7), if_older_than=timedelta(days=30))
        assert rotation.reason == "not_due" and not rotation.rotated
        assert service.ensure_key().kid == current.kid
        current.activated_at = utcnow() - timedelta(days=31)
        KeyRepository(db).pending()[0].created_at = utcnow() - timedelta(days=31)
        db.flush()
        rotation = service.rotate(timedelta(days=7), if_older_than=timedelta(days=30))
        assert rotation.rotated and service.ensure_key().kid != current.kid

    def test_a_scheduled_rotation_waits_for_the_key_ahead_to_be_published_long_enough(
        self, db: Session
    ) -> None:
        service = KeyService(db)
        current = service.ensure_key()
        current.activated_at = utcnow() - timedelta(days=400)
        ahead = service.ensure_next()
        ahead.created_at = utcnow() - timedelta(days=2)
        db.flush()
        rotation = service.rotate(
            timedelta(days=7), if_older_than=timedelta(days=90), min_published=timedelta(days=7)
        )
        assert rotation.reason == "published_too_recently"
        ahead.created_at = utcnow() - timedelta(days=8)
        db.flush()
        rotation = service.rotate(
            timedelta(days=7), if_older_than=timedelta(days=90), min_published=timedelta(days=7)
        )
        assert rotation.activated is not None and rotation.activated.kid == ahead.kid

    def test_a_database_from_before_publish_ahead_first_publishes_a_key(
        self, db: Session
    ) -> None:
        service = KeyService(db)
        current = service.ensure_key()
        db.execute(delete(ToolKey).where(ToolKey.activated_at.is_(None)))
        db.flush()
        rotation = service.rotate(timedelta(days=7))
        assert rotation.reason == "nothing_published_ahead" and rotation.created is not None
        assert service.ensure_key().kid == current.kid  # still signing: nobody knows the new one
        rotation = service.rotate(timedelta(days=7))
        assert rotation.activated is not None and rotation.activated.kid != current.kid


def _encrypted(db: Session) -> list[str]:
    values = list(db.scalars(select(ToolKey.private_key_pem)))
    values += list(db.scalars(select(ToolSecret.value)))
    return values


class TestKeysEncryptedAtRest:
    def test_new_keys_and_the_generated_secret_are_stored_encrypted(self, db: Session) -> None:
        keyring = Keyring.parse(_new_kek())
        service = KeyService(db, keyring)
        db.execute(delete(ToolKey))
        secret = service.secret("test-secret")
        signing = service.signing_key()
        db.flush()
        stored = db.scalar(select(ToolKey.private_key_pem).where(ToolKey.kid == signing.kid))
        assert stored is not None and stored.startswith(f"enc:v1:{keyring.primary}:")
        assert "PRIVATE KEY" not in stored
        assert signing.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")
        row = db.get(ToolSecret, "test-secret")
        assert row is not None and row.value.startswith("enc:v1:") and secret not in row.value
        assert len(row.value) <= 256  # the column's width
        assert KeyService(db, keyring).secret("test-secret") == secret

    def test_plaintext_keys_keep_working_and_encrypt_moves_them(
        self, client: TestClient, db: Session
    ) -> None:
        service = KeyService(db, Keyring.parse(_new_kek()))
        kid = service.signing_key().kid
        assert service.count_unencrypted() >= 2
        assert service.encrypt_stored() >= 2
        db.commit()
        assert service.count_unencrypted() == 0
        assert all(v.startswith("enc:v1:") for v in _encrypted(db))
        token = _sign(KeyService(db, service.keyring), {"ok": 1})
        assert jwt.get_unverified_header(token)["kid"] == kid
        assert _verify(token, client.get("/lti/jwks.json").json()) == {"ok": 1}

    def test_reencrypt_moves_everything_to_the_new_key_encryption_key(
        self, db: Session
    ) -> None:
        old_kek, new_kek = _new_kek(), _new_kek()
        KeyService(db, Keyring.parse(old_kek)).encrypt_stored()
        both = Keyring.parse(f"{new_kek},{old_kek}")
        assert KeyService(db, both).encrypt_stored() == 0  # nothing is plaintext
        assert KeyService(db, both).encrypt_stored(reencrypt=True) >= 2
        db.flush()
        assert all(v.startswith(f"enc:v1:{both.primary}:") for v in _encrypted(db))
        KeyService(db, Keyring.parse(new_kek)).verify()  # the old key can go

    def test_a_wrong_key_encryption_key_stops_the_start(
        self, settings: Settings, database: Database, db: Session
    ) -> None:
        right, wrong = _new_kek(), _new_kek()
        KeyService(db, Keyring.parse(right)).encrypt_stored()
        db.commit()
        app = create_app(_with(settings, key_encryption_key=wrong), database)
        with pytest.raises(KeyEncryptionError) as error, TestClient(app, base_url=TOOL_BASE_URL):
            pass
        message = str(error.value)
        assert f"key id {Keyring.parse(right).primary}" in message
        assert Keyring.parse(wrong).primary in message
        assert right not in message and wrong not in message

    def test_encrypted_keys_without_a_configured_key_stop_the_start(
        self, settings: Settings, database: Database, db: Session
    ) -> None:
        KeyService(db, Keyring.parse(_new_kek())).encrypt_stored()
        db.commit()
        app = create_app(settings, database)
        with (
            pytest.raises(KeyEncryptionError, match="no key-encryption key is configured"),
            TestClient(app, base_url=TOOL_BASE_URL),
        ):
            pass

    def test_the_right_key_from_a_file_starts_and_signs(
        self, settings: Settings, database: Database, db: Session, tmp_path
    ) -> None:
        kek = _new_kek()
        KeyService(db, Keyring.parse(kek)).encrypt_stored()
        db.commit()
        path = tmp_path / "kek"
        path.write_text(kek + "\n")
        app = create_app(_with(settings, key_encryption_key_file=path), database)
        with TestClient(app, base_url=TOOL_BASE_URL) as client:
            token = _sign(KeyService(db), {"ok": True})
            assert _verify(token, client.get("/lti/jwks.json").json()) == {"ok": True}

    def test_a_malformed_key_is_refused_without_echoing_it(self, settings: Settings) -> None:
        bad = "not-a-key-" + "x" * 20
        with pytest.raises(KeyEncryptionError, match="not 32 bytes") as error:
            AppContext.build(_with(settings, key_encryption_key=bad))
        assert bad not in str(error.value)

    def test_a_damaged_value_is_an_error_not_garbage(self, db: Session) -> None:
        keyring = Keyring.parse(_new_kek())
        service = KeyService(db, keyring)
        service.secret("some-secret")
        db.execute(update(ToolSecret).values(value=f"enc:v1:{keyring.primary}:AAAA"))
        with pytest.raises(KeyEncryptionError, match="damaged"):
            service.verify()

    def test_the_generated_cookie_secret_survives_encryption(
        self, settings: Settings, database: Database, db: Session
    ) -> None:
        no_secret = _with(settings, secret_key=None)
        before = AppContext.build(no_secret, database).secret
        kek = _new_kek()
        KeyService(db, Keyring.parse(kek)).encrypt_stored()
        db.commit()
        stored = db.get(ToolSecret, SECRET_NAME)
        assert stored is not None and before not in stored.value
        after = AppContext.build(_with(no_secret, key_encryption_key=kek), database)
        assert after.secret == before


class TestSecretsStayOutOfReprs:
    def test_keys_settings_and_context_print_no_secret(
        self, settings: Settings, database: Database, db: Session
    ) -> None:
        kek = _new_kek()
        configured = _with(settings, key_encryption_key=kek)
        ctx = AppContext.build(configured, database)
        secret = ctx.secret
        signing = KeyService(db).signing_key()
        row = db.scalars(select(ToolKey)).first()
        texts = [repr(signing), str(signing), repr(configured), repr(ctx), repr(row)]
        texts += [repr(crypto.installed()), repr(db.get(ToolSecret, SECRET_NAME))]
        for text in texts:
            assert "PRIVATE KEY" not in text
            assert kek not in text
            assert secret not in text
            assert settings.secret_key is not None
            assert settings.secret_key.get_secret_value() not in text
