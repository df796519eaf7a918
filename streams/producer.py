"""A batching producer with acks=all whose flush() says whether everything landed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from kafka.errors import KafkaError

from streams.codec import encode
from streams.errors import ProduceError
from streams.events import Event
from streams.kafka_errors import broker_error, is_record_error
from streams.settings import KafkaSettings
from streams.transport import ProducerClient, transport_for

log = logging.getLogger(__name__)

Headers = Sequence[tuple[str, bytes]]


class Delivery(Protocol):
    """One sent message; after a ``flush()`` it either landed or ``failed()``."""

    exception: BaseException | None

    def failed(self) -> bool: ...


class Producer:
    """Sends events and raw payloads; ``flush()`` raises if any send since the last flush failed.

    Consumers call ``flush()`` before committing offsets, so a committed offset always means
    that what was produced for it was acknowledged by every in-sync replica.
    """

    def __init__(self, settings: KafkaSettings, *, client_id: str | None = None) -> None:
        self._settings = settings
        self._client_id = client_id or f"{settings.client_id}-producer"
        self._producer = self._connect()
        self._pending: list[Any] = []

    def _connect(self) -> ProducerClient:
        settings = self._settings
        try:
            return transport_for(settings).producer(
                client_id=self._client_id,
                acks="all",
                linger_ms=settings.linger_ms,
                batch_size=settings.batch_size,
                max_request_size=max(settings.max_message_bytes * 2, 1_048_576),
                **settings.client_config(),
            )
        except KafkaError as exc:
            raise broker_error(exc, f"cannot reach Kafka at {settings.bootstrap_servers}") from exc

    def _replace_client(self) -> None:
        """Start over with a new client after the broker refused a record.

        kafka-python's idempotent producer (the default with acks=all) treats any record the
        broker refuses for good (too large, invalid) as fatal to the whole producer: every
        later send fails too. A new client has no such state.
        """
        log.warning("the broker refused a record; replacing the Kafka producer")
        old, self._producer = self._producer, self._connect()
        try:
            old.close(timeout=0)
        except KafkaError as exc:  # it is broken already; closing is best effort
            log.debug("closing the old producer failed", extra={"error": str(exc)})

    def send(self, topic: str, event: Event, *, key: str | None = None) -> None:
        self.send_raw(topic, encode(event), key=key)

    def send_raw(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: str | bytes | None = None,
        headers: Headers = (),
    ) -> Delivery:
        """Queue one message; a message the client refuses outright raises ProduceError.

        The error is transient unless the message itself is at fault (over
        ``max_request_size``), in which case sending it again cannot help.
        """
        raw_key = key.encode("utf-8") if isinstance(key, str) else key
        try:
            future = self._producer.send(
                topic, value=value, key=raw_key, headers=list(headers) or None
            )
        except KafkaError as exc:
            raise broker_error(exc, f"could not send to {topic}", produce=True) from exc
        self._pending.append(future)
        return future  # type: ignore[no-any-return]

    def flush(self, timeout_s: float | None = None) -> int:
        """Wait for every send since the last flush; return how many were acknowledged.

        Raises ProduceError when any of them failed: transient if any failure may pass on a
        retry, otherwise (every failure a refused record) not transient.
        """
        pending, self._pending = self._pending, []
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            raise broker_error(exc, "flush failed", produce=True) from exc
        failures: list[BaseException] = []
        for future in pending:
            if not future.is_done:
                raise ProduceError("a message was not acknowledged before the flush timeout")
            if future.failed():
                failures.append(future.exception)
        if failures:
            if any(is_record_error(e) for e in failures):
                self._replace_client()
            transient = not all(is_record_error(e) for e in failures)
            first = failures[0]
            raise ProduceError(
                f"{len(failures)} of {len(pending)} messages were not acknowledged, first: "
                f"{type(first).__name__}: {first}", transient=transient,
            ) from first
        return len(pending)

    def close(self, timeout_s: float = 10.0) -> None:
        try:
            self.flush(timeout_s)
        finally:
            self._producer.close(timeout=timeout_s)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
