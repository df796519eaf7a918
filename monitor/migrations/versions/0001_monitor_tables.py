"""drift reports, window performance, alarms, retrain requests and the monitor's state

Revision ID: monitor_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "monitor_0001"
down_revision = None
branch_labels = ("monitor",)
depends_on = "streams_0001"

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "monitor_drift_reports",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(200), nullable=False, unique=True),
        sa.Column("window_id", sa.String(200), nullable=False, unique=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("first_id", sa.BigInteger, nullable=False),
        sa.Column("last_id", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("window_start", _ts(), nullable=False),
        sa.Column("window_end", _ts(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("drifted_share", sa.Float, nullable=True),
        sa.Column("drift_detected", sa.Boolean, nullable=True),
        sa.Column("columns", sa.JSON, nullable=False),
        sa.Column("performance", sa.JSON, nullable=False),
        sa.Column("alarms", sa.JSON, nullable=False),
        sa.Column("reference", sa.JSON, nullable=False),
        sa.Column("snapshot", sa.Text, nullable=True),
        sa.Column("full_snapshot", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("completed_at", _ts(), nullable=True),
        sa.Column("published_at", _ts(), nullable=True),
    )
    op.create_index("ix_monitor_drift_reports_model_end", "monitor_drift_reports",
                    ["model", "window_end"])
    op.create_index("ix_monitor_drift_reports_status", "monitor_drift_reports", ["status"])
    op.create_table(
        "monitor_window_performance",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("window_id", sa.String(200), nullable=False, unique=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("task", sa.String(20), nullable=True),
        sa.Column("rows", sa.Integer, nullable=False),
        *(sa.Column(name, sa.Float, nullable=True)
          for name in ("accuracy", "precision", "recall", "f1", "mse", "mae", "rmse")),
        sa.Column("window_start", _ts(), nullable=False),
        sa.Column("window_end", _ts(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
    )
    op.create_index("ix_monitor_window_performance_model_end", "monitor_window_performance",
                    ["model", "window_end"])
    op.create_table(
        "monitor_alarms",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("detector", sa.String(50), nullable=False),
        sa.Column("index", sa.BigInteger, nullable=False),
        sa.Column("example_id", sa.BigInteger, nullable=False),
        sa.Column("model_version", sa.Integer, nullable=True),
        sa.Column("window_id", sa.String(200), nullable=True),
        sa.Column("error_rate", sa.Float, nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
    )
    op.create_index("ix_monitor_alarms_model_created", "monitor_alarms",
                    ["model", "created_at"])
    op.create_table(
        "monitor_retrain_requests",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(200), nullable=False, unique=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("champion_version", sa.Integer, nullable=True),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("requested_at", _ts(), nullable=False),
        sa.Column("closed_at", _ts(), nullable=True),
        sa.Column("closed_reason", sa.String(200), nullable=True),
        sa.Column("published_at", _ts(), nullable=True),
    )
    op.create_index("ix_monitor_retrain_requests_model", "monitor_retrain_requests",
                    ["model", "requested_at"])
    op.create_table(
        "monitor_state",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.JSON, nullable=True),
        sa.Column("updated_at", _ts(), nullable=False),
    )


def downgrade() -> None:
    for table in ("monitor_state", "monitor_retrain_requests", "monitor_alarms",
                  "monitor_window_performance", "monitor_drift_reports"):
        op.drop_table(table)
