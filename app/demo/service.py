"""Seeding and signing for the demonstration platform.

It behaves like Moodle 5.1 where that matters to the tool: ``sub`` is a numeric user id,
``aud`` is a plain string, the id_token lives 60 seconds, the context type is
``CourseSection``, and the deployment id is a tool type id.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.demo.models import DemoPlatformKey
from app.keys.service import generate_rsa_key, public_jwk
from app.platforms.models import Platform
from app.platforms.service import PlatformInput, PlatformService

DEMO_CLIENT_ID = "blend727-demo"
DEMO_DEPLOYMENT_ID = "1"
#: Marks, in the demo's lti_message_hint, a launch from the framed course page with storage.
STORAGE_FLAG = "storage"
LIS = "http://purl.imsglobal.org/vocab/lis/v2/"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


@dataclass(frozen=True)
class Persona:
    key: str
    sub: str
    roles: list[str]
    name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    context: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


PERSONAS: dict[str, Persona] = {
    p.key: p
    for p in [
        Persona(
            key="teacher",
            sub="101",
            roles=[LIS + "membership#Learner"],
            name="Nguyễn Thị Lan",
            given_name="Lan",
            family_name="Nguyễn Thị",
            email="lan.nguyen@demo.blend727.vn",
        ),
        Persona(
            key="trainer",
            sub="102",
            roles=[LIS + "membership#Instructor"],
            name="Trần Văn Minh",
            given_name="Minh",
            family_name="Trần Văn",
            email="minh.tran@demo.blend727.vn",
        ),
        Persona(
            key="admin",
            sub="2",
            # What Moodle sends for a site administrator who is also the course's teacher.
            roles=[
                LIS + "institution/person#Administrator",
                LIS + "membership#Instructor",
                LIS + "system/person#Administrator",
            ],
            name="Lê Hoàng Anh",
            given_name="Anh",
            family_name="Lê Hoàng",
            email="anh.le@demo.blend727.vn",
        ),
        # Valid but unusual launches, as the 1EdTech certification tries them.
        Persona(key="anonymous", sub="103", roles=[LIS + "membership#Learner"]),
        Persona(
            key="no-context", sub="101", roles=["Learner"], name="Nguyễn Thị Lan", context=False
        ),
        Persona(key="no-role", sub="104", roles=[], name="Phạm Quốc Bảo"),
    ]
}


def demo_issuer(base_url: str) -> str:
    return base_url.rstrip("/") + "/demo"


def ensure_demo_platform(session: Session, base_url: str) -> tuple[Platform, DemoPlatformKey]:
    """Register the demonstration platform (idempotent) and give it a key."""
    base = base_url.rstrip("/")
    platform = PlatformService(session).register(
        PlatformInput(
            issuer=demo_issuer(base),
            client_id=DEMO_CLIENT_ID,
            auth_login_url=f"{base}/demo/auth",
            token_url=f"{base}/demo/token",
            keyset_url=f"{base}/demo/jwks.json",
            deployment_ids=[DEMO_DEPLOYMENT_ID],
            name="blend727 demo LMS",
            is_demo=True,
        ),
        update=True,
    )
    key = session.scalars(select(DemoPlatformKey).order_by(DemoPlatformKey.created_at)).first()
    if key is None:
        private_key, pem = generate_rsa_key()
        jwk = public_jwk(private_key)
        key = DemoPlatformKey(kid=jwk["kid"], private_key_pem=pem, public_jwk=jwk)
        session.add(key)
        session.flush()
    return platform, key


class DemoSigner:
    """Holds the parsed demo key; signing an id_token costs one RSA signature."""

    def __init__(self, key: DemoPlatformKey) -> None:
        self.kid = key.kid
        self.jwks = {"keys": [dict(key.public_jwk)]}
        self._private = serialization.load_pem_private_key(
            key.private_key_pem.encode(), password=None
        )

    def id_token(
        self,
        *,
        base_url: str,
        persona: Persona,
        nonce: str,
        locale: str,
        redirect_uri: str,
    ) -> str:
        base = base_url.rstrip("/")
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": demo_issuer(base),
            "aud": DEMO_CLIENT_ID,
            "sub": persona.sub,
            "iat": now,
            "exp": now + 60,
            "nonce": nonce,
            CLAIM + "deployment_id": DEMO_DEPLOYMENT_ID,
            CLAIM + "message_type": "LtiResourceLinkRequest",
            CLAIM + "version": "1.3.0",
            CLAIM + "target_link_uri": redirect_uri,
            CLAIM + "roles": persona.roles,
            CLAIM + "resource_link": {
                "id": "demo-module-4",
                "title": "Mô đun 4 — demo",
                "description": "",
            },
            CLAIM + "launch_presentation": {
                "locale": locale,
                "document_target": "iframe",
                "return_url": f"{base}/demo",
            },
            CLAIM + "tool_platform": {
                "guid": "blend727-demo",
                "name": "blend727 demo LMS",
                "product_family_code": "blend727-demo",
                "version": "1",
            },
            CLAIM + "custom": {},
        }
        if persona.context:
            claims[CLAIM + "context"] = {
                "id": "demo-course-1",
                "label": "BDTX-M4",
                "title": "Bồi dưỡng thường xuyên — Mô đun 4 (demo)",
                "type": [LIS + "course#CourseSection"],
            }
        for attr in ("name", "given_name", "family_name", "email"):
            value = getattr(persona, attr)
            if value:
                claims[attr] = value
        claims.update(persona.extra)
        return jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": self.kid})  # type: ignore[arg-type]


def new_login_hint(persona: str) -> str:
    return f"{persona}:{secrets.token_hex(4)}"
