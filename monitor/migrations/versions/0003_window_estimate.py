"""a drift report keeps the window's estimated performance (CBPE)

Revision ID: monitor_0003
Revises: monitor_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "monitor_0003"
down_revision = "monitor_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("monitor_drift_reports") as batch:
        batch.add_column(sa.Column("estimate", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("monitor_drift_reports") as batch:
        batch.drop_column("estimate")
