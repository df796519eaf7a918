"""The retrain process (``driftloop retrain``): scheduler, drift-topic consumer, publisher.

On start it marks runs left ``running`` by a dead process as failed, re-sends unpublished
registry events, starts APScheduler on the persistent job store, makes the stored schedules
match the settings and re-queues requests that were stored but never run. Then it consumes the
drift and model-updates topics:

* ``RetrainRequested``: stored as a pending request, then queued as a one-off job, before the
  batch's offsets are committed (a replay finds the request stored and queues nothing new);
* ``DriftReport``: its window scores are stored and the automatic rollback is evaluated;
* ``SwapFailed`` (serving refused the version the registry made champion): the registry marks
  it ``refused`` and restores the version serving kept (:meth:`retrain.registry.Registry.refused`),
  and the ``ModelRolledBack`` is published, so the registry, serving and the monitor agree.

A request whose drift is dated but has too few labels since is queued again a little later
(see :meth:`retrain.runner.Retrainer.run_request`); while idle the process also queues the
follow-up runs after a drift (:mod:`retrain.followups`) and the label-driven refreshes
(:mod:`retrain.refresh`).

Assumes one retrain process per database (the start-up recovery treats every ``running`` run
as orphaned).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from retrain import jobs
from retrain.followups import FollowUps
from retrain.publisher import UpdatePublisher
from retrain.refresh import Refreshes
from retrain.registry import Registry
from retrain.rollback import AutoRollback
from retrain.runner import Retrainer
from retrain.runs import INTERRUPTED, RunStore
from retrain.scheduler import RetrainScheduler, schedule_specs
from retrain.search import OptunaSearcher
from retrain.trainer import load_trainer
from streams.backoff import Backoff, RetryGate, Stopped, retry
from streams.codec import Decoder
from streams.consumer import Batch, ConsumerLoop
from streams.db import Database
from streams.errors import BrokerError, RegistryError, StoreError
from streams.events import DriftEvent, DriftReport, ModelUpdate, RetrainRequested, SwapFailed
from streams.producer import Producer
from streams.settings import Settings
from streams.statuses import RequestStatus
from streams.store import EventStore
from streams.topics import Topic, TopicNames

log = logging.getLogger(__name__)

PUBLISH_EVERY_S = 5.0
FOLLOWUP_EVERY_S = 2.0
#: The start-up and the idle work of the retrain process on the ``driftloop_degraded`` gauge.
START = "retrain-start"
IDLE = "retrain-idle"


class DriftHandler:
    """Handles one batch of the drift topic (see the module docstring)."""

    def __init__(
        self, runs: RunStore, scheduler: RetrainScheduler, rollback: AutoRollback,
        publish: Callable[[], object], registry: Registry,
    ) -> None:
        self._registry = registry
        self._runs = runs
        self._scheduler = scheduler
        self._rollback = rollback
        self._publish = publish

    def __call__(self, batch: Batch[Any]) -> None:
        for record in batch.records:
            event = record.event
            if isinstance(event, RetrainRequested):
                self._request(event)
            elif isinstance(event, DriftReport):
                self._report(event)
            elif isinstance(event, SwapFailed):
                self._refused(event)

    def _request(self, event: RetrainRequested) -> None:
        new = self._runs.record_request(event)
        stored = self._runs.request(event.event_id)
        if stored is not None and stored.status == RequestStatus.PENDING:
            queued = self._scheduler.add_request(event.event_id, event.model)
            log.info("retrain requested", extra={"model": event.model, "request": event.event_id,
                                                 "new": new, "queued": queued})
        else:
            log.info("retrain request replayed; already handled",
                     extra={"request": event.event_id})

    def _report(self, report: DriftReport) -> None:
        try:
            rolled = self._rollback.observe(report)
        except RegistryError as exc:
            log.warning("automatic rollback refused", extra={"model": report.model,
                                                              "error": str(exc)})
            return
        if rolled is not None:
            self._publish()

    def _refused(self, event: SwapFailed) -> None:
        try:
            restored = self._registry.refused(event)
        except RegistryError as exc:
            log.warning("could not undo a refused swap", extra={"model": event.model,
                                                                 "error": str(exc)})
            return
        if restored is not None:
            self._publish()


def _publish_quietly(publisher: UpdatePublisher) -> None:
    try:
        publisher.publish_pending()
    except (BrokerError, StoreError) as exc:  # the outbox keeps them for the next try
        log.warning("model updates not published yet", extra={"error": str(exc)})


def _recover(settings: Settings, registry: Registry, runs: RunStore,
             scheduler: RetrainScheduler, publisher: UpdatePublisher) -> None:
    """What a start does before consuming; every step may run again after a failed try."""
    recovered = runs.recover()
    if recovered:
        registry.fail_candidates([r.id for r in recovered], note=INTERRUPTED)
        log.warning("runs interrupted by the last stop marked failed",
                    extra={"runs": [r.id for r in recovered]})
    _publish_quietly(publisher)
    scheduler.start()
    scheduler.sync_schedules(schedule_specs(settings, [m.name for m in registry.models()]))
    for request in runs.pending_requests():
        scheduler.add_request(request.event_id, request.model)


def run_retrain(
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Run until ``stop`` is set (the CLI sets it on SIGTERM/SIGINT).

    A broker or database that is down when it starts, or later, is waited for (see
    :mod:`streams.backoff`); only a stop request ends the wait.
    """
    stop = stop or threading.Event()
    names = TopicNames(settings.topics.prefix)
    db = Database(settings.database_url, echo=settings.database.echo)
    registry, runs = Registry(db), RunStore(db)
    trainer = load_trainer(settings.retrain.trainer, settings.retrain)
    warm_up = getattr(trainer, "warm_up", None)
    if callable(warm_up):  # optional: trainers with one-off start-up costs pay them here
        warm_up()
    client = settings.kafka.client_id
    try:
        loop_producer = retry("connect to Kafka", lambda: Producer(
            settings.kafka, client_id=f"{client}-retrain"), component=START, stop=stop)
        updates_producer = retry("connect to Kafka", lambda: Producer(
            settings.kafka, client_id=f"{client}-retrain-updates"), component=START, stop=stop)
    except Stopped:
        return
    publisher = UpdatePublisher(registry, updates_producer, names(Topic.MODEL_UPDATES))
    scheduler = RetrainScheduler(db, workers=settings.retrain.workers)
    retrainer = Retrainer(
        settings.retrain, artifacts=settings.artifacts, store=EventStore(db), registry=registry,
        runs=runs, trainer=trainer, trainer_name=settings.retrain.trainer,
        on_change=publisher.publish_pending, stop=stop,
        defer=lambda event_id, model, delay: scheduler.add_request(event_id, model,
                                                                   delay_s=delay),
        search=OptunaSearcher(settings.database_url),
    )
    followups = FollowUps(settings.retrain, registry, runs, scheduler.add_followup)
    refreshes = Refreshes(settings.retrain.refresh_every_labels, registry, runs,
                          scheduler.add_refresh, scheduler.followup_queued)
    loop: ConsumerLoop[Any] | None = None
    try:
        jobs.bind(retrainer)
        retry("recover the registry and start the scheduler", lambda: _recover(
            settings, registry, runs, scheduler, publisher), component=START, stop=stop)

        last_publish = last_followup = time.monotonic()
        gate = RetryGate("retrain idle work (publishing, follow-ups)", IDLE,
                         backoff=Backoff(1.0, 10.0))

        def idle() -> None:
            nonlocal last_publish, last_followup
            if not gate.open():
                return
            try:
                if time.monotonic() - last_publish >= PUBLISH_EVERY_S:
                    last_publish = time.monotonic()
                    publisher.publish_pending()
                if time.monotonic() - last_followup >= FOLLOWUP_EVERY_S:
                    last_followup = time.monotonic()
                    followups.check()
                    refreshes.check()
                jobs.resume(runs, registry, scheduler)  # jobs an outage cut short
            except (BrokerError, StoreError) as exc:  # the outbox and the store keep the work
                gate.failed(exc)
                return
            gate.passed()

        drift, updates = names(Topic.DRIFT), names(Topic.MODEL_UPDATES)
        max_bytes, models = settings.kafka.max_message_bytes, settings.models
        loop = retry("join the retrain consumer group", lambda: ConsumerLoop(
            settings.kafka, topics=[drift, updates],
            group_id=f"{settings.topics.prefix}-retrain",
            decoders={drift: Decoder(DriftEvent, max_bytes=max_bytes, models=models),
                      updates: Decoder(ModelUpdate, max_bytes=max_bytes, models=models)},
            handler=DriftHandler(runs, scheduler, AutoRollback(db, registry, settings.retrain),
                                 publisher.publish_pending, registry),
            producer=loop_producer, dead_letter_topic=names(Topic.DEAD_LETTER),
            client_id=f"{client}-retrain", on_idle=idle,
        ), component=START, stop=stop)
        log.info("retrain process ready")
        if on_ready is not None:
            on_ready()
        while not stop.is_set():
            loop.run_once()
    except Stopped:
        log.info("retrain stopped before it was ready")
    finally:
        stop.set()
        if loop is not None:
            loop.close()
        scheduler.shutdown(wait=True)
        jobs.unbind()
        loop_producer.close()
        updates_producer.close()
        db.dispose()
