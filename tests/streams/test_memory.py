"""What only the in-memory broker can show quickly: outages on demand and group hand-overs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from kafka import TopicPartition
from kafka.errors import CommitFailedError
from kafka.structs import OffsetAndMetadata

from streams.codec import Decoder, encode
from streams.consumer import Batch, ConsumerLoop
from streams.errors import ProduceError
from streams.events import InferenceRequest
from streams.memory import MemoryBroker
from streams.producer import Producer
from streams.settings import KafkaSettings

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def broker() -> Iterator[MemoryBroker]:
    name = f"memory-test-{time.monotonic_ns()}"
    yield MemoryBroker.named(name)
    MemoryBroker.forget(name)


def _settings(broker: MemoryBroker) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=broker.address, poll_timeout_ms=20)


def _request(i: int) -> bytes:
    return encode(InferenceRequest(request_id=f"r{i}", model="churn", features={"x": 1.0},
                                   timestamp=NOW))


def _requests_and_dead_letters(broker: MemoryBroker, *, partitions: int) -> KafkaSettings:
    broker.create_topic("requests", partitions)
    broker.create_topic("dead", 1)
    return _settings(broker)


def _loop(kafka: KafkaSettings, handler: Callable[[Batch[InferenceRequest]], None]
          ) -> ConsumerLoop[InferenceRequest]:
    return ConsumerLoop(
        kafka, topics=["requests"], group_id="g",
        decoders={"requests": Decoder(InferenceRequest, max_bytes=kafka.max_message_bytes)},
        handler=handler, producer=Producer(kafka), dead_letter_topic="dead",
        max_backoff_s=0.05)


def test_a_loop_rides_out_an_outage_and_loses_nothing(broker: MemoryBroker) -> None:
    kafka = _requests_and_dead_letters(broker, partitions=2)
    seen: list[str] = []

    def handler(batch: Batch[InferenceRequest]) -> None:
        seen.extend(r.event.request_id for r in batch.records)

    loop = _loop(kafka, handler)
    with Producer(kafka) as producer:
        for i in range(5):
            producer.send_raw("requests", _request(i), key=f"k{i}")
    while len(seen) < 5:
        loop.run_once()
    app = Producer(kafka)
    broker.down()
    app.send_raw("requests", _request(99), key="k")
    with pytest.raises(ProduceError) as lost:  # what an app sees meanwhile: try again later
        app.flush()
    assert lost.value.transient
    for _ in range(5):
        loop.run_once()
    assert len(seen) == 5, "nothing is read while the broker is away"
    broker.up()
    with Producer(kafka) as producer:
        for i in range(5, 10):
            producer.send_raw("requests", _request(i), key=f"k{i}")
    while len(seen) < 10:
        loop.run_once()
    loop.close()
    app.close()
    assert sorted(seen) == sorted(f"r{i}" for i in range(10))
    assert sum(broker.committed("g", TopicPartition("requests", p)) or 0 for p in (0, 1)) == 10


def test_a_commit_during_an_outage_degrades_the_loop_until_the_broker_is_back(
    broker: MemoryBroker,
) -> None:
    kafka = _requests_and_dead_letters(broker, partitions=1)
    seen: list[str] = []

    def handler(batch: Batch[InferenceRequest]) -> None:
        seen.extend(r.event.request_id for r in batch.records)
        broker.down()  # the broker goes away between the store and the commit

    loop = _loop(kafka, handler)
    with Producer(kafka) as producer:
        producer.send_raw("requests", _request(1), key="k")
    back = threading.Timer(0.5, broker.up)
    back.start()
    loop.run_once()  # handles, then waits out the outage at the commit
    back.join()
    loop.close()
    assert seen == ["r1"]
    assert loop.stats.outages == 1
    assert loop.stats.degraded is False
    assert broker.committed("g", TopicPartition("requests", 0)) == 1


def test_a_member_joining_during_a_batch_does_not_stall_the_loop_and_loses_nothing(
    broker: MemoryBroker,
) -> None:
    """The commit after the batch meets a rebalance the loop has not joined yet (kafka-python:
    RebalanceInProgressError until the next poll). The loop gives that commit up instead of
    retrying it for ever, polls, goes on with its share of the partitions, and its next commit
    covers the batch; nothing is skipped."""
    kafka = _requests_and_dead_letters(broker, partitions=2)
    with Producer(kafka) as producer:
        for i in range(6):
            producer.send_raw("requests", _request(i), key=f"k{i}")
    seen: list[str] = []
    offsets: list[tuple[int, int]] = []
    joined: list[object] = []

    def handler(batch: Batch[InferenceRequest]) -> None:
        seen.extend(r.event.request_id for r in batch.records)
        offsets.extend((r.partition, r.offset) for r in batch.records)
        if not joined:  # a second instance starts while the first works
            other = broker.consumer(group_id="g", auto_offset_reset="earliest")
            other.subscribe(["requests"])
            joined.append(other)

    loop = _loop(kafka, handler)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (loop.run_once(), done.set()), daemon=True)
    worker.start()
    assert done.wait(5), "the commit after the batch never gave up"
    assert loop.stats.commits_failed == 1
    assert loop.stats.degraded is False, "a rebalance is not an outage"
    assert sorted(seen) == [f"r{i}" for i in range(6)]
    with Producer(kafka) as producer:
        for i in range(6, 16):
            producer.send_raw("requests", _request(i), key=f"k{i}")
    for _ in range(5):
        loop.run_once()
    loop.close()
    parts = [TopicPartition("requests", p) for p in (0, 1)]
    committed = {tp.partition: broker.committed("g", tp) for tp in parts}
    mine = [p for p, offset in committed.items() if offset is not None]
    assert len(mine) == 1, f"the loop goes on with one partition and commits it: {committed}"
    assert committed[mine[0]] == broker.end_offset(parts[mine[0]]), "the lost commit is covered"
    kept = [(p, o) for p, o in offsets if p == mine[0]]
    assert sorted(kept) == [(mine[0], o) for o in range(committed[mine[0]] or 0)], (
        "every record of its partition handled once, none skipped")
    # The other partition was never committed: its new owner starts it from the beginning.


def test_a_joining_member_takes_partitions_and_the_old_owner_cannot_commit_them(
    broker: MemoryBroker,
) -> None:
    broker.create_topic("t", 4)
    first = broker.consumer(group_id="g", auto_offset_reset="earliest")
    first.subscribe(["t"])
    assert len(first.assignment()) == 4
    second = broker.consumer(group_id="g", auto_offset_reset="earliest")
    second.subscribe(["t"])
    moved = second.assignment()
    assert len(moved) == 2
    assert not moved & first.assignment()
    with pytest.raises(CommitFailedError):
        first.commit({next(iter(moved)): OffsetAndMetadata(1, "", -1)})
    second.close()
    assert len(first.assignment()) == 4, "a leaving member's partitions come back"


def test_a_member_that_stops_polling_is_dropped_from_its_group(broker: MemoryBroker) -> None:
    broker.create_topic("t", 2)
    stuck = broker.consumer(group_id="g", max_poll_interval_ms=50)
    stuck.subscribe(["t"])
    alive = broker.consumer(group_id="g", max_poll_interval_ms=60_000)
    alive.subscribe(["t"])
    assert len(alive.assignment()) == 1
    time.sleep(0.1)
    alive.poll(timeout_ms=0)
    assert len(alive.assignment()) == 2


def test_a_record_over_the_brokers_limit_fails_its_flush_as_the_records_fault(
    broker: MemoryBroker,
) -> None:
    broker.create_topic("t", 1)
    broker.max_message_bytes = 100
    producer = Producer(_settings(broker))
    producer.send_raw("t", b"x" * 200, key="k")
    with pytest.raises(ProduceError) as refused:
        producer.flush()
    producer.close()
    assert refused.value.transient is False
