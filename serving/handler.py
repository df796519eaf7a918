"""The consumer loop's batch handler: requests in, predictions out, bad requests rejected.

It reads the served model once per batch (so a hot swap always falls between two batches),
runs the batch predictor, sends one ``Prediction`` per good request keyed by its request id
(so it lands on the partition number of its request and feedback), and hands each bad
request back to the loop through ``Batch.reject``, which dead-letters it with the reason.
The loop commits the batch's offsets only after the producer flushed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from serving import metrics
from serving.canary import RecentRequests
from serving.model import ModelHolder
from serving.predictor import predict_batch
from streams.clock import Clock
from streams.codec import encode
from streams.consumer import Batch
from streams.errors import DriftloopError, EventError, PayloadTooLargeError
from streams.events import InferenceRequest, Prediction
from streams.producer import Producer

log = logging.getLogger(__name__)


class NoModelError(DriftloopError):
    """The handler ran before any model was loaded (the process waits for one first).

    Transient: the batch waits, with backoff, until a model is there; it is never blamed on
    the requests.
    """

    transient = True


class PredictionHandler:
    def __init__(
        self,
        *,
        model: str,
        holder: ModelHolder,
        others: frozenset[str] = frozenset(),
        recent: RecentRequests,
        producer: Producer,
        topic: str,
        clock: Clock,
        max_bytes: int = 1_000_000,
        timer: Callable[[], float] = time.perf_counter,
        wall_ms: Callable[[], float] = lambda: time.time() * 1000.0,
    ) -> None:
        self._model = model
        self._others = others
        self._holder = holder
        self._recent = recent
        self._producer = producer
        self._topic = topic
        self._clock = clock
        self._max_bytes = max_bytes
        self._timer = timer
        self._wall_ms = wall_ms

    def __call__(self, batch: Batch[InferenceRequest]) -> None:
        started = self._timer()
        served = self._holder.current
        if served is None:
            raise NoModelError("no model is loaded")
        # Requests for the deployment's other models belong to their own serving groups.
        records = [r for r in batch.records if r.event.model not in self._others]
        requests = [r.event for r in records]
        outcomes = predict_batch(served, requests, now=self._clock(), started_s=started,
                                 timer=self._timer)
        inference_s = self._timer() - started
        sent = 0
        for record, outcome in zip(records, outcomes, strict=True):
            if isinstance(outcome, Prediction):
                payload = encode(outcome)
                if len(payload) > self._max_bytes:  # it echoes the features: it can outgrow
                    outcome = PayloadTooLargeError(
                        f"its prediction would be {len(payload)} bytes, over the "
                        f"{self._max_bytes}-byte limit that consumers accept; send fewer or "
                        "shorter features")
                else:
                    self._producer.send_raw(self._topic, payload, key=outcome.request_id)
                    sent += 1
                    continue
            if isinstance(outcome, EventError):
                batch.reject(record, outcome)
                metrics.REJECTED.labels(model=self._model, reason=outcome.reason).inc()
        self._recent.extend([r.features for r in requests if r.model == self._model])
        self._observe(batch, len(requests), sent, inference_s)

    def _observe(self, batch: Batch[InferenceRequest], size: int, sent: int,
                 inference_s: float) -> None:
        model = self._model
        metrics.REQUESTS.labels(model=model).inc(size)
        metrics.PREDICTIONS.labels(model=model).inc(sent)
        metrics.BATCH_SIZE.labels(model=model).observe(size)
        metrics.INFERENCE.labels(model=model).observe(inference_s)
        now_ms = self._wall_ms()
        latency = metrics.LATENCY.labels(model=model)
        for record in batch.records:
            latency.observe(max(0.0, now_ms - record.timestamp_ms) / 1000.0)
        self._update_lag(batch)

    def _update_lag(self, batch: Batch[InferenceRequest]) -> None:
        """Export the lag the consumer loop measured over this member's partitions."""
        metrics.CONSUMER_LAG.labels(model=self._model).set(sum(batch.lag.values()))
