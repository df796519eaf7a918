"""Baselines shared by the benchmarks: what a hand-written kafka-python app would do."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence

from kafka import KafkaConsumer

from streams.settings import KafkaSettings


def raw_consume_rate(kafka: KafkaSettings, topics: Sequence[str], total: int) -> float:
    """Messages/s of an at-least-once consumer: poll, ``json.loads`` each, commit each poll.

    The clock starts at the first non-empty poll, so joining the group is not counted. It
    fetches with the same ``fetch_max_wait_ms`` as driftloop's consumers, so a ratio against
    it measures the adapter's work, not a different broker setting.
    """
    consumer = KafkaConsumer(
        *topics, group_id=f"raw-{uuid.uuid4().hex[:6]}", enable_auto_commit=False,
        auto_offset_reset="earliest", max_poll_records=kafka.max_poll_records,
        fetch_max_wait_ms=kafka.fetch_max_wait_ms,
        **kafka.client_config(),
    )
    seen, start = 0, None
    while seen < total:
        polled = consumer.poll(timeout_ms=kafka.poll_timeout_ms)
        if polled and start is None:
            start = time.perf_counter()
        for messages in polled.values():
            seen += len(messages)
            for message in messages:
                json.loads(message.value)
        if polled:
            consumer.commit()
    elapsed = time.perf_counter() - (start or time.perf_counter())
    consumer.close()
    return total / elapsed
