"""The at-least-once consumer loop: poll a batch, decode, hand it over, store, then commit.

Offsets of a batch are committed only after the handler returned (its results are stored)
and the producer has flushed (what it produced and every dead letter are acknowledged). A
crash anywhere before the commit replays the batch, so handlers store idempotently.

A message that cannot be decoded, or that the handler rejects, goes to the dead-letter
topic with its original bytes and headers naming the reason, the source topic, partition and
offset; the loop goes on with the rest of the batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from streams.codec import Decoder
from streams.errors import BrokerError, CommitError, EventError, StoreError
from streams.metrics import DEAD_LETTERS, EVENTS_CONSUMED
from streams.producer import Producer
from streams.settings import KafkaSettings

log = logging.getLogger(__name__)

E = TypeVar("E")


class Record(NamedTuple, Generic[E]):
    """A decoded event and where it came from.

    Immutable like the other internal values; a NamedTuple rather than a frozen dataclass
    because one is built per consumed message and costs a fifth as much to build.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    timestamp_ms: int
    event: E
    raw: bytes


@dataclass
class Batch(Generic[E]):
    """The decoded records of one poll; the handler may reject single records."""

    records: list[Record[E]]
    rejected: list[tuple[Record[E], EventError]] = field(default_factory=list)

    def reject(self, record: Record[E], error: EventError) -> None:
        """Dead-letter one record instead of failing the whole batch."""
        self.rejected.append((record, error))

    def __len__(self) -> int:
        return len(self.records)


class BatchHandler(Protocol[E]):
    def __call__(self, batch: Batch[E]) -> None: ...


@dataclass
class LoopStats:
    """What one loop has done; read by tests, benchmarks and the metrics endpoint."""

    batches: int = 0
    consumed: int = 0
    handled: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    commits_failed: int = 0


def dead_letter_headers(
    reason: str, error: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    return [
        ("dl-reason", reason.encode()),
        ("dl-error", error[:2000].encode("utf-8", "replace")),
        ("dl-topic", topic.encode()),
        ("dl-partition", str(partition).encode()),
        ("dl-offset", str(offset).encode()),
    ]


class ConsumerLoop(Generic[E]):
    """Consumes ``topics`` in group ``group_id`` and feeds decoded batches to ``handler``.

    Transient failures of the handler (``StoreError``, ``BrokerError``) are retried on the
    same batch with backoff until they pass or the loop is stopped; nothing is committed
    meanwhile. Any other exception propagates: the process dies and the batch is replayed.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        topics: Sequence[str],
        group_id: str,
        decoders: Mapping[str, Decoder[E]],
        handler: BatchHandler[E],
        producer: Producer,
        dead_letter_topic: str,
        client_id: str | None = None,
        on_idle: Callable[[], None] | None = None,
        max_backoff_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._topics = list(topics)
        self._decoders = decoders
        self._handler = handler
        self._producer = producer
        self._dead_letter_topic = dead_letter_topic
        self._on_idle = on_idle
        self._max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._stop = threading.Event()
        self.stats = LoopStats()
        options: dict[str, Any] = {
            "group_id": group_id,
            "client_id": client_id or f"{settings.client_id}-{group_id}",
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_records": settings.max_poll_records,
            "fetch_max_wait_ms": settings.fetch_max_wait_ms,
            "session_timeout_ms": settings.session_timeout_ms,
            "heartbeat_interval_ms": max(settings.session_timeout_ms // 4, 100),
            "fetch_max_bytes": max(settings.max_message_bytes * 4, 52_428_800),
            "max_partition_fetch_bytes": max(settings.max_message_bytes * 2, 1_048_576),
            **settings.client_config(),
        }
        try:
            self._consumer = KafkaConsumer(**options)
            self._await_topics(settings.request_timeout_ms / 1000)
            self._consumer.subscribe(self._topics)
        except KafkaError as exc:
            raise BrokerError(
                f"cannot consume from Kafka at {settings.bootstrap_servers}: {exc}"
            ) from exc

    def _await_topics(self, timeout_s: float) -> None:
        """Know every topic's partitions before joining the group.

        A group leader that assigns before it has the metadata of a freshly created topic
        assigns nothing, and the group then idles with no partitions.
        """
        deadline = time.monotonic() + timeout_s
        missing = list(self._topics)
        while True:
            self._consumer.topics()  # refreshes cluster metadata
            missing = [t for t in missing if not self._consumer.partitions_for_topic(t)]
            if not missing:
                return
            if time.monotonic() > deadline:
                self._consumer.close()
                raise BrokerError(f"topics do not exist: {', '.join(missing)}")
            self._sleep(0.2)

    @property
    def consumer(self) -> KafkaConsumer:
        return self._consumer

    def stop(self) -> None:
        """Ask the loop to finish its current batch and return."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self, *, max_batches: int | None = None) -> LoopStats:
        try:
            while not self._stop.is_set():
                if max_batches is not None and self.stats.batches >= max_batches:
                    break
                self.run_once()
        finally:
            self.close()
        return self.stats

    def run_once(self) -> int:
        """Poll, process and commit one batch; return how many messages it held."""
        try:
            polled = self._consumer.poll(
                timeout_ms=self._settings.poll_timeout_ms,
                max_records=self._settings.max_poll_records,
            )
        except KafkaError as exc:
            raise BrokerError(f"poll failed: {exc}") from exc
        if not polled:
            if self._on_idle is not None:
                self._on_idle()
            return 0
        batch, offsets, count = self._decode(polled)
        self._handle(batch)
        for record, error in batch.rejected:
            self._dead_letter(record.raw, record.key, error, record.topic, record.partition,
                              record.offset)
        self._producer.flush()
        self._commit(offsets)
        self.stats.batches += 1
        self.stats.handled += len(batch.records) - len(batch.rejected)
        return count

    def _decode(
        self, polled: Mapping[TopicPartition, list[Any]]
    ) -> tuple[Batch[E], dict[TopicPartition, OffsetAndMetadata], int]:
        records: list[Record[E]] = []
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        count = 0
        keep = records.append
        for tp, messages in polled.items():
            decode = self._decoders[tp.topic].decode
            topic, partition = tp.topic, tp.partition
            count += len(messages)
            EVENTS_CONSUMED.labels(topic=topic).inc(len(messages))
            for msg in messages:
                value = msg.value
                try:
                    event = decode(value)
                except EventError as exc:
                    self._dead_letter(value, msg.key, exc, topic, partition, msg.offset)
                    continue
                keep(Record(topic, partition, msg.offset, msg.key, msg.timestamp, event, value))
            if messages:
                offsets[tp] = OffsetAndMetadata(messages[-1].offset + 1, "", -1)
        self.stats.consumed += count
        return Batch(records), offsets, count

    def _handle(self, batch: Batch[E]) -> None:
        if not batch.records:
            return
        backoff = 0.1
        while True:
            try:
                self._handler(batch)
                return
            except (StoreError, BrokerError) as exc:
                if self._stop.is_set():
                    raise
                self.stats.retries += 1
                log.warning(
                    "batch handler failed, retrying",
                    extra={"error": str(exc), "backoff_s": backoff, "size": len(batch)},
                )
                batch.rejected.clear()
                self._sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)

    def _dead_letter(
        self,
        value: bytes | None,
        key: bytes | None,
        error: EventError,
        topic: str,
        partition: int,
        offset: int,
    ) -> None:
        headers = dead_letter_headers(error.reason, str(error), topic, partition, offset)
        self._producer.send_raw(self._dead_letter_topic, value, key=key, headers=headers)
        self.stats.dead_lettered[error.reason] += 1
        DEAD_LETTERS.labels(topic=topic, reason=error.reason).inc()
        log.info(
            "dead-lettered a message",
            extra={"reason": error.reason, "error": str(error), "topic": topic,
                   "partition": partition, "offset": offset},
        )

    def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        if not offsets:
            return
        try:
            self._consumer.commit(offsets)
        except CommitFailedError as exc:
            # The group rebalanced while we worked: another member will replay this batch,
            # and idempotent storage makes that harmless.
            self.stats.commits_failed += 1
            log.warning("offset commit failed after a rebalance", extra={"error": str(exc)})
        except KafkaError as exc:
            raise CommitError(f"offset commit failed: {exc}") from exc

    def close(self) -> None:
        try:
            self._consumer.close(autocommit=False)
        except KafkaError as exc:  # closing is best effort; the offsets are already safe
            log.debug("consumer close failed", extra={"error": str(exc)})
