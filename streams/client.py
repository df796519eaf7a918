"""The SDK production apps use to talk to driftloop.

    with Client(settings) as client:
        rid = client.request("churn", {"tenure": 12, "plan": "pro"})
        client.log_prediction("churn", rid, features, label="stay",
                              probabilities={"stay": 0.8, "leave": 0.2}, model_version=3)
        client.log_feedback("churn", rid, "leave")

Every event is validated before it is sent, so a bad call fails in the app with a clear
``SchemaError`` instead of becoming a dead letter. Sends are batched; ``flush()`` (or leaving
the ``with`` block) waits until Kafka acknowledged them all. Messages are keyed by request
id, so a request, its prediction and its feedback land on the same partition number.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from streams.clock import Clock, utc_now
from streams.codec import encode
from streams.errors import PayloadTooLargeError, SchemaError
from streams.events import (
    ClassOutput,
    Event,
    Feedback,
    InferenceRequest,
    Prediction,
    ValueOutput,
    new_event_id,
)
from streams.producer import Producer
from streams.settings import Settings
from streams.topics import Topic, TopicNames


class Client:
    def __init__(
        self,
        settings: Settings,
        *,
        producer: Producer | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._settings = settings
        self._names = TopicNames(settings.topics.prefix)
        self._producer = producer or Producer(settings.kafka, client_id="driftloop-sdk")
        self._clock = clock

    def _build(self, kind: type[Event], **fields: Any) -> Event:
        try:
            return kind(**fields)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or kind.__name__
            raise SchemaError(f"invalid {kind.__name__}: {where}: {first['msg']}") from exc

    def _send(self, topic: Topic, event: Event, key: str) -> None:
        payload = encode(event)
        limit = self._settings.kafka.max_message_bytes
        if len(payload) > limit:
            raise PayloadTooLargeError(f"event of {len(payload)} bytes is over the {limit} limit")
        self._producer.send_raw(self._names(topic), payload, key=key)

    def request(
        self, model: str, features: Mapping[str, Any], *, request_id: str | None = None
    ) -> str:
        """Ask driftloop's serving process for a prediction; return the request id."""
        rid = request_id or uuid.uuid4().hex
        event = self._build(
            InferenceRequest, request_id=rid, model=model, features=dict(features),
            timestamp=self._clock(),
        )
        self._send(Topic.REQUESTS, event, rid)
        return rid

    def log_prediction(
        self,
        model: str,
        request_id: str,
        features: Mapping[str, Any],
        *,
        label: Any = None,
        probabilities: Mapping[str, float] | None = None,
        value: float | None = None,
        model_version: int = 0,
        latency_ms: float = 0.0,
    ) -> str:
        """Record a prediction an app made itself (a class label, or a regression value)."""
        if (label is None) == (value is None):
            raise SchemaError("log_prediction needs exactly one of label= or value=")
        output: ClassOutput | ValueOutput
        try:
            if value is not None:
                output = ValueOutput(value=value)
            else:
                output = ClassOutput(label=label, probabilities=dict(probabilities or {}))
        except ValidationError as exc:
            raise SchemaError(f"invalid prediction output: {exc.errors()[0]['msg']}") from exc
        event_id = new_event_id()
        event = self._build(
            Prediction, event_id=event_id, request_id=request_id, model=model,
            model_version=model_version, features=dict(features), output=output,
            latency_ms=latency_ms, timestamp=self._clock(),
        )
        self._send(Topic.PREDICTIONS, event, request_id)
        return event_id

    def log_feedback(
        self,
        model: str,
        request_id: str,
        label: Any,
        *,
        source: str = "app",
        reviewer: str | None = None,
    ) -> str:
        """Send the true label for a request; a later call for the same request corrects it."""
        event_id = new_event_id()
        event = self._build(
            Feedback, event_id=event_id, request_id=request_id, model=model, label=label,
            source=source, reviewer=reviewer, timestamp=self._clock(),
        )
        self._send(Topic.FEEDBACK, event, request_id)
        return event_id

    def flush(self, timeout_s: float | None = None) -> int:
        return self._producer.flush(timeout_s)

    def close(self) -> None:
        self._producer.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
