"""The schema comes from Alembic, and the models never drift from the migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from app.core.migrate import upgrade_connection
from app.models import metadata


class TestMigrationsMatchModels:
    def test_no_pending_model_changes(self, connection: Connection) -> None:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
        assert diff == [], f"models differ from migrations; add an Alembic revision: {diff}"

    def test_upgrade_head_is_idempotent(self, connection: Connection) -> None:
        upgrade_connection(connection)  # already at head: nothing to do, no error
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() is not None
