"""No request stops serving: every hostile payload is dead-lettered, every valid one answered."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from serving.process import ServingProcess
from streams.producer import Producer
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment
from tests.serving.artifacts import MODEL, make_artifact, promoted
from tests.serving.harness import predictions, running, wait_for
from tests.streams.kafka_helpers import read_all
from tests.streams.poison import dumps, oversized, random_payloads, request, request_cases


def test_hostile_requests_are_dead_lettered_and_valid_ones_answered_once(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], tmp_path: Path
) -> None:
    dep = deployment_factory(broker, partitions=1)
    with Producer(dep.kafka) as publisher:
        publisher.send(dep.names(Topic.MODEL_UPDATES),
                       promoted(make_artifact(tmp_path / "artifacts", 1)), key=MODEL)
    bad = request_cases()
    # Valid, but its prediction echoes a feature that takes it over the 1 MB limit.
    bad.append(("prediction too large", dumps(request("huge", {
        "x": 1.0, "y": 0.5, "plan": "p" * 999_800}))))
    if broker.kind == "tansu":  # Apache Kafka refuses messages over 1 MB at the door
        bad.extend(oversized())
    payloads: list[bytes | None] = []
    for i, (_, payload) in enumerate(bad):
        payloads += [payload, dumps(request(f"r{i}"))]
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all",
                             max_request_size=8_000_000)
    for payload in payloads:
        producer.send(dep.names(Topic.REQUESTS), value=payload, key=b"k")
    producer.flush()
    producer.close()

    process = ServingProcess(dep.settings, model=MODEL, device="cpu", instance="poisoned")
    with running(process):
        wait_for(lambda: process.stats.consumed >= len(payloads), 90, "every request consumed")
        out = predictions(broker.bootstrap, dep.names(Topic.PREDICTIONS), expect=len(bad))
        dead = read_all(broker.bootstrap, dep.names(Topic.DEAD_LETTER), expect=len(bad))
    answered = Counter(p.request_id for _, _, p in out)
    assert answered == Counter(f"r{i}" for i in range(len(bad))), "each valid one, once"
    assert len(dead) == len(bad)
    reasons = Counter(dict(m.headers)["dl-reason"].decode() for m in dead)
    assert set(reasons) <= {"decode", "schema", "too_large", "unknown_model"}, reasons
    too_large = [dict(m.headers)["dl-error"].decode() for m in dead
                 if dict(m.headers)["dl-reason"] == b"too_large"]
    assert any(error.startswith("its prediction would be") for error in too_large)


@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
@given(junk=st.lists(random_payloads(), min_size=40, max_size=80))
def test_random_junk_never_stops_serving(
    junk: list[bytes], tansu: BrokerInfo, deployment_factory: Callable[..., Deployment],
    tmp_path_factory: object,
) -> None:
    dep = deployment_factory(tansu, partitions=1)
    root = tmp_path_factory.mktemp("artifacts")  # type: ignore[attr-defined]
    with Producer(dep.kafka) as publisher:
        publisher.send(dep.names(Topic.MODEL_UPDATES), promoted(make_artifact(root, 1)),
                       key=MODEL)
        for i, payload in enumerate(junk):
            publisher.send_raw(dep.names(Topic.REQUESTS), payload, key=b"k")
            publisher.send_raw(dep.names(Topic.REQUESTS), dumps(request(f"r{i}")), key=b"k")
    process = ServingProcess(dep.settings, model=MODEL, device="cpu", instance="junk")
    with running(process):
        wait_for(lambda: process.stats.consumed >= 2 * len(junk), 90, "every request consumed")
        out = predictions(tansu.bootstrap, dep.names(Topic.PREDICTIONS), expect=len(junk))
        dead = read_all(tansu.bootstrap, dep.names(Topic.DEAD_LETTER), expect=len(junk))
    assert Counter(p.request_id for _, _, p in out) == Counter(
        f"r{i}" for i in range(len(junk)))
    assert len(dead) == len(junk)
