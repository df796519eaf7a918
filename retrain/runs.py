"""The record of every retraining run and every retrain request received from Kafka.

A run starts by inserting a ``running`` row; a partial unique index lets only one run of a
model be ``running``, so a second trigger for a model already in training is recorded as
``skipped`` with the run it collided with. Every run ends ``succeeded`` (with the decision:
``promoted``, ``rejected``, or ``reused`` when an archived version was promoted again
without training), ``failed`` (with the error) or ``skipped``, with its timings,
device, metrics and log.

A ``RetrainRequested`` is stored (idempotently, by its event id) before the consumer commits
its offset, as ``pending``. The job that serves it first *claims* it (``pending`` ->
``running`` in one conditional UPDATE), so however often the request is replayed or its job
fires, it is trained at most once. Runs left ``running`` by a process that died are marked
``failed`` by :meth:`RunStore.recover` when the next process starts; a run left ``running`` by
a job that a database outage cut short is marked ``failed`` by :meth:`RunStore.abandon` once
the database is back (see :mod:`retrain.jobs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from retrain.decision import RunScores
from retrain.tables import RetrainRequestRow, RetrainRunRow
from streams.clock import Clock, utc_now
from streams.db import Database
from streams.errors import StoreError
from streams.events import RetrainRequested
from streams.statuses import RequestStatus, RunStatus

INTERRUPTED = "interrupted: the retrain process stopped during the run"
OUTAGE = "interrupted: the database went away during the run"
_MAX_LOG = 200_000


@dataclass(frozen=True)
class RunInfo:
    id: int
    model: str
    trigger: str
    request_id: str | None
    status: RunStatus
    decision: str | None
    version: int | None
    device: str | None
    metrics: RunScores
    error: str | None
    log: str
    started_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, r: RetrainRunRow) -> RunInfo:
        return cls(r.id, r.model, r.trigger, r.request_id, RunStatus(r.status), r.decision,
                   r.version, r.device, r.metrics, r.error, r.log, r.started_at,
                   r.finished_at)

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class RequestInfo:
    event_id: str
    model: str
    reasons: tuple[str, ...]
    evidence: Mapping[str, Any]
    champion_version: int | None
    requested_at: datetime
    status: RequestStatus
    run_id: int | None

    @classmethod
    def of(cls, r: RetrainRequestRow) -> RequestInfo:
        return cls(r.event_id, r.model, tuple(r.reasons), dict(r.evidence), r.champion_version,
                   r.requested_at, RequestStatus(r.status), r.run_id)


@dataclass(frozen=True)
class RunStart:
    """The outcome of trying to start a run: its id, and why it was skipped if it was."""

    run_id: int
    skipped: str | None = None


class RunStore:
    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self.db = db
        self._now = clock

    # -- runs -----------------------------------------------------------------------------

    def start(self, model: str, trigger: str, request_id: str | None = None) -> RunStart:
        """Record a running run, or a skipped one if ``model`` already has a run in progress."""
        now = self._now()
        try:
            with self.db.session() as session:
                row = RetrainRunRow(model=model, trigger=trigger, request_id=request_id,
                                    status=RunStatus.RUNNING, metrics={}, log="", started_at=now)
                session.add(row)
                session.flush()
                return RunStart(row.id)
        except StoreError as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
        busy = self.running(model)
        reason = (f"another run of {model} is in progress (run {busy.id}, {busy.trigger})"
                  if busy is not None else f"another run of {model} was in progress")
        with self.db.session() as session:
            row = RetrainRunRow(model=model, trigger=trigger, request_id=request_id,
                                status=RunStatus.SKIPPED, metrics={}, error=reason,
                                log=reason + "\n", started_at=now, finished_at=now)
            session.add(row)
            session.flush()
            return RunStart(row.id, reason)

    def finish(
        self, run_id: int, *, status: RunStatus, decision: str | None = None,
        version: int | None = None, device: str | None = None,
        metrics: RunScores | None = None, error: str | None = None, log: str = "",
    ) -> None:
        with self.db.session() as session:
            row = session.get(RetrainRunRow, run_id)
            if row is None:
                raise StoreError(f"no run {run_id}")
            row.status, row.decision, row.version, row.device = status, decision, version, device
            row.metrics = metrics or {}
            row.error = error[:20_000] if error else None
            row.log = log[-_MAX_LOG:]
            row.finished_at = self._now()

    def running(self, model: str) -> RunInfo | None:
        stmt = select(RetrainRunRow).where(RetrainRunRow.model == model,
                                           RetrainRunRow.status == RunStatus.RUNNING)
        with self.db.session() as session:
            row = session.execute(stmt).scalar_one_or_none()
            return RunInfo.of(row) if row is not None else None

    def run(self, run_id: int) -> RunInfo:
        with self.db.session() as session:
            row = session.get(RetrainRunRow, run_id)
            if row is None:
                raise StoreError(f"no run {run_id}")
            return RunInfo.of(row)

    def runs(self, model: str | None = None, *, limit: int | None = None) -> list[RunInfo]:
        """Runs, oldest first (the newest ``limit``)."""
        stmt = select(RetrainRunRow).order_by(RetrainRunRow.id.desc())
        if model is not None:
            stmt = stmt.where(RetrainRunRow.model == model)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.db.session() as session:
            return [RunInfo.of(r) for r in reversed(list(session.execute(stmt).scalars()))]

    def recover(self) -> list[RunInfo]:
        """Mark runs (and their requests) left running by a dead process as failed."""
        now = self._now()
        with self.db.session() as session:
            rows = list(session.execute(
                select(RetrainRunRow).where(RetrainRunRow.status == RunStatus.RUNNING)).scalars())
            for row in rows:
                row.status, row.error, row.finished_at = RunStatus.FAILED, INTERRUPTED, now
                row.log = (row.log or "") + INTERRUPTED + "\n"
            session.execute(
                update(RetrainRequestRow).where(RetrainRequestRow.status == RequestStatus.RUNNING)
                .values(status=RequestStatus.FAILED)
            )
            return [RunInfo.of(r) for r in rows]

    def abandon(self, model: str) -> list[RunInfo]:
        """Mark ``model``'s run left ``running`` by a job an outage cut short as failed (it
        would hold the model's run lock for good); the runs marked."""
        now = self._now()
        with self.db.session() as session:
            rows = list(session.execute(
                select(RetrainRunRow).where(RetrainRunRow.model == model,
                                            RetrainRunRow.status == RunStatus.RUNNING)).scalars())
            for row in rows:
                row.status, row.error, row.finished_at = RunStatus.FAILED, OUTAGE, now
                row.log = (row.log or "") + OUTAGE + "\n"
            return [RunInfo.of(r) for r in rows]

    # -- requests -------------------------------------------------------------------------

    def record_request(self, event: RetrainRequested) -> bool:
        """Store a request as pending; False when it was already stored (a replay)."""
        stmt = self.db.insert(RetrainRequestRow).values(
            event_id=event.event_id, model=event.model, reasons=list(event.reasons),
            evidence=dict(event.evidence), champion_version=event.champion_version,
            requested_at=event.timestamp, received_at=self._now(), status=RequestStatus.PENDING,
        ).on_conflict_do_nothing().returning(RetrainRequestRow.event_id)
        with self.db.session() as session:
            return session.execute(stmt).first() is not None

    def claim_request(self, event_id: str) -> RequestInfo | None:
        """Move a pending request to running; None if it was already claimed or is unknown."""
        with self.db.session() as session:
            result: Any = session.execute(
                update(RetrainRequestRow)
                .where(RetrainRequestRow.event_id == event_id,
                       RetrainRequestRow.status == RequestStatus.PENDING)
                .values(status=RequestStatus.RUNNING)
            )
            if result.rowcount != 1:
                return None
            row = session.get(RetrainRequestRow, event_id)
            return RequestInfo.of(row) if row is not None else None

    def release_request(self, event_id: str) -> None:
        """Put a claimed request back to pending (its run was deferred)."""
        with self.db.session() as session:
            session.execute(
                update(RetrainRequestRow)
                .where(RetrainRequestRow.event_id == event_id,
                       RetrainRequestRow.status == RequestStatus.RUNNING)
                .values(status=RequestStatus.PENDING)
            )

    def finish_request(self, event_id: str, *, status: RequestStatus, run_id: int | None) -> None:
        with self.db.session() as session:
            session.execute(
                update(RetrainRequestRow).where(RetrainRequestRow.event_id == event_id)
                .values(status=status, run_id=run_id)
            )

    def request(self, event_id: str) -> RequestInfo | None:
        with self.db.session() as session:
            row = session.get(RetrainRequestRow, event_id)
            return RequestInfo.of(row) if row is not None else None

    def pending_requests(self) -> list[RequestInfo]:
        stmt = (select(RetrainRequestRow).where(RetrainRequestRow.status == RequestStatus.PENDING)
                .order_by(RetrainRequestRow.received_at))
        with self.db.session() as session:
            return [RequestInfo.of(r) for r in session.execute(stmt).scalars()]
