"""The monitor's intake: what a batch brings is checked and stored before anything is derived.

Predictions are stored unless they contradict a stored one (another prediction for the same
request, or an event id already used by another request: a ``conflict`` dead letter). Feedback
whose event id is stored (or earlier in the batch) saying something else is a conflict too.
The rest goes through the :class:`monitor.join.Join`, whose misses are looked up in the
store; feedback with a label of the wrong type is dead-lettered there, the rest stored, and
the joined examples upserted. Everything is idempotent: a replayed batch stores nothing twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monitor import metrics
from monitor.join import Join, JoinConfig, key_of
from monitor.store import MonitorStore, feedback_content
from streams.consumer import Batch, Record
from streams.errors import ConflictError
from streams.events import Feedback, Prediction
from streams.store import EventStore


class Intake:
    def __init__(self, events: EventStore, store: MonitorStore, config: JoinConfig) -> None:
        self.events = events
        self.store = store
        self.join = Join(config, store)
        self._join_metrics = metrics.JoinExporter()

    def take(self, batch: Batch[Any], now: datetime) -> None:
        """Store the batch's predictions and feedback and its joined examples; conflicting
        and refused records are rejected on ``batch`` (dead letters)."""
        accepted = self._store_predictions(batch)
        conflicting = self._conflicting_feedback(batch)
        joinable = [r for r in batch.records
                    if (isinstance(r.event, Prediction) and id(r.event) in accepted)
                    or (isinstance(r.event, Feedback) and id(r.event) not in conflicting)]
        result = self.join.process([r.event for r in joinable], now)
        refused = {f.event_id: error for f, error in result.rejected}
        feedback: list[Feedback] = []
        for record in joinable:
            event = record.event
            if isinstance(event, Feedback):
                if event.event_id in refused:
                    batch.reject(record, refused[event.event_id])
                else:
                    feedback.append(event)
        new_feedback = self.events.add_feedback(feedback) if feedback else 0
        self.events.upsert_examples(result.examples)
        self._count(len(feedback), new_feedback, len(refused), result.latencies)

    def expire(self, now: datetime) -> None:
        """Drop what waited in the join past its time to live."""
        self.join.expire(now)
        self._count(0, 0, 0, ())

    def _store_predictions(self, batch: Batch[Any]) -> set[int]:
        """Store the batch's predictions, rejecting conflicts; the ids of the accepted ones."""
        records: list[Record[Any]] = [r for r in batch.records
                                      if isinstance(r.event, Prediction)]
        if not records:
            return set()
        known = self.store.prediction_event_ids({key_of(r.event) for r in records})
        owners = self.store.prediction_keys({r.event.event_id for r in records})
        accepted: list[Prediction] = []
        for record in records:
            event: Prediction = record.event
            key = key_of(event)
            owner, stored = owners.get(event.event_id, key), known.get(key, event.event_id)
            if owner != key or stored != event.event_id:
                batch.reject(record, ConflictError(
                    f"event id {event.event_id!r} is already the prediction for request "
                    f"{owner[1]!r} of model {owner[0]!r}" if owner != key else
                    f"request {event.request_id!r} of model {event.model!r} already has "
                    f"prediction {stored!r}"))
                metrics.EVENTS.labels(kind="prediction", outcome="rejected").inc()
                continue
            owners[event.event_id], known[key] = key, event.event_id
            accepted.append(event)
        new = self.events.add_predictions(accepted)
        metrics.EVENTS.labels(kind="prediction", outcome="stored").inc(new)
        metrics.EVENTS.labels(kind="prediction", outcome="duplicate").inc(len(accepted) - new)
        return {id(p) for p in accepted}

    def _conflicting_feedback(self, batch: Batch[Any]) -> set[int]:
        """Reject feedback whose event id is stored (or earlier in the batch) saying else;
        the ids of the rejected ones."""
        records = [r for r in batch.records if isinstance(r.event, Feedback)]
        if not records:
            return set()
        seen = self.store.feedback_contents({r.event.event_id for r in records})
        conflicting: set[int] = set()
        for record in records:
            event: Feedback = record.event
            content = feedback_content(event)
            prior = seen.setdefault(event.event_id, content)
            if prior != content:
                batch.reject(record, ConflictError(
                    f"event id {event.event_id!r} is already feedback {prior[2]} for request "
                    f"{prior[1]!r} of model {prior[0]!r}"))
                metrics.EVENTS.labels(kind="feedback", outcome="rejected").inc()
                conflicting.add(id(event))
        return conflicting

    def _count(self, feedback: int, new: int, refused: int,
               latencies: tuple[tuple[str, float], ...]) -> None:
        metrics.EVENTS.labels(kind="feedback", outcome="stored").inc(new)
        metrics.EVENTS.labels(kind="feedback", outcome="duplicate").inc(feedback - new)
        metrics.EVENTS.labels(kind="feedback", outcome="rejected").inc(refused)
        for model, seconds in latencies:
            metrics.LABEL_LATENCY.labels(model=model).observe(seconds)
        self._join_metrics.export(self.join)
