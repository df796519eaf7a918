"""The serving process on a real broker: waiting, refusing bad models, dead-lettering bad input."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from serving.process import ServingProcess
from streams.client import Client
from streams.codec import encode
from streams.events import InferenceRequest, SwapFailed
from streams.producer import Producer
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment
from tests.serving.artifacts import MODEL, make_artifact, promoted, rolled_back, row
from tests.serving.harness import predictions, quick_join, running, wait_for
from tests.streams.kafka_helpers import produce_raw, read_all


def _send(dep: Deployment, ids: range) -> None:
    with Client(dep.settings) as client:
        for i in ids:
            client.request(MODEL, row(i), request_id=f"r{i}")


def _publish(dep: Deployment, *events: object) -> None:
    with Producer(dep.kafka) as producer:
        for event in events:
            producer.send(dep.names(Topic.MODEL_UPDATES), event, key=MODEL)  # type: ignore[arg-type]


def _swap_failures(dep: Deployment, expect: int) -> list[SwapFailed]:
    messages = read_all(dep.broker.bootstrap, dep.names(Topic.MODEL_UPDATES), expect=expect,
                        timeout_s=20)
    found = [json.loads(m.value) for m in messages]
    return [SwapFailed.model_validate(e) for e in found if e["type"] == "swap_failed"]


def test_waits_for_a_champion_then_refuses_tampered_and_broken_models(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], tmp_path: Path
) -> None:
    dep = deployment_factory(broker)
    root = tmp_path / "artifacts"
    v1, v2, v3 = make_artifact(root, 1), make_artifact(root, 2), make_artifact(root, 3, nan=True)
    bad_digest = promoted(v2).model_copy(update={"sha256": v1.sha256})
    process = ServingProcess(quick_join(dep), model=MODEL, device="cpu", instance="waiter")
    with running(process):
        _send(dep, range(20))
        time.sleep(1.5)
        assert process.holder.current is None
        assert process.stats.consumed == 0, "requests were consumed without a model"

        _publish(dep, promoted(v1))
        out = predictions(dep.broker.bootstrap, dep.names(Topic.PREDICTIONS), expect=20)
        assert sorted(p.request_id for _, _, p in out) == sorted(f"r{i}" for i in range(20))
        assert {p.model_version for _, _, p in out} == {1}

        _publish(dep, bad_digest)
        assert [(f.version, f.instance) for f in _swap_failures(dep, expect=3)] == [
            (2, "waiter")]
        _publish(dep, promoted(v3))
        failures = _swap_failures(dep, expect=5)
        assert [f.version for f in failures] == [2, 3]
        assert "does not match the expected" in failures[0].error
        assert "non-finite" in failures[1].error

        _send(dep, range(20, 40))
        out = predictions(dep.broker.bootstrap, dep.names(Topic.PREDICTIONS), expect=40)
        assert {p.model_version for _, _, p in out} == {1}, "the old model keeps serving"
        assert process.holder.current.version == 1  # type: ignore[union-attr]


def test_starts_on_the_newest_champion_that_loads(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], tmp_path: Path
) -> None:
    dep = deployment_factory(broker)
    root = tmp_path / "artifacts"
    v1, v2, v3 = (make_artifact(root, v) for v in (1, 2, 3))
    history = [promoted(v1), promoted(v2), rolled_back(v1, from_version=2), promoted(v3)]
    _publish(dep, *history)
    shutil.rmtree(v3.path)  # the newest champion's artifact is gone: walk back to v1
    process = ServingProcess(quick_join(dep), model=MODEL, device="cpu", instance="restart")
    with running(process):
        served = wait_for(lambda: process.holder.current, what="a model")
        assert served.version == 1
        assert served.sha256 == v1.sha256
    failures = _swap_failures(dep, expect=len(history) + 1)
    assert [f.version for f in failures] == [3]


def test_bad_requests_are_dead_lettered_with_their_reason_and_good_ones_answered(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], tmp_path: Path
) -> None:
    dep = deployment_factory(broker)
    artifact = make_artifact(tmp_path / "artifacts", 7)
    requests = dep.names(Topic.REQUESTS)
    now = "2026-01-01T00:00:00Z"

    def request(rid: str, features: dict[str, object], model: str = MODEL) -> bytes:
        return encode(InferenceRequest.model_validate(
            {"request_id": rid, "model": model, "features": features, "timestamp": now}))

    bad = [
        request("missing", {"x": 1.0, "plan": "pro"}),
        request("extra", {**row(0), "z": 1.0}),
        request("wrong-type", {**row(0), "x": "high"}),
        request("other-model", row(0), model="fraud"),
        b'{"type":"inference_request","request_id":"nan","model":"churn",'
        b'"features":{"x":NaN,"y":0.0,"plan":"pro"},"timestamp":"2026-01-01T00:00:00Z"}',
    ]
    good = [request(f"ok{i}", row(i)) for i in range(10)]
    produce_raw(dep.broker.bootstrap, requests, good[:5] + bad + good[5:], key=None)

    # No registry in this app: the process serves the artifact it was given.
    process = ServingProcess(quick_join(dep), model=MODEL, artifact=artifact.path, device="cpu")
    with running(process):
        out = predictions(dep.broker.bootstrap, dep.names(Topic.PREDICTIONS), expect=10)
        dead = read_all(dep.broker.bootstrap, dep.names(Topic.DEAD_LETTER), expect=5)
        wait_for(lambda: process.stats.handled == 10, what="the batch to be committed")

    assert sorted(p.request_id for _, _, p in out) == sorted(f"ok{i}" for i in range(10))
    assert {p.model_version for _, _, p in out} == {7}
    reasons = Counter(dict(m.headers)["dl-reason"].decode() for m in dead)
    assert reasons == {"schema": 3, "unknown_model": 1, "decode": 1}
    errors = {json.loads(m.value)["request_id"]: dict(m.headers)["dl-error"].decode()
              for m in dead if dict(m.headers)["dl-reason"] != b"decode"}
    assert "missing features ['y']" in errors["missing"]
    assert "unexpected features ['z']" in errors["extra"]
    assert "'x' must be numeric" in errors["wrong-type"]
    assert "not 'fraud'" in errors["other-model"]


def test_requests_for_the_deployments_other_models_are_left_to_their_servers(
    tansu: BrokerInfo, deployment_factory: Callable[..., Deployment], tmp_path: Path
) -> None:
    dep = deployment_factory(tansu, models=("churn", "fraud"))
    artifact = make_artifact(tmp_path / "artifacts", 2)
    now = "2026-01-01T00:00:00Z"

    def request(rid: str, model: str) -> bytes:
        return encode(InferenceRequest.model_validate(
            {"request_id": rid, "model": model, "features": row(1), "timestamp": now}))

    payloads = [request("c1", "churn"), request("f1", "fraud"), request("s1", "spam"),
                request("c2", "churn")]
    produce_raw(dep.broker.bootstrap, dep.names(Topic.REQUESTS), payloads, key=None)
    process = ServingProcess(dep.settings, model=MODEL, artifact=artifact.path, device="cpu")
    with running(process):
        out = predictions(dep.broker.bootstrap, dep.names(Topic.PREDICTIONS), expect=2)
        dead = read_all(dep.broker.bootstrap, dep.names(Topic.DEAD_LETTER), expect=1)
        wait_for(lambda: process.stats.consumed == 4, what="all four requests")
    assert sorted(p.request_id for _, _, p in out) == ["c1", "c2"]
    assert [dict(m.headers)["dl-reason"] for m in dead] == [b"unknown_model"]
    assert [json.loads(m.value)["request_id"] for m in dead] == ["s1"]


def test_a_redelivered_promotion_does_not_undo_a_rollback(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], tmp_path: Path
) -> None:
    dep = deployment_factory(broker)
    root = tmp_path / "artifacts"
    v1, v2 = make_artifact(root, 1), make_artifact(root, 2)
    up, back = promoted(v2), rolled_back(v1, from_version=2)
    _publish(dep, promoted(v1))
    process = ServingProcess(quick_join(dep), model=MODEL, device="cpu", instance="redelivery")
    with running(process):
        wait_for(lambda: process.holder.current, what="v1")
        _publish(dep, up)
        wait_for(lambda: process.holder.current.version == 2, what="v2")  # type: ignore[union-attr]
        _publish(dep, back)
        wait_for(lambda: process.holder.current.version == 1, what="the rollback")  # type: ignore[union-attr]
        _publish(dep, up, back)  # the registry's outbox sent both again after a crash
        _send(dep, range(30))
        out = predictions(dep.broker.bootstrap, dep.names(Topic.PREDICTIONS), expect=30)
        assert process.holder.current.version == 1  # type: ignore[union-attr]
    assert {p.model_version for _, _, p in out} == {1}
