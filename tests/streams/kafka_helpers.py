"""Small helpers the Kafka tests share: produce raw bytes, read a topic to the end."""

from __future__ import annotations

import time
from collections.abc import Sequence

from streams.settings import KafkaSettings
from streams.transport import transport_for


def _transport(bootstrap: str):  # type: ignore[no-untyped-def]
    return transport_for(KafkaSettings(bootstrap_servers=bootstrap))


def produce_raw(bootstrap: str, topic: str, payloads: Sequence[bytes | None], *,
                key: bytes | None = b"k") -> None:
    producer = _transport(bootstrap).producer(bootstrap_servers=bootstrap, acks="all")
    for payload in payloads:
        producer.send(topic, value=payload, key=key)
    producer.flush()
    producer.close()


def read_all(bootstrap: str, topic: str, *, expect: int, timeout_s: float = 30.0) -> list:  # type: ignore[type-arg]
    """Every message of ``topic`` from the start, waiting until ``expect`` have arrived."""
    consumer = _transport(bootstrap).consumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None, consumer_timeout_ms=1000,
    )
    consumer.subscribe([topic])
    messages: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and len(messages) < expect:
            for batch in consumer.poll(timeout_ms=500).values():
                messages.extend(batch)
        # Linger briefly so an unexpected extra message is seen too.
        for batch in consumer.poll(timeout_ms=300).values():
            messages.extend(batch)
    finally:
        consumer.close()
    return messages
