"""Runs the Evidently report of closed windows off the consuming thread.

The monitor hands over a :class:`DriftJob` (a window's id range and the reference to compare
it with: nothing but numbers and names); the worker reads the rows from the store itself,
runs :func:`monitor.evidently_drift.compare` and returns a
:class:`monitor.store.ReportOutcome`. By default the worker is a child process (Evidently is
CPU-bound Python: in a thread it would hold the GIL the consumer needs); ``mode="thread"``
keeps it in-process. At most ``max_in_flight`` jobs are queued or running: :meth:`submit`
refuses more, and the monitor keeps the window ``pending`` in the database until there is
room (see :mod:`monitor.report_queue`), so the consuming thread never waits for Evidently.

References are cached in the worker by their spec: the same reference serves many windows.

A report that could not run for a reason that passes comes back ``pending`` (not ``failed``),
and :mod:`monitor.report_queue` tries it again later: the database was unreachable, or the
worker process died (it is started again; a window whose report kills it
:data:`MAX_CRASHES` times fails). The worker process ends with the monitor, even when the
monitor is killed (:func:`streams.lifetime.end_with`), and so does multiprocessing's resource
tracker, which ends when the last process that uses it does.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import OrderedDict
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from monitor.quality import window_quality
from monitor.store import LABEL, PREDICTION, MonitorStore, ReportOutcome
from monitor.tables import DONE, FAILED, PENDING, SKIPPED
from streams.clock import utc_now
from streams.db import Database
from streams.errors import StoreError
from streams.events import ColumnQuality
from streams.lifetime import end_with

log = logging.getLogger(__name__)

REFERENCE_CACHE = 16
#: Times the worker process may die on one window before its report is given up as failed.
MAX_CRASHES = 3


@dataclass(frozen=True)
class ReferenceSpec:
    """Which rows a window is compared with."""

    source: Literal["first", "lineage"]
    kind: str
    model: str
    rows: int
    start: str | None = None
    end: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "rows": self.rows,
                "start": self.start, "end": self.end}


@dataclass(frozen=True)
class DriftJob:
    window_id: str
    kind: str
    model: str
    version: int
    first_id: int
    last_id: int
    rows: int
    reference: ReferenceSpec
    drift_share: float
    min_rows: int
    full_snapshot: bool = False
    quality_margin: float = 0.1


class _Worker:
    """The state of one worker (process or thread): a database and the reference cache."""

    def __init__(self, database_url: str) -> None:
        self.store = MonitorStore(Database(database_url), clock=utc_now)
        self.references: OrderedDict[ReferenceSpec, list[dict[str, Any]]] = OrderedDict()

    def reference(self, spec: ReferenceSpec) -> list[dict[str, Any]]:
        rows = self.references.get(spec)
        if rows is None:
            if spec.source == "lineage" and spec.start and spec.end:
                rows = self.store.examples_between(
                    spec.model, datetime.fromisoformat(spec.start),
                    datetime.fromisoformat(spec.end), spec.rows,
                )
            else:
                rows = self.store.first_rows(spec.kind, spec.model, spec.rows)
            self.references[spec] = rows
            while len(self.references) > REFERENCE_CACHE:
                self.references.popitem(last=False)
        return rows

    def run(self, job: DriftJob) -> ReportOutcome:
        from monitor.evidently_drift import compare

        quality: tuple[ColumnQuality, ...] = ()
        try:
            reference = self.reference(job.reference)
            current = self.store.window_rows(job.kind, job.model, job.version, job.first_id,
                                             job.last_id)
            if len(reference) < job.min_rows or len(current) < job.min_rows:
                return ReportOutcome(
                    job.window_id, SKIPPED,
                    error=f"too few rows: reference {len(reference)}, window {len(current)}",
                )
            quality = window_quality(reference, current, margin=job.quality_margin,
                                     exclude=(PREDICTION, LABEL))
            result = compare(reference, current, drift_share=job.drift_share,
                             full_snapshot=job.full_snapshot)
        except StoreError as exc:
            if not exc.transient:
                raise
            log.warning("drift report postponed: the database is unreachable",
                        extra={"window_id": job.window_id, "error": str(exc)})
            return ReportOutcome(job.window_id, PENDING, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - Evidently raises anything; the window fails
            log.exception("drift report failed", extra={"window_id": job.window_id})
            return ReportOutcome(job.window_id, FAILED, quality=quality,
                                 error=f"{type(exc).__name__}: {exc}")
        return ReportOutcome(
            job.window_id, DONE, columns=result.columns, quality=quality,
            drifted_share=result.drifted_share,
            drift_detected=result.drift_detected, snapshot=result.snapshot,
            full_snapshot=result.full_snapshot,
        )


_worker: _Worker | None = None


def _init(database_url: str, parent_pid: int | None = None) -> None:
    global _worker
    if parent_pid is not None:
        end_with(parent_pid)
    _worker = _Worker(database_url)


def _run(job: DriftJob) -> ReportOutcome:
    if _worker is None:  # pragma: no cover - the initializer always ran
        raise RuntimeError("drift worker not initialised")
    return _worker.run(job)


class DriftWorker:
    """A bounded queue of drift jobs in front of one worker process (or thread)."""

    def __init__(
        self,
        database_url: str,
        *,
        mode: Literal["process", "thread"] = "process",
        max_in_flight: int = 2,
    ) -> None:
        self.max_in_flight = max_in_flight
        self._database_url = database_url
        self._mode = mode
        self._executor = self._start()
        self._futures: dict[str, Future[ReportOutcome]] = {}
        self._crashes: dict[str, int] = {}

    def _start(self) -> Executor:
        if self._mode == "process":
            # Started from the thread that submits (the consuming thread, which lives as long
            # as the monitor), so the worker's parent-death signal follows the monitor.
            return ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init, initargs=(self._database_url, os.getpid()),
            )
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="drift", initializer=_init,
                                  initargs=(self._database_url,))

    @property
    def in_flight(self) -> int:
        return len(self._futures)

    def queued(self, window_id: str) -> bool:
        return window_id in self._futures

    def submit(self, job: DriftJob) -> bool:
        """Queue ``job``; False (nothing queued) when the queue is full or it is queued."""
        if len(self._futures) >= self.max_in_flight or job.window_id in self._futures:
            return False
        try:
            future = self._executor.submit(_run, job)
        except BrokenProcessPool:  # the worker died; the jobs in flight come back pending
            self._restart()
            future = self._executor.submit(_run, job)
        self._futures[job.window_id] = future
        return True

    def _restart(self) -> None:
        log.warning("the drift worker process died; starting a new one")
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._start()

    def completed(self) -> list[ReportOutcome]:
        """The outcomes of finished jobs (each returned once), in submission order."""
        done: list[ReportOutcome] = []
        for window_id, future in list(self._futures.items()):
            if not future.done():
                continue
            del self._futures[window_id]
            try:
                done.append(future.result())
            except BrokenProcessPool as exc:
                done.append(self._crashed(window_id, exc))
            except Exception as exc:  # noqa: BLE001 - whatever the job raised, the window fails
                done.append(ReportOutcome(window_id, FAILED, error=f"{type(exc).__name__}: {exc}"))
            else:
                self._crashes.pop(window_id, None)
        return done

    def _crashed(self, window_id: str, exc: BaseException) -> ReportOutcome:
        """The worker died while it held ``window_id``: pending (tried again) or failed."""
        crashes = self._crashes[window_id] = self._crashes.get(window_id, 0) + 1
        error = f"the drift worker died ({crashes} time(s)): {type(exc).__name__}: {exc}"
        if crashes >= MAX_CRASHES:
            del self._crashes[window_id]
            return ReportOutcome(window_id, FAILED, error=error)
        return ReportOutcome(window_id, PENDING, error=error)

    def wait(self, timeout_s: float) -> None:
        """Block until at least one job finishes or ``timeout_s`` passes (tests, shutdown)."""
        from concurrent.futures import FIRST_COMPLETED
        from concurrent.futures import wait as wait_futures

        if self._futures:
            wait_futures(list(self._futures.values()), timeout=timeout_s,
                         return_when=FIRST_COMPLETED)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
