"""a version serving refused to load is marked 'refused'

Revision ID: retrain_0002
Revises: retrain_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "retrain_0002"
down_revision = "retrain_0001"
branch_labels = None
depends_on = None

_CHECK = "ck_registry_versions_status"
_INDEX = "uq_registry_one_champion"


def _statuses(*statuses: str) -> str:
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


def _replace_check(condition: str) -> None:
    # SQLite rebuilds the table to change a CHECK constraint; the partial index that allows
    # one champion per model is dropped first and recreated after, WHERE clause included.
    op.drop_index(_INDEX, table_name="registry_versions")
    with op.batch_alter_table("registry_versions", recreate="auto") as batch:
        batch.drop_constraint(_CHECK, type_="check")
        batch.create_check_constraint(_CHECK, condition)
    op.create_index(
        _INDEX, "registry_versions", ["model"], unique=True,
        sqlite_where=sa.text("status = 'champion'"),
        postgresql_where=sa.text("status = 'champion'"),
    )


def upgrade() -> None:
    _replace_check(_statuses("candidate", "champion", "rejected", "archived", "failed",
                             "refused"))


def downgrade() -> None:
    op.execute("UPDATE registry_versions SET status = 'rejected' WHERE status = 'refused'")
    _replace_check(_statuses("candidate", "champion", "rejected", "archived", "failed"))
