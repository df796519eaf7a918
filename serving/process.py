"""The serving process: wait for a champion, then turn requests into predictions until stopped.

Wiring, in order:

1. an :class:`~serving.updates.UpdateFollower` thread reads the model-updates topic from the
   beginning, loads the current champion (or the ``--artifact`` fallback) and keeps swapping;
2. until a model is loaded the process waits without joining the consumer group, so its
   requests stay with the other members;
3. a :class:`~streams.consumer.ConsumerLoop` in group ``<prefix>.serving.<model>`` feeds
   micro-batches of at most ``serving.max_batch`` requests to the
   :class:`~serving.handler.PredictionHandler`, and commits after the producer flushed.

Several processes in one group share the partitions; each follows the updates on its own.
A broker that is down at any of these steps is waited for (the ``serving-start`` component of
the degraded gauge, then the consumer loop's own retries), so serving never exits on an
outage; only errors no retry mends (refused credentials) end it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from contextlib import ExitStack
from pathlib import Path

import torch

from serving.canary import RecentRequests
from serving.handler import PredictionHandler
from serving.model import ModelHolder
from serving.swap import Swapper
from serving.updates import UpdateFollower
from streams.backoff import Stopped, on_stop, retry
from streams.clock import Clock, utc_now
from streams.codec import Decoder
from streams.consumer import ConsumerLoop, LoopStats
from streams.errors import BrokerError, DriftloopError
from streams.events import InferenceRequest
from streams.metrics import serve_metrics
from streams.nn import pick_device
from streams.producer import Producer
from streams.settings import Settings
from streams.topics import Topic, TopicNames

log = logging.getLogger(__name__)


#: Serving's start-up on the ``driftloop_degraded`` gauge.
START = "serving-start"


def group_id(settings: Settings, model: str) -> str:
    """The consumer group every serving process of ``model`` joins."""
    return f"{settings.topics.prefix}.serving.{model}"


class ServingProcess:
    """One serving process for one model; :meth:`run` blocks until :meth:`stop`."""

    def __init__(
        self,
        settings: Settings,
        *,
        model: str,
        artifact: Path | None = None,
        instance: str | None = None,
        device: str | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.model = model
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}"
        self.names = TopicNames(settings.topics.prefix)
        self.holder = ModelHolder()
        self.recent = RecentRequests(settings.serving.canary_size)
        self._artifact = artifact
        self._device = pick_device(device)
        self._clock = clock
        self._stop = threading.Event()
        self._loop: ConsumerLoop[InferenceRequest] | None = None
        self.stats = LoopStats()

    def stop(self) -> None:
        """Finish the current batch, commit it and return from :meth:`run`."""
        self._stop.set()
        loop = self._loop
        if loop is not None:
            loop.stop()

    def run(self) -> LoopStats:
        threads = self.settings.serving.cpu_threads
        if threads and self._device.type == "cpu":
            torch.set_num_threads(threads)
        kafka = self.settings.kafka
        client = f"{kafka.client_id}-serving-{self.instance}"
        try:
            updates_producer = retry("connect to Kafka", lambda: Producer(
                kafka, client_id=f"{client}-updates"), component=START, stop=self._stop)
        except Stopped:
            return self.stats
        follower = UpdateFollower(
            kafka,
            topic=self.names(Topic.MODEL_UPDATES),
            swapper=Swapper(self.model, self.holder, self.recent, device=self._device),
            producer=updates_producer,
            instance=self.instance,
            clock=self._clock,
            fallback=self._artifact,
        )
        follower.start()
        try:
            if self._wait_for_model(follower):
                self._serve(follower)
        finally:
            follower.stop()
            updates_producer.close()
        return self.stats

    def _wait_for_model(self, follower: UpdateFollower) -> bool:
        interval = self.settings.serving.wait_for_model_s
        while not self._stop.is_set():
            self._check(follower)
            if self.holder.wait(interval) is not None:
                return True
        return False

    def _serve(self, follower: UpdateFollower) -> None:
        serving = self.settings.serving
        kafka = self.settings.kafka.model_copy(update={
            "max_poll_records": serving.max_batch, "fetch_max_wait_ms": serving.fetch_max_wait_ms})
        requests = self.names(Topic.REQUESTS)
        client_id = f"{kafka.client_id}-serving-{self.instance}"
        with ExitStack() as cleanup:
            try:
                producer = retry("connect to Kafka", lambda: Producer(
                    kafka, client_id=client_id), component=START, stop=self._stop)
            except Stopped:
                return
            cleanup.callback(producer.close)
            handler = PredictionHandler(
                model=self.model, holder=self.holder, recent=self.recent, producer=producer,
                others=frozenset(self.settings.models) - {self.model},
                topic=self.names(Topic.PREDICTIONS), clock=self._clock,
                max_bytes=kafka.max_message_bytes,
            )
            try:
                loop: ConsumerLoop[InferenceRequest] = retry(
                    "join the serving consumer group", lambda: ConsumerLoop(
                        kafka,
                        topics=[requests],
                        group_id=group_id(self.settings, self.model),
                        decoders={requests: Decoder(InferenceRequest,
                                                    max_bytes=kafka.max_message_bytes,
                                                    models=self.settings.models)},
                        handler=handler,
                        producer=producer,
                        dead_letter_topic=self.names(Topic.DEAD_LETTER),
                        client_id=client_id,
                    ), component=START, stop=self._stop)
            except Stopped:
                return
            cleanup.callback(loop.close)
            self._loop, self.stats = loop, loop.stats
            log.info("serving", extra={"model": self.model, "instance": self.instance,
                                       "device": str(self._device)})
            while not self._stop.is_set():
                loop.run_once()
                self._check(follower)

    @staticmethod
    def _check(follower: UpdateFollower) -> None:
        error = follower.error
        if error is None:
            return
        if isinstance(error, DriftloopError):
            raise error
        raise BrokerError(f"the model-updates follower failed: {error}") from error


def run_serving(
    settings: Settings,
    *,
    model: str,
    artifact: Path | None = None,
    device: str | None = None,
    stop: threading.Event | None = None,
) -> LoopStats:
    """Serve ``model`` until ``stop`` is set; expose metrics when a port is configured."""
    serve_metrics(settings.serving.metrics_port)
    process = ServingProcess(settings, model=model, artifact=artifact, device=device)
    if stop is not None:
        on_stop(stop, process.stop, name="serving-stop")
    return process.run()
