"""Hostile payloads for every input topic, as a foreign or careless client would send them.

Each case is a name and the raw bytes; every one of them must be dead-lettered by whichever
consumer reads it, and no valid message around it may be lost or stored twice.
"""

from __future__ import annotations

import json
import random
from typing import Any

TS = "2026-01-01T00:00:00Z"


def request(rid: str, features: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "inference_request", "schema_version": 1, "request_id": rid,
            "model": "churn", "features": features or {"x": 1.0, "y": 0.5, "plan": "pro"},
            "timestamp": TS}


def prediction(rid: str, **changes: Any) -> dict[str, Any]:
    base = {"type": "prediction", "schema_version": 1, "event_id": f"p-{rid}",
            "request_id": rid, "model": "churn", "model_version": 1,
            "features": {"x": 1.0, "y": 0.5, "plan": "pro"},
            "output": {"kind": "class", "label": "stay",
                       "probabilities": {"stay": 0.7, "leave": 0.3}},
            "latency_ms": 1.5, "timestamp": TS}
    return {**base, **changes}


def feedback(rid: str, **changes: Any) -> dict[str, Any]:
    base = {"type": "feedback", "schema_version": 1, "event_id": f"f-{rid}",
            "request_id": rid, "model": "churn", "label": "stay", "source": "app",
            "timestamp": TS}
    return {**base, **changes}


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def _with_raw(event: dict[str, Any], field: str, raw: str) -> bytes:
    """``event`` as JSON with ``field`` set to ``raw`` JSON text, verbatim."""
    marker = "__raw__"
    text = json.dumps({**event, field: marker})
    return text.replace(json.dumps(marker), raw, 1).encode()


def _with_raw_feature(event: dict[str, Any], raw: str) -> bytes:
    marker = "__raw__"
    text = json.dumps({**event, "features": {**event["features"], "x": marker}})
    return text.replace(json.dumps(marker), raw, 1).encode()


def common(event: dict[str, Any]) -> list[tuple[str, bytes | None]]:
    """Cases that break any event, built on a valid ``event`` of the topic."""
    some_id = "request_id" if "request_id" in event else "event_id"
    return [
        ("deep array", b"[" * 50_000),
        ("deep object", b'{"a":' * 50_000),
        ("deep array, closed", _nested(1_000).encode()),
        ("not json", b"{junk"),
        ("invalid utf-8", b'{"request_id": "\xff\xfe"}'),
        ("random bytes", random.Random(7).randbytes(300)),
        ("empty", b""),
        ("null value", None),
        ("json array", b"[1, 2]"),
        ("json string", b'"prediction"'),
        ("json number", b"12"),
        ("NaN literal", _with_raw(event, "timestamp", "NaN")),
        ("Infinity literal", _with_raw(event, "schema_version", "Infinity")),
        ("schema_version true", dumps({**event, "schema_version": True})),
        ("schema_version 2", dumps({**event, "schema_version": 2})),
        ("schema_version string", dumps({**event, "schema_version": "1"})),
        ("timestamp with a space", dumps({**event, "timestamp": "2024-05-01 10:00:00Z"})),
        ("timestamp as a number", dumps({**event, "timestamp": 1714557600})),
        ("timestamp year 1", dumps({**event, "timestamp": "0001-01-01T00:00:00+14:00"})),
        ("timestamp year 9999", dumps({**event, "timestamp": "9999-12-31T23:59:59-14:00"})),
        ("timestamp without zone", dumps({**event, "timestamp": "2024-05-01T10:00:00"})),
        ("id with U+001C", dumps({**event, some_id: "r\u001c1"})),
        ("id with U+FEFF", dumps({**event, some_id: "\ufeffr1"})),
        ("id with a newline at the end", dumps({**event, some_id: "r1\n"})),
        ("id too long", dumps({**event, some_id: "r" * 201})),
        ("lone surrogate", _with_raw(event, some_id, '"r\\ud800"')),
        ("model with a newline", dumps({**event, "model": "churn\n"})),
        ("unknown model", dumps({**event, "model": "nobody"})),
        ("extra field", dumps({**event, "surprise": 1})),
        ("missing field", dumps({k: v for k, v in event.items() if k != "model"})),
        ("wrong type", dumps({**event, "type": "drift_report"})),
    ]


def request_cases() -> list[tuple[str, bytes | None]]:
    event = request("bad")
    return [
        *common(event),
        ("feature nested 1,000 deep", _with_raw_feature(event, _nested(1_000))),
        ("feature nested 300 deep", _with_raw_feature(event, _nested(300))),
        ("4,000-digit feature", _with_raw_feature(event, "9" * 4_000)),
        ("feature beyond a double", _with_raw_feature(event, str(2**64 * 10**300))),
        ("feature NaN", _with_raw_feature(event, "NaN")),
        ("feature -Infinity", _with_raw_feature(event, "-Infinity")),
        ("feature an object", _with_raw_feature(event, '{"a": 1}')),
        ("no features", dumps({**event, "features": {}})),
    ]


def prediction_cases() -> list[tuple[str, bytes | None]]:
    event = prediction("bad")
    return [
        *common(event),
        ("model_version 2^63", dumps({**event, "model_version": 2**63})),
        ("model_version 10^30", dumps({**event, "model_version": 10**30})),
        ("model_version string", dumps({**event, "model_version": "3"})),
        ("model_version true", dumps({**event, "model_version": True})),
        ("model_version -1", dumps({**event, "model_version": -1})),
        ("latency string", dumps({**event, "latency_ms": "1.5"})),
        ("output without kind", dumps({**event, "output": {"label": "stay"}})),
        ("output kind unknown", dumps({**event, "output": {"kind": "vector", "value": 1}})),
        ("label nested 1,000 deep", _with_raw(
            event, "output", '{"kind": "class", "label": ' + _nested(1_000) + "}")),
        ("probability 2", dumps({**event, "output": {"kind": "class", "label": "stay",
                                                     "probabilities": {"stay": 2.0}}})),
        ("value 10^400", _with_raw(event, "output", '{"kind": "value", "value": 1e400}')),
        ("feature 4,000 digits", _with_raw_feature(event, "9" * 4_000)),
    ]


def feedback_cases() -> list[tuple[str, bytes | None]]:
    event = feedback("bad")
    return [
        *common(event),
        ("label nested 1,000 deep", _with_raw(event, "label", _nested(1_000))),
        ("label 4,000 digits", _with_raw(event, "label", "9" * 4_000)),
        ("label beyond a double", dumps({**event, "label": 2**64 * 10**300})),
        ("label null", dumps({**event, "label": None})),
        ("label an object", dumps({**event, "label": {"a": 1}})),
        ("reviewer without a name", dumps({**event, "source": "reviewer"})),
        ("source unknown", dumps({**event, "source": "oracle"})),
    ]


def update_cases() -> list[tuple[str, bytes | None]]:
    event = {"type": "model_promoted", "schema_version": 1, "event_id": "u-bad",
             "model": "churn", "version": 2, "artifact_uri": "/nowhere",
             "sha256": "0" * 64, "timestamp": TS}
    return [
        *common(event),
        ("version 2^63", dumps({**event, "version": 2**63})),
        ("version 0", dumps({**event, "version": 0})),
        ("sha256 with a newline", dumps({**event, "sha256": "0" * 64 + "\n"})),
    ]


def oversized() -> list[tuple[str, bytes]]:
    """Payloads over the 1 MB limit, for brokers that accept them (Tansu does)."""
    return [(f"{size:,} bytes", dumps(request("big", {"x": 1.0, "y": 0.5,
                                                      "plan": "p" * size})))
            for size in (1_200_000, 2_500_000, 5_000_000)]


def random_payloads() -> Any:
    """A Hypothesis strategy of junk: random bytes, random JSON, random nesting."""
    from hypothesis import strategies as st

    scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
               | st.text(max_size=10))
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                          max_leaves=10)
    nesting = st.builds(lambda depth, open_, close: (open_ * depth + close * depth).encode(),
                        st.integers(1, 3_000), st.sampled_from(["[", '{"a":[']),
                        st.sampled_from(["]", "]}", ""]))
    return st.binary(max_size=300) | st.builds(dumps, values) | nesting
