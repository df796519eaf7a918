"""The monitor process (``driftloop monitor``): one consumer loop around :class:`Monitor`.

One consumer group (``<prefix>-<monitor.group_id>``) reads the predictions, feedback and
model-updates topics and hands each batch to :class:`monitor.handler.Monitor`, which stores,
joins, windows, detects and decides before the loop commits the offsets. Evidently reports run
in a :class:`monitor.drift_worker.DriftWorker` child process. Metrics are served on
``monitor.metrics_port`` when it is set. A broker or database that is down when the monitor
starts is waited for (the ``monitor-start`` component of the degraded gauge); after that the
consumer loop and the idle work wait out outages on their own.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from monitor.drift_worker import DriftWorker
from monitor.handler import Monitor
from streams.backoff import Stopped, on_stop, retry
from streams.clock import Clock, utc_now
from streams.codec import Decoder
from streams.consumer import ConsumerLoop, LoopStats
from streams.db import Database
from streams.events import Feedback, ModelUpdate, Prediction
from streams.metrics import serve_metrics
from streams.producer import Producer
from streams.settings import Settings
from streams.topics import Topic, TopicNames

log = logging.getLogger(__name__)

__all__ = ["Monitor", "build_loop", "run_monitor"]


#: The monitor's start-up on the ``driftloop_degraded`` gauge.
START = "monitor-start"


def build_loop(
    settings: Settings, monitor: Monitor, producer: Producer
) -> ConsumerLoop[Any]:
    """The consumer loop of the monitor's group, with ``monitor`` as handler and idle work."""
    names = TopicNames(settings.topics.prefix)
    max_bytes = settings.kafka.max_message_bytes
    models = settings.models
    topics: dict[str, Decoder[Any]] = {
        names(Topic.PREDICTIONS): Decoder(Prediction, max_bytes=max_bytes, models=models),
        names(Topic.FEEDBACK): Decoder(Feedback, max_bytes=max_bytes, models=models),
        names(Topic.MODEL_UPDATES): Decoder(ModelUpdate, max_bytes=max_bytes, models=models),
    }
    loop: ConsumerLoop[Any] = ConsumerLoop(
        settings.kafka, topics=list(topics), group_id=f"{settings.topics.prefix}-"
        f"{settings.monitor.group_id}", decoders=topics, handler=monitor, producer=producer,
        dead_letter_topic=names(Topic.DEAD_LETTER), on_idle=monitor.on_idle,
    )
    return loop


def run_monitor(
    settings: Settings,
    *,
    db: Database | None = None,
    stop: threading.Event | None = None,
    clock: Clock = utc_now,
) -> LoopStats:
    """Run the monitor until ``stop`` is set (the CLI sets it on SIGTERM and SIGINT).

    The database must be migrated (``driftloop db migrate``, or the CLI does it first).
    """
    db = db or Database(settings.database_url, echo=settings.database.echo)
    serve_metrics(settings.monitor.metrics_port)
    stop = stop or threading.Event()
    try:
        producer = retry("connect to Kafka", lambda: Producer(
            settings.kafka, client_id=f"{settings.kafka.client_id}-monitor"),
            component=START, stop=stop)
    except Stopped:
        return LoopStats()
    worker = DriftWorker(db.url, mode=settings.monitor.drift_workers,
                         max_in_flight=settings.monitor.drift_queue)
    try:
        monitor = retry("load the monitor's state", lambda: Monitor.on(
            settings, db, producer, worker, clock=clock), component=START, stop=stop)
        loop = retry("join the monitor's consumer group", lambda: build_loop(
            settings, monitor, producer), component=START, stop=stop)
        on_stop(stop, loop.stop, name="monitor-stop")
        log.info("monitor running", extra={"group": settings.monitor.group_id})
        return loop.run()
    except Stopped:
        return LoopStats()
    finally:
        worker.close()
        producer.close()
