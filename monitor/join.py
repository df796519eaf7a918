"""The join of predictions with their delayed feedback (pure: no Kafka, SQL or wall clock).

Predictions and feedback meet by ``(model, request_id)``. Either may arrive first, feedback
may come twice (a reviewer's correction beats the app's label, see
:mod:`streams.labels`), and any event may be replayed.

What joins is a function of the events alone, never of their arrival order:

* a feedback joins its prediction when their timestamps are at most ``ttl_s`` apart and the
  label fits the output (a class of the same JSON type as the predicted class, or a number
  for a regression); otherwise it is counted (``out_of_ttl``, ``invalid_label``) and not joined;
* every feedback that joins is emitted as a :class:`LabelledExample`; whoever stores them
  keeps, per key, the one that wins by precedence (``EventStore.upsert_examples`` does), so
  duplicates and re-emissions are harmless.

Memory is bounded: a prediction or an unmatched feedback stays at most ``ttl_s`` (by the
injected ``now``) and at most ``max_pending`` per side, oldest leaving first; one that leaves
unmatched is counted as expired. What left memory is not lost: the :class:`Archive` (the
event store, where every prediction and feedback is written before its offset is committed)
is asked for the counterpart of every miss, once per batch. That is also what makes a
restarted monitor join exactly as one that never stopped.

Label coverage (labelled / (labelled + expired unlabelled) predictions) and label latency
(feedback timestamp minus prediction timestamp, at a prediction's first label) are measured
on the predictions this process saw arrive.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from streams.errors import EventError
from streams.events import ClassOutput, Feedback, Prediction
from streams.labels import precedence_of
from streams.store import LabelledExample

Key = tuple[str, str]


class LabelTypeError(EventError):
    """A label whose type cannot be the answer to its prediction (e.g. text for a regression)."""

    reason = "label_type"


class Archive(Protocol):
    """Predictions and feedback stored earlier, looked up for the keys the join misses."""

    def predictions(self, keys: Collection[Key]) -> Mapping[Key, Prediction]: ...

    def feedback(self, keys: Collection[Key]) -> Mapping[Key, Sequence[Feedback]]: ...


class NoArchive:
    """An archive that holds nothing: the join then relies on its memory alone."""

    def predictions(self, keys: Collection[Key]) -> Mapping[Key, Prediction]:
        return {}

    def feedback(self, keys: Collection[Key]) -> Mapping[Key, Sequence[Feedback]]:
        return {}


@dataclass(frozen=True)
class JoinConfig:
    ttl_s: float = 3600.0
    max_pending: int = 200_000

    def __post_init__(self) -> None:
        if self.ttl_s <= 0 or self.max_pending <= 0:
            raise ValueError("ttl_s and max_pending must be positive")


@dataclass(frozen=True)
class JoinResult:
    """What one batch produced."""

    examples: tuple[LabelledExample, ...]
    #: Feedback of this batch refused outright (label of the wrong type): dead-letter them.
    rejected: tuple[tuple[Feedback, EventError], ...]
    #: (model, seconds) for each prediction labelled for the first time in this batch.
    latencies: tuple[tuple[str, float], ...]


@dataclass
class JoinStats:
    """Counters per model; read by metrics, tests and the benchmark."""

    predictions: Counter[str] = field(default_factory=Counter)
    feedback: Counter[str] = field(default_factory=Counter)
    labelled: Counter[str] = field(default_factory=Counter)
    matches: Counter[str] = field(default_factory=Counter)
    expired_predictions: Counter[str] = field(default_factory=Counter)
    expired_feedback: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    conflicts: Counter[str] = field(default_factory=Counter)
    invalid_labels: Counter[str] = field(default_factory=Counter)
    out_of_ttl: Counter[str] = field(default_factory=Counter)
    recovered: Counter[str] = field(default_factory=Counter)

    def coverage(self, model: str) -> float | None:
        """Share of settled predictions that got a label before they expired."""
        settled = self.labelled[model] + self.expired_predictions[model]
        return self.labelled[model] / settled if settled else None


@dataclass
class _Held:
    prediction: Prediction
    arrived: datetime
    best: Feedback | None = None
    seen_whole: bool = True  # False when recovered from the archive: not counted for coverage
    joined: set[str] = field(default_factory=set)  # feedback event ids joined so far


@dataclass
class _Waiting:
    arrived: datetime
    feedback: dict[str, Feedback] = field(default_factory=dict)


def key_of(event: Prediction | Feedback) -> Key:
    return (event.model, event.request_id)


def _label_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "text"


def label_fits(prediction: Prediction, label: Any) -> bool:
    """Whether ``label`` can be the truth for ``prediction``'s output."""
    if isinstance(prediction.output, ClassOutput):
        return _label_kind(label) == _label_kind(prediction.output.label)
    return _label_kind(label) == "number"


class Join:
    """Joins batches of predictions and feedback; see the module docstring for the rules."""

    def __init__(self, config: JoinConfig | None = None, archive: Archive | None = None) -> None:
        self.config = config or JoinConfig()
        self._archive: Archive = archive if archive is not None else NoArchive()
        self._ttl = timedelta(seconds=self.config.ttl_s)
        self._held: OrderedDict[Key, _Held] = OrderedDict()
        self._waiting: OrderedDict[Key, _Waiting] = OrderedDict()
        self._unlabelled = 0
        self._waiting_feedback = 0
        self.stats = JoinStats()

    @property
    def held_predictions(self) -> int:
        return len(self._held)

    @property
    def pending_predictions(self) -> int:
        """Predictions in memory still waiting for a label."""
        return self._unlabelled

    @property
    def pending_feedback(self) -> int:
        """Feedback events in memory still waiting for their prediction."""
        return self._waiting_feedback

    def process(self, events: Iterable[Prediction | Feedback], now: datetime) -> JoinResult:
        """Join one batch, in arrival order, at time ``now`` (which only drives expiry)."""
        batch = list(events)
        self.expire(now)
        stored_feedback, stored_predictions = self._lookups(batch)
        in_batch = {e.event_id for e in batch if isinstance(e, Feedback)}
        out = _Out()
        for event in batch:
            if isinstance(event, Prediction):
                self._on_prediction(event, now, stored_feedback.get(key_of(event), ()),
                                    in_batch, out)
            else:
                self._on_feedback(event, now, stored_predictions.get(key_of(event)), out)
        self._bound()
        return JoinResult(tuple(out.examples), tuple(out.rejected), tuple(out.latencies))

    def expire(self, now: datetime) -> None:
        """Let go of everything that has waited longer than the TTL."""
        horizon = now - self._ttl
        while self._held:
            key, held = next(iter(self._held.items()))
            if held.arrived >= horizon:
                break
            self._drop_held(key)
        while self._waiting:
            key, waiting = next(iter(self._waiting.items()))
            if waiting.arrived >= horizon:
                break
            self._drop_waiting(key)

    # -- internals ------------------------------------------------------------------------

    def _lookups(
        self, batch: Sequence[Prediction | Feedback]
    ) -> tuple[Mapping[Key, Sequence[Feedback]], Mapping[Key, Prediction]]:
        batch_predictions = {key_of(e) for e in batch if isinstance(e, Prediction)}
        need_feedback = {k for k in batch_predictions if k not in self._held}
        need_predictions = {
            key_of(e)
            for e in batch
            if isinstance(e, Feedback)
            and key_of(e) not in self._held
            and key_of(e) not in batch_predictions
        }
        stored_feedback = self._archive.feedback(need_feedback) if need_feedback else {}
        stored_predictions = (
            self._archive.predictions(need_predictions) if need_predictions else {}
        )
        return stored_feedback, stored_predictions

    def _eligible(self, prediction: Prediction, feedback: Feedback) -> bool:
        return abs(feedback.timestamp - prediction.timestamp) <= self._ttl

    def _on_prediction(
        self,
        prediction: Prediction,
        now: datetime,
        stored: Sequence[Feedback],
        in_batch: Collection[str],
        out: _Out,
    ) -> None:
        key, model = key_of(prediction), prediction.model
        held = self._held.get(key)
        if held is not None:
            if held.prediction.event_id != prediction.event_id:
                self.stats.conflicts[model] += 1
                return
            self.stats.duplicates[model] += 1
            if held.best is not None:  # a replayed batch: emit again, storage is idempotent
                out.examples.append(LabelledExample.join(held.prediction, held.best))
            return
        self.stats.predictions[model] += 1
        waiting = self._waiting.pop(key, None)
        candidates = {f.event_id: f for f in stored}
        if waiting is not None:
            self._waiting_feedback -= len(waiting.feedback)
            candidates.update(waiting.feedback)
        best: Feedback | None = None
        for feedback in candidates.values():
            if not label_fits(prediction, feedback.label):
                self.stats.invalid_labels[model] += 1
                if feedback.event_id in in_batch:
                    out.rejected.append((feedback, _type_error(prediction, feedback)))
                continue
            if not self._eligible(prediction, feedback):
                self.stats.out_of_ttl[model] += 1
                continue
            if best is None or precedence_of(feedback) > precedence_of(best):
                best = feedback
        self._hold(key, _Held(prediction, now))
        if best is not None:
            self._label(self._held[key], best, out)

    def _on_feedback(
        self, feedback: Feedback, now: datetime, stored: Prediction | None, out: _Out
    ) -> None:
        key, model = key_of(feedback), feedback.model
        self.stats.feedback[model] += 1
        held = self._held.get(key)
        if held is None and stored is not None:
            held = self._hold(key, _Held(stored, now, seen_whole=False))
            self.stats.recovered[model] += 1
        if held is None:
            waiting = self._waiting.get(key)
            if waiting is None:
                waiting = self._waiting[key] = _Waiting(now)
            if feedback.event_id in waiting.feedback:
                self.stats.duplicates[model] += 1
            else:
                self._waiting_feedback += 1
            waiting.feedback[feedback.event_id] = feedback
            return
        if not label_fits(held.prediction, feedback.label):
            self.stats.invalid_labels[model] += 1
            out.rejected.append((feedback, _type_error(held.prediction, feedback)))
            return
        if not self._eligible(held.prediction, feedback):
            self.stats.out_of_ttl[model] += 1
            return
        self._label(held, feedback, out)

    def _label(self, held: _Held, feedback: Feedback, out: _Out) -> None:
        prediction = held.prediction
        model = prediction.model
        out.examples.append(LabelledExample.join(prediction, feedback))
        if feedback.event_id in held.joined:
            self.stats.duplicates[model] += 1
            return
        held.joined.add(feedback.event_id)
        self.stats.matches[model] += 1
        if held.best is None:
            self._unlabelled -= 1
            if held.seen_whole:
                self.stats.labelled[model] += 1
                latency = (feedback.timestamp - prediction.timestamp).total_seconds()
                out.latencies.append((model, max(latency, 0.0)))
            held.best = feedback
        elif precedence_of(feedback) > precedence_of(held.best):
            held.best = feedback

    def _hold(self, key: Key, held: _Held) -> _Held:
        self._held[key] = held
        self._unlabelled += 1
        return held

    def _drop_held(self, key: Key) -> None:
        held = self._held.pop(key)
        if held.best is None:
            self._unlabelled -= 1
            if held.seen_whole:
                self.stats.expired_predictions[key[0]] += 1

    def _drop_waiting(self, key: Key) -> None:
        waiting = self._waiting.pop(key)
        self._waiting_feedback -= len(waiting.feedback)
        self.stats.expired_feedback[key[0]] += len(waiting.feedback)

    def _bound(self) -> None:
        limit = self.config.max_pending
        while len(self._held) > limit:
            self._drop_held(next(iter(self._held)))
        while len(self._waiting) > limit:
            self._drop_waiting(next(iter(self._waiting)))


@dataclass
class _Out:
    examples: list[LabelledExample] = field(default_factory=list)
    rejected: list[tuple[Feedback, EventError]] = field(default_factory=list)
    latencies: list[tuple[str, float]] = field(default_factory=list)


def _type_error(prediction: Prediction, feedback: Feedback) -> LabelTypeError:
    expected = (
        f"a {_label_kind(prediction.output.label)} class"
        if isinstance(prediction.output, ClassOutput)
        else "a number"
    )
    return LabelTypeError(
        f"label {feedback.label!r} for request {feedback.request_id!r} of model "
        f"{feedback.model!r} is not {expected} like its prediction"
    )
