"""Certificates issued to learners who completed a module, and who issues them.

A certificate keeps a snapshot of what it certifies (name, school, module, class, dates,
result) as it was when issued, so the PDF and the verification page say the same thing for
ever, whatever changes later; a result taken back revokes it (``revoked_at``), it is never
deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, deferred, mapped_column

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


class CertificateJob(Base):
    """Building the ZIP of a class's certificates (``app.certificates.jobs``).

    Run by the server process that accepted the request (``owner``), which writes its
    progress here and touches ``heartbeat_at`` as it goes; any process shows it. A job whose
    heartbeat stopped (its process died) is shown as failed and may be started again. The
    finished ZIP is kept in ``zip_data`` (a few MB), so any process can serve it.
    """

    __tablename__ = "certificate_job"
    __table_args__ = (
        Index("ix_certificate_job_deployment_created", "deployment_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id", ondelete="CASCADE"))
    class_id: Mapped[int] = mapped_column(
        ForeignKey("training_class.id", ondelete="CASCADE"), index=True
    )
    class_code: Mapped[str] = mapped_column(String(64))
    # queued | running | done | failed
    state: Mapped[str] = mapped_column(String(16), default="queued")
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # An English message id when the job failed.
    error: Mapped[str | None] = mapped_column(Text, default=None)
    zip_size: Mapped[int | None] = mapped_column(Integer, default=None)
    zip_data: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, default=None))


class VerifyMiss(Base):
    """Unknown codes asked of ``/verify/<code>``, counted per client address and minute: the
    page is public, so guessing is capped (``BLEND727_VERIFY_MISSES_PER_MINUTE``). A row per
    address and minute with a miss; housekeeping deletes rows a few minutes old. Shared by
    every process (a row, never a dict in memory)."""

    __tablename__ = "verify_miss"
    __table_args__ = (Index("ix_verify_miss_minute", "minute"),)

    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    misses: Mapped[int] = mapped_column(Integer, default=1)
