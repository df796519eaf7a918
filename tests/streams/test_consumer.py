"""The consumer loop's contract, run on the in-memory broker, Tansu and Apache Kafka."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from streams.codec import Decoder, encode
from streams.consumer import Batch, ConsumerLoop
from streams.errors import SchemaError, StoreAccessError, StoreError
from streams.events import InferenceRequest
from streams.producer import Producer
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment, on_every_broker, on_memory
from tests.streams.kafka_helpers import produce_raw, read_all

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _request(i: int, model: str = "churn") -> InferenceRequest:
    return InferenceRequest(request_id=f"r{i}", model=model, features={"x": float(i)},
                            timestamp=NOW)


class Collect:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, batch: Batch[InferenceRequest]) -> None:
        self.seen.extend(r.event.request_id for r in batch.records)


def _loop(dep: Deployment, handler: object, *, group: str = "g",
          models: tuple[str, ...] = ("churn",)) -> ConsumerLoop[InferenceRequest]:
    requests = dep.names(Topic.REQUESTS)
    return ConsumerLoop(
        dep.kafka,
        topics=[requests],
        group_id=f"{dep.names.prefix}-{group}",
        decoders={requests: Decoder(InferenceRequest, max_bytes=dep.kafka.max_message_bytes,
                                    models=models)},
        handler=handler,  # type: ignore[arg-type]
        producer=Producer(dep.kafka),
        dead_letter_topic=dep.names(Topic.DEAD_LETTER),
    )


def _drain(loop: ConsumerLoop[InferenceRequest], until: int, max_polls: int = 200) -> None:
    polls = 0
    while loop.stats.consumed < until and polls < max_polls:
        loop.run_once()
        polls += 1


@on_every_broker
def test_bad_messages_are_dead_lettered_and_good_ones_processed(deployment: Deployment) -> None:
    bootstrap = deployment.broker.bootstrap
    requests = deployment.names(Topic.REQUESTS)
    bad = [
        b"{broken",
        json.dumps({"type": "inference_request", "request_id": "x"}).encode(),
        encode(_request(99, model="unknown")),
        b'{"type":"inference_request","request_id":"n","model":"churn",'
        b'"features":{"x":NaN},"timestamp":"2026-01-01T00:00:00Z"}',
        b"x" * (deployment.kafka.max_message_bytes + 1),
    ]
    good = [encode(_request(i)) for i in range(10)]
    produce_raw(bootstrap, requests, good[:5] + bad + good[5:])

    handler = Collect()
    loop = _loop(deployment, handler)
    _drain(loop, until=15)
    loop.close()

    assert sorted(handler.seen) == sorted(f"r{i}" for i in range(10))
    assert loop.stats.dead_lettered == {"decode": 2, "schema": 1, "unknown_model": 1,
                                        "too_large": 1}
    dead = read_all(bootstrap, deployment.names(Topic.DEAD_LETTER), expect=5)
    assert len(dead) == 5
    headers = [dict(m.headers) for m in dead]
    assert {h["dl-reason"].decode() for h in headers} == {"decode", "schema", "unknown_model",
                                                          "too_large"}
    assert all(h["dl-topic"].decode() == requests for h in headers)
    assert sorted(int(h["dl-offset"]) for h in headers) == [5, 6, 7, 8, 9]
    assert dead[0].value in bad, "the original bytes are kept"


class Lagging:
    """Collects, per batch, the loop's lag and the offset after each partition's last record."""

    def __init__(self) -> None:
        self.batches: list[tuple[dict[TopicPartition, int], dict[TopicPartition, int]]] = []

    def __call__(self, batch: Batch[InferenceRequest]) -> None:
        after: dict[TopicPartition, int] = {}
        for r in batch.records:
            tp = TopicPartition(r.topic, r.partition)
            after[tp] = max(after.get(tp, 0), r.offset + 1)
        self.batches.append((dict(batch.lag), after))


@on_every_broker
def test_the_loop_reports_how_far_behind_each_partition_is(deployment: Deployment) -> None:
    dep = dataclasses.replace(deployment, settings=deployment.settings.model_copy(update={
        "kafka": deployment.kafka.model_copy(update={"max_poll_records": 4})}))
    requests = dep.names(Topic.REQUESTS)
    produce_raw(dep.broker.bootstrap, requests, [encode(_request(i)) for i in range(30)])
    handler = Lagging()
    loop = _loop(dep, handler)
    _drain(loop, until=30)
    loop.close()

    # Every record was read, so each partition ends after the last offset the handler saw.
    # (Not end_offsets(): Tansu answers it short after a multi-record batch.)
    ends: dict[TopicPartition, int] = {}
    for _, after in handler.batches:
        for tp, offset in after.items():
            ends[tp] = max(ends.get(tp, 0), offset)
    assert sum(ends.values()) == 30
    assert len(handler.batches) >= 8, "four records a batch"
    for lag, after in handler.batches:
        assert set(after) <= set(lag), "every partition in the batch has a measured lag"
        for tp, offset in after.items():
            assert lag[tp] == ends[tp] - offset
    assert any(sum(lag.values()) > 0 for lag, _ in handler.batches)
    assert set(ends) <= set(loop.stats.lag), "caught up"
    assert set(loop.stats.lag.values()) == {0}, "caught up"


@on_every_broker
def test_committed_offsets_are_not_consumed_again(deployment: Deployment) -> None:
    requests = deployment.names(Topic.REQUESTS)
    produce_raw(deployment.broker.bootstrap, requests, [encode(_request(i)) for i in range(20)])
    first = Collect()
    loop = _loop(deployment, first)
    _drain(loop, until=20)
    loop.close()
    produce_raw(deployment.broker.bootstrap, requests, [encode(_request(i)) for i in range(20, 25)])
    second = Collect()
    loop = _loop(deployment, second)
    _drain(loop, until=5)
    loop.close()
    assert sorted(first.seen) == sorted(f"r{i}" for i in range(20))
    assert sorted(second.seen) == sorted(f"r{i}" for i in range(20, 25))


@on_every_broker
def test_a_message_that_fails_its_handler_is_isolated_and_dead_lettered(
    deployment: Deployment,
) -> None:
    requests = deployment.names(Topic.REQUESTS)
    produce_raw(deployment.broker.bootstrap, requests, [encode(_request(i)) for i in range(9)])
    stored: list[str] = []

    def fragile(batch: Batch[InferenceRequest]) -> None:
        ids = [r.event.request_id for r in batch.records]
        if "r4" in ids:  # fails the whole batch it is in, like a database refusing one row
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        stored.extend(ids)

    loop = _loop(deployment, fragile)
    _drain(loop, until=9)
    loop.close()
    assert sorted(stored) == sorted(f"r{i}" for i in range(9) if i != 4)
    dead = read_all(deployment.broker.bootstrap, deployment.names(Topic.DEAD_LETTER), expect=1)
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["dl-reason"] == b"handling"
    assert headers["dl-exception"] == b"OverflowError"
    assert b"OverflowError: Python int too large" in headers["dl-error"]
    assert dead[0].value == encode(_request(4))


@on_every_broker
def test_a_poison_message_at_the_head_is_not_read_again_after_a_restart(
    deployment: Deployment,
) -> None:
    requests = deployment.names(Topic.REQUESTS)
    poison = encode(_request(0))
    produce_raw(deployment.broker.bootstrap, requests,
                [poison, *(encode(_request(i)) for i in range(1, 6))])
    first_seen: list[str] = []

    def crash_on_r0(batch: Batch[InferenceRequest]) -> None:
        for record in batch.records:
            if record.event.request_id == "r0":
                raise RecursionError("maximum recursion depth exceeded")
        first_seen.extend(r.event.request_id for r in batch.records)

    loop = _loop(deployment, crash_on_r0)
    _drain(loop, until=6)
    loop.close()
    assert sorted(first_seen) == [f"r{i}" for i in range(1, 6)]
    produce_raw(deployment.broker.bootstrap, requests, [encode(_request(6))])
    again = Collect()
    loop = _loop(deployment, again)
    _drain(loop, until=1)
    loop.close()
    assert again.seen == ["r6"]


def test_a_dead_letter_too_large_for_the_broker_goes_truncated(tansu: BrokerInfo,
                                                                deployment_factory: object) -> None:
    dep = deployment_factory(tansu, partitions=1)  # type: ignore[operator]
    requests = dep.names(Topic.REQUESTS)
    huge = b'{"x": "' + b"a" * 2_500_000 + b'"}'  # over twice max_message_bytes
    produce_big = dep.kafka.model_copy(update={"max_message_bytes": 4_000_000})
    with Producer(produce_big) as producer:
        producer.send_raw(requests, huge, key=b"k")
        producer.send(requests, _request(1), key="k")
    handler = Collect()
    loop = _loop(dep, handler)
    _drain(loop, until=2)
    loop.close()
    assert handler.seen == ["r1"]
    dead = read_all(tansu.bootstrap, dep.names(Topic.DEAD_LETTER), expect=1)
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["dl-reason"] == b"too_large"
    assert headers["dl-truncated"] == str(len(huge)).encode()
    assert huge.startswith(dead[0].value)
    assert len(dead[0].value) < len(huge)


def test_a_dead_letter_the_broker_refuses_is_sent_again_truncated(
    deployment_factory: object, apache_kafka: BrokerInfo,
) -> None:
    """Apache Kafka refuses a record over 1 MB on the dead-letter topic after it was sent."""
    kafka = apache_kafka
    dep = deployment_factory(kafka, partitions=1)  # type: ignore[operator]
    big_topic = f"{dep.names.prefix}.big-requests"
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    admin.create_topics([NewTopic(big_topic, 1, 1,
                                  topic_configs={"max.message.bytes": "8000000"})])
    admin.close()
    payload = b'{"x": "' + b"a" * 1_500_000 + b'"}'  # under the client's limit, over the DL topic's
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, max_request_size=8_000_000)
    producer.send(big_topic, value=payload, key=b"k")
    producer.send(big_topic, value=encode(_request(1)), key=b"k")
    producer.flush()
    producer.close()
    handler = Collect()
    lenient = dep.kafka.model_copy(update={"max_message_bytes": 1_000_000})
    loop: ConsumerLoop[InferenceRequest] = ConsumerLoop(
        lenient, topics=[big_topic], group_id=f"{dep.names.prefix}-big",
        decoders={big_topic: Decoder(InferenceRequest, max_bytes=1_000_000)},
        handler=handler, producer=Producer(lenient),
        dead_letter_topic=dep.names(Topic.DEAD_LETTER),
    )
    _drain(loop, until=2)
    loop.close()
    assert handler.seen == ["r1"]
    assert loop.stats.dead_lettered == {"too_large": 1}
    dead = read_all(kafka.bootstrap, dep.names(Topic.DEAD_LETTER), expect=1)
    assert len(dead) == 1
    assert dict(dead[0].headers)["dl-truncated"] == str(len(payload)).encode()
    assert payload.startswith(dead[0].value)


@on_every_broker
def test_a_database_that_refuses_our_settings_stops_the_loop(deployment: Deployment) -> None:
    requests = deployment.names(Topic.REQUESTS)
    produce_raw(deployment.broker.bootstrap, requests, [encode(_request(i)) for i in range(3)])

    def refused(batch: Batch[InferenceRequest]) -> None:
        raise StoreAccessError('FATAL: password authentication failed for user "driftloop"')

    loop = _loop(deployment, refused)
    with pytest.raises(StoreAccessError):
        _drain(loop, until=3)
    loop.close()
    assert sum(loop.stats.dead_lettered.values()) == 0, "no message is blamed for it"
    again = Collect()
    loop = _loop(deployment, again)
    _drain(loop, until=3)
    loop.close()
    assert sorted(again.seen) == ["r0", "r1", "r2"], "nothing was committed"


@on_every_broker
def test_transient_store_errors_are_retried_on_the_same_batch(deployment: Deployment) -> None:
    requests = deployment.names(Topic.REQUESTS)
    produce_raw(deployment.broker.bootstrap, requests, [encode(_request(i)) for i in range(3)])
    calls: list[int] = []

    def flaky(batch: Batch[InferenceRequest]) -> None:
        calls.append(len(batch))
        if len(calls) < 3:
            raise StoreError("database restarting")

    loop = _loop(deployment, flaky)
    loop._sleep = lambda _s: None  # no need to wait out the backoff here
    _drain(loop, until=3)
    loop.close()
    assert loop.stats.retries == 2
    assert sum(calls[2:]) == 3


@on_every_broker
def test_handler_can_reject_single_records(deployment: Deployment) -> None:
    requests = deployment.names(Topic.REQUESTS)
    produce_raw(deployment.broker.bootstrap, requests, [encode(_request(i)) for i in range(4)])
    kept: list[str] = []

    def picky(batch: Batch[InferenceRequest]) -> None:
        for record in batch.records:
            if record.event.request_id == "r2":
                batch.reject(record, SchemaError("feature x out of range"))
            else:
                kept.append(record.event.request_id)

    loop = _loop(deployment, picky)
    _drain(loop, until=4)
    loop.close()
    dead = read_all(deployment.broker.bootstrap, deployment.names(Topic.DEAD_LETTER), expect=1)
    assert [dict(m.headers)["dl-error"] for m in dead] == [b"feature x out of range"]
    assert sorted(kept) == ["r0", "r1", "r3"]


payloads = st.lists(
    st.binary(max_size=200)
    | st.builds(lambda v: json.dumps(v).encode(), st.dictionaries(
        st.sampled_from(["type", "request_id", "model", "features", "timestamp", "x"]),
        st.none() | st.integers() | st.text(max_size=8) | st.dictionaries(
            st.text(max_size=4), st.floats(allow_nan=False) | st.text(max_size=4), max_size=3),
        max_size=6)),
    min_size=1, max_size=15,
)


@on_memory  # the loop's decoding and dead-lettering; the broker only carries the bytes
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(junk=payloads)
def test_random_input_never_stops_the_loop(
    junk: list[bytes], broker: BrokerInfo, deployment_factory: object
) -> None:
    dep = deployment_factory(broker, partitions=1)  # type: ignore[operator]
    good = [encode(_request(i)) for i in range(3)]
    produce_raw(broker.bootstrap, dep.names(Topic.REQUESTS), [good[0], *junk, good[1], good[2]])
    handler = Collect()
    loop = _loop(dep, handler)
    _drain(loop, until=len(junk) + 3)
    loop.close()
    assert loop.stats.consumed == len(junk) + 3
    assert {"r0", "r1", "r2"} <= set(handler.seen)
    assert len(handler.seen) + sum(loop.stats.dead_lettered.values()) == len(junk) + 3


def test_the_fetch_wait_of_the_settings_reaches_the_client(deployment: Deployment) -> None:
    requests = deployment.names(Topic.REQUESTS)
    kafka = deployment.kafka.model_copy(update={"fetch_max_wait_ms": 37})
    loop: ConsumerLoop[InferenceRequest] = ConsumerLoop(
        kafka, topics=[requests], group_id=f"{deployment.names.prefix}-wait",
        decoders={requests: Decoder(InferenceRequest, max_bytes=kafka.max_message_bytes)},
        handler=Collect(), producer=Producer(kafka),
        dead_letter_topic=deployment.names(Topic.DEAD_LETTER),
    )
    try:
        assert loop.consumer.config["fetch_max_wait_ms"] == 37
    finally:
        loop.close()
