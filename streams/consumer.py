"""The at-least-once consumer loop: poll a batch, decode, hand it over, store, then commit.

Offsets of a batch are committed only after the handler returned (its results are stored)
and the producer has flushed (what it produced and every dead letter are acknowledged). A
crash anywhere before the commit replays the batch, so handlers store idempotently.

A message that cannot be decoded, that the handler rejects, or that makes the handler fail,
goes to the dead-letter topic with its original bytes and headers naming the reason, the
exception, the source topic, partition and offset; the loop goes on with the rest of the
batch, and commits past it, so a restart never reads it again. Outages of the broker or the
database are waited out in place (see :class:`ConsumerLoop`).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from kafka import TopicPartition
from kafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from kafka.structs import OffsetAndMetadata

from streams.backoff import Backoff, set_degraded
from streams.codec import Decoder
from streams.errors import (
    BrokerAccessError,
    BrokerError,
    DecodeError,
    DriftloopError,
    EventError,
    HandlingError,
    ProduceError,
    StoreAccessError,
)
from streams.kafka_errors import broker_error
from streams.metrics import DEAD_LETTERS, EVENTS_CONSUMED
from streams.producer import Delivery, Producer
from streams.settings import KafkaSettings
from streams.transport import ConsumerClient, transport_for

log = logging.getLogger(__name__)

#: Commit errors that mean the group moved on without this member: kafka-python raises
#: RebalanceInProgressError until the member polls again to rejoin.
_REBALANCED = (CommitFailedError, RebalanceInProgressError, IllegalGenerationError,
               UnknownMemberIdError)

_INITIAL_BACKOFF_S = 0.1
#: A dead letter the broker refused is sent again cut to this many bytes.
TRUNCATED_BYTES = 65_536

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
    # Messages behind each partition this member owns once the batch is handled, as the loop
    # measured it when it polled (see LoopStats.lag).
    lag: Mapping[TopicPartition, int] = field(default_factory=dict)

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
    isolations: int = 0  # batches handled again in halves to find a failing message
    outages: int = 0  # times the loop became degraded
    degraded: bool = False
    # Messages behind the log end, per partition this member owns: the high watermark the
    # last fetch of it reported less the offset after its last polled message. A partition
    # no fetch has reported on yet is absent; one handed to another member is dropped.
    lag: dict[TopicPartition, int] = field(default_factory=dict)

    def lag_by_topic(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for tp, behind in self.lag.items():
            total[tp.topic] += behind
        return total


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

    No single message can stop the loop, and no outage can either:

    * a message that fails to decode, or that the handler rejects, is dead-lettered;
    * any other exception the handler raises that is not transient is narrowed down to the
      message that causes it by handling the batch again in halves; that message is
      dead-lettered with the exception's class and text, and every other one is handled;
    * a transient error (broker or database unreachable, see ``DriftloopError.transient``)
      while polling, handling, producing or committing is retried with capped backoff until it
      passes or the loop is stopped; meanwhile the loop reports itself ``degraded`` (a gauge,
      ``stats.degraded`` and one log line when it starts and one when it ends) and commits
      nothing;
    * a dead letter that the broker refuses (too large) is sent again as a truncated copy with
      the header ``dl-truncated`` giving the original size; offsets are committed only after
      every dead letter of the batch is acknowledged.

    Only an access error (the broker's or the database's: credentials, rights) ends ``run()``:
    it is fatal.
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
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._topics = list(topics)
        self._group_id = group_id
        self._decoders = decoders
        self._handler = handler
        self._producer = producer
        self._dead_letter_topic = dead_letter_topic
        self._on_idle = on_idle
        self._sleep = sleep
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._backoff = Backoff(first_s=_INITIAL_BACKOFF_S, max_s=max_backoff_s)
        self._degraded_at: float | None = None
        self.stats = LoopStats()
        set_degraded(group_id, False)
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
            self._consumer = transport_for(settings).consumer(**options)
            self._await_topics(settings.request_timeout_ms / 1000)
            self._consumer.subscribe(self._topics)
        except KafkaError as exc:
            raise broker_error(
                exc, f"cannot consume from Kafka at {settings.bootstrap_servers}"
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
    def consumer(self) -> ConsumerClient:
        return self._consumer

    def stop(self) -> None:
        """Ask the loop to finish its current batch (or give up its retry) and return."""
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
        polled = self._poll()
        if not polled:
            self._idle()
            return 0
        batch, undecodable, offsets, count = self._decode(polled)
        if not self._process(batch, undecodable):
            return count  # stopped while the broker or the database was away: replayed later
        if self._commit(offsets):
            self.stats.batches += 1
            self.stats.handled += len(batch.records) - len(batch.rejected)
        return count

    # -- the steps of one batch --------------------------------------------------------------

    def _poll(self) -> Mapping[TopicPartition, list[Any]]:
        try:
            polled: Mapping[TopicPartition, list[Any]] = self._consumer.poll(
                timeout_ms=self._settings.poll_timeout_ms,
                max_records=self._settings.max_poll_records,
            )
        except KafkaError as exc:
            self._retry_later(broker_error(exc, "poll failed"))
            return {}
        except BrokerError as exc:
            self._retry_later(exc)
            return {}
        return polled

    def _idle(self) -> None:
        if self._on_idle is None:
            return
        try:
            self._on_idle()
        except DriftloopError as exc:
            if not exc.transient:
                raise
            self._retry_later(exc)

    def _decode(
        self, polled: Mapping[TopicPartition, list[Any]]
    ) -> tuple[Batch[E], list[_DeadLetter], dict[TopicPartition, OffsetAndMetadata], int]:
        records: list[Record[E]] = []
        undecodable: list[_DeadLetter] = []
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
                    undecodable.append(_DeadLetter(value, msg.key, exc, topic, partition,
                                                   msg.offset))
                    continue
                except Exception as exc:  # a decoder bug must not stop the stream either
                    error = DecodeError(f"{type(exc).__name__}: {exc}"[:2000])
                    undecodable.append(_DeadLetter(value, msg.key, error, topic, partition,
                                                   msg.offset))
                    continue
                keep(Record(topic, partition, msg.offset, msg.key, msg.timestamp, event, value))
            if messages:
                offsets[tp] = OffsetAndMetadata(messages[-1].offset + 1, "", -1)
        self.stats.consumed += count
        self._measure_lag(offsets)
        return Batch(records, lag=dict(self.stats.lag)), undecodable, offsets, count

    def _measure_lag(self, offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> None:
        """Update ``stats.lag`` from the watermarks the fetches reported: local, no request."""
        lag = self.stats.lag
        for tp, after in offsets.items():
            high = self._consumer.highwater(tp)
            if high is not None:
                lag[tp] = max(0, high - after.offset)
        owned = self._consumer.assignment()
        for tp in [tp for tp in lag if tp not in owned]:
            del lag[tp]

    def _process(self, batch: Batch[E], undecodable: list[_DeadLetter]) -> bool:
        """Handle the batch and deliver what it produced; False if stopped while retrying."""
        records = batch.records
        while True:
            try:
                rejected = self._handle(records) if records else []
                batch.rejected = rejected
                letters = [*undecodable, *(
                    _DeadLetter(r.raw, r.key, error, r.topic, r.partition, r.offset)
                    for r, error in rejected)]
                self._deliver(letters)
            except DriftloopError as exc:
                if not exc.transient:
                    raise
                if self._stop.is_set():
                    log.warning("stopped while retrying a batch; it will be replayed",
                                extra={"error": str(exc)})
                    return False
                self.stats.retries += 1
                self._retry_later(exc)
                continue
            for letter in letters:
                self._count_dead_letter(letter)
            self._recovered()
            return True

    def _handle(self, records: list[Record[E]]) -> list[tuple[Record[E], EventError]]:
        """Run the handler on ``records``; narrow a failure down to the message causing it."""
        batch = Batch(list(records), lag=dict(self.stats.lag))
        try:
            self._handler(batch)
            self._producer.flush()  # a message it produced and the broker refused is its failure
            return batch.rejected
        except DriftloopError as exc:
            if exc.transient or isinstance(exc, BrokerAccessError | StoreAccessError):
                raise
            failure: Exception = exc
        except Exception as exc:
            failure = exc
        if len(records) == 1:
            error = failure if isinstance(failure, EventError) else HandlingError.of(failure)
            log.warning("a message failed its handler; dead-lettering it",
                        extra={"topic": records[0].topic, "partition": records[0].partition,
                               "offset": records[0].offset, "error": str(error)})
            return [(records[0], error)]
        self.stats.isolations += 1
        log.info("a batch failed its handler; handling it again in halves",
                 extra={"size": len(records), "error": f"{type(failure).__name__}: {failure}"})
        middle = len(records) // 2
        return [*self._handle(records[:middle]), *self._handle(records[middle:])]

    def _deliver(self, letters: list[_DeadLetter]) -> None:
        """Send the dead letters and wait until every one of them landed."""
        if not letters:
            return
        sent = [(letter, self._send_dead_letter(letter)) for letter in letters]
        try:
            self._producer.flush()
            return
        except ProduceError as exc:
            if exc.transient:
                raise
        refused = [letter for letter, delivery in sent
                   if delivery is not None and delivery.failed()]
        for letter in refused:
            self._send_dead_letter(letter, truncate=True)
        try:
            self._producer.flush()
        except ProduceError as exc:  # a truncated copy refused too: keep trying, lose nothing
            raise ProduceError(f"dead letters were refused even truncated: {exc}",
                               transient=True) from exc

    def _send_dead_letter(self, letter: _DeadLetter, *, truncate: bool = False) -> Delivery | None:
        headers = dead_letter_headers(letter.error.reason, str(letter.error), letter.topic,
                                      letter.partition, letter.offset)
        headers.append(("dl-exception", _exception_name(letter.error).encode()))
        value = letter.value
        if truncate and value is not None and len(value) > TRUNCATED_BYTES:
            headers.append(("dl-truncated", str(len(value)).encode()))
            headers.append(("dl-sha256", hashlib.sha256(value).hexdigest().encode()))
            value = value[:TRUNCATED_BYTES]
        try:
            return self._producer.send_raw(self._dead_letter_topic, value, key=letter.key,
                                           headers=headers)
        except ProduceError as exc:
            if exc.transient or truncate:
                raise
            return self._send_dead_letter(letter, truncate=True)

    def _count_dead_letter(self, letter: _DeadLetter) -> None:
        reason = letter.error.reason
        self.stats.dead_lettered[reason] += 1
        DEAD_LETTERS.labels(topic=letter.topic, reason=reason).inc()
        log.info(
            "dead-lettered a message",
            extra={"reason": reason, "error": str(letter.error), "topic": letter.topic,
                   "partition": letter.partition, "offset": letter.offset},
        )

    def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> bool:
        """Commit the batch's offsets; False if stopped before the broker took them."""
        if not offsets:
            return True
        while True:
            try:
                self._consumer.commit(offsets)
            except _REBALANCED as exc:
                # The group rebalanced while we worked. Retrying here would never pass: the
                # member rejoins only in its next poll. The batch is replayed from the last
                # commit (by whoever owns its partitions now) and idempotent storage makes
                # that harmless.
                self.stats.commits_failed += 1
                log.warning("offset commit failed after a rebalance; the batch will be replayed",
                            extra={"error": f"{type(exc).__name__}: {exc}"})
                return True
            except KafkaError as exc:
                error = broker_error(exc, "offset commit failed")
                if not error.transient:
                    raise error from exc
                if self._stop.is_set():
                    log.warning("stopped before the offsets were committed; the batch will be "
                                "replayed", extra={"error": str(error)})
                    return False
                self.stats.commits_failed += 1
                self._retry_later(error)
                continue
            self._recovered()
            return True

    # -- degraded and recovered ---------------------------------------------------------------

    def _retry_later(self, error: DriftloopError) -> None:
        """Note a transient failure, report degraded, and wait out the current backoff."""
        if not error.transient:
            raise error
        delay = self._backoff.failed()
        if self._degraded_at is None:
            self._degraded_at = self._monotonic()
            self.stats.degraded = True
            self.stats.outages += 1
            set_degraded(self._group_id, True)
            # The error in the text too: test runners and plain handlers show no extras.
            log.warning("consumer degraded (%s): retrying with backoff until it passes",
                        error, extra={"group": self._group_id, "error": str(error)})
        else:
            log.debug("still degraded", extra={"group": self._group_id, "error": str(error),
                                               "backoff_s": delay})
        if not self._stop.is_set():
            self._sleep(delay)

    def _recovered(self) -> None:
        self._backoff.reset()
        if self._degraded_at is None:
            return
        lasted = self._monotonic() - self._degraded_at
        self._degraded_at = None
        self.stats.degraded = False
        set_degraded(self._group_id, False)
        log.warning("consumer recovered", extra={"group": self._group_id,
                                                 "degraded_s": round(lasted, 1)})

    def close(self) -> None:
        try:
            self._consumer.close(autocommit=False)
        except KafkaError as exc:  # closing is best effort; the offsets are already safe
            log.debug("consumer close failed", extra={"error": str(exc)})


class _DeadLetter(NamedTuple):
    value: bytes | None
    key: bytes | None
    error: EventError
    topic: str
    partition: int
    offset: int


def _exception_name(error: EventError) -> str:
    cause = error.__cause__
    return type(cause).__name__ if isinstance(cause, Exception) else type(error).__name__
