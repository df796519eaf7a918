"""The monitor's batch handler: store, join, windows, detectors, policy.

It handles the batches of one consumer group over the predictions, feedback and model-updates
topics (see :mod:`monitor.process`). Each batch:

1. champion changes (``ModelPromoted``/``ModelRolledBack``) are read, with their manifests;
2. the :class:`monitor.intake.Intake` stores its predictions and feedback (dead-lettering
   conflicts and labels of the wrong type) and the examples the join made of them;
3. the rows stored since the last batch are read back in store-id order — predictions into the
   ``served`` windows (calibrated when the champion has a calibration, for the estimate of
   :mod:`monitor.estimate`), first-time labelled examples into the detectors, the ``labelled``
   windows and the policy — and everything derived (cursors, window and detector state, closed
   windows, alarms, retrain requests) is written in one transaction;
4. closed windows are queued for their Evidently report in the drift worker; finished reports
   are written back and fed to the policy;
5. retrain requests and finished reports are published on the drift topic (an outbox), and
   only then does the consumer loop commit the offsets.

Every step is idempotent or derived from the store through cursors, so a batch replayed after a
crash or a failed write changes nothing twice; in-memory state is reloaded from the database
whenever a write fails.

The detectors follow the version serving actually runs, not just the champion the registry
names: they move to a new champion when its first prediction is read, and restart on its
errors (late labels of the version it replaced are then left out). A promotion serving refused
(``SwapFailed``) never makes a prediction, so the version still serving keeps feeding them and
detection never goes blind while the registry converges on what serving runs (see
:mod:`retrain.registry`). Before any champion is known, every prediction feeds them.

Limits: the monitor assumes it is the only writer of labelled examples and of its own tables —
run one ``driftloop monitor`` per database (its cursors and state are not shared between
instances). A label corrected after its example was first labelled updates the stored example,
not the detectors or the window that already counted it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from kafka import TopicPartition

from monitor import metrics
from monitor.champion import ChampionProfile, champion_of
from monitor.detectors import DetectorConfig, ErrorDetectors
from monitor.drift_worker import DriftJob, DriftWorker, ReferenceSpec
from monitor.estimate import calibrate, window_estimate
from monitor.intake import Intake
from monitor.join import JoinConfig
from monitor.performance import ErrorScale
from monitor.policy import (
    ChampionChanged,
    DetectorFired,
    LabelsArrived,
    PolicyConfig,
    QualityViolated,
    RetrainPolicy,
    Signal,
    WindowDrift,
    WindowEstimate,
    WindowScore,
)
from monitor.report_queue import ReportQueue
from monitor.store import (
    AlarmRecord,
    Changes,
    LabelledRow,
    MonitorStore,
    ServedRow,
)
from monitor.tables import DONE, PENDING, SKIPPED
from monitor.windows import Calibrated, ClosedWindow, WindowConfig, WindowRow, Windows
from streams.backoff import Backoff, RetryGate
from streams.calibration import Calibration
from streams.clock import Clock, utc_now
from streams.consumer import Batch
from streams.db import Database
from streams.errors import BrokerError, StoreError
from streams.events import ColumnQuality, ModelPromoted, ModelRolledBack
from streams.outbox import publish_pending
from streams.producer import Producer
from streams.settings import Settings
from streams.store import EventStore
from streams.topics import Topic, TopicNames

log = logging.getLogger(__name__)

CURSOR_CHUNK = 5_000
#: First and longest wait before idle work is tried again after the database or the broker
#: failed it.
IDLE_RETRY_MIN_S = 0.5
IDLE_RETRY_MAX_S = 5.0
#: The monitor's idle work on the ``driftloop_degraded`` gauge.
IDLE_COMPONENT = "monitor-idle"


class _ModelState:
    """Per-model detector state.

    ``follows`` is the version whose errors the detectors watch (None: every version's): the
    last champion that made a prediction, which is what serving runs.
    """

    def __init__(self, config: DetectorConfig) -> None:
        self.detectors = ErrorDetectors(config)
        self.scale = ErrorScale()
        self.champion: ChampionProfile | None = None
        self.window_alarms: dict[str, list[str]] = {}
        self.follows: int | None = None

    def state(self) -> dict[str, Any]:
        """What changes batch by batch; the champion is written apart, when it changes
        (``champion.<model>``): its calibration curves would otherwise be serialized and
        stored again with every batch."""
        return {
            "detectors": self.detectors.state(), "scale": self.scale.state(),
            "window_alarms": dict(self.window_alarms), "follows": self.follows,
        }


class Monitor:
    """The batch handler of ``driftloop monitor`` (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        producer: Producer,
        worker: DriftWorker,
        *,
        events: EventStore,
        store: MonitorStore,
        clock: Clock = utc_now,
    ) -> None:
        """``events`` holds what the streams carry, ``store`` the monitor's own state and
        outbox; both must read the same ``clock`` as the monitor (see :meth:`on`)."""
        self.settings = settings
        self.config = settings.monitor
        self._clock = clock
        self._producer = producer
        self.reports = ReportQueue(worker, settings.monitor)
        self._drift_topic = TopicNames(settings.topics.prefix)(Topic.DRIFT)
        self.events = events
        self.store = store
        self.intake = Intake(events, store, JoinConfig(self.config.join_ttl_s,
                                                       self.config.max_pending))
        self._detector_config = DetectorConfig.from_settings(self.config)
        self._window_config = WindowConfig.from_settings(self.config)
        self._policy_config = PolicyConfig.from_settings(self.config)
        self._lag_at = 0.0
        self._stale = False
        self._idle_gate = RetryGate("monitor idle work", IDLE_COMPONENT,
                                    backoff=Backoff(IDLE_RETRY_MIN_S, IDLE_RETRY_MAX_S))
        self._load()

    @classmethod
    def on(cls, settings: Settings, db: Database, producer: Producer, worker: DriftWorker, *,
           clock: Clock = utc_now) -> Monitor:
        """A monitor whose stores are in ``db``, all reading ``clock``."""
        return cls(settings, producer, worker, events=EventStore(db, clock=clock),
                   store=MonitorStore(db, clock=clock), clock=clock)

    # -- state -------------------------------------------------------------------------------

    def _load(self) -> None:
        """(Re)build every in-memory state from the database."""
        state = self.store.load_state()
        cursors = state.get("cursors", {})
        self._served_cursor = int(cursors.get("served", 0))
        self._labelled_cursor = int(cursors.get("labelled", 0))
        self.served = Windows.from_state("served", self._window_config,
                                         state.get("windows.served", {}))
        self.labelled = Windows.from_state("labelled", self._window_config,
                                           state.get("windows.labelled", {}))
        self.policy = RetrainPolicy.from_state(self._policy_config, self._clock,
                                               state.get("policy", {}))
        self.models: dict[str, _ModelState] = {}
        for key, value in state.items():
            if key.startswith("model."):
                model = key.removeprefix("model.")
                # State written before the champion had a key of its own kept it here.
                champion = state.get(f"champion.{model}") or value.get("champion")
                self.models[model] = self._restore_model(model, value, champion)
        self.reports.reload(self.store.pending_windows())
        self._touched: set[str] = set()
        self._new_champions: set[str] = set()
        self._outbox_dirty = True

    def _restore_model(self, model: str, value: dict[str, Any],
                       champion: dict[str, Any] | None) -> _ModelState:
        restored = _ModelState(self._detector_config)
        if champion:
            restored.champion = ChampionProfile.from_dict(champion)
        # State written before the detectors followed the serving version followed the champion.
        champion_version = restored.champion.version if restored.champion else None
        restored.follows = value.get("follows", champion_version)
        restored.scale = ErrorScale.from_state(value.get("scale", {}))
        restored.window_alarms = {w: list(n) for w, n in
                                  value.get("window_alarms", {}).items()}
        det_state = value.get("detectors", {})
        rows = self.store.labelled_after(
            ErrorDetectors.replay_from(det_state), self.config.detector_replay, model=model,
            newest=True, until_id=self._labelled_cursor,
        )
        errors = [(row.id, restored.scale.error(row.outcome)) for row in rows
                  if self._feeds_detectors(restored, row)
                  and (row.outcome.task == "classification" or restored.scale.calibrated)]
        restored.detectors = ErrorDetectors.restore(self._detector_config, det_state, errors)
        return restored

    def _state_changes(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "cursors": {"served": self._served_cursor, "labelled": self._labelled_cursor},
            "windows.served": self.served.state(),
            "windows.labelled": self.labelled.state(),
            "policy": self.policy.state(),
        }
        for model in self._touched:
            state[f"model.{model}"] = self.models[model].state()
        for model in self._new_champions:
            champion = self.models[model].champion
            state[f"champion.{model}"] = champion.as_dict() if champion else None
        return state

    def _model(self, model: str) -> _ModelState:
        found = self.models.get(model)
        if found is None:
            found = self.models[model] = _ModelState(self._detector_config)
        self._touched.add(model)
        return found

    # -- the batch handler ---------------------------------------------------------------------

    def __call__(self, batch: Batch[Any]) -> None:
        try:
            self._reload_if_stale()
            self._handle(batch)
        except Exception:
            # The batch is retried on a state reloaded from the database first; reloading
            # here could fail the same way, and would then leave half a state behind.
            self._stale = True
            raise

    def _reload_if_stale(self) -> None:
        if self._stale:
            self._load()
            self._stale = False

    def on_idle(self) -> None:
        """Close windows by time, collect reports, publish; never raises on a bad database.

        After a failure the idle work waits (doubling, up to :data:`IDLE_RETRY_MAX_S`) before
        it tries the database or the broker again, and the monitor reports itself degraded
        until a try succeeds.
        """
        if not self._idle_gate.open():
            return
        try:
            self._reload_if_stale()
            changes = Changes()
            now = self._clock()
            self.intake.expire(now)
            self._tick(now, changes)
            if changes:
                self._finish(changes)
            else:
                self.reports.pump()
                self._publish()
        except (StoreError, BrokerError) as exc:
            self._stale = True
            self._idle_gate.failed(exc)
            return
        self._idle_gate.passed()

    def _handle(self, batch: Batch[Any]) -> None:
        now = self._clock()
        changes = Changes()
        for record in batch.records:
            if isinstance(record.event, ModelPromoted | ModelRolledBack):
                self._champion(champion_of(record.event), changes)
        self.intake.take(batch, now)
        self._advance(now, changes)
        self._tick(now, changes)
        self._finish(changes)
        self._update_lag(batch.lag)

    # -- champions ---------------------------------------------------------------------------

    def _champion(self, champion: ChampionProfile, changes: Changes) -> None:
        state = self._model(champion.model)
        state.champion = champion
        self._new_champions.add(champion.model)
        rows = 0 if champion.training is not None else self.config.reference_size
        self.served.set_reference_rows(champion.model, rows)
        self.labelled.set_reference_rows(champion.model, rows)
        self._signal(ChampionChanged(champion.model, champion.version, champion.metric,
                                     champion.score), changes)
        log.info("champion changed", extra={
            **{k: v for k, v in champion.as_dict().items() if k != "calibration"},
            "calibrated": champion.calibration is not None})

    @staticmethod
    def _feeds_detectors(state: _ModelState, row: LabelledRow) -> bool:
        """Only the predictions of the version the detectors follow feed them."""
        return state.follows is None or row.version == state.follows

    def _follow(self, row: ServedRow) -> None:
        """Move the detectors to the champion once it made a prediction: serving runs it.

        A champion serving refused never makes one, so the detectors stay on the version still
        serving. Predictions of any other version (late ones of the version replaced, a
        serving process still swapping, an app's A/B test) move nothing.
        """
        state = self.models.get(row.model)
        champion = state.champion if state is not None else None
        if (state is None or champion is None or row.version != champion.version
                or row.version == state.follows):
            return
        self._touched.add(row.model)
        log.info("detectors follow the version now serving",
                 extra={"model": row.model, "version": row.version, "was": state.follows})
        state.follows = row.version
        state.detectors.reset(after_id=self._labelled_cursor)
        state.scale = ErrorScale(mae=champion.mae)
        state.window_alarms = {}

    # -- rows stored since the last batch ------------------------------------------------------

    def _advance(self, now: datetime, changes: Changes) -> None:
        while True:
            served = self.store.served_after(self._served_cursor, CURSOR_CHUNK)
            calibrated = self._calibrated(served)
            for row, probabilities in zip(served, calibrated, strict=True):
                self.served.update(WindowRow(row.id, row.model, row.version, row.timestamp,
                                             calibrated=probabilities), now)
                self._follow(row)
                self._served_cursor = row.id
            if len(served) < CURSOR_CHUNK:
                break
        while True:
            labelled = self.store.labelled_after(self._labelled_cursor, CURSOR_CHUNK)
            self._labelled(labelled, now, changes)
            if len(labelled) < CURSOR_CHUNK:
                break

    def _calibrated(self, rows: list[ServedRow]) -> list[Calibrated | None]:
        """The calibrated probabilities of the rows of each calibrated champion's version."""
        result: list[Calibrated | None] = [None] * len(rows)
        groups: dict[str, tuple[Calibration, list[int]]] = {}
        for i, row in enumerate(rows):
            state = self.models.get(row.model)
            champion = state.champion if state is not None else None
            if (champion is not None and champion.calibration is not None
                    and row.version == champion.version):
                groups.setdefault(row.model, (champion.calibration, []))[1].append(i)
        for calibration, indices in groups.values():
            done = calibrate(calibration, [rows[i].output for i in indices])
            for i, value in zip(indices, done, strict=True):
                result[i] = value
        return result

    def _labelled(self, rows: list[LabelledRow], now: datetime, changes: Changes) -> None:
        fresh: Counter[str] = Counter()
        for row in rows:
            self._labelled_cursor = row.id
            state = self._model(row.model)
            fresh[row.model] += 1
            self.labelled.update(WindowRow(row.id, row.model, row.version, row.timestamp,
                                           row.outcome), now)
            if self._feeds_detectors(state, row):
                for example_id, error in state.scale.errors(row.outcome, row.id):
                    self._detect(row, state, example_id, error, fresh, changes)
        for model, count in fresh.items():
            self._signal(LabelsArrived(model, count), changes)

    def _detect(self, row: LabelledRow, state: _ModelState, example_id: int, error: float,
                fresh: Counter[str], changes: Changes) -> None:
        state.detectors.update(error, example_id)
        if not state.detectors.alarms:
            return
        if fresh[row.model]:  # count the labels before the alarm, for the fresh-label gate
            self._signal(LabelsArrived(row.model, fresh.pop(row.model)), changes)
        open_id = self.labelled.last_window
        for alarm in state.detectors.alarms:
            log.warning("concept drift alarm", extra={"model": row.model, **alarm.as_dict()})
            metrics.ALARMS.labels(model=row.model, detector=alarm.detector).inc()
            if open_id is not None:
                state.window_alarms.setdefault(open_id, []).append(alarm.detector)
            changes.alarms.append(AlarmRecord(
                row.model, alarm.detector, alarm.index, alarm.example_id, row.version, open_id,
                state.detectors.error_rate))
            self._signal(DetectorFired(row.model, alarm.detector, alarm.index,
                                       alarm.example_id, open_id), changes)
        metrics.ERROR_RATE.labels(model=row.model).set(state.detectors.error_rate)

    # -- windows and reports -------------------------------------------------------------------

    def _tick(self, now: datetime, changes: Changes) -> None:
        self.served.tick(now)
        self.labelled.tick(now)
        for window in [*self.served.drain(), *self.labelled.drain()]:
            self._closed(window, changes)
        for outcome, job in self.reports.collect():
            changes.reports.append(outcome)
            if job is None:
                continue
            metrics.WINDOWS.labels(model=job.model, kind=job.kind, status=outcome.status).inc()
            if outcome.quality:
                self._quality(job, outcome.quality, changes)
            if outcome.status == DONE and outcome.drifted_share is not None:
                metrics.DRIFTED_SHARE.labels(model=job.model, kind=job.kind).set(
                    outcome.drifted_share)
                self._signal(WindowDrift(job.model, job.window_id, job.kind,
                                         outcome.drifted_share, job.rows), changes)
        changes.reports.extend(self.reports.overflow())

    def _quality(self, job: DriftJob, quality: tuple[ColumnQuality, ...],
                 changes: Changes) -> None:
        violated = tuple(q.column for q in quality if q.violated)
        metrics.QUALITY_VIOLATED.labels(model=job.model, kind=job.kind).set(len(violated))
        if violated:
            log.warning("data quality violated", extra={
                "model": job.model, "window_id": job.window_id, "columns": list(violated)})
            self._signal(QualityViolated(job.model, job.window_id, job.kind, violated,
                                         job.rows), changes)

    def _closed(self, window: ClosedWindow, changes: Changes) -> None:
        state = self._model(window.model)
        champion = state.champion
        estimate = window_estimate(champion.calibration if champion else None,
                                   champion.version if champion else None, window)
        if estimate is not None:
            window = replace(window, estimate=estimate.record())
        alarms = state.window_alarms.pop(window.window_id, [])
        reference = self._reference(window)
        wanted = window.kind in self.config.drift_kinds
        status = PENDING if wanted and window.rows >= self.config.min_window_rows else SKIPPED
        changes.windows.append((window, status, sorted(set(alarms)), reference.as_dict()))
        if status == PENDING:
            self.reports.add(self.reports.job(window, reference))
        else:
            metrics.WINDOWS.labels(model=window.model, kind=window.kind, status=status).inc()
        if window.performance:
            self._signal(WindowScore(window.model, window.window_id, window.version,
                                     window.performance, window.rows), changes)
        if estimate is not None:
            for name, value in estimate.metrics.items():
                metrics.ESTIMATED.labels(model=window.model, metric=name).set(value)
            for name, value in estimate.lower.items():
                metrics.ESTIMATED_LOWER.labels(model=window.model, metric=name).set(value)
            self._signal(WindowEstimate(window.model, window.window_id, window.version,
                                        estimate.metrics, estimate.lower, window.rows), changes)

    def _reference(self, window: ClosedWindow) -> ReferenceSpec:
        champion = self.models[window.model].champion if window.model in self.models else None
        if champion is not None and champion.training is not None:
            return ReferenceSpec("lineage", "labelled", window.model, self.config.reference_size,
                                 champion.training.start.isoformat(),
                                 champion.training.end.isoformat())
        return ReferenceSpec("first", window.kind, window.model, self.config.reference_size)

    # -- policy, persistence, publication -------------------------------------------------------

    def _signal(self, signal: Signal, changes: Changes) -> None:
        self.policy.update(signal)
        changes.closed_requests.extend(self.policy.closed)
        decision = self.policy.requested
        if decision is not None:
            log.warning("retrain requested", extra={"model": decision.model,
                                                    "reasons": list(decision.reasons)})
            metrics.RETRAIN_REQUESTS.labels(model=decision.model).inc()
            changes.requests.append(decision)

    def _finish(self, changes: Changes) -> None:
        """Write what changed in one transaction, then queue reports and publish."""
        changes.state = self._state_changes()
        self.store.commit(changes)
        self.reports.confirm()
        self._touched, self._new_champions = set(), set()
        if changes.requests or changes.reports or changes.windows:
            self._outbox_dirty = True
        self.reports.pump()
        self._publish()

    def _publish(self) -> None:
        if not self._outbox_dirty:
            return
        publish_pending(self.store, self._producer, self._drift_topic)
        self._outbox_dirty = False

    def _update_lag(self, behind: Mapping[TopicPartition, int]) -> None:
        """Export the lag the consumer loop measured, per topic."""
        if time.monotonic() - self._lag_at < self.config.lag_interval_s:
            return
        self._lag_at = time.monotonic()
        lag: Counter[str] = Counter()
        for tp, value in behind.items():
            lag[tp.topic] += value
        for topic, value in lag.items():
            metrics.CONSUMER_LAG.labels(topic=topic).set(value)
