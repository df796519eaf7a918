"""The published JSON Schema and the system agree on every payload.

Each payload is checked twice: by ``jsonschema`` (draft 2020-12, with format checking) against
the schema ``driftloop schema`` writes (the event's, or the mixed topic's), and by the decoder
that consumers of that topic use. The system must
accept a payload exactly when the schema validates it. Payloads that are not JSON by RFC 8259
(NaN, a number beyond a double, a lone surrogate) are refused by both.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from driftloop.commands.schema import write_schemas
from streams.codec import Decoder
from streams.errors import EventError
from streams.events import ALL_EVENTS, DriftEvent, Event, ModelUpdate
from tests.streams.poison import feedback_cases, prediction_cases, request_cases, update_cases

TS = "2026-01-01T00:00:00Z"
SHA = "ab" * 32

VALID: dict[str, dict[str, Any]] = {
    "inference_request": {"type": "inference_request", "request_id": "r1", "model": "churn",
                          "features": {"x": 1.5, "n": 3, "plan": "pro", "ok": True, "gap": None},
                          "timestamp": TS},
    "prediction": {"type": "prediction", "schema_version": 1, "event_id": "e1",
                   "request_id": "r1", "model": "churn", "model_version": 2,
                   "features": {"x": 1.5}, "latency_ms": 0.5, "timestamp": TS,
                   "output": {"kind": "class", "label": "stay",
                              "probabilities": {"stay": 0.75, "leave": 0.25}}},
    "feedback": {"type": "feedback", "event_id": "f1", "request_id": "r1", "model": "churn",
                 "label": "leave", "source": "reviewer", "reviewer": "ann", "timestamp": TS},
    "drift_report": {"type": "drift_report", "event_id": "d1", "model": "churn",
                     "model_version": 3, "window_id": "w1", "window_start": TS,
                     "window_end": TS, "rows": 500, "drifted_share": 0.5,
                     "drift_detected": True, "columns": [
                         {"column": "x", "method": "psi", "score": 0.3, "threshold": 0.1,
                          "drifted": True}],
                     "performance": {"accuracy": 0.9}, "alarms": ["adwin"], "timestamp": TS},
    "retrain_requested": {"type": "retrain_requested", "event_id": "q1", "model": "churn",
                          "champion_version": 3, "reasons": ["detector:adwin"],
                          "evidence": {"windows": ["w1"]}, "timestamp": TS},
    "model_promoted": {"type": "model_promoted", "event_id": "m1", "model": "churn",
                       "version": 4, "previous_version": 3, "artifact_uri": "/a/4",
                       "sha256": SHA, "actor": "ann", "reason": "better", "timestamp": TS},
    "model_rolled_back": {"type": "model_rolled_back", "event_id": "m2", "model": "churn",
                          "version": 3, "from_version": 4, "artifact_uri": "/a/3",
                          "sha256": SHA, "timestamp": TS},
    "swap_failed": {"type": "swap_failed", "event_id": "s1", "model": "churn", "version": 4,
                    "instance": "serve-1", "error": "sha256 mismatch", "timestamp": TS},
}

EDGE_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, 3.0, 2.5, -0.0, 2**31 - 1, 2**31, 2**63 - 1, 2**63,
    -(2**63), -(2**63) - 1, 2**64, 10**30, 1e308, -1e308, 2**1030, "", "1", "3", "1.5", "true",
    "stay", "churn", "churn\n", "r\u001c", "\ufeffr", "r\u0085", "r r", "x" * 201,
    "2024-05-01T10:00:00Z", "2024-05-01 10:00:00Z", "2024-05-01t10:00:00z",
    "2024-05-01T10:00:00", "2024-05-01T10:00:00.1234567Z", "2024-05-01T10:00:00.123456+14:00",
    "2024-05-01T23:59:60Z", "2023-02-29T10:00:00Z", "2024-02-29T10:00:00Z",
    "2024-04-31T10:00:00Z", "1969-12-31T23:59:59Z", "1970-01-01T00:00:00+01:00",
    "2199-12-31T23:59:59-01:00", "2200-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00",
    "2024-05-01T10:00:00+24:00", "2024-05-01T10:00:00+14:60", 1714557600, SHA, SHA.upper(),
    "class", "value", "app", "reviewer", [], [1], {}, {"kind": "value", "value": 2.5},
    {"kind": "class", "label": 1}, {"label": "stay"}, {"a": [1, {"b": None}]},
]


@pytest.fixture(scope="module")
def validators(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Draft202012Validator]:
    out: Path = tmp_path_factory.mktemp("schemas")
    write_schemas(out=out)
    found = {}
    for path in out.glob("*.schema.json"):
        document = json.loads(path.read_text())
        Draft202012Validator.check_schema(document)
        found[path.name.removesuffix(".schema.json")] = Draft202012Validator(
            document, format_checker=FormatChecker())
    assert set(found) == {*VALID, "topic-drift", "topic-model-updates"}
    return found


def _json(payload: bytes | None) -> tuple[bool, Any]:
    """(is RFC 8259 JSON that a schema can judge, the value)."""
    if payload is None:
        return False, None
    try:
        value = json.loads(payload, parse_constant=lambda name: _refuse(name))
    except (ValueError, RecursionError):
        return False, None
    return _plain(value), value


def _refuse(name: str) -> Any:
    raise ValueError(name)


def _plain(value: Any) -> bool:
    """No non-finite number and no lone surrogate anywhere (iteratively: any depth)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _schema_accepts(validators: dict[str, Draft202012Validator], kinds: list[str],
                    payload: bytes | None) -> bool:
    ok, value = _json(payload)
    if not ok:
        return False
    return any(validators[kind].is_valid(value) for kind in kinds)


def _system_accepts(event_type: Any, payload: bytes | None) -> bool:
    decoder: Decoder[Any] = Decoder(event_type, max_bytes=10_000_000)
    try:
        decoder.decode(payload)
    except EventError:
        return False
    return True


EVENT_TYPES: dict[str, tuple[Any, list[str]]] = {
    **{cls.model_fields["type"].default: (cls, [cls.model_fields["type"].default])
       for cls in ALL_EVENTS},
    "model-updates": (ModelUpdate, ["topic-model-updates"]),
    "drift": (DriftEvent, ["topic-drift"]),
}
#: The events each mixed topic carries.
MEMBERS = {"model-updates": ["model_promoted", "model_rolled_back", "swap_failed"],
           "drift": ["drift_report", "retrain_requested"]}


def _agree(validators: dict[str, Draft202012Validator], name: str,
           payload: bytes | None) -> None:
    event_type, kinds = EVENT_TYPES[name]
    schema_says = _schema_accepts(validators, kinds, payload)
    system_says = _system_accepts(event_type, payload)
    assert system_says == schema_says, (
        f"{name}: schema {'accepts' if schema_says else 'refuses'}, system "
        f"{'accepts' if system_says else 'refuses'}: {payload[:300] if payload else payload!r}")


def test_the_valid_examples_are_valid(validators: dict[str, Draft202012Validator]) -> None:
    for kind, event in VALID.items():
        payload = json.dumps(event).encode()
        assert _schema_accepts(validators, [kind], payload), kind
        assert _system_accepts(EVENT_TYPES[kind][0], payload), kind


def test_required_fields_only_events_are_accepted(
    validators: dict[str, Draft202012Validator],
) -> None:
    """Any payload with just the fields the schema requires is one the system reads."""
    for kind, event in VALID.items():
        required = set(validators[kind].schema.get("required", ()))
        minimal = {k: v for k, v in event.items() if k in required}
        if "output" in minimal:
            minimal["output"] = {"kind": "class", "label": "stay"}
        _agree(validators, kind, json.dumps(minimal).encode())
        assert _system_accepts(EVENT_TYPES[kind][0], json.dumps(minimal).encode()), kind


def test_every_edge_value_in_every_field(validators: dict[str, Draft202012Validator]) -> None:
    checked = 0
    for kind, event in VALID.items():
        for field in [*event, "surprise"]:
            for value in EDGE_VALUES:
                _agree(validators, kind, json.dumps({**event, field: value}).encode())
                checked += 1
            _agree(validators, kind, json.dumps(
                {k: v for k, v in event.items() if k != field}).encode())
    for topic, members in MEMBERS.items():  # the same changes, read as the mixed topic
        for member in members:
            for field in VALID[member]:
                for value in EDGE_VALUES:
                    _agree(validators, topic,
                           json.dumps({**VALID[member], field: value}).encode())
                    checked += 1
    assert checked > 6_000


@pytest.mark.parametrize(("topic", "cases"), [
    ("inference_request", request_cases), ("prediction", prediction_cases),
    ("feedback", feedback_cases), ("model-updates", update_cases)])
def test_the_hostile_corpus(validators: dict[str, Draft202012Validator], topic: str,
                            cases: Any) -> None:
    for name, payload in cases():
        _agree(validators, topic, payload)
        if name != "unknown model":  # a deployment's models are not in the schema
            assert not _system_accepts(EVENT_TYPES[topic][0], payload), name


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                          allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(EDGE_VALUES),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(kind=st.sampled_from(sorted(EVENT_TYPES)), data=st.data())
def test_random_changes_to_valid_events(
    validators: dict[str, Draft202012Validator], kind: str, data: st.DataObject,
) -> None:
    base = VALID[data.draw(st.sampled_from(MEMBERS.get(kind, [kind])))]
    event = dict(base)
    for _ in range(data.draw(st.integers(1, 3))):
        field = data.draw(st.sampled_from([*event, "features", "output", "x", "label"]))
        if data.draw(st.booleans()) and field in event:
            del event[field]
        else:
            event[field] = data.draw(json_values)
    _agree(validators, kind, json.dumps(event).encode())


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(kind=st.sampled_from(sorted(EVENT_TYPES)),
       payload=st.binary(max_size=200) | st.builds(lambda v: json.dumps(v).encode(),
                                                    json_values))
def test_random_bytes_and_json(validators: dict[str, Draft202012Validator], kind: str,
                               payload: bytes) -> None:
    _agree(validators, kind, payload)


def test_deep_nesting_is_refused_by_both(validators: dict[str, Draft202012Validator]) -> None:
    for depth in (10, 100, 300, 1_000, 50_000):
        nested = "[" * depth + "1" + "]" * depth
        _agree(validators, "inference_request",
               json.dumps({**VALID["inference_request"], "features": {"x": "@"}})
               .replace('"@"', nested).encode())
        _agree(validators, "feedback", ("[" * depth).encode())


def test_events_the_system_writes_are_valid(validators: dict[str, Draft202012Validator]) -> None:
    for kind, event in VALID.items():
        cls: type[Event] = EVENT_TYPES[kind][0]
        written = cls.model_validate_json(json.dumps(event)).model_dump_json()
        assert validators[kind].is_valid(json.loads(written)), kind
