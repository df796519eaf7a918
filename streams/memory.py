"""An in-process broker behind the :class:`~streams.transport.Transport` protocol.

It keeps Kafka's semantics that driftloop relies on, so the same adapters and handlers run on
it unchanged, in milliseconds and with no JDK:

* topics of numbered partitions, each an append-only log; a key goes to the partition
  kafka-python's default partitioner picks (murmur2), so keyed events land together;
* consumer groups: each partition of the subscribed topics belongs to one member; a member
  joining or leaving starts a new generation, the members pick up their new partitions on
  their next poll, from the group's committed offset (or ``auto_offset_reset``), and a commit
  for a partition the member no longer owns fails with ``CommitFailedError``, and one made
  before the member has polled since its group's last change with ``RebalanceInProgressError``
  (kafka-python's, which a member clears by polling); a member that
  has not polled for ``max_poll_interval_ms`` is dropped from its group, as Kafka drops one;
* acknowledgements: a send returns a future that, after ``flush()``, has either succeeded or
  failed with kafka-python's error (a record over the broker's ``max_message_bytes`` fails
  with ``MessageSizeTooLargeError``, a send while the broker is down with a timeout);
* outages: :meth:`MemoryBroker.down` makes every client call fail as a lost cluster does
  (polls return nothing, commits and admin calls raise, sends fail at flush) until it is
  brought back with :meth:`MemoryBroker.up`.

What it does not model, and the real-broker tests cover: the wire protocol, compression,
SASL/SSL, replication, transactions, and the timing of a real rebalance.
``enable_auto_commit`` is ignored: nothing is committed but what ``commit()`` is given.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from kafka import TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RebalanceInProgressError,
    TopicAlreadyExistsError,
)
from kafka.future import Future
from kafka.partitioner.default import murmur2
from kafka.structs import OffsetAndMetadata

#: What a record may weigh when the broker is not told otherwise (Kafka's default).
DEFAULT_MAX_MESSAGE_BYTES = 1_048_588


class _Stored(NamedTuple):
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp_ms: int


@dataclass
class _Group:
    members: list[MemoryConsumer] = field(default_factory=list)
    generation: int = 0
    owned: dict[int, set[TopicPartition]] = field(default_factory=dict)  # by id(member)
    committed: dict[TopicPartition, int] = field(default_factory=dict)


class MemoryBroker:
    """One in-process cluster; :meth:`named` finds it again from a ``memory://NAME`` address."""

    _named: ClassVar[dict[str, MemoryBroker]] = {}
    _named_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, *, address: str = "memory://",
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        #: What ``kafka.bootstrap_servers`` says to reach this broker.
        self.address = address
        self.max_message_bytes = max_message_bytes
        self._clock_ms = clock_ms
        self._cond = threading.Condition()
        self._logs: dict[str, list[list[_Stored]]] = {}
        self._groups: dict[str, _Group] = {}
        self._down = False

    @classmethod
    def named(cls, name: str) -> MemoryBroker:
        """The broker called ``name``, made on first use."""
        with cls._named_lock:
            broker = cls._named.get(name)
            if broker is None:
                broker = cls._named[name] = cls(address=f"memory://{name}")
            return broker

    @classmethod
    def forget(cls, name: str) -> None:
        with cls._named_lock:
            cls._named.pop(name, None)

    # -- the Transport protocol ----------------------------------------------------------------

    def producer(self, **options: Any) -> MemoryProducer:
        self._reachable()
        return MemoryProducer(self, max_request_size=options.get("max_request_size", 1_048_576))

    def consumer(self, **options: Any) -> MemoryConsumer:
        self._reachable()
        return MemoryConsumer(self, **options)

    def admin(self, **options: Any) -> MemoryAdmin:
        self._reachable()
        return MemoryAdmin(self)

    # -- outages -------------------------------------------------------------------------------

    def down(self) -> None:
        """Lose the cluster: every client call fails until :meth:`up`."""
        with self._cond:
            self._down = True

    def up(self) -> None:
        with self._cond:
            self._down = False
            self._cond.notify_all()

    @contextmanager
    def outage(self) -> Iterator[None]:
        self.down()
        try:
            yield
        finally:
            self.up()

    @property
    def is_down(self) -> bool:
        return self._down

    def _reachable(self) -> None:
        if self._down:
            raise KafkaConnectionError("the in-memory broker is down")

    # -- topics and logs -----------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int = 1) -> bool:
        """Create ``name``; False if it exists already."""
        with self._cond:
            if name in self._logs:
                return False
            self._logs[name] = [[] for _ in range(partitions)]
            self._rebalance_all()
            return True

    def topics(self) -> set[str]:
        with self._cond:
            return set(self._logs)

    def partitions_for(self, topic: str) -> set[int] | None:
        with self._cond:
            log = self._logs.get(topic)
            return set(range(len(log))) if log is not None else None

    def end_offset(self, tp: TopicPartition) -> int:
        with self._cond:
            return len(self._logs[tp.topic][tp.partition])

    def committed(self, group_id: str, tp: TopicPartition) -> int | None:
        """The group's committed offset of ``tp`` (for tests)."""
        with self._cond:
            group = self._groups.get(group_id)
            return group.committed.get(tp) if group else None

    def _append(self, topic: str, key: bytes | None, value: bytes | None,
                headers: list[tuple[str, bytes]]) -> tuple[int, int]:
        with self._cond:
            log = self._logs[topic]
            if key is not None:
                partition = (murmur2(key) & 0x7FFFFFFF) % len(log)
            else:
                partition = random.randrange(len(log))  # noqa: S311 - spreading, not secrecy
            log[partition].append(_Stored(key, value, headers, self._clock_ms()))
            self._cond.notify_all()
            return partition, len(log[partition]) - 1

    def _read(self, tp: TopicPartition, start: int, limit: int) -> list[ConsumerRecord]:
        entries = self._logs[tp.topic][tp.partition][start:start + limit]
        return [
            ConsumerRecord(tp.topic, tp.partition, -1, start + i, e.timestamp_ms, 0, e.key,
                           e.value, e.headers, None,
                           len(e.key) if e.key is not None else -1,
                           len(e.value) if e.value is not None else -1, -1)
            for i, e in enumerate(entries)
        ]

    # -- groups (called with the condition held) -----------------------------------------------

    def _join(self, group_id: str, member: MemoryConsumer) -> None:
        group = self._groups.setdefault(group_id, _Group())
        if member not in group.members:
            group.members.append(member)
        self._rebalance(group)

    def _leave(self, group_id: str, member: MemoryConsumer) -> None:
        group = self._groups.get(group_id)
        if group is not None and member in group.members:
            group.members.remove(member)
            self._rebalance(group)

    def _rebalance_all(self) -> None:
        for group in self._groups.values():
            if group.members:
                self._rebalance(group)

    def _rebalance(self, group: _Group) -> None:
        """A new generation: each partition to one member subscribed to its topic, in turn."""
        group.generation += 1
        owned: dict[int, set[TopicPartition]] = {id(m): set() for m in group.members}
        topics = sorted({t for m in group.members for t in m.subscription})
        for topic in topics:
            takers = [m for m in group.members if topic in m.subscription]
            for p in range(len(self._logs.get(topic, ()))):
                owned[id(takers[p % len(takers)])].add(TopicPartition(topic, p))
        group.owned = owned
        self._cond.notify_all()

    def _expire(self, group: _Group, now: float) -> None:
        stale = [m for m in group.members if now - m.polled_at > m.max_poll_interval_s]
        for member in stale:
            group.members.remove(member)
        if stale:
            self._rebalance(group)


class MemoryProducer:
    """Appends at once; ``flush()`` has nothing to wait for."""

    def __init__(self, broker: MemoryBroker, *, max_request_size: int) -> None:
        self._broker = broker
        self._max_request_size = max_request_size
        self._closed = False

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
             headers: list[tuple[str, bytes]] | None = None) -> Future:
        if self._closed:
            raise IllegalStateError("the producer is closed")
        size = len(value or b"") + len(key or b"") + sum(len(k) + len(v) for k, v in headers or ())
        if size > self._max_request_size:
            raise MessageSizeTooLargeError(
                f"the message is {size} bytes, over max_request_size {self._max_request_size}")
        if self._broker.partitions_for(topic) is None:
            raise KafkaTimeoutError(f"topic {topic} is not in the metadata")
        future = Future()
        if self._broker.is_down:
            future.failure(KafkaTimeoutError("the in-memory broker is down"))
        elif size > self._broker.max_message_bytes:
            future.failure(MessageSizeTooLargeError(
                f"the broker refused a record of {size} bytes"))
        else:
            future.success(self._broker._append(topic, key, value, list(headers or ())))
        return future

    def flush(self, timeout: float | None = None) -> None:
        return None

    def close(self, timeout: float | None = None) -> None:
        self._closed = True


class MemoryConsumer:
    """A group member (after ``subscribe``) or a reader of assigned partitions."""

    def __init__(self, broker: MemoryBroker, *, group_id: str | None = None,
                 auto_offset_reset: str = "latest", max_poll_records: int = 500,
                 max_poll_interval_ms: int = 300_000, **_ignored: Any) -> None:
        self._broker = broker
        self._group_id = group_id
        self._reset = auto_offset_reset
        self._max_records = max_poll_records
        self.max_poll_interval_s = max_poll_interval_ms / 1000
        self.subscription: list[str] = []
        self.polled_at = time.monotonic()
        self._manual: set[TopicPartition] | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._generation = -1
        self._next = 0  # where the next poll starts, so every partition gets its turn
        self._closed = False

    def subscribe(self, topics: Sequence[str]) -> None:
        with self._broker._cond:
            self.subscription = list(topics)
            self._manual = None
            if self._group_id is not None:
                self._broker._join(self._group_id, self)

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        with self._broker._cond:
            self._manual = set(partitions)
            self._positions = {tp: p for tp, p in self._positions.items() if tp in self._manual}

    def assignment(self) -> set[TopicPartition]:
        with self._broker._cond:
            return set(self._sync())

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        with self._broker._cond:
            for tp in partitions or tuple(self._sync()):
                self._positions[tp] = 0

    def poll(self, timeout_ms: int = 0, max_records: int | None = None
             ) -> dict[TopicPartition, list[ConsumerRecord]]:
        if self._closed:
            raise IllegalStateError("the consumer is closed")
        limit = max_records or self._max_records
        cond = self._broker._cond
        deadline = time.monotonic() + timeout_ms / 1000
        with cond:
            while True:
                self.polled_at = time.monotonic()
                if not self._broker.is_down:
                    found = self._fetch(self._sync(), limit)
                    if found:
                        return found
                left = deadline - time.monotonic()
                if left <= 0:
                    return {}
                cond.wait(left)

    def commit(self, offsets: Mapping[TopicPartition, OffsetAndMetadata] | None = None) -> None:
        with self._broker._cond:
            if self._broker.is_down:
                raise KafkaConnectionError("the in-memory broker is down")
            if self._group_id is None:
                raise IllegalStateError("a consumer without a group cannot commit")
            wanted = ({tp: o.offset for tp, o in offsets.items()} if offsets is not None
                      else dict(self._positions))
            if self._rebalancing():
                raise RebalanceInProgressError(
                    "the group started a new generation; poll() to rejoin, then commit")
            owned = self._sync()
            if any(tp not in owned for tp in wanted):
                raise CommitFailedError("the group rebalanced; these partitions moved")
            self._broker._groups[self._group_id].committed.update(wanted)

    def position(self, partition: TopicPartition) -> int:
        with self._broker._cond:
            self._sync()
            return self._position(partition)

    def highwater(self, partition: TopicPartition) -> int | None:
        return self._broker.end_offset(partition)

    def end_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        self._broker._reachable()
        return {tp: self._broker.end_offset(tp) for tp in partitions}

    def topics(self) -> set[str]:
        self._broker._reachable()
        return self._broker.topics()

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self._broker.partitions_for(topic)

    def close(self, autocommit: bool = True) -> None:
        with self._broker._cond:
            if self._closed:
                return
            self._closed = True
            if self._group_id is not None and self.subscription:
                self._broker._leave(self._group_id, self)

    # -- with the condition held -----------------------------------------------------------------

    def _sync(self) -> set[TopicPartition]:
        """This member's partitions now; moved ones are dropped, new ones start committed."""
        broker = self._broker
        if self._manual is not None:
            return self._manual
        if self._group_id is None:
            return {TopicPartition(t, p) for t in self.subscription
                    for p in range(len(broker._logs.get(t, ())))}
        group = broker._groups[self._group_id]
        broker._expire(group, time.monotonic())
        if self not in group.members:  # dropped for not polling: join again, as Kafka's would
            broker._join(self._group_id, self)
        owned = group.owned.get(id(self), set())
        if group.generation != self._generation:
            self._generation = group.generation
            self._positions = {tp: p for tp, p in self._positions.items() if tp in owned}
        return owned

    def _rebalancing(self) -> bool:
        """Whether this member's group started a generation the member has not joined yet (it
        joins in its next poll or assignment, as a Kafka member rejoins in ``poll()``)."""
        if self._manual is not None or self._group_id is None or not self.subscription:
            return False
        group = self._broker._groups[self._group_id]
        return self in group.members and group.generation != self._generation

    def _position(self, tp: TopicPartition) -> int:
        if tp not in self._positions:
            committed = (self._broker._groups[self._group_id].committed.get(tp)
                         if self._group_id is not None else None)
            if committed is not None:
                self._positions[tp] = committed
            elif self._reset == "earliest":
                self._positions[tp] = 0
            else:
                self._positions[tp] = self._broker.end_offset(tp)
        return self._positions[tp]

    def _fetch(self, owned: set[TopicPartition], limit: int
               ) -> dict[TopicPartition, list[ConsumerRecord]]:
        parts = sorted(owned)
        found: dict[TopicPartition, list[ConsumerRecord]] = {}
        if not parts:
            return found
        start = self._next % len(parts)
        self._next += 1
        for tp in parts[start:] + parts[:start]:
            if limit <= 0:
                break
            records = self._broker._read(tp, self._position(tp), limit)
            if records:
                found[tp] = records
                self._positions[tp] = records[-1].offset + 1
                limit -= len(records)
        return found


class MemoryAdmin:
    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker

    def list_topics(self) -> list[str]:
        self._broker._reachable()
        return sorted(self._broker.topics())

    def create_topics(self, new_topics: list[NewTopic]) -> None:
        self._broker._reachable()
        for topic in new_topics:
            if not self._broker.create_topic(topic.name, max(topic.num_partitions, 1)):
                raise TopicAlreadyExistsError(f"topic {topic.name} exists")

    def close(self) -> None:
        return None
