"""Batches compressed with every Kafka codec, by kafka-python and by librdkafka, are consumed.

Producers in the wild (librdkafka, the Java client) compress with snappy, lz4 or zstd; a
consumer without the codec cannot read the batch at all, and would stop at it for good.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer as RdKafkaProducer
from kafka import KafkaProducer

from streams.codec import Decoder, encode
from streams.consumer import Batch, ConsumerLoop
from streams.events import InferenceRequest
from streams.producer import Producer
from streams.topics import Topic
from tests.conftest import BrokerInfo

CODECS = ("gzip", "snappy", "lz4", "zstd")
EVENTS = 60
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _payloads() -> list[bytes]:
    return [encode(InferenceRequest(request_id=f"r{i}", model="churn",
                                    features={"x": float(i), "note": "abc" * 20},
                                    timestamp=NOW)) for i in range(EVENTS)]


def _produce_kafka_python(bootstrap: str, topic: str, codec: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type=codec, linger_ms=50)
    for payload in _payloads():
        producer.send(topic, value=payload, key=b"k")
    producer.flush()
    producer.close()


def _produce_librdkafka(bootstrap: str, topic: str, codec: str) -> None:
    producer = RdKafkaProducer({"bootstrap.servers": bootstrap, "compression.type": codec,
                                "linger.ms": 50, "acks": "all"})
    failures: list[str] = []

    def delivered(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    for payload in _payloads():
        producer.produce(topic, value=payload, key=b"k", on_delivery=delivered)
    assert producer.flush(30) == 0
    assert failures == []


PRODUCERS = {"kafka-python": _produce_kafka_python, "librdkafka": _produce_librdkafka}


@pytest.mark.parametrize("client", sorted(PRODUCERS))
@pytest.mark.parametrize("codec", CODECS)
def test_compressed_batches_are_consumed(client: str, codec: str, broker: BrokerInfo,
                                         deployment_factory: object) -> None:
    dep = deployment_factory(broker, partitions=1)  # type: ignore[operator]
    requests = dep.names(Topic.REQUESTS)
    PRODUCERS[client](broker.bootstrap, requests, codec)
    seen: list[str] = []

    def collect(batch: Batch[InferenceRequest]) -> None:
        seen.extend(r.event.request_id for r in batch.records)

    loop: ConsumerLoop[InferenceRequest] = ConsumerLoop(
        dep.kafka, topics=[requests], group_id=f"{dep.names.prefix}-{codec}",
        decoders={requests: Decoder(InferenceRequest, max_bytes=dep.kafka.max_message_bytes)},
        handler=collect, producer=Producer(dep.kafka),
        dead_letter_topic=dep.names(Topic.DEAD_LETTER),
    )
    try:
        for _ in range(200):
            if loop.stats.consumed >= EVENTS:
                break
            loop.run_once()
    finally:
        loop.close()
    assert sorted(seen, key=lambda r: int(r[1:])) == [f"r{i}" for i in range(EVENTS)]
    assert sum(loop.stats.dead_lettered.values()) == 0
