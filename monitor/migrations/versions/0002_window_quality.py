"""a drift report keeps the window's data quality per feature

Revision ID: monitor_0002
Revises: monitor_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "monitor_0002"
down_revision = "monitor_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("monitor_drift_reports") as batch:
        batch.add_column(sa.Column("quality", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("monitor_drift_reports") as batch:
        batch.drop_column("quality")
