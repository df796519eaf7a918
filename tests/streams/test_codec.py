from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.codec import Decoder, encode
from streams.errors import (
    DecodeError,
    EventError,
    PayloadTooLargeError,
    SchemaError,
    UnknownModelError,
)
from streams.events import (
    ClassOutput,
    Feedback,
    InferenceRequest,
    ModelPromoted,
    ModelRolledBack,
    ModelUpdate,
    Prediction,
    ValueOutput,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _request(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "type": "inference_request",
        "schema_version": 1,
        "request_id": "r-1",
        "model": "churn",
        "features": {"tenure": 12, "plan": "pro", "spend": 31.5, "active": True},
        "timestamp": NOW.isoformat(),
    }
    body.update(changes)
    return body


def _bytes(body: object) -> bytes:
    return json.dumps(body).encode()


@pytest.fixture
def requests() -> Decoder[InferenceRequest]:
    return Decoder(InferenceRequest, max_bytes=10_000, models=["churn"])


def test_valid_request_round_trips(requests: Decoder[InferenceRequest]) -> None:
    event = requests.decode(_bytes(_request()))
    assert event.features == {"tenure": 12, "plan": "pro", "spend": 31.5, "active": True}
    assert requests.decode(encode(event)) == event


def test_prediction_round_trips_both_output_kinds() -> None:
    decoder: Decoder[Prediction] = Decoder(Prediction, max_bytes=10_000)
    for output in (ClassOutput(label="yes", probabilities={"yes": 0.7, "no": 0.3}),
                   ValueOutput(value=-2.5)):
        p = Prediction(event_id="e", request_id="r", model="m", model_version=2,
                       features={"a": 1.0}, output=output, latency_ms=1.5, timestamp=NOW)
        assert decoder.decode(encode(p)) == p


def test_model_updates_decode_by_type() -> None:
    decoder: Decoder[ModelPromoted | ModelRolledBack] = Decoder(ModelUpdate, max_bytes=10_000)
    promoted = ModelPromoted(event_id="e", model="m", version=3, artifact_uri="file:///a",
                             sha256="0" * 64, timestamp=NOW)
    rolled = ModelRolledBack(event_id="f", model="m", version=2, from_version=3,
                             artifact_uri="file:///b", sha256="1" * 64, timestamp=NOW)
    assert isinstance(decoder.decode(encode(promoted)), ModelPromoted)
    assert isinstance(decoder.decode(encode(rolled)), ModelRolledBack)


@pytest.mark.parametrize(
    ("payload", "error", "words"),
    [
        (b"{not json", DecodeError, "not valid JSON"),
        (b"\xff\xfe\x00", DecodeError, "not valid JSON"),
        (b"[1, 2]", DecodeError, "expected a JSON object"),
        (None, DecodeError, "empty message"),
        (_bytes(_request(schema_version=2)), SchemaError, "unsupported schema_version 2"),
        (_bytes(_request(features={"a": "NaN-ok", "b": [1]})), SchemaError, "features.b"),
        (_bytes({k: v for k, v in _request().items() if k != "model"}), SchemaError, "model"),
        (_bytes(_request(request_id=7)), SchemaError, "request_id"),
        (_bytes(_request(features={})), SchemaError, "features"),
        (_bytes(_request(extra="x")), SchemaError, "extra"),
        (_bytes(_request(model="fraud")), UnknownModelError, "unknown model 'fraud'"),
        (b'{"features": {"a": NaN}}', DecodeError, "NaN is not a valid number"),
        (b'{"features": {"a": Infinity}}', DecodeError, "Infinity"),
        (_bytes(_request(timestamp="2026-01-01T00:00:00")), SchemaError, "timestamp"),
    ],
)
def test_bad_input_is_refused_with_a_reason(
    requests: Decoder[InferenceRequest], payload: bytes | None, error: type[EventError],
    words: str,
) -> None:
    with pytest.raises(error, match=words.replace("(", r"\(")):
        requests.decode(payload)


def test_oversized_payload_is_refused_before_parsing() -> None:
    decoder: Decoder[InferenceRequest] = Decoder(InferenceRequest, max_bytes=200)
    big = _bytes(_request(features={f"f{i}": i for i in range(100)}))
    with pytest.raises(PayloadTooLargeError, match="over the 200-byte limit"):
        decoder.decode(big)


def test_nan_in_python_objects_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        InferenceRequest(request_id="r", model="m", features={"a": float("nan")}, timestamp=NOW)


def test_reviewer_feedback_names_the_reviewer() -> None:
    with pytest.raises(ValueError, match="must name the reviewer"):
        Feedback(event_id="e", request_id="r", model="m", label=1, source="reviewer",
                 timestamp=NOW)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_only_ever_raise_event_errors(payload: bytes) -> None:
    decoder: Decoder[InferenceRequest] = Decoder(InferenceRequest, max_bytes=300)
    try:
        decoder.decode(payload)
    except EventError as exc:
        message = str(exc)
    else:
        message = "accepted"
    assert message


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from([InferenceRequest, Prediction, Feedback, ModelUpdate]))
def test_random_json_only_ever_raises_event_errors(value: object, kind: object) -> None:
    decoder: Decoder[object] = Decoder(kind, max_bytes=10_000)
    try:
        decoder.decode(json.dumps(value).encode())
    except EventError as exc:
        message = str(exc)
    else:
        message = "accepted"
    assert message


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(
    st.text(min_size=1, max_size=10),
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    min_size=1, max_size=8,
))
def test_any_flat_finite_features_are_accepted(features: dict[str, object]) -> None:
    decoder: Decoder[InferenceRequest] = Decoder(InferenceRequest, max_bytes=10_000)
    event = decoder.decode(_bytes(_request(features=features)))
    assert event.features == features


@pytest.mark.parametrize(("payload", "reason", "says"), [
    (b"[" * 5_000, "decode", "recursion limit"),
    (b'{"a":' * 2_000, "decode", "recursion limit"),
    (b'{"request_id": "r\\ud800"}', "decode", "not valid JSON"),
    (b'{"tenure": NaN}', "decode", "NaN is not a valid number"),
    (_bytes(_request(schema_version=True)), "schema", "schema_version"),
    (_bytes(_request(timestamp="2024-05-01 10:00:00Z")), "schema", "RFC 3339"),
    (_bytes(_request(timestamp="0001-01-01T00:00:00+14:00")), "schema", "years 1970-2199"),
    (_bytes(_request(features={"tenure": 2**64 * 10**300})), "schema",
     "tenure"),
])
def test_every_refusal_names_its_reason_and_never_raises_anything_else(
    requests: Decoder[InferenceRequest], payload: bytes, reason: str, says: str,
) -> None:
    with pytest.raises(EventError) as refused:
        requests.decode(payload)
    assert refused.value.reason == reason
    assert says in str(refused.value)


def test_a_feature_nested_deeper_than_json_parsers_go_is_refused() -> None:
    decoder: Decoder[InferenceRequest] = Decoder(InferenceRequest, max_bytes=10_000_000)
    body = json.dumps(_request(features={"tenure": "@"}))
    with pytest.raises(DecodeError):
        decoder.decode(body.replace('"@"', "[" * 5_000 + "]" * 5_000).encode())
