"""Idempotent storage of predictions, feedback and labelled examples (SQLite and PostgreSQL).

Every write is an ``INSERT .. ON CONFLICT``: replaying an event (a consumer restarted
before it committed) never makes a second row. A labelled example keeps the label that wins
by the precedence of :mod:`streams.labels`, whatever order the feedback arrived in (a
reviewer's label beats the app's, then the later timestamp, then the larger event id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    UniqueConstraint,
    and_,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

from streams.clock import Clock, as_utc, utc_now
from streams.db import Base, Database
from streams.events import ClassOutput, Feedback, Prediction
from streams.labels import SOURCE_RANK, precedence

_ID = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on both dialects (SQLite keeps them naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        value = _utc(value)
        if value is not None and dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return _utc(value)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


class PredictionRow(Base):
    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("model", "request_id", name="uq_predictions_model_request"),
        Index("ix_predictions_model_ts", "model", "timestamp"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    model: Mapped[str] = mapped_column(String(100))
    request_id: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[int] = mapped_column(Integer)
    features: Mapped[dict[str, Any]] = mapped_column(JSON)
    output: Mapped[dict[str, Any]] = mapped_column(JSON)
    predicted: Mapped[Any] = mapped_column(JSON)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FeedbackRow(Base):
    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_model_request", "model", "request_id"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    model: Mapped[str] = mapped_column(String(100))
    request_id: Mapped[str] = mapped_column(String(200))
    label: Mapped[Any] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(20))
    reviewer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ExampleRow(Base):
    __tablename__ = "labelled_examples"
    __table_args__ = (
        UniqueConstraint("model", "request_id", name="uq_examples_model_request"),
        Index("ix_examples_model_ts", "model", "prediction_timestamp"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(100))
    request_id: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[int] = mapped_column(Integer)
    features: Mapped[dict[str, Any]] = mapped_column(JSON)
    predicted: Mapped[Any] = mapped_column(JSON)
    label: Mapped[Any] = mapped_column(JSON)
    label_source: Mapped[str] = mapped_column(String(20))
    label_rank: Mapped[int] = mapped_column(Integer)
    label_event_id: Mapped[str] = mapped_column(String(200))
    label_timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    prediction_timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class LabelledExample:
    """A prediction joined with the label that currently wins for it."""

    model: str
    request_id: str
    model_version: int
    features: dict[str, Any]
    predicted: Any
    label: Any
    label_source: str
    label_event_id: str
    label_timestamp: datetime
    prediction_timestamp: datetime

    @classmethod
    def join(cls, prediction: Prediction, feedback: Feedback) -> LabelledExample:
        return cls(
            model=prediction.model,
            request_id=prediction.request_id,
            model_version=prediction.model_version,
            features=dict(prediction.features),
            predicted=predicted_value(prediction),
            label=feedback.label,
            label_source=feedback.source,
            label_event_id=feedback.event_id,
            label_timestamp=feedback.timestamp,
            prediction_timestamp=prediction.timestamp,
        )

    def beats(self, other: LabelledExample) -> bool:
        """Whether this example's label takes precedence over ``other``'s."""
        return precedence(self.label_source, self.label_timestamp, self.label_event_id) > (
            precedence(other.label_source, other.label_timestamp, other.label_event_id)
        )


def predicted_value(prediction: Prediction) -> Any:
    out = prediction.output
    return out.label if isinstance(out, ClassOutput) else out.value


def _confidence(prediction: Prediction) -> float | None:
    out = prediction.output
    if isinstance(out, ClassOutput) and out.probabilities:
        return max(out.probabilities.values())
    return None


class EventStore:
    """Predictions, feedback and labelled examples in one database."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self.db = db
        self._now = clock

    def _insert_ignore(self, session: Session, table: Any, rows: Sequence[dict[str, Any]]) -> int:
        """Insert ``rows``, skipping any that collide with a stored one; return how many landed.

        One statement executed over many parameter sets: SQLAlchemy compiles it once and
        batches the rows itself, which is several times cheaper than a multi-VALUES insert.
        """
        if not rows:
            return 0
        stmt = self.db.insert(table).on_conflict_do_nothing().returning(table.c.id)
        return len(session.execute(stmt, list(rows)).all())

    def add_predictions(self, predictions: Sequence[Prediction]) -> int:
        """Store predictions; return how many were new (replays and duplicates are ignored)."""
        now = self._now()
        rows = [
            {
                "event_id": p.event_id,
                "model": p.model,
                "request_id": p.request_id,
                "model_version": p.model_version,
                "features": dict(p.features),
                "output": p.output.model_dump(mode="json"),
                "predicted": predicted_value(p),
                "confidence": _confidence(p),
                "latency_ms": p.latency_ms,
                "timestamp": _utc(p.timestamp),
                "stored_at": now,
            }
            for p in predictions
        ]
        with self.db.session() as session:
            return self._insert_ignore(session, PredictionRow.__table__, rows)

    def add_feedback(self, feedback: Sequence[Feedback]) -> int:
        """Store every feedback event (corrections included); return how many were new."""
        now = self._now()
        rows = [
            {
                "event_id": f.event_id,
                "model": f.model,
                "request_id": f.request_id,
                "label": f.label,
                "source": f.source,
                "reviewer": f.reviewer,
                "timestamp": _utc(f.timestamp),
                "stored_at": now,
            }
            for f in feedback
        ]
        with self.db.session() as session:
            return self._insert_ignore(session, FeedbackRow.__table__, rows)

    def upsert_examples(self, examples: Sequence[LabelledExample]) -> None:
        """Insert examples, or replace a stored one's label when the new label wins."""
        if not examples:
            return
        # One statement may not touch a row twice (PostgreSQL refuses): keep the winner.
        best: dict[tuple[str, str], LabelledExample] = {}
        for ex in examples:
            key = (ex.model, ex.request_id)
            if key not in best or ex.beats(best[key]):
                best[key] = ex
        now = self._now()
        rows = [
            {
                "model": ex.model,
                "request_id": ex.request_id,
                "model_version": ex.model_version,
                "features": ex.features,
                "predicted": ex.predicted,
                "label": ex.label,
                "label_source": ex.label_source,
                "label_rank": SOURCE_RANK[ex.label_source],
                "label_event_id": ex.label_event_id,
                "label_timestamp": _utc(ex.label_timestamp),
                "prediction_timestamp": _utc(ex.prediction_timestamp),
                "updated_at": now,
            }
            for ex in best.values()
        ]
        table = ExampleRow.__table__
        stmt = self.db.insert(table)
        new = stmt.excluded
        # streams.labels' rule over the stored rank, timestamp and event id.
        wins = or_(
            new.label_rank > table.c.label_rank,
            and_(
                new.label_rank == table.c.label_rank,
                or_(
                    new.label_timestamp > table.c.label_timestamp,
                    and_(
                        new.label_timestamp == table.c.label_timestamp,
                        new.label_event_id > table.c.label_event_id,
                    ),
                ),
            ),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["model", "request_id"],
            set_={
                "label": new.label,
                "label_source": new.label_source,
                "label_rank": new.label_rank,
                "label_event_id": new.label_event_id,
                "label_timestamp": new.label_timestamp,
                "updated_at": new.updated_at,
            },
            where=wins,
        )
        with self.db.session() as session:
            session.execute(stmt, rows)

    # -- reads ---------------------------------------------------------------------------

    def count(self, table: type[Base], model: str | None = None) -> int:
        stmt = select(func.count()).select_from(table)
        if model is not None:
            stmt = stmt.where(table.model == model)  # type: ignore[attr-defined]
        with self.db.session() as session:
            return int(session.execute(stmt).scalar_one())

    def prediction(self, model: str, request_id: str) -> PredictionRow | None:
        stmt = select(PredictionRow).where(
            PredictionRow.model == model, PredictionRow.request_id == request_id
        )
        with self.db.session() as session:
            return session.execute(stmt).scalar_one_or_none()

    def example(self, model: str, request_id: str) -> ExampleRow | None:
        stmt = select(ExampleRow).where(
            ExampleRow.model == model, ExampleRow.request_id == request_id
        )
        with self.db.session() as session:
            return session.execute(stmt).scalar_one_or_none()

    def examples(
        self, model: str, *, since: datetime | None = None, limit: int | None = None
    ) -> list[ExampleRow]:
        """Labelled examples of ``model``, oldest prediction first (the newest ``limit``)."""
        stmt = select(ExampleRow).where(ExampleRow.model == model)
        if since is not None:
            stmt = stmt.where(ExampleRow.prediction_timestamp >= _utc(since))
        if limit is not None:
            stmt = stmt.order_by(ExampleRow.prediction_timestamp.desc(), ExampleRow.id.desc())
            stmt = stmt.limit(limit)
        else:
            stmt = stmt.order_by(ExampleRow.prediction_timestamp, ExampleRow.id)
        with self.db.session() as session:
            rows = list(session.execute(stmt).scalars())
        if limit is not None:
            rows.reverse()
        return rows
