"""The batch predictor: many requests in, one forward pass, one outcome per request.

Each request becomes either a :class:`~streams.events.Prediction` or the ``EventError``
that explains why it cannot be answered (a model this server does not serve, or features
the model's preprocessing refuses). Good requests of a batch are encoded into one matrix
and scored in a single forward pass; a bad one never spoils the rest.

A prediction's ``event_id`` is derived from (model, request_id), so a batch replayed after a
crash yields the very same events and idempotent storage keeps one of each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime

from serving.model import ServedModel
from streams.errors import EventError, SchemaError, UnknownModelError
from streams.events import InferenceRequest, Prediction

Outcome = Prediction | EventError


class NonFiniteOutputError(EventError):
    """The model gave NaN or infinity for a request; it is dead-lettered, never sent."""

    reason = "non_finite_output"


def prediction_id(model: str, request_id: str) -> str:
    """The deterministic event id of the prediction for one request."""
    return hashlib.sha256(f"{model}\x00{request_id}".encode()).hexdigest()[:32]


def _screen(model: ServedModel, requests: Sequence[InferenceRequest]) -> list[EventError | None]:
    errors: list[EventError | None] = []
    for request in requests:
        if request.model != model.name:
            errors.append(UnknownModelError(
                f"this server serves {model.name!r}, not {request.model!r}"))
            continue
        try:
            model.preprocessor.check(request.features)
        except SchemaError as exc:
            errors.append(exc)
            continue
        errors.append(None)
    return errors


def predict_batch(
    model: ServedModel,
    requests: Sequence[InferenceRequest],
    *,
    now: datetime,
    started_s: float = 0.0,
    timer: Callable[[], float] = lambda: 0.0,
) -> list[Outcome]:
    """Score ``requests`` with ``model`` in one forward pass.

    ``now`` stamps the predictions. Their ``latency_ms`` is ``timer()`` after the forward
    pass minus ``started_s`` (when the batch reached the server), in milliseconds.
    """
    good = [r for r in requests if r.model == model.name]
    errors: list[EventError | None]
    if len(good) == len(requests):
        try:
            x = model.encode([r.features for r in requests])
            errors = [None] * len(requests)
        except SchemaError:
            errors = _screen(model, requests)
            x = model.encode([r.features for r, e in zip(requests, errors, strict=True)
                              if e is None])
    else:
        errors = _screen(model, requests)
        x = model.encode([r.features for r, e in zip(requests, errors, strict=True)
                          if e is None])
    outputs = iter(model.outputs(model.scores(x))) if len(x) else iter(())
    latency_ms = max(0.0, (timer() - started_s) * 1000.0)
    name, version = model.name, model.version
    outcomes: list[Outcome] = []
    for request, error in zip(requests, errors, strict=True):
        if error is not None:
            outcomes.append(error)
            continue
        output = next(outputs)
        if output is None:
            outcomes.append(NonFiniteOutputError(
                f"v{version} gave a non-finite output for request {request.request_id}"))
            continue
        outcomes.append(Prediction(
            event_id=prediction_id(name, request.request_id),
            request_id=request.request_id,
            model=name,
            model_version=version,
            features=request.features,
            output=output,
            latency_ms=latency_ms,
            timestamp=now,
        ))
    return outcomes
