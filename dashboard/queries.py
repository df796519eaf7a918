"""Read-only queries over the stream tables: predictions, feedback and labelled examples.

Plain SQLAlchemy on SQLite and PostgreSQL; results are frozen dataclasses or pandas
DataFrames, so every page can be tested without Streamlit. The label a prediction currently
has is the feedback that wins by the store's precedence (a reviewer's label beats the app's,
then the later timestamp, then the larger event id), read straight from the feedback table so
a correction shows as soon as the monitor stored it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pandas as pd  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import String, and_, case, cast, exists, func, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Select

from streams.clock import Clock, utc_now
from streams.db import Database
from streams.store import ExampleRow, FeedbackRow, PredictionRow

LabelState = Literal["all", "unlabelled", "labelled", "disagree", "agree"]
LABEL_STATES: tuple[LabelState, ...] = ("all", "unlabelled", "labelled", "disagree", "agree")

PREDICTION_COLUMNS = (
    "timestamp", "model", "model_version", "request_id", "predicted", "confidence", "label",
    "label_source", "reviewer", "disagrees", "features",
)


@dataclass(frozen=True)
class PredictionFilter:
    """What the Feedback page's filters select; ``None`` means no constraint."""

    model: str | None = None
    versions: tuple[int, ...] = ()
    min_confidence: float | None = None
    max_confidence: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    label_state: LabelState = "all"
    request_id: str | None = None


@dataclass(frozen=True)
class Traffic:
    """One model's recent traffic.

    ``per_second`` divides the predictions of the look-back window by the span that has
    data, ``span_s``: from the first of them to now (at least a second), not by the whole
    window, so a model that started answering two minutes ago shows its real rate.
    """

    model: str
    predictions: int
    per_second: float
    labelled: int
    label_coverage: float | None
    last_prediction: datetime | None
    kind: Literal["class", "value"] | None
    span_s: float = 0.0


@dataclass(frozen=True)
class VersionSeen:
    """When a model version first and last answered (a fallback for promotion marks)."""

    model: str
    version: int
    first_seen: datetime
    last_seen: datetime
    predictions: int


def _winning_event_id(prediction: Any) -> Any:
    """A correlated subquery: the event id of the feedback that wins for ``prediction``.

    Evaluated per candidate prediction through the (model, request_id) index, so the newest
    page of predictions costs the same however much feedback is stored.
    """
    f = aliased(FeedbackRow)
    rank = case((f.source == "reviewer", 1), else_=0)
    return (
        select(f.event_id)
        .where(f.model == prediction.model, f.request_id == prediction.request_id)
        .order_by(rank.desc(), f.timestamp.desc(), f.event_id.desc())
        .limit(1)
        .correlate(prediction)
        .scalar_subquery()
    )


def _as_text(column: Any) -> Any:
    # Both JSON columns go through the same serializer, so equal values have equal text.
    return cast(column, String)


class StreamQueries:
    """The stream tables as the dashboard reads them."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    def _all(self, stmt: Select[Any]) -> list[Any]:
        with self._db.session() as session:
            return list(session.execute(stmt).all())

    def models(self) -> list[str]:
        """Every model that has predictions, by name."""
        rows = self._all(select(PredictionRow.model).distinct().order_by(PredictionRow.model))
        return [r[0] for r in rows]

    def versions(self, model: str) -> list[int]:
        stmt = (
            select(PredictionRow.model_version)
            .distinct()
            .where(PredictionRow.model == model)
            .order_by(PredictionRow.model_version)
        )
        return [int(r[0]) for r in self._all(stmt)]

    def predictions(self, where: PredictionFilter, *, limit: int = 500) -> pd.DataFrame:
        """The newest predictions matching ``where`` with their current label, newest first."""
        p = PredictionRow
        won = aliased(FeedbackRow, name="won")
        disagrees = and_(won.label.is_not(None), _as_text(p.predicted) != _as_text(won.label))
        stmt = (
            select(
                p.timestamp, p.model, p.model_version, p.request_id, p.predicted, p.confidence,
                won.label, won.source, won.reviewer, p.features,
                case((disagrees, True), else_=False).label("disagrees"),
            )
            .select_from(p)
            .outerjoin(won, won.event_id == _winning_event_id(p))
            .order_by(p.timestamp.desc(), p.id.desc())
            .limit(limit)
        )
        if where.model is not None:
            stmt = stmt.where(p.model == where.model)
        if where.versions:
            stmt = stmt.where(p.model_version.in_(where.versions))
        if where.min_confidence is not None:
            stmt = stmt.where(p.confidence >= where.min_confidence)
        if where.max_confidence is not None:
            stmt = stmt.where(p.confidence <= where.max_confidence)
        if where.since is not None:
            stmt = stmt.where(p.timestamp >= where.since)
        if where.until is not None:
            stmt = stmt.where(p.timestamp <= where.until)
        if where.request_id:
            stmt = stmt.where(p.request_id == where.request_id)
        if where.label_state == "unlabelled":
            stmt = stmt.where(won.event_id.is_(None))
        elif where.label_state == "labelled":
            stmt = stmt.where(won.event_id.is_not(None))
        elif where.label_state == "disagree":
            stmt = stmt.where(disagrees)
        elif where.label_state == "agree":
            stmt = stmt.where(
                won.label.is_not(None), _as_text(p.predicted) == _as_text(won.label)
            )
        records = [
            {
                "timestamp": r.timestamp, "model": r.model, "model_version": r.model_version,
                "request_id": r.request_id, "predicted": r.predicted, "confidence": r.confidence,
                "label": r.label, "label_source": r.source, "reviewer": r.reviewer,
                "disagrees": bool(r.disagrees), "features": r.features,
            }
            for r in self._all(stmt)
        ]
        frame = pd.DataFrame.from_records(records, columns=list(PREDICTION_COLUMNS))
        # Keep labels and predictions as the values they are: pandas would turn a column of
        # integers with a missing label into floats (0 -> 0.0, None -> NaN).
        for column in ("predicted", "label"):
            frame[column] = pd.Series([r[column] for r in records], index=frame.index,
                                      dtype=object)
        return frame

    def current(self, model: str, request_ids: Sequence[str]) -> dict[str, tuple[Any, Any]]:
        """For each of ``request_ids`` that has a prediction of ``model``: (predicted, label)."""
        p = PredictionRow
        won = aliased(FeedbackRow, name="won")
        found: dict[str, tuple[Any, Any]] = {}
        ids = list(dict.fromkeys(request_ids))
        for start in range(0, len(ids), 500):
            stmt = (
                select(p.request_id, p.predicted, won.label)
                .select_from(p)
                .outerjoin(won, won.event_id == _winning_event_id(p))
                .where(p.model == model, p.request_id.in_(ids[start:start + 500]))
            )
            found.update({r.request_id: (r.predicted, r.label) for r in self._all(stmt)})
        return found

    def stored_feedback(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these feedback events the monitor has stored already."""
        found: set[str] = set()
        ids = list(dict.fromkeys(event_ids))
        for start in range(0, len(ids), 500):
            stmt = select(FeedbackRow.event_id).where(
                FeedbackRow.event_id.in_(ids[start:start + 500])
            )
            found.update(r[0] for r in self._all(stmt))
        return found

    def feedback_history(self, model: str, request_id: str) -> pd.DataFrame:
        """Every label ever given to one request, oldest first."""
        f = FeedbackRow
        stmt = (
            select(f.timestamp, f.label, f.source, f.reviewer, f.event_id)
            .where(f.model == model, f.request_id == request_id)
            .order_by(f.timestamp, f.id)
        )
        rows = [r._asdict() for r in self._all(stmt)]
        return pd.DataFrame.from_records(
            rows, columns=["timestamp", "label", "source", "reviewer", "event_id"]
        )

    def traffic(self, model: str, *, window: timedelta = timedelta(minutes=15)) -> Traffic:
        """Predictions per second over ``window`` and the share of them that got a label."""
        now = self._clock()
        since = now - window
        p, f = PredictionRow, FeedbackRow
        recent = and_(p.model == model, p.timestamp >= since)
        labelled = exists().where(f.model == p.model, f.request_id == p.request_id)
        stmt = select(
            func.count(), func.sum(case((labelled, 1), else_=0)), func.min(p.timestamp)
        ).where(recent)
        last = select(func.max(p.timestamp)).where(p.model == model)
        kind_stmt = (
            select(p.output).where(p.model == model).order_by(p.timestamp.desc()).limit(1)
        )
        with self._db.session() as session:
            count, with_label, first = session.execute(stmt).one()
            last_ts = session.execute(last).scalar_one_or_none()
            output = session.execute(kind_stmt).scalar_one_or_none()
        count, with_label = int(count or 0), int(with_label or 0)
        kind = output.get("kind") if isinstance(output, dict) else None
        span_s = 0.0
        if first is not None:
            span_s = min(window.total_seconds(),
                         max(1.0, (now - _aware(first)).total_seconds()))
        return Traffic(
            model=model,
            predictions=count,
            per_second=count / span_s if span_s else 0.0,
            labelled=with_label,
            label_coverage=(with_label / count) if count else None,
            last_prediction=last_ts,
            kind=kind if kind in ("class", "value") else None,
            span_s=span_s,
        )

    def versions_seen(self, model: str) -> list[VersionSeen]:
        p = PredictionRow
        stmt = (
            select(p.model_version, func.min(p.timestamp), func.max(p.timestamp), func.count())
            .where(p.model == model)
            .group_by(p.model_version)
            .order_by(func.min(p.timestamp))
        )
        with self._db.session() as session:
            rows = session.execute(stmt).all()
        # Aggregates bypass the column type on SQLite, so normalise the timestamps here.
        return [
            VersionSeen(model, int(v), _aware(first), _aware(last), int(n))
            for v, first, last, n in rows
        ]

    def score_over_time(
        self,
        model: str,
        *,
        bucket: timedelta = timedelta(minutes=5),
        since: datetime | None = None,
        kind: Literal["class", "value"] = "class",
    ) -> pd.DataFrame:
        """Accuracy (classes) or mean squared error (values) of labelled examples per bucket.

        Columns: ``start`` (bucket start), ``model_version``, ``score``, ``metric``, ``examples``.
        """
        e = ExampleRow
        stmt = select(e.prediction_timestamp, e.model_version, e.predicted, e.label).where(
            e.model == model
        )
        if since is not None:
            stmt = stmt.where(e.prediction_timestamp >= since)
        rows = self._all(stmt)
        columns = ["start", "model_version", "score", "metric", "examples"]
        if not rows:
            return pd.DataFrame(columns=columns)
        frame = pd.DataFrame.from_records(
            [(r[0], r[1], _score(r[2], r[3], kind)) for r in rows],
            columns=["timestamp", "model_version", "point"],
        ).dropna(subset=["point"])
        if frame.empty:
            return pd.DataFrame(columns=columns)
        frame["start"] = pd.to_datetime(frame["timestamp"], utc=True).dt.floor(bucket)
        grouped = (
            frame.groupby(["start", "model_version"])["point"]
            .agg(["mean", "count"])
            .reset_index()
            .rename(columns={"mean": "score", "count": "examples"})
        )
        grouped["metric"] = "accuracy" if kind == "class" else "mse"
        return grouped[columns].sort_values(["start", "model_version"]).reset_index(drop=True)


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
    return value.astimezone(UTC)  # type: ignore[no-any-return]


def _score(predicted: Any, label: Any, kind: str) -> float | None:
    """One example's contribution: 1/0 for a class, the squared error for a value."""
    if kind == "class":
        return 1.0 if predicted == label else 0.0
    try:
        error = float(predicted) - float(label)
    except (TypeError, ValueError):
        return None
    return error * error if math.isfinite(error) else None
