"""The broker interface every stage talks through, and its kafka-python implementation.

A :class:`Transport` opens the three clients a driftloop process needs: a producer, a consumer
and an admin client. Their protocols are the part of kafka-python's API that driftloop uses,
with kafka-python's names, records and errors, so the adapters (``streams.producer``,
``streams.consumer``, ``streams.topics``) are written once against the protocol.

Two implementations sit behind it, picked by :func:`transport_for` from the bootstrap address:

* ``host:port[,host:port]``: :data:`KAFKA_PYTHON`, the real clients;
* ``memory://NAME``: the in-process broker :class:`streams.memory.MemoryBroker` called NAME,
  for handler tests that take milliseconds (``tests/streams/test_transport_contract.py`` runs
  the same contract on it and on both real brokers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

from streams.settings import KafkaSettings

#: The address scheme of the in-memory broker.
MEMORY_SCHEME = "memory://"


class ProducerClient(Protocol):
    """``send`` returns a future that ``streams.producer.Delivery`` describes."""

    def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
             headers: list[tuple[str, bytes]] | None = None) -> Any: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def close(self, timeout: float | None = None) -> None: ...


class ConsumerClient(Protocol):
    def subscribe(self, topics: Sequence[str]) -> None: ...

    def assign(self, partitions: Sequence[TopicPartition]) -> None: ...

    def assignment(self) -> set[TopicPartition]: ...

    def seek_to_beginning(self, *partitions: TopicPartition) -> None: ...

    def poll(self, timeout_ms: int = 0, max_records: int | None = None
             ) -> Mapping[TopicPartition, list[Any]]: ...

    def commit(self, offsets: Mapping[TopicPartition, OffsetAndMetadata] | None = None
               ) -> None: ...

    def position(self, partition: TopicPartition) -> int: ...

    def highwater(self, partition: TopicPartition) -> int | None: ...

    def end_offsets(self, partitions: Sequence[TopicPartition]
                    ) -> Mapping[TopicPartition, int]: ...

    def topics(self) -> set[str]: ...

    def partitions_for_topic(self, topic: str) -> set[int] | None: ...

    def close(self, autocommit: bool = True) -> None: ...


class AdminClient(Protocol):
    def list_topics(self) -> list[str]: ...

    def create_topics(self, new_topics: list[NewTopic]) -> Any: ...

    def close(self) -> None: ...


class Transport(Protocol):
    """Opens clients; ``options`` are kafka-python's keyword arguments."""

    def producer(self, **options: Any) -> ProducerClient: ...

    def consumer(self, **options: Any) -> ConsumerClient: ...

    def admin(self, **options: Any) -> AdminClient: ...


class KafkaPythonTransport:
    """The real clients (kafka-python), for a Kafka-compatible cluster."""

    def producer(self, **options: Any) -> ProducerClient:
        return KafkaProducer(**options)  # type: ignore[no-any-return]

    def consumer(self, **options: Any) -> ConsumerClient:
        return KafkaConsumer(**options)  # type: ignore[no-any-return]

    def admin(self, **options: Any) -> AdminClient:
        return KafkaAdminClient(**options)  # type: ignore[no-any-return]


KAFKA_PYTHON = KafkaPythonTransport()


def is_memory(bootstrap_servers: str) -> bool:
    return bootstrap_servers.strip().startswith(MEMORY_SCHEME)


def transport_for(settings: KafkaSettings) -> Transport:
    """The transport the settings' bootstrap address names."""
    if is_memory(settings.bootstrap_servers):
        from streams.memory import MemoryBroker

        return MemoryBroker.named(settings.bootstrap_servers.strip()[len(MEMORY_SCHEME):])
    return KAFKA_PYTHON
