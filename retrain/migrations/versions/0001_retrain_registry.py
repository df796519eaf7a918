"""the model registry, retraining runs and requests, and the scheduler's job store

Revision ID: retrain_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "retrain_0001"
down_revision = None
branch_labels = ("retrain",)
depends_on = "streams_0001"

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "registry_models",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("task", sa.String(20), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
    )
    op.create_table(
        "registry_versions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(100), sa.ForeignKey("registry_models.name"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("artifact_uri", sa.String(2000), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("evaluation", sa.JSON, nullable=False),
        sa.Column("hyperparameters", sa.JSON, nullable=False),
        sa.Column("lineage", sa.JSON, nullable=False),
        sa.Column("trainer", sa.String(300), nullable=False),
        sa.Column("code_version", sa.String(200), nullable=False),
        sa.Column("parent_version", sa.Integer, nullable=True),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("champion_since", _ts(), nullable=True),
        sa.UniqueConstraint("model", "version", name="uq_registry_versions_model_version"),
        sa.CheckConstraint(
            "status IN ('candidate', 'champion', 'rejected', 'archived', 'failed')",
            name="ck_registry_versions_status",
        ),
    )
    # The database, not a convention, allows one champion per model.
    op.create_index(
        "uq_registry_one_champion",
        "registry_versions",
        ["model"],
        unique=True,
        sqlite_where=sa.text("status = 'champion'"),
        postgresql_where=sa.text("status = 'champion'"),
    )
    op.create_table(
        "registry_audit",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("event", sa.JSON, nullable=False),
        sa.Column("published_at", _ts(), nullable=True),
    )
    op.create_index("ix_registry_audit_model", "registry_audit", ["model", "id"])
    op.create_table(
        "retrain_runs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("request_id", sa.String(200), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decision", sa.String(20), nullable=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("device", sa.String(50), nullable=True),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("log", sa.Text, nullable=False),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("finished_at", _ts(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed', 'skipped')",
            name="ck_retrain_runs_status",
        ),
    )
    op.create_index("ix_retrain_runs_model", "retrain_runs", ["model", "id"])
    # At most one run of a model in progress, whatever process or thread started it.
    op.create_index(
        "uq_retrain_one_running",
        "retrain_runs",
        ["model"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "retrain_requests",
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.Column("champion_version", sa.Integer, nullable=True),
        sa.Column("requested_at", _ts(), nullable=False),
        sa.Column("received_at", _ts(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
    )
    op.create_table(
        "retrain_window_scores",
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("window_id", sa.String(200), nullable=False),
        sa.Column("window_end", _ts(), nullable=False),
        sa.Column("performance", sa.JSON, nullable=False),
        sa.Column("received_at", _ts(), nullable=False),
    )
    op.create_index(
        "ix_retrain_window_scores", "retrain_window_scores", ["model", "version", "window_end"]
    )
    # APScheduler's SQLAlchemyJobStore table (same shape as the one it would create itself).
    op.create_table(
        "retrain_jobs",
        sa.Column("id", sa.Unicode(191), primary_key=True),
        sa.Column("next_run_time", sa.Float(25), nullable=True),
        sa.Column("job_state", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_retrain_jobs_next_run_time", "retrain_jobs", ["next_run_time"])


def downgrade() -> None:
    op.drop_table("retrain_jobs")
    op.drop_table("retrain_window_scores")
    op.drop_table("retrain_requests")
    op.drop_table("retrain_runs")
    op.drop_table("registry_audit")
    op.drop_table("registry_versions")
    op.drop_table("registry_models")
