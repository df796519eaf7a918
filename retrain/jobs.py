"""The functions APScheduler runs, and the retrainer they run with.

APScheduler's SQLAlchemy job store pickles each job: its function by import path and its
arguments. So jobs hold only plain values (a model name, a request's event id) and call these
module-level functions, which find the process's :class:`~retrain.runner.Retrainer` bound
here by :func:`bind` when the retrain process starts.

A job that a database outage cuts short (a transient ``StoreError``) does not just fail: it is
noted, and :func:`resume`, called by the retrain process's idle work once the database
answers, sets back what it left half-done (its run ``running``, its request claimed) and
queues it again. A scheduled run is not queued again: its schedule fires again anyway; nor is
a refresh: the cadence queues it again while it is due.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from retrain.refresh import TRIGGER, Refreshes
from retrain.runner import Retrainer, Trigger
from retrain.runs import OUTAGE
from streams.errors import StoreError

if TYPE_CHECKING:  # the scheduler imports this module's job names
    from retrain.registry import Registry
    from retrain.runs import RunStore
    from retrain.scheduler import RetrainScheduler

log = logging.getLogger(__name__)

RUN_REQUEST = "retrain.jobs:run_request"
RUN_SCHEDULE = "retrain.jobs:run_schedule"
RUN_FOLLOWUP = "retrain.jobs:run_followup"
RUN_REFRESH = "retrain.jobs:run_refresh"

_lock = threading.Lock()
_retrainer: Retrainer | None = None


@dataclass(frozen=True)
class Interrupted:
    """A job a database outage cut short: a request's (``key`` is its event id) or a model's."""

    kind: Literal["request", "schedule", "follow-up", "refresh"]
    key: str


_interrupted: set[Interrupted] = set()
_running = 0


def bind(retrainer: Retrainer) -> None:
    global _retrainer
    with _lock:
        _retrainer = retrainer


def unbind() -> None:
    global _retrainer
    with _lock:
        _retrainer = None


def _bound() -> Retrainer | None:
    with _lock:
        if _retrainer is None:
            log.warning("a retrain job fired while no retrainer is bound; it is left for later")
        return _retrainer


@contextmanager
def _job(job: Interrupted) -> Iterator[None]:
    global _running
    with _lock:
        _running += 1
    try:
        yield
    except StoreError as exc:
        if not exc.transient:
            raise
        with _lock:
            _interrupted.add(job)
        log.warning("a retrain job met a database outage; it runs again once the database is "
                    "back", extra={"job": job.kind, "key": job.key, "error": str(exc)})
    finally:
        with _lock:
            _running -= 1


def run_request(event_id: str) -> None:
    """Serve one RetrainRequested (at most once, whatever fires this job)."""
    retrainer = _bound()
    if retrainer is not None:
        with _job(Interrupted("request", event_id)):
            retrainer.run_request(event_id)


def run_schedule(model: str) -> None:
    """A scheduled retraining of ``model``."""
    retrainer = _bound()
    if retrainer is not None:
        with _job(Interrupted("schedule", model)):
            retrainer.run(model, Trigger("schedule"))


def run_followup(model: str) -> None:
    """A follow-up run of ``model`` after a drift, on the examples since it."""
    retrainer = _bound()
    if retrainer is not None:
        with _job(Interrupted("follow-up", model)):
            retrainer.run(model, Trigger("follow-up"))


def run_refresh(model: str) -> None:
    """A label-driven refresh of ``model``, unless a drift request waits or it is no longer
    due (see :mod:`retrain.refresh`); one cut short is not queued again here: the cadence
    queues it again while it is due."""
    retrainer = _bound()
    if retrainer is not None:
        with _job(Interrupted("refresh", model)):
            refreshes = Refreshes(retrainer.settings.refresh_every_labels, retrainer.registry,
                                  retrainer.runs, queue=lambda _: False)
            refreshes.run(lambda name: retrainer.run(name, Trigger(TRIGGER)), model)


def resume(runs: RunStore, registry: Registry, scheduler: RetrainScheduler) -> int:
    """Set back and queue again every job an outage cut short; how many (0 while a job runs).

    Runs only while no job runs in this process, so a run still ``running`` then is one an
    interrupted job left behind (one retrain process per database, as :meth:`RunStore.recover`
    assumes). A database error on the way leaves the rest for the next call.
    """
    with _lock:  # a job that starts meanwhile waits for this to finish
        if _running:
            return 0
        resumed = 0
        for job in list(_interrupted):
            model = job.key
            if job.kind == "request":
                request = runs.request(job.key)
                if request is None:
                    _interrupted.discard(job)
                    continue
                model = request.model
            abandoned = runs.abandon(model)
            registry.fail_candidates([r.id for r in abandoned], note=OUTAGE)
            if job.kind == "request":
                runs.release_request(job.key)
                scheduler.add_request(job.key, model)
            elif job.kind == "follow-up":
                scheduler.add_followup(model)
            _interrupted.discard(job)
            resumed += 1
            log.info("a retrain job cut short by an outage is set back",
                     extra={"job": job.kind, "key": job.key, "abandoned": len(abandoned)})
        return resumed
