"""The transport contract: what driftloop relies on from a broker, on every implementation.

Written once and run on the in-memory broker, Tansu and Apache Kafka, so the fake cannot
drift from the real brokers in anything the adapters and handlers depend on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from streams.producer import Producer
from streams.topics import Topic, ensure_topics
from streams.transport import ConsumerClient, transport_for
from tests.conftest import Deployment, on_every_broker
from tests.streams.kafka_helpers import read_all

pytestmark = on_every_broker


def _member(dep: Deployment, group: str) -> ConsumerClient:
    kafka = dep.kafka
    consumer = transport_for(kafka).consumer(
        group_id=f"{dep.names.prefix}-{group}", enable_auto_commit=False,
        auto_offset_reset="earliest", session_timeout_ms=kafka.session_timeout_ms,
        heartbeat_interval_ms=max(kafka.session_timeout_ms // 4, 100),
        **kafka.client_config())
    topic = dep.names(Topic.REQUESTS)
    # A leader without the new topic's metadata would assign nothing (see ConsumerLoop).
    deadline = time.monotonic() + 30
    while not consumer.partitions_for_topic(topic) and time.monotonic() < deadline:
        consumer.topics()
        time.sleep(0.1)
    consumer.subscribe([topic])
    return consumer


def _poll_until(consumers: list[ConsumerClient], done: Callable[[], bool],
                seen: list[tuple[Any, ...]] | None = None, timeout_s: float = 90.0) -> None:
    # Alone a rebalance of two members takes seconds; on a loaded two-core CI machine Tansu
    # once took more than 30, so the limit only catches a group that never settles.
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, (
            "the brokers did not get there in time: assignments "
            f"{[sorted(str(tp) for tp in c.assignment()) for c in consumers]}")
        for consumer in consumers:
            for records in consumer.poll(timeout_ms=100).values():
                if seen is not None:
                    seen.extend((r.partition, r.offset, r.value) for r in records)


def _send(dep: Deployment, values: list[bytes], *, keys: list[str] | None = None,
          topic: Topic = Topic.REQUESTS) -> None:
    with Producer(dep.kafka) as producer:
        for i, value in enumerate(values):
            producer.send_raw(dep.names(topic), value, key=keys[i] if keys else f"k{i}")
        producer.flush()


def test_a_key_lands_on_the_same_partition_number_in_every_topic(deployment: Deployment) -> None:
    keys = [f"request-{i}" for i in range(40)]
    values = [k.encode() for k in keys]
    where: dict[Topic, dict[bytes, int]] = {}
    for topic in (Topic.REQUESTS, Topic.FEEDBACK):
        _send(deployment, values, keys=keys, topic=topic)
        found = read_all(deployment.broker.bootstrap, deployment.names(topic), expect=len(keys))
        where[topic] = {r.value: r.partition for r in found}
    assert where[Topic.REQUESTS] == where[Topic.FEEDBACK]
    assert len(set(where[Topic.REQUESTS].values())) > 1, "keys spread over the partitions"


def test_members_of_a_group_share_the_partitions_and_read_each_message_once(
    deployment: Deployment,
) -> None:
    first, second = _member(deployment, "share"), _member(deployment, "share")
    try:
        _poll_until([first, second], lambda: bool(first.assignment()) and bool(second.assignment())
                    and len(first.assignment() | second.assignment()) == 3)
        assert not first.assignment() & second.assignment()
        _send(deployment, [f"m{i}".encode() for i in range(60)])
        seen: list[tuple[Any, ...]] = []
        _poll_until([first, second], lambda: len(seen) >= 60, seen)
        for consumer in (first, second):
            consumer.poll(timeout_ms=300)  # nothing more may come
        assert sorted(value for _p, _o, value in seen) == sorted(
            f"m{i}".encode() for i in range(60))
    finally:
        first.close(autocommit=False)
        second.close(autocommit=False)


def test_a_new_member_starts_from_the_committed_offset(deployment_factory: Any,
                                                        broker: Any) -> None:
    dep = deployment_factory(broker, partitions=1)
    _send(dep, [f"m{i}".encode() for i in range(10)])
    first = _member(dep, "resume")
    seen: list[tuple[Any, ...]] = []
    _poll_until([first], lambda: len(seen) >= 10, seen)
    tp = TopicPartition(dep.names(Topic.REQUESTS), 0)
    first.commit({tp: OffsetAndMetadata(6, "", -1)})
    assert first.position(tp) == 10
    assert first.highwater(tp) == 10
    first.close(autocommit=False)
    second = _member(dep, "resume")
    again: list[tuple[Any, ...]] = []
    try:
        _poll_until([second], lambda: len(again) >= 4, again)
        second.poll(timeout_ms=300)
    finally:
        second.close(autocommit=False)
    assert [offset for _p, offset, _v in again] == [6, 7, 8, 9]


def test_creating_the_topics_twice_creates_them_once(deployment: Deployment) -> None:
    settings = deployment.settings
    assert ensure_topics(settings.kafka, settings.topics) == []
    reader = transport_for(settings.kafka).consumer(group_id=None,
                                                    **settings.kafka.client_config())
    try:
        for name in deployment.names.all():
            assert reader.partitions_for_topic(name) == {0, 1, 2}
    finally:
        reader.close()


def test_end_offsets_count_what_was_sent(deployment: Deployment) -> None:
    # One record a batch: Tansu's end offsets are short after batches of several records
    # (12 records in 3 batches gave 1 per partition), so serving's catch-up with the
    # model-updates topic, which reads up to them, relies on updates sent one by one.
    for i in range(12):
        _send(deployment, [f"m{i}".encode()], keys=[f"k{i}"])
    name = deployment.names(Topic.REQUESTS)
    reader = transport_for(deployment.kafka).consumer(group_id=None,
                                                      **deployment.kafka.client_config())
    try:
        parts = [TopicPartition(name, p) for p in range(3)]
        assert sum(reader.end_offsets(parts).values()) == 12
    finally:
        reader.close()


def test_headers_and_null_values_arrive_as_sent(deployment: Deployment) -> None:
    name = deployment.names(Topic.DRIFT)
    with Producer(deployment.kafka) as producer:
        producer.send_raw(name, None, key="tomb", headers=[("h", b"\x00\xff")])
        producer.send_raw(name, b"v", key=b"raw-key")
    by_key = {r.key: r for r in read_all(deployment.broker.bootstrap, name, expect=2)}
    assert by_key[b"tomb"].value is None
    assert list(by_key[b"tomb"].headers) == [("h", b"\x00\xff")]
    assert by_key[b"raw-key"].value == b"v"
    assert all(r.timestamp > 0 for r in by_key.values())
