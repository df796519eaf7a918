"""The monitor's tables (Alembic branch ``monitor``), read by the dashboard.

* ``monitor_drift_reports`` — one row per closed window: its id range, bounds, performance,
  the detectors that fired in it and, once Evidently ran, the per-column results, the drifted
  share and the Evidently snapshot JSON; a served window of a calibrated champion also keeps its
  estimated performance (``estimate``: accuracy and F1 with their band edges, null when there
  is no estimate). ``status`` is ``pending`` until the report ran, then
  ``done``, ``skipped`` (too few rows, or dropped from a full backlog) or ``failed``.
* ``monitor_window_performance`` — the scores of each labelled window, one column per score.
* ``monitor_alarms`` — every detector alarm, with the example it fired on.
* ``monitor_retrain_requests`` — every ``RetrainRequested`` made, ``open`` until closed.
* ``monitor_state`` — the monitor's resumable state by key: store cursors, open windows,
  detector and policy state, champions. Detector state is JSON numbers, never a pickle.

``published_at`` marks rows whose event reached Kafka (an outbox: rows are written first and
published after, so a crash in between re-publishes with the same event id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from streams.db import Base
from streams.store import UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")

PENDING, DONE, SKIPPED, FAILED = "pending", "done", "skipped", "failed"
OPEN, CLOSED = "open", "closed"


class DriftReportRow(Base):
    __tablename__ = "monitor_drift_reports"
    __table_args__ = (
        Index("ix_monitor_drift_reports_model_end", "model", "window_end"),
        Index("ix_monitor_drift_reports_status", "status"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    window_id: Mapped[str] = mapped_column(String(200), unique=True)
    model: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[str] = mapped_column(String(20))
    first_id: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20))
    drifted_share: Mapped[float | None] = mapped_column(Float, nullable=True)
    drift_detected: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    quality: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    performance: Mapped[dict[str, float]] = mapped_column(JSON)
    estimate: Mapped[dict[str, float] | None] = mapped_column(JSON, nullable=True)
    alarms: Mapped[list[str]] = mapped_column(JSON)
    reference: Mapped[dict[str, Any]] = mapped_column(JSON)
    snapshot: Mapped[str | None] = mapped_column(Text, nullable=True)
    full_snapshot: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WindowPerformanceRow(Base):
    __tablename__ = "monitor_window_performance"
    __table_args__ = (Index("ix_monitor_window_performance_model_end", "model", "window_end"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    window_id: Mapped[str] = mapped_column(String(200), unique=True)
    model: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[int] = mapped_column(Integer)
    task: Mapped[str | None] = mapped_column(String(20), nullable=True)
    rows: Mapped[int] = mapped_column(Integer)
    accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    precision: Mapped[float | None] = mapped_column(Float, nullable=True)
    recall: Mapped[float | None] = mapped_column(Float, nullable=True)
    f1: Mapped[float | None] = mapped_column(Float, nullable=True)
    mse: Mapped[float | None] = mapped_column(Float, nullable=True)
    mae: Mapped[float | None] = mapped_column(Float, nullable=True)
    rmse: Mapped[float | None] = mapped_column(Float, nullable=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


SCORE_COLUMNS = ("accuracy", "precision", "recall", "f1", "mse", "mae", "rmse")


class AlarmRow(Base):
    __tablename__ = "monitor_alarms"
    __table_args__ = (Index("ix_monitor_alarms_model_created", "model", "created_at"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(100))
    detector: Mapped[str] = mapped_column(String(50))
    index: Mapped[int] = mapped_column(BigInteger)
    example_id: Mapped[int] = mapped_column(BigInteger)
    model_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    window_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MonitorRetrainRequestRow(Base):
    """A retraining request the monitor decided on, and its outbox state (``published_at``);
    the retrain stage keeps the requests it received in ``retrain.tables.RetrainRequestRow``."""

    __tablename__ = "monitor_retrain_requests"
    __table_args__ = (Index("ix_monitor_retrain_requests_model", "model", "requested_at"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    model: Mapped[str] = mapped_column(String(100))
    champion_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class StateRow(Base):
    __tablename__ = "monitor_state"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
