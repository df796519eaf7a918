"""The registry's and the scheduler's tables (created by retrain's Alembic branch).

``registry_versions`` carries a partial unique index on ``model`` where ``status =
'champion'``: the database itself refuses a second champion of a model, on SQLite and on
PostgreSQL alike. ``retrain_runs`` carries the same kind of index where ``status =
'running'``: two runs of one model can never be in progress at once. ``registry_audit`` is
both the audit log of promotions and rollbacks and their outbox: the event to publish is
written in the same transaction, and ``published_at`` is set once Kafka acknowledged it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Unicode,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from retrain.decision import RunScores
from streams.db import Base
from streams.lineage import Lineage
from streams.store import UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class LineageJSON(TypeDecorator[Lineage]):
    """A version's :class:`~streams.lineage.Lineage`, stored as its JSON record; a malformed
    one is refused on reading with ``ArtifactError``."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Lineage | None, dialect: Any) -> object:
        return None if value is None else value.record()

    def process_result_value(self, value: Any, dialect: Any) -> Lineage | None:
        return None if value is None else Lineage.of(value)

VERSION_STATUSES = ("candidate", "champion", "rejected", "archived", "failed", "refused")
RUN_STATUSES = ("running", "succeeded", "failed", "skipped")
REQUEST_STATUSES = ("pending", "running", "done", "failed", "skipped")
JOBS_TABLE = "retrain_jobs"


class RegistryModelRow(Base):
    __tablename__ = "registry_models"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    task: Mapped[str | None] = mapped_column(String(20), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RegistryVersionRow(Base):
    __tablename__ = "registry_versions"
    __table_args__ = (
        UniqueConstraint("model", "version", name="uq_registry_versions_model_version"),
        Index(
            "uq_registry_one_champion",
            "model",
            unique=True,
            sqlite_where=text("status = 'champion'"),
            postgresql_where=text("status = 'champion'"),
        ),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(100), ForeignKey("registry_models.name"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    artifact_uri: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    metrics: Mapped[dict[str, float]] = mapped_column(JSON)
    evaluation: Mapped[dict[str, Any]] = mapped_column(JSON)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    lineage: Mapped[Lineage] = mapped_column(LineageJSON())
    trainer: Mapped[str] = mapped_column(String(300))
    code_version: Mapped[str] = mapped_column(String(200))
    parent_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    champion_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RegistryAuditRow(Base):
    __tablename__ = "registry_audit"
    __table_args__ = (Index("ix_registry_audit_model", "model", "id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer)
    from_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RetrainRunRow(Base):
    __tablename__ = "retrain_runs"
    __table_args__ = (
        Index("ix_retrain_runs_model", "model", "id"),
        Index(
            "uq_retrain_one_running",
            "model",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(100))
    trigger: Mapped[str] = mapped_column(String(20))
    request_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    decision: Mapped[str | None] = mapped_column(String(20), nullable=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    device: Mapped[str | None] = mapped_column(String(50), nullable=True)
    metrics: Mapped[RunScores] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    log: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RetrainRequestRow(Base):
    __tablename__ = "retrain_requests"

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    model: Mapped[str] = mapped_column(String(100))
    reasons: Mapped[list[str]] = mapped_column(JSON)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    champion_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class WindowScoreRow(Base):
    __tablename__ = "retrain_window_scores"
    __table_args__ = (Index("ix_retrain_window_scores", "model", "version", "window_end"),)

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    model: Mapped[str] = mapped_column(String(100))
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    window_id: Mapped[str] = mapped_column(String(200))
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())
    performance: Mapped[dict[str, float]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SchedulerJobRow(Base):
    """APScheduler's SQLAlchemyJobStore table, declared here so migrations own the schema."""

    __tablename__ = JOBS_TABLE

    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), index=True, nullable=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary)
