"""APScheduler 3 wiring: a persistent job store, per-model schedules, one-off request jobs.

Jobs live in the ``retrain_jobs`` table of driftloop's own database (APScheduler's
``SQLAlchemyJobStore``), so schedules and not-yet-run request jobs survive a restart. Every
job coalesces missed runs into one, allows one instance at a time, and runs however late it is
(``misfire_grace_time=None``): a schedule that fell due while the process was down runs once
when it comes back. Runs execute on a thread pool of ``settings.retrain.workers`` threads; the
registry's run lock (see :mod:`retrain.runs`) keeps it to one run per model.

Job ids: ``schedule:<model>`` for a model's schedule and ``request:<event_id>`` for the
one-off job of a ``RetrainRequested``, so a replayed request cannot add a second job while the
first is pending (and the request's claim stops it from being trained twice after that);
``followup:<model>`` for a follow-up run after a drift (see :mod:`retrain.concept`);
``refresh:<model>`` for a label-driven refresh (see :mod:`retrain.refresh`), so a model has at
most one refresh queued.

The job store's database errors come out as :class:`~streams.errors.StoreError` (transient when
the database is unreachable), so a request that arrives during an outage is retried by the
consumer loop, never dead-lettered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from retrain.jobs import RUN_FOLLOWUP, RUN_REFRESH, RUN_REQUEST, RUN_SCHEDULE
from retrain.tables import JOBS_TABLE
from streams.db import Database, store_error
from streams.errors import ConfigError
from streams.settings import Settings

log = logging.getLogger(__name__)

SCHEDULE_PREFIX = "schedule:"
REQUEST_PREFIX = "request:"
FOLLOWUP_PREFIX = "followup:"
REFRESH_PREFIX = "refresh:"


def schedule_specs(
    settings: Settings, registered: Sequence[str] = ()
) -> dict[str, float | str]:
    """model -> seconds or crontab, from the global schedule and the per-model overrides.

    The global schedule covers ``settings.models``, or, when that is empty (any model
    accepted), the models already in the registry.
    """
    retrain = settings.retrain
    default: float | str | None = retrain.schedule_cron or retrain.schedule_interval_s
    specs: dict[str, float | str] = {}
    if default is not None:
        specs.update({model: default for model in settings.models or registered})
    specs.update(retrain.schedules)
    return specs


def trigger_for(spec: float | str) -> IntervalTrigger | CronTrigger:
    """Seconds (a number, or text that is one) make an interval; other text is a crontab."""
    try:
        seconds = float(spec)
    except ValueError:
        seconds = None
    try:
        if seconds is not None:
            if seconds <= 0:
                raise ValueError("the interval must be positive")
            return IntervalTrigger(seconds=seconds, timezone=UTC)
        return CronTrigger.from_crontab(str(spec), timezone=UTC)
    except ValueError as exc:
        raise ConfigError(f"bad retrain schedule {spec!r}: {exc}") from exc


@contextmanager
def _job_store() -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:
        raise store_error(exc, "the retrain job store failed") from exc


class RetrainScheduler:
    """A BackgroundScheduler whose jobs are kept in the database."""

    def __init__(self, db: Database, *, workers: int = 2) -> None:
        self._scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=db.engine, tablename=JOBS_TABLE)},
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )

    def start(self, *, paused: bool = False) -> None:
        """Start the scheduler (a second call, after a first that failed, starts it again);
        ``paused``: jobs are stored but none runs until :meth:`resume`."""
        if self._scheduler.running:
            return
        with _job_store():
            self._scheduler.start(paused=paused)

    def resume(self) -> None:
        self._scheduler.resume()

    def shutdown(self, *, wait: bool = True) -> None:
        if self._scheduler.running:
            self._scheduler.pause()  # no new submissions while the executors wind down
            self._scheduler.shutdown(wait=wait)

    def sync_schedules(self, specs: Mapping[str, float | str]) -> None:
        """Make the stored schedules match ``specs``; an unchanged one keeps its next run."""
        wanted = {f"{SCHEDULE_PREFIX}{model}": (model, trigger_for(spec))
                  for model, spec in specs.items()}
        with _job_store():
            self._sync(wanted)

    def _sync(self, wanted: Mapping[str, tuple[str, IntervalTrigger | CronTrigger]]) -> None:
        for job in self._scheduler.get_jobs():
            if job.id.startswith(SCHEDULE_PREFIX) and job.id not in wanted:
                log.info("removing retrain schedule", extra={"job": job.id})
                job.remove()
        for job_id, (model, trigger) in wanted.items():
            existing = self._scheduler.get_job(job_id)
            if existing is not None and str(existing.trigger) == str(trigger):
                continue
            self._scheduler.add_job(RUN_SCHEDULE, trigger, args=[model], id=job_id,
                                    name=f"retrain {model}", replace_existing=True)
            log.info("retrain schedule set", extra={"model": model, "trigger": str(trigger)})

    def add_request(self, event_id: str, model: str, *, delay_s: float = 0.0) -> bool:
        """Queue the one-off job of a request now; False if it is already queued.

        With ``delay_s`` (a deferred run, queued again from inside its own job, which
        APScheduler may not have removed yet) the job gets an id of its own: the request's
        claim still runs it at most once."""
        at = datetime.now(UTC) + timedelta(seconds=delay_s)
        job_id = f"{REQUEST_PREFIX}{event_id}"
        if delay_s > 0:
            job_id += f"@{at.timestamp():.3f}"
        try:
            with _job_store():
                self._scheduler.add_job(
                    RUN_REQUEST, "date", run_date=at, args=[event_id], id=job_id,
                    name=f"retrain {model} ({event_id})",
                )
        except ConflictingIdError:
            return False
        return True

    def add_followup(self, model: str) -> bool:
        """Queue a follow-up run of ``model`` now; False if one is already queued."""
        try:
            with _job_store():
                self._scheduler.add_job(
                    RUN_FOLLOWUP, "date", run_date=datetime.now(UTC), args=[model],
                    id=f"{FOLLOWUP_PREFIX}{model}", name=f"retrain {model} (follow-up)",
                )
        except ConflictingIdError:
            return False
        return True

    def add_refresh(self, model: str) -> bool:
        """Queue a label-driven refresh of ``model`` now; False if one is already queued."""
        try:
            with _job_store():
                self._scheduler.add_job(
                    RUN_REFRESH, "date", run_date=datetime.now(UTC), args=[model],
                    id=f"{REFRESH_PREFIX}{model}", name=f"retrain {model} (refresh)",
                )
        except ConflictingIdError:
            return False
        return True

    def cancel_refresh(self, model: str) -> bool:
        """Remove the queued refresh of ``model``; False if none was queued."""
        try:
            with _job_store():
                self._scheduler.remove_job(f"{REFRESH_PREFIX}{model}")
        except JobLookupError:
            return False
        return True

    def followup_queued(self, model: str) -> bool:
        """Whether a follow-up run of ``model`` is queued and not yet started."""
        with _job_store():
            return self._scheduler.get_job(f"{FOLLOWUP_PREFIX}{model}") is not None

    def jobs(self) -> list[dict[str, Any]]:
        """id, name, trigger and next run time of every stored job."""
        with _job_store():
            stored = self._scheduler.get_jobs()
        return [
            {"id": job.id, "name": job.name, "trigger": str(job.trigger),
             "next_run_time": getattr(job, "next_run_time", None)}
            for job in stored
        ]
