"""The monitor's database adapter: archive look-ups, cursors over stored rows, its own tables.

Everything the pure cores need from SQL goes through here. Writes of one batch go in one
transaction (:meth:`MonitorStore.commit`), so the state, the cursors and the rows derived from
them never disagree after a crash. Inserts are ``ON CONFLICT DO NOTHING`` on natural keys
(window id, event id), so a replayed batch writes nothing twice.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from monitor.join import Key
from monitor.performance import Outcome
from monitor.policy import RetrainDecision
from monitor.tables import (
    CLOSED,
    DONE,
    OPEN,
    PENDING,
    SCORE_COLUMNS,
    AlarmRow,
    DriftReportRow,
    MonitorRetrainRequestRow,
    StateRow,
    WindowPerformanceRow,
)
from monitor.windows import ClosedWindow
from streams.clock import Clock
from streams.db import Database
from streams.events import (
    ColumnDrift,
    ColumnQuality,
    DriftReport,
    Feedback,
    Prediction,
    RetrainRequested,
)
from streams.outbox import Outgoing, Pending
from streams.store import ExampleRow, FeedbackRow, PredictionRow


@dataclass(frozen=True)
class ServedRow:
    id: int
    model: str
    version: int
    timestamp: datetime
    output: dict[str, Any] | None = None


@dataclass(frozen=True)
class LabelledRow:
    id: int
    model: str
    version: int
    timestamp: datetime
    outcome: Outcome


@dataclass(frozen=True)
class AlarmRecord:
    model: str
    detector: str
    index: int
    example_id: int
    version: int | None
    window_id: str | None
    error_rate: float | None


@dataclass(frozen=True)
class ReportOutcome:
    """What running (or not running) Evidently on a window gave."""

    window_id: str
    status: str
    columns: tuple[ColumnDrift, ...] = ()
    drifted_share: float | None = None
    drift_detected: bool | None = None
    snapshot: str | None = None
    full_snapshot: str | None = None
    error: str | None = None
    quality: tuple[ColumnQuality, ...] = ()


@dataclass
class Changes:
    """Everything one batch (or one idle tick) writes, in one transaction."""

    state: dict[str, Any] = field(default_factory=dict)
    windows: list[tuple[ClosedWindow, str, list[str], dict[str, Any]]] = field(
        default_factory=list
    )
    alarms: list[AlarmRecord] = field(default_factory=list)
    requests: list[RetrainDecision] = field(default_factory=list)
    closed_requests: list[tuple[str, str]] = field(default_factory=list)
    reports: list[ReportOutcome] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any((self.state, self.windows, self.alarms, self.requests,
                    self.closed_requests, self.reports))


#: Names of the prediction and label columns in window rows (features keep their own names).
PREDICTION = "prediction"
LABEL = "label"


def task_of(output: Mapping[str, Any] | None) -> str:
    return "regression" if output and output.get("kind") == "value" else "classification"


def report_event_id(window_id: str) -> str:
    return f"drift.{window_id}"


class MonitorStore:
    """Reads and writes of the monitor; see the module docstring."""

    def __init__(self, db: Database, *, clock: Clock) -> None:
        self.db = db
        self._now = clock

    # -- the join's archive ------------------------------------------------------------------

    def predictions(self, keys: Collection[Key]) -> Mapping[Key, Prediction]:
        found: dict[Key, Prediction] = {}
        with self.db.session() as session:
            for model, rids in _by_model(keys).items():
                stmt = select(PredictionRow).where(
                    PredictionRow.model == model, PredictionRow.request_id.in_(rids)
                )
                for row in session.execute(stmt).scalars():
                    found[(row.model, row.request_id)] = Prediction.model_validate({
                        "event_id": row.event_id, "request_id": row.request_id,
                        "model": row.model, "model_version": row.model_version,
                        "features": row.features, "output": row.output,
                        "latency_ms": row.latency_ms, "timestamp": row.timestamp,
                    })
        return found

    def feedback(self, keys: Collection[Key]) -> Mapping[Key, Sequence[Feedback]]:
        found: dict[Key, list[Feedback]] = defaultdict(list)
        with self.db.session() as session:
            for model, rids in _by_model(keys).items():
                stmt = select(FeedbackRow).where(
                    FeedbackRow.model == model, FeedbackRow.request_id.in_(rids)
                )
                for row in session.execute(stmt).scalars():
                    found[(row.model, row.request_id)].append(Feedback.model_validate({
                        "event_id": row.event_id, "request_id": row.request_id,
                        "model": row.model, "label": row.label, "source": row.source,
                        "reviewer": row.reviewer, "timestamp": row.timestamp,
                    }))
        return found

    def prediction_event_ids(self, keys: Collection[Key]) -> dict[Key, str]:
        """The event id stored for each key that has a prediction already."""
        found: dict[Key, str] = {}
        with self.db.session() as session:
            for model, rids in _by_model(keys).items():
                stmt = select(PredictionRow.request_id, PredictionRow.event_id).where(
                    PredictionRow.model == model, PredictionRow.request_id.in_(rids)
                )
                for rid, event_id in session.execute(stmt):
                    found[(model, rid)] = event_id
        return found

    def prediction_keys(self, event_ids: Collection[str]) -> dict[str, Key]:
        """The (model, request_id) of each stored prediction among ``event_ids``."""
        found: dict[str, Key] = {}
        with self.db.session() as session:
            for chunk in _chunks(sorted(event_ids)):
                stmt = select(PredictionRow.event_id, PredictionRow.model,
                              PredictionRow.request_id).where(PredictionRow.event_id.in_(chunk))
                for event_id, model, rid in session.execute(stmt):
                    found[event_id] = (model, rid)
        return found

    def feedback_contents(self, event_ids: Collection[str]) -> dict[str, FeedbackContent]:
        """What each stored feedback among ``event_ids`` says (see :func:`feedback_content`)."""
        found: dict[str, FeedbackContent] = {}
        with self.db.session() as session:
            for chunk in _chunks(sorted(event_ids)):
                stmt = select(FeedbackRow.event_id, FeedbackRow.model, FeedbackRow.request_id,
                              FeedbackRow.label, FeedbackRow.source, FeedbackRow.reviewer
                              ).where(FeedbackRow.event_id.in_(chunk))
                for event_id, model, rid, label, source, reviewer in session.execute(stmt):
                    found[event_id] = (model, rid, json.dumps(label), source, reviewer)
        return found

    # -- cursors -----------------------------------------------------------------------------

    def served_after(self, after_id: int, limit: int) -> list[ServedRow]:
        stmt = (
            select(PredictionRow.id, PredictionRow.model, PredictionRow.model_version,
                   PredictionRow.timestamp, PredictionRow.output)
            .where(PredictionRow.id > after_id).order_by(PredictionRow.id).limit(limit)
        )
        with self.db.session() as session:
            return [ServedRow(*row) for row in session.execute(stmt)]

    def labelled_after(
        self, after_id: int, limit: int, *, model: str | None = None, newest: bool = False,
        until_id: int | None = None,
    ) -> list[LabelledRow]:
        """Labelled examples with an id above ``after_id`` (and at most ``until_id``), oldest
        first (or the newest ``limit`` of them, still oldest first)."""
        stmt = (
            select(ExampleRow.id, ExampleRow.model, ExampleRow.model_version,
                   ExampleRow.prediction_timestamp, ExampleRow.predicted, ExampleRow.label,
                   PredictionRow.output)
            .outerjoin(PredictionRow, (PredictionRow.model == ExampleRow.model)
                       & (PredictionRow.request_id == ExampleRow.request_id))
            .where(ExampleRow.id > after_id)
        )
        if model is not None:
            stmt = stmt.where(ExampleRow.model == model)
        if until_id is not None:
            stmt = stmt.where(ExampleRow.id <= until_id)
        order = ExampleRow.id.desc() if newest else ExampleRow.id
        with self.db.session() as session:
            rows = list(session.execute(stmt.order_by(order).limit(limit)))
        if newest:
            rows.reverse()
        return [
            LabelledRow(r[0], r[1], r[2], r[3], Outcome(task_of(r[6]), r[4], r[5]))  # type: ignore[arg-type]
            for r in rows
        ]

    # -- rows of windows and references, for the drift reports -------------------------------

    def window_rows(
        self, kind: str, model: str, version: int | None, first_id: int, last_id: int
    ) -> list[dict[str, Any]]:
        """The rows of one window as flat dicts: features, prediction (and label)."""
        table: Any = ExampleRow if kind == "labelled" else PredictionRow
        stmt = self._row_select(kind).where(
            table.model == model, table.id >= first_id, table.id <= last_id
        ).order_by(table.id)
        if version is not None:
            stmt = stmt.where(table.model_version == version)
        return self._flat(stmt)

    def first_rows(self, kind: str, model: str, limit: int) -> list[dict[str, Any]]:
        """The first ``limit`` rows the monitor stored for ``model``."""
        table: Any = ExampleRow if kind == "labelled" else PredictionRow
        stmt = self._row_select(kind).where(table.model == model).order_by(table.id)
        return self._flat(stmt.limit(limit))

    def examples_between(
        self, model: str, start: datetime, end: datetime, limit: int
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` labelled examples predicted in [start, end], evenly spread."""
        where = (ExampleRow.model == model, ExampleRow.prediction_timestamp >= start,
                 ExampleRow.prediction_timestamp <= end)
        with self.db.session() as session:
            ids = list(session.execute(
                select(ExampleRow.id).where(*where).order_by(ExampleRow.id)).scalars())
        if len(ids) > limit:
            step = len(ids) / limit
            ids = [ids[int(i * step)] for i in range(limit)]
        rows: list[dict[str, Any]] = []
        for start_at in range(0, len(ids), 500):
            chunk = ids[start_at:start_at + 500]
            rows += self._flat(self._row_select("labelled").where(ExampleRow.id.in_(chunk))
                               .order_by(ExampleRow.id))
        return rows

    @staticmethod
    def _row_select(kind: str) -> Any:
        if kind == "labelled":
            return select(ExampleRow.features, ExampleRow.predicted, ExampleRow.label)
        return select(PredictionRow.features, PredictionRow.predicted)

    def _flat(self, stmt: Any) -> list[dict[str, Any]]:
        with self.db.session() as session:
            result = session.execute(stmt).all()
        rows = []
        for row in result:
            flat = dict(row[0])
            flat[PREDICTION if PREDICTION not in flat else f"_{PREDICTION}"] = row[1]
            if len(row) > 2:
                flat[LABEL if LABEL not in flat else f"_{LABEL}"] = row[2]
            rows.append(flat)
        return rows

    # -- the monitor's own tables --------------------------------------------------------------

    def load_state(self) -> dict[str, Any]:
        with self.db.session() as session:
            return {row.key: row.value for row in session.execute(select(StateRow)).scalars()}

    def commit(self, changes: Changes) -> None:
        if not changes:
            return
        now = self._now()
        with self.db.session() as session:
            for key, value in changes.state.items():
                stmt = self.db.insert(StateRow.__table__).values(key=key, value=value,
                                                               updated_at=now)
                session.execute(stmt.on_conflict_do_update(
                    index_elements=["key"], set_={"value": value, "updated_at": now}))
            for window, status, alarms, reference in changes.windows:
                self._add_window(session, window, status, alarms, reference, now)
            for alarm in changes.alarms:
                session.add(AlarmRow(
                    model=alarm.model, detector=alarm.detector, index=alarm.index,
                    example_id=alarm.example_id, model_version=alarm.version,
                    window_id=alarm.window_id, error_rate=alarm.error_rate, created_at=now,
                ))
            for decision in changes.requests:
                session.execute(self.db.insert(MonitorRetrainRequestRow.__table__).values(
                    event_id=decision.event_id, model=decision.model,
                    champion_version=decision.champion_version, reasons=list(decision.reasons),
                    evidence=decision.evidence, status=OPEN, requested_at=decision.at,
                ).on_conflict_do_nothing())
            for event_id, reason in changes.closed_requests:
                session.execute(
                    update(MonitorRetrainRequestRow)
                    .where(MonitorRetrainRequestRow.event_id == event_id,
                           MonitorRetrainRequestRow.status == OPEN)
                    .values(status=CLOSED, closed_at=now, closed_reason=reason)
                )
            for outcome in changes.reports:
                session.execute(
                    update(DriftReportRow)
                    .where(DriftReportRow.window_id == outcome.window_id,
                           DriftReportRow.status == PENDING)
                    .values(
                        status=outcome.status, drifted_share=outcome.drifted_share,
                        drift_detected=outcome.drift_detected,
                        columns=[c.model_dump() for c in outcome.columns],
                        quality=[q.model_dump() for q in outcome.quality],
                        snapshot=outcome.snapshot, full_snapshot=outcome.full_snapshot,
                        error=outcome.error, completed_at=now,
                    )
                )

    def _add_window(
        self, session: Session, window: ClosedWindow, status: str, alarms: list[str],
        reference: dict[str, Any], now: datetime,
    ) -> None:
        session.execute(self.db.insert(DriftReportRow.__table__).values(
            event_id=report_event_id(window.window_id), window_id=window.window_id,
            model=window.model, model_version=window.version, kind=window.kind,
            trigger=window.trigger, first_id=window.first_id, last_id=window.last_id,
            rows=window.rows, window_start=window.start, window_end=window.end, status=status,
            columns=[], performance=window.performance, estimate=window.estimate, alarms=alarms,
            reference=reference, created_at=now, completed_at=None if status == PENDING else now,
        ).on_conflict_do_nothing())
        if window.performance:
            scores = {k: window.performance.get(k) for k in SCORE_COLUMNS}
            session.execute(self.db.insert(WindowPerformanceRow.__table__).values(
                window_id=window.window_id, model=window.model, model_version=window.version,
                task=window.task, rows=window.rows, window_start=window.start,
                window_end=window.end, created_at=now, **scores,
            ).on_conflict_do_nothing())

    def pending_windows(self) -> list[DriftReportRow]:
        stmt = select(DriftReportRow).where(DriftReportRow.status == PENDING).order_by(
            DriftReportRow.id)
        with self.db.session() as session:
            return list(session.execute(stmt).scalars())

    # -- outbox -----------------------------------------------------------------------------

    def pending(self) -> Pending[str]:
        """The outbox (:mod:`streams.outbox`): requests and finished reports not yet on Kafka,
        oldest first, keyed by model; retired are the event ids of finished reports that are
        never published (no drift result and no scores)."""
        with self.db.session() as session:
            requests = session.execute(
                select(MonitorRetrainRequestRow).where(MonitorRetrainRequestRow.published_at.is_(None))
                .order_by(MonitorRetrainRequestRow.id)).scalars().all()
            reports = session.execute(
                select(DriftReportRow).where(DriftReportRow.published_at.is_(None),
                                             DriftReportRow.status != PENDING)
                .order_by(DriftReportRow.id)).scalars().all()
        events: list[RetrainRequested | DriftReport] = [
            RetrainRequested(
                event_id=r.event_id, model=r.model, champion_version=r.champion_version,
                reasons=tuple(r.reasons), evidence=r.evidence, timestamp=r.requested_at,
            )
            for r in requests
        ]
        publishable = [r for r in reports if r.status == DONE or r.performance]
        events += [_report_event(r) for r in publishable]
        retired = [r.event_id for r in reports if not (r.status == DONE or r.performance)]
        return Pending([Outgoing(e.event_id, e, e.model) for e in events], retired)

    def mark_published(self, event_ids: Collection[str]) -> None:
        if not event_ids:
            return
        now = self._now()
        ids = list(event_ids)
        with self.db.session() as session:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                session.execute(update(MonitorRetrainRequestRow).where(
                    MonitorRetrainRequestRow.event_id.in_(chunk)).values(published_at=now))
                session.execute(update(DriftReportRow).where(
                    DriftReportRow.event_id.in_(chunk)).values(published_at=now))

    # -- reads for the dashboard and the tests ------------------------------------------------

    def reports(self, model: str | None = None) -> list[DriftReportRow]:
        stmt = select(DriftReportRow).order_by(DriftReportRow.id)
        if model is not None:
            stmt = stmt.where(DriftReportRow.model == model)
        with self.db.session() as session:
            return list(session.execute(stmt).scalars())

    def requests(self, model: str | None = None) -> list[MonitorRetrainRequestRow]:
        stmt = select(MonitorRetrainRequestRow).order_by(MonitorRetrainRequestRow.id)
        if model is not None:
            stmt = stmt.where(MonitorRetrainRequestRow.model == model)
        with self.db.session() as session:
            return list(session.execute(stmt).scalars())

    def alarms(self, model: str | None = None) -> list[AlarmRow]:
        stmt = select(AlarmRow).order_by(AlarmRow.id)
        if model is not None:
            stmt = stmt.where(AlarmRow.model == model)
        with self.db.session() as session:
            return list(session.execute(stmt).scalars())


def _report_event(row: DriftReportRow) -> DriftReport:
    return DriftReport(
        event_id=row.event_id, model=row.model, model_version=row.model_version,
        window_id=row.window_id, window_start=row.window_start, window_end=row.window_end,
        rows=row.rows, drifted_share=row.drifted_share or 0.0,
        drift_detected=bool(row.drift_detected),
        columns=tuple(ColumnDrift(**c) for c in row.columns),
        quality=tuple(ColumnQuality(**q) for q in row.quality or ()),
        performance=row.performance, alarms=tuple(row.alarms),
        timestamp=row.completed_at or row.created_at,
    )


def _by_model(keys: Collection[Key]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for model, rid in keys:
        grouped[model].append(rid)
    return grouped


#: What makes two feedback events with one event id the same event: a replay repeats it.
FeedbackContent = tuple[str, str, str, str, str | None]


def feedback_content(feedback: Feedback) -> FeedbackContent:
    return (feedback.model, feedback.request_id, json.dumps(feedback.label), feedback.source,
            feedback.reviewer)


def _chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
