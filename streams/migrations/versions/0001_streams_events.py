"""predictions, feedback and labelled examples

Revision ID: streams_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "streams_0001"
down_revision = None
branch_labels = ("streams",)
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(200), nullable=False, unique=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("request_id", sa.String(200), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("output", sa.JSON, nullable=False),
        sa.Column("predicted", sa.JSON, nullable=True),
        sa.Column("confidence", sa.Float, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("timestamp", _ts(), nullable=False),
        sa.Column("stored_at", _ts(), nullable=False),
        sa.UniqueConstraint("model", "request_id", name="uq_predictions_model_request"),
    )
    op.create_index("ix_predictions_model_ts", "predictions", ["model", "timestamp"])
    op.create_table(
        "feedback",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(200), nullable=False, unique=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("request_id", sa.String(200), nullable=False),
        sa.Column("label", sa.JSON, nullable=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=True),
        sa.Column("timestamp", _ts(), nullable=False),
        sa.Column("stored_at", _ts(), nullable=False),
    )
    op.create_index("ix_feedback_model_request", "feedback", ["model", "request_id"])
    op.create_table(
        "labelled_examples",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("request_id", sa.String(200), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("predicted", sa.JSON, nullable=True),
        sa.Column("label", sa.JSON, nullable=True),
        sa.Column("label_source", sa.String(20), nullable=False),
        sa.Column("label_rank", sa.Integer, nullable=False),
        sa.Column("label_event_id", sa.String(200), nullable=False),
        sa.Column("label_timestamp", _ts(), nullable=False),
        sa.Column("prediction_timestamp", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.UniqueConstraint("model", "request_id", name="uq_examples_model_request"),
    )
    op.create_index(
        "ix_examples_model_ts", "labelled_examples", ["model", "prediction_timestamp"]
    )


def downgrade() -> None:
    op.drop_table("labelled_examples")
    op.drop_table("feedback")
    op.drop_table("predictions")
