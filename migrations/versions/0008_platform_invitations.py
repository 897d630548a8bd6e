"""platform invitations

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 05:54:41.071009

One-time invitations to register by LTI dynamic registration (``blend727 platform invite``);
a platform registered without one waits as ``pending`` (a value of the existing status
column) until an operator approves it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "platform_invitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", app.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("platform_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platform.id"],
            name=op.f("fk_platform_invitation_platform_id_platform"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_invitation")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_platform_invitation_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("platform_invitation")
