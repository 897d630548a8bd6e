"""verify rate limit

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30

``/verify/<code>`` is public: unknown codes are counted per client address and minute in
``verify_miss`` (shared by every worker), so that guessing codes is capped.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "verify_miss",
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("minute", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("misses", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("client", "minute", name=op.f("pk_verify_miss")),
    )
    with op.batch_alter_table("verify_miss", schema=None) as batch_op:
        batch_op.create_index("ix_verify_miss_minute", ["minute"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("verify_miss", schema=None) as batch_op:
        batch_op.drop_index("ix_verify_miss_minute")
    op.drop_table("verify_miss")
