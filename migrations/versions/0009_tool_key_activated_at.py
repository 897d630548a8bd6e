"""publish-ahead key rotation: tool_key.activated_at

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24

A key is published (in /lti/jwks.json) from its creation but signs only once activated, so
the key a rotation makes current has been in every JWKS a platform fetched since the previous
rotation. Every key that existed before this revision had been signing: activated when
created.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tool_key", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("activated_at", app.core.types.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute("UPDATE tool_key SET activated_at = created_at")


def downgrade() -> None:
    # Keys published ahead were never used: without the column they would sign at once.
    op.execute("DELETE FROM tool_key WHERE activated_at IS NULL AND retires_at IS NULL")
    with op.batch_alter_table("tool_key", schema=None) as batch_op:
        batch_op.drop_column("activated_at")
