"""The batch predictor: one forward pass, one outcome per request, bad requests named."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from serving.model import ServedModel, load_model
from serving.predictor import predict_batch, prediction_id
from streams.codec import encode
from streams.errors import EventError
from streams.events import InferenceRequest, Prediction
from streams.nn import pick_device
from tests.serving.artifacts import make_artifact, row

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def model(tmp_path: Path) -> ServedModel:
    return load_model(make_artifact(tmp_path, 4).uri, device=pick_device("cpu"))


def _req(
    i: int, features: dict[str, object] | None = None, model: str = "churn"
) -> InferenceRequest:
    return InferenceRequest(request_id=f"r{i}", model=model,
                            features=features if features is not None else row(i),  # type: ignore[arg-type]
                            timestamp=NOW)


def test_every_request_gets_a_prediction_from_the_serving_version(model: ServedModel) -> None:
    requests = [_req(i) for i in range(50)]
    ticks = iter([1.25])
    outcomes = predict_batch(model, requests, now=NOW, started_s=1.0, timer=lambda: next(ticks))
    assert [o.request_id for o in outcomes] == [r.request_id for r in requests]  # type: ignore[union-attr]
    for request, out in zip(requests, outcomes, strict=True):
        assert isinstance(out, Prediction)
        assert out.model_version == 4
        assert out.features == request.features
        assert out.timestamp == NOW
        assert out.latency_ms == pytest.approx(250.0)
        assert out.event_id == prediction_id("churn", request.request_id)


def test_a_batch_scores_each_request_as_if_it_were_alone(model: ServedModel) -> None:
    requests = [_req(i) for i in range(10)]
    together = predict_batch(model, requests, now=NOW)
    alone = [predict_batch(model, [r], now=NOW)[0] for r in requests]
    for a, b in zip(together, alone, strict=True):
        assert isinstance(a, Prediction)
        assert isinstance(b, Prediction)
        assert a.output.label == b.output.label  # type: ignore[union-attr]
        for k, p in a.output.probabilities.items():  # type: ignore[union-attr]
            assert math.isclose(p, b.output.probabilities[k], rel_tol=1e-5)  # type: ignore[union-attr]


def test_a_null_feature_is_predicted_as_its_training_mean(model: ServedModel) -> None:
    mean = {f.name: f.mean for f in model.manifest.features if f.kind == "numeric"}
    null, imputed = predict_batch(model, [_req(0, {"x": None, "y": 0.5, "plan": None}),
                                          _req(1, {"x": mean["x"], "y": 0.5, "plan": None})],
                                  now=NOW)
    assert isinstance(null, Prediction)
    assert isinstance(imputed, Prediction)
    assert null.features == {"x": None, "y": 0.5, "plan": None}  # echoed as sent
    assert null.output.probabilities == pytest.approx(  # type: ignore[union-attr]
        imputed.output.probabilities, rel=1e-5)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("features", "model_name", "reason", "words"),
    [
        ({"x": 1.0, "plan": "pro"}, "churn", "schema", "missing features \\['y'\\]"),
        ({"x": 1.0, "y": 0.0, "plan": "pro", "z": 1}, "churn", "schema", "unexpected features"),
        ({"x": "high", "y": 0.0, "plan": "pro"}, "churn", "schema", "'x' must be numeric"),
        ({"x": True, "y": 0.0, "plan": "pro"}, "churn", "schema", "'x' must be numeric"),
        ({"x": 1.0, "y": 0.0, "plan": 2.5}, "churn", "schema", "'plan' must be a category"),
        ({"x": 1.0, "y": 0.0, "plan": "pro"}, "fraud", "unknown_model", "serves 'churn'"),
    ],
)
def test_bad_requests_are_named_and_the_rest_still_predicted(
    model: ServedModel, features: dict[str, object], model_name: str, reason: str, words: str
) -> None:
    requests = [_req(0), _req(1, features, model=model_name), _req(2)]
    outcomes = predict_batch(model, requests, now=NOW)
    bad = outcomes[1]
    assert isinstance(bad, EventError)
    assert bad.reason == reason
    assert __import__("re").search(words, str(bad))
    assert [type(o) for o in (outcomes[0], outcomes[2])] == [Prediction, Prediction]
    clean = predict_batch(model, [_req(0), _req(2)], now=NOW)
    assert outcomes[0] == clean[0]
    assert outcomes[2] == clean[1]


def test_a_batch_of_only_bad_requests_runs_no_forward_pass(model: ServedModel) -> None:
    outcomes = predict_batch(model, [_req(0, {"x": 1.0}), _req(1, model="fraud")], now=NOW)
    assert all(isinstance(o, EventError) for o in outcomes)


def test_prediction_ids_are_stable_and_distinct_per_model_and_request() -> None:
    assert prediction_id("churn", "r1") == prediction_id("churn", "r1")
    assert prediction_id("churn", "r1") != prediction_id("churn", "r2")
    assert prediction_id("churn", "r1") != prediction_id("fraud", "r1")
    assert len(prediction_id("churn", "r1")) == 32


def test_predictions_honour_the_event_contract_on_the_wire(model: ServedModel) -> None:
    for out in predict_batch(model, [_req(i) for i in range(20)], now=NOW, started_s=0.0,
                             timer=lambda: 0.002):
        assert isinstance(out, Prediction)
        assert Prediction.model_validate_json(encode(out)) == out


def test_non_finite_outputs_are_refused_per_request(tmp_path: Path) -> None:
    broken = load_model(make_artifact(tmp_path, 9, nan=True).uri, device=pick_device("cpu"))
    outcomes = predict_batch(broken, [_req(0), _req(1)], now=NOW)
    assert [getattr(o, "reason", None) for o in outcomes] == ["non_finite_output"] * 2
