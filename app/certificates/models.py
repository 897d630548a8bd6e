"""Certificates issued to learners who completed a module, and who issues them.

A certificate keeps a snapshot of what it certifies (name, school, module, class, dates,
result) as it was when issued, so the PDF and the verification page say the same thing for
ever, whatever changes later; a result taken back revokes it (``revoked_at``), it is never
deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.core.time import utcnow
from app.core.types import UTCDateTime


class Certificate(Base):
    __tablename__ = "certificate"

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id", ondelete="CASCADE"))
    enrolment_id: Mapped[int] = mapped_column(
        ForeignKey("enrolment.id", ondelete="CASCADE"), unique=True
    )
    # Printed on the certificate and in its QR code; what /verify/<code> looks up.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    revoked_reason: Mapped[str | None] = mapped_column(Text, default=None)


class CertificateIssuer(Base):
    """The unit that issues a deployment's certificates (e.g. "Phòng Giáo dục và Đào tạo
    Quận 7") and who signs them."""

    __tablename__ = "certificate_issuer"

    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployment.id", ondelete="CASCADE"), primary_key=True
    )
    unit_name: Mapped[str] = mapped_column(String(255))
    parent_unit: Mapped[str | None] = mapped_column(String(255), default=None)
    signer_name: Mapped[str | None] = mapped_column(String(255), default=None)
    signer_title: Mapped[str | None] = mapped_column(String(255), default=None)
    place: Mapped[str | None] = mapped_column(String(120), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
