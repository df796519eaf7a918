"""Following the model-updates topic in a background thread.

On start the follower reads the whole topic (its own consumer, no group: every serving
process sees every update) and serves the newest champion of its model, walking back to the
previous champion when the newest cannot be loaded, and to the ``--artifact`` fallback when
the topic names none. It then keeps polling and hands every newer ``ModelPromoted`` (or any
``ModelRolledBack``) to the :class:`~serving.swap.Swapper`. A refused artifact leaves the old
model serving and is reported as a ``SwapFailed`` event on the same topic. An event seen
before (same ``event_id``: the registry publishes at least once) is ignored, so a redelivered
promotion cannot undo a later rollback.

A broker that is down when the follower starts, or while it catches up, is waited for (the
``serving-updates`` component of the degraded gauge); only an error no retry mends (refused
credentials) ends the follower, and serving with it.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from kafka import TopicPartition
from kafka.errors import KafkaError

from serving.swap import Champion, Swapper, history
from streams.backoff import RetryGate, Stopped, retry
from streams.clock import Clock
from streams.codec import Decoder
from streams.errors import ArtifactError, BrokerError, EventError
from streams.events import ModelUpdate, SwapFailed, new_event_id
from streams.kafka_errors import broker_error
from streams.producer import Producer
from streams.settings import KafkaSettings
from streams.transport import ConsumerClient, transport_for

log = logging.getLogger(__name__)


class UpdateFollower:
    """Keeps ``swapper``'s model in step with the champion named on ``topic``."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        topic: str,
        swapper: Swapper,
        producer: Producer,
        instance: str,
        clock: Clock,
        fallback: Path | None = None,
        poll_timeout_ms: int = 100,
        metadata_timeout_s: float = 30.0,
    ) -> None:
        self._kafka = kafka
        self._topic = topic
        self._swapper = swapper
        self._producer = producer
        self._instance = instance
        self._clock = clock
        self._fallback = fallback
        self._poll_timeout_ms = poll_timeout_ms
        self._metadata_timeout_s = metadata_timeout_s
        self._decoder: Decoder[object] = Decoder(ModelUpdate, max_bytes=kafka.max_message_bytes)
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._polling = RetryGate(f"polling {topic}", "serving-updates")
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None

    # -- thread ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="model-updates", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            consumer = retry(f"read {self._topic}", self._start_reading,
                             component="serving-updates", stop=self._stop)
        except Stopped:
            return
        except Exception as exc:
            self.error = exc
            log.exception("cannot follow model updates")
            return
        try:
            while not self._stop.is_set():
                self._follow(consumer)
        except Exception as exc:
            self.error = exc
            log.exception("the model-updates follower stopped")
        finally:
            try:
                consumer.close()
            except KafkaError as exc:
                log.debug("closing the model-updates consumer failed",
                          extra={"error": str(exc)})

    # -- Kafka -----------------------------------------------------------------------------

    def _start_reading(self) -> ConsumerClient:
        """Open the consumer and catch up with the topic; a failed try closes what it opened."""
        consumer = self._open()
        self._seen = set()  # every try reads the topic from its beginning again
        try:
            self._catch_up(consumer)
        except BaseException as exc:
            try:
                consumer.close()
            except KafkaError as close_exc:
                log.debug("closing the model-updates consumer failed",
                          extra={"error": str(close_exc)})
            if isinstance(exc, KafkaError):
                raise broker_error(exc, f"cannot catch up with {self._topic}") from exc
            raise
        return consumer

    def _open(self) -> ConsumerClient:
        try:
            consumer = transport_for(self._kafka).consumer(
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=self._kafka.fetch_max_wait_ms,
                client_id=f"{self._kafka.client_id}-updates-{self._instance}",
                **self._kafka.client_config(),
            )
        except KafkaError as exc:
            raise broker_error(exc, f"cannot follow {self._topic}") from exc
        deadline = time.monotonic() + self._metadata_timeout_s
        try:
            partitions = consumer.partitions_for_topic(self._topic)
            while not partitions and time.monotonic() < deadline and not self._stop.is_set():
                time.sleep(0.2)
                consumer.topics()
                partitions = consumer.partitions_for_topic(self._topic)
        except KafkaError as exc:
            consumer.close()
            raise broker_error(exc, f"cannot read the metadata of {self._topic}") from exc
        if not partitions:
            consumer.close()
            raise BrokerError(f"topic {self._topic} does not exist")
        parts = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        return consumer

    def _poll(self, consumer: ConsumerClient) -> list[Champion]:
        try:
            polled = consumer.poll(timeout_ms=self._poll_timeout_ms)
        except KafkaError as exc:
            self._stop.wait(self._polling.failed(exc))
            return []
        self._polling.passed()
        found: list[Champion] = []
        for tp in sorted(polled, key=lambda t: t.partition):
            for msg in polled[tp]:
                try:
                    event = self._decoder.decode(msg.value)
                except EventError as exc:
                    log.warning("ignored an unreadable model update",
                                extra={"error": str(exc), "partition": tp.partition,
                                       "offset": msg.offset})
                    continue
                champion = Champion.of(event)
                if champion is None or champion.model != self._swapper.model:
                    continue
                if champion.event_id in self._seen:  # the registry may publish twice
                    continue
                self._seen.add(champion.event_id)
                found.append(champion)
        return found

    def _catch_up(self, consumer: ConsumerClient) -> None:
        parts = list(consumer.assignment())
        try:
            end = consumer.end_offsets(parts)
        except KafkaError as exc:
            raise broker_error(exc, f"cannot read the end of {self._topic}") from exc
        seen: list[Champion] = []
        while not self._stop.is_set() and any(consumer.position(tp) < end[tp] for tp in parts):
            seen.extend(self._poll(consumer))
        for champion in reversed(history(seen)):
            if self._swapper.holder.current is not None:
                break
            self._apply(champion)
        if self._swapper.holder.current is None and self._fallback is not None:
            try:
                self._swapper.swap_to_path(self._fallback)
            except ArtifactError as exc:
                log.error("the fallback artifact was refused",
                          extra={"path": str(self._fallback), "error": str(exc)})
        if self._swapper.holder.current is None:
            log.warning("no champion to serve yet; waiting for a promotion",
                        extra={"model": self._swapper.model, "topic": self._topic})

    def _follow(self, consumer: ConsumerClient) -> None:
        target = self._swapper.next(history(self._poll(consumer)))
        if target is not None:
            self._apply(target)

    def _apply(self, champion: Champion) -> bool:
        try:
            self._swapper.swap_to(champion)
            return True
        except ArtifactError as exc:
            log.error("refused a model version; the current one keeps serving",
                      extra={"model": champion.model, "version": champion.version,
                             "error": str(exc)})
            self._report(champion, exc)
            return False

    def _report(self, champion: Champion, error: ArtifactError) -> None:
        event = SwapFailed(event_id=new_event_id(), model=champion.model,
                           version=champion.version, instance=self._instance,
                           error=str(error)[:2000], timestamp=self._clock())
        try:
            self._producer.send(self._topic, event, key=champion.model)
            self._producer.flush(timeout_s=10.0)
        except BrokerError as exc:
            log.error("could not report a failed swap", extra={"error": str(exc)})
