"""The key moments of a running loop, as a person watching it would name them.

:class:`KeyMoments` (pure) turns what the loop publishes and stores into moments: *drift
detected* (a ``DriftReport`` whose River detectors fired, or a ``RetrainRequested``; a window
whose data drifted by Evidently's verdict alone is shown once per model version, as
information), *retraining* (a run in the registry started, and how it ended),
*promoted vN* (a ``ModelPromoted``), and *accuracy recovered* (after a drift and a
promotion, the accuracy of the newest labelled examples is back within ``tolerance`` of the
level it had before the drift: the median of the windows measured before it). For a
regression model the score is the MAE instead (lower is better; recovered when it is at most
``tolerance`` as a share above its level before the drift), and every message says MAE where
a classifier's says accuracy.
:class:`LoopWatcher` feeds it: a thread follows the drift and model-updates topics (its own
consumer, no group, from the beginning), and :meth:`poll` reads the runs and the windowed
accuracy (or MAE) from the database.
"""

from __future__ import annotations

import logging
import queue
import statistics
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from kafka import TopicPartition
from kafka.errors import KafkaError
from sqlalchemy import select

from retrain.dataset import infer_task
from retrain.runs import RunInfo, RunStore
from streams.clock import Clock, utc_now
from streams.codec import Decoder
from streams.db import Database
from streams.errors import EventError, StoreError
from streams.events import (
    DriftEvent,
    DriftReport,
    ModelPromoted,
    ModelRolledBack,
    ModelUpdate,
    RetrainRequested,
    SwapFailed,
)
from streams.settings import Settings
from streams.statuses import RunStatus
from streams.store import ExampleRow
from streams.topics import Topic, TopicNames
from streams.transport import ConsumerClient, transport_for

log = logging.getLogger(__name__)

Kind = Literal["drift", "data_drift", "requested", "training", "rejected", "failed",
               "promoted", "rolled_back", "swap_failed", "recovered"]


@dataclass(frozen=True)
class Moment:
    kind: Kind
    text: str
    at: datetime
    version: int | None = None


Metric = Literal["accuracy", "mae"]


@dataclass(frozen=True)
class Accuracy:
    """How right the newest ``rows`` labelled examples were: the share of correct predictions,
    or for a regression model (``metric="mae"``) their mean absolute error."""

    value: float
    rows: int
    at: datetime
    metric: Metric = "accuracy"

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "accuracy"

    def show(self, value: float | None = None) -> str:
        """``value`` (this one by default) as "93.0%", or "1.470" for an MAE."""
        v = self.value if value is None else value
        return f"{100 * v:.1f}%" if self.metric == "accuracy" else f"{v:.3f}"

    def describe(self) -> str:
        """"accuracy 93.0%" or "MAE 1.470"."""
        return f"accuracy {self.show()}" if self.metric == "accuracy" else f"MAE {self.show()}"


@dataclass
class KeyMoments:
    """``update(x) -> self``; ``moments`` are those the last update produced."""

    model: str
    tolerance: float = 0.05
    history: int = 30
    min_rows: int = 100
    moments: tuple[Moment, ...] = ()
    all: list[Moment] = field(default_factory=list)
    champion: int | None = None
    accuracy: Accuracy | None = None
    drifting: bool = False
    level: float | None = None
    lowest: float | None = None
    promoted_since_drift: bool = False
    _recent: deque[float] = field(default_factory=deque)
    _runs: dict[int, str] = field(default_factory=dict)
    _data_drift_seen: set[int | None] = field(default_factory=set)

    def update(self, item: Any) -> KeyMoments:
        found: list[Moment] = []
        if isinstance(item, DriftReport | RetrainRequested | ModelPromoted | ModelRolledBack
                      | SwapFailed) and item.model != self.model:
            item = None
        if isinstance(item, DriftReport):
            found += self._report(item)
        elif isinstance(item, RetrainRequested):
            found += self._requested(item)
        elif isinstance(item, ModelPromoted):
            found += self._promoted(item)
        elif isinstance(item, ModelRolledBack):
            self.champion = item.version
            found.append(Moment("rolled_back", f"rolled back v{item.from_version} -> "
                                f"v{item.version}: {item.reason}", item.timestamp, item.version))
        elif isinstance(item, SwapFailed):
            found.append(Moment("swap_failed", f"serving refused v{item.version}: "
                                f"{item.error[:120]}", item.timestamp, item.version))
        elif isinstance(item, RunInfo):
            found += self._run(item)
        elif isinstance(item, Accuracy):
            found += self._accuracy(item)
        self.moments = tuple(found)
        self.all.extend(found)
        return self

    @property
    def judged_version(self) -> int | None:
        """The version whose own examples the next :class:`Accuracy` should cover, or None for
        every trained version. After a drift and a promotion, recovery is the new champion's
        own record: a window that still mixes in the old model's misses would hide it."""
        return self.champion if self.drifting and self.promoted_since_drift else None

    # -- rules -------------------------------------------------------------------------------

    def _drift(self, text: str, at: datetime) -> list[Moment]:
        if self.drifting:
            return []
        self.drifting = True
        self.promoted_since_drift = False
        # The typical level, not the luckiest window: the median of the recent windows is
        # also robust to the few that already dropped before a detector fired.
        self.level = statistics.median(self._recent) if self._recent else None
        self.lowest = self.accuracy.value if self.accuracy is not None else None
        return [Moment("drift", text, at, self.champion)]

    def _report(self, report: DriftReport) -> list[Moment]:
        score = report.performance.get("accuracy")
        mae = report.performance.get("mae")
        tail = (f", window accuracy {100 * score:.1f}%" if score is not None
                else f", window MAE {mae:.3f}" if mae is not None else "")
        if report.alarms:
            return self._drift(f"drift detected in window {report.window_id} (detectors "
                               f"{', '.join(report.alarms)}{tail})", report.timestamp)
        if not report.drift_detected or report.model_version in self._data_drift_seen:
            return []
        # Evidently's per-window verdict alone is shown once per version, as information.
        self._data_drift_seen.add(report.model_version)
        return [Moment("data_drift", f"data drift in window {report.window_id}: "
                       f"{100 * report.drifted_share:.0f}% of columns drifted{tail}",
                       report.timestamp, report.model_version)]

    def _requested(self, event: RetrainRequested) -> list[Moment]:
        found = self._drift(f"drift detected ({', '.join(event.reasons)})", event.timestamp)
        found.append(Moment("requested", f"retraining requested: {', '.join(event.reasons)}",
                            event.timestamp, event.champion_version))
        return found

    def _promoted(self, event: ModelPromoted) -> list[Moment]:
        self.champion = event.version
        if self.drifting:
            self.promoted_since_drift = True
        reason = f" ({event.reason})" if event.reason else ""
        return [Moment("promoted", f"promoted v{event.version}{reason}", event.timestamp,
                       event.version)]

    def _run(self, run: RunInfo) -> list[Moment]:
        seen = self._runs.get(run.id)
        if seen == run.status:
            return []
        self._runs[run.id] = run.status
        trigger = run.trigger if run.trigger != "request" else "drift request"
        if run.status == RunStatus.RUNNING:
            return [Moment("training", f"retraining (run {run.id}, {trigger})",
                           run.started_at)]
        at = run.finished_at or run.started_at
        if run.status == RunStatus.SUCCEEDED and run.decision == "rejected":
            reason = str(run.metrics.get("holdout", {}).get("reason", ""))
            return [Moment("rejected", f"challenger v{run.version} rejected: {reason}", at,
                           run.version)]
        if run.status == RunStatus.FAILED:
            return [Moment("failed", f"retraining run {run.id} failed: {run.error or ''}"[:200],
                           at, run.version)]
        return []

    def _accuracy(self, value: Accuracy) -> list[Moment]:
        self.accuracy = value
        if value.rows < self.min_rows:
            return []
        if not self.drifting:
            self._recent.append(value.value)
            while len(self._recent) > self.history:
                self._recent.popleft()
            return []
        up = value.higher_is_better
        worst = min if up else max
        self.lowest = value.value if self.lowest is None else worst(self.lowest, value.value)
        if not self.promoted_since_drift or self.level is None:
            return []
        if up and value.value < self.level - self.tolerance:
            return []
        if not up and value.value > self.level * (1 + self.tolerance):
            return []
        self.drifting = False
        self._recent.clear()
        self._recent.append(value.value)
        name = "accuracy" if up else "MAE"
        text = (f"{name} recovered: {value.show()} over the last {value.rows} labels (before "
                f"the drift {value.show(self.level)}, "
                f"{'lowest' if up else 'highest'} {value.show(self.lowest)})")
        return [Moment("recovered", text, value.at, self.champion)]


def window_score(pairs: Sequence[tuple[Any, Any]]) -> tuple[float, int, Metric] | None:
    """Accuracy of ``(predicted, label)`` pairs, or their MAE when the labels are quantities
    (the trainer's own rule, :func:`retrain.dataset.infer_task`); pairs without a numeric
    prediction are left out of an MAE."""
    if not pairs:
        return None
    if infer_task([y for _, y in pairs]) == "classification":
        return sum(p == y for p, y in pairs) / len(pairs), len(pairs), "accuracy"
    errors = [abs(float(p) - float(y)) for p, y in pairs
              if isinstance(p, int | float) and not isinstance(p, bool)]
    if not errors:
        return None
    return sum(errors) / len(errors), len(errors), "mae"


def windowed_accuracy(db: Database, model: str, rows: int,
                      version: int | None = None) -> tuple[float, int, Metric] | None:
    """:func:`window_score` of the newest ``rows`` labelled examples served by a trained
    model, or by ``version`` of it alone."""
    served = (ExampleRow.model_version == version if version is not None
              else ExampleRow.model_version > 0)
    stmt = (select(ExampleRow.predicted, ExampleRow.label)
            .where(ExampleRow.model == model, served)
            .order_by(ExampleRow.id.desc()).limit(rows))
    with db.session() as session:
        pairs = session.execute(stmt).all()
    return window_score([(p, y) for p, y in pairs])


class LoopWatcher:
    """Feeds :class:`KeyMoments` from the topics and the database of one loop."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        model: str,
        window: int = 500,
        clock: Clock = utc_now,
    ) -> None:
        self._settings = settings
        self._db = db
        self._runs = RunStore(db)
        self._model = model
        self._window = window
        self._clock = clock
        self.tracker = KeyMoments(model)
        self.events: list[Any] = []
        self._queue: queue.Queue[Any] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None
        names = TopicNames(settings.topics.prefix)
        self._topics = [names(Topic.DRIFT), names(Topic.MODEL_UPDATES)]
        max_bytes = settings.kafka.max_message_bytes
        self._decoders: dict[str, Decoder[Any]] = {
            names(Topic.DRIFT): Decoder(DriftEvent, max_bytes=max_bytes),
            names(Topic.MODEL_UPDATES): Decoder(ModelUpdate, max_bytes=max_bytes),
        }

    def start(self) -> LoopWatcher:
        self._thread = threading.Thread(target=self._follow, name="loop-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def poll(self) -> list[Moment]:
        """Moments since the last poll (events first, then runs, then accuracy)."""
        found: list[Moment] = []
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                break
            self.events.append(event)
            found += self.tracker.update(event).moments
        try:
            for run in self._runs.runs(self._model, limit=5):
                found += self.tracker.update(run).moments
            measured = windowed_accuracy(self._db, self._model, self._window,
                                         self.tracker.judged_version)
        except StoreError as exc:
            log.warning("cannot read the loop's database: %s", exc)
            return found
        if measured is not None:
            value, rows, metric = measured
            found += self.tracker.update(Accuracy(value, rows, self._clock(), metric)).moments
        return found

    def of_type(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def _follow(self) -> None:
        try:
            kafka = self._settings.kafka
            consumer = transport_for(kafka).consumer(
                group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
                fetch_max_wait_ms=200, client_id=f"{kafka.client_id}-watcher",
                **kafka.client_config())
        except KafkaError as exc:
            self.error = exc
            return
        try:
            parts = self._assign(consumer)
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            while not self._stop.is_set():
                for tp, messages in consumer.poll(timeout_ms=300).items():
                    for message in messages:
                        try:
                            self._queue.put(self._decoders[tp.topic].decode(message.value))
                        except EventError as exc:
                            log.debug("skipped an unreadable event: %s", exc)
        except KafkaError as exc:
            self.error = exc
            log.warning("the loop watcher stopped: %s", exc)
        finally:
            consumer.close()

    def _assign(self, consumer: ConsumerClient) -> Sequence[TopicPartition]:
        deadline = time.monotonic() + 30
        parts: list[TopicPartition] = []
        for topic in self._topics:
            found = consumer.partitions_for_topic(topic)
            while not found and time.monotonic() < deadline and not self._stop.is_set():
                time.sleep(0.2)
                consumer.topics()
                found = consumer.partitions_for_topic(topic)
            parts += [TopicPartition(topic, p) for p in sorted(found or ())]
        return parts
