"""latest row indexes

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24

Hot paths read only the newest grade of each hand-in and the first check-in of each learner
in a session (not every row of their history): indexes that end in the order those reads
take, so that each is one index probe whatever the history holds. The new grade index
replaces ``ix_submission_grade_enrolment``, its prefix. The passback page's counts by status
(sent scores only ever grow) are read from ``ix_score_outbox_deployment`` alone.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("submission_grade", schema=None) as batch_op:
        batch_op.create_index(
            "ix_submission_grade_latest",
            ["enrolment_id", "item_key", "graded_at", "id"],
            unique=False,
        )
        batch_op.drop_index("ix_submission_grade_enrolment")
    with op.batch_alter_table("attendance_checkin", schema=None) as batch_op:
        batch_op.create_index(
            "ix_attendance_checkin_first",
            ["session_id", "enrolment_id", "at", "id"],
            unique=False,
        )
    with op.batch_alter_table("score_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_score_outbox_deployment", ["deployment_id", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("score_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_score_outbox_deployment")
    with op.batch_alter_table("attendance_checkin", schema=None) as batch_op:
        batch_op.drop_index("ix_attendance_checkin_first")
    with op.batch_alter_table("submission_grade", schema=None) as batch_op:
        batch_op.create_index(
            "ix_submission_grade_enrolment", ["enrolment_id", "item_key"], unique=False
        )
        batch_op.drop_index("ix_submission_grade_latest")
