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
"""

from __future__ import annotations

import logging
import multiprocessing
from collections import OrderedDict
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from monitor.store import MonitorStore, ReportOutcome
from monitor.tables import DONE, FAILED, SKIPPED
from streams.db import Database

log = logging.getLogger(__name__)

REFERENCE_CACHE = 16


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


class _Worker:
    """The state of one worker (process or thread): a database and the reference cache."""

    def __init__(self, database_url: str) -> None:
        self.store = MonitorStore(Database(database_url), clock=datetime.now)
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

        try:
            reference = self.reference(job.reference)
            current = self.store.window_rows(job.kind, job.model, job.version, job.first_id,
                                             job.last_id)
            if len(reference) < job.min_rows or len(current) < job.min_rows:
                return ReportOutcome(
                    job.window_id, SKIPPED,
                    error=f"too few rows: reference {len(reference)}, window {len(current)}",
                )
            result = compare(reference, current, drift_share=job.drift_share,
                             full_snapshot=job.full_snapshot)
        except Exception as exc:  # noqa: BLE001 - Evidently raises anything; the window fails
            log.exception("drift report failed", extra={"window_id": job.window_id})
            return ReportOutcome(job.window_id, FAILED, error=f"{type(exc).__name__}: {exc}")
        return ReportOutcome(
            job.window_id, DONE, columns=result.columns, drifted_share=result.drifted_share,
            drift_detected=result.drift_detected, snapshot=result.snapshot,
            full_snapshot=result.full_snapshot,
        )


_worker: _Worker | None = None


def _init(database_url: str) -> None:
    global _worker
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
        self._executor: Executor
        if mode == "process":
            self._executor = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init, initargs=(database_url,),
            )
        else:
            self._executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="drift", initializer=_init,
                initargs=(database_url,),
            )
        self._futures: dict[str, Future[ReportOutcome]] = {}

    @property
    def in_flight(self) -> int:
        return len(self._futures)

    def queued(self, window_id: str) -> bool:
        return window_id in self._futures

    def submit(self, job: DriftJob) -> bool:
        """Queue ``job``; False (nothing queued) when the queue is full or it is queued."""
        if len(self._futures) >= self.max_in_flight or job.window_id in self._futures:
            return False
        self._futures[job.window_id] = self._executor.submit(_run, job)
        return True

    def completed(self) -> list[ReportOutcome]:
        """The outcomes of finished jobs (each returned once), in submission order."""
        done: list[ReportOutcome] = []
        for window_id, future in list(self._futures.items()):
            if not future.done():
                continue
            del self._futures[window_id]
            try:
                done.append(future.result())
            except Exception as exc:  # noqa: BLE001 - a dead worker process, for instance
                done.append(ReportOutcome(window_id, FAILED, error=f"{type(exc).__name__}: {exc}"))
        return done

    def wait(self, timeout_s: float) -> None:
        """Block until at least one job finishes or ``timeout_s`` passes (tests, shutdown)."""
        from concurrent.futures import FIRST_COMPLETED
        from concurrent.futures import wait as wait_futures

        if self._futures:
            wait_futures(list(self._futures.values()), timeout=timeout_s,
                         return_when=FIRST_COMPLETED)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
