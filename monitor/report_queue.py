"""Closed windows waiting for their Evidently report, in front of the drift worker.

A window that needs a report is written ``pending`` first (by the monitor's batch
transaction) and only then queued here, so the database always knows every window still owed
a report: on start the backlog is rebuilt from the pending rows. The queue hands the worker at
most ``drift_queue`` jobs at a time and never waits for it; beyond ``drift_backlog`` waiting
windows the oldest are given up (``skipped``, counted) so a monitor that cannot keep up with
Evidently falls behind on reports, never on traffic. Finished outcomes are kept until the
transaction that records them has committed (:meth:`ReportQueue.confirm`), so a failed write
loses none. A report the worker could not run for a passing reason (the database down, the
worker process dead) comes back ``pending``: its window goes back to the head of the backlog,
and the queue hands the worker nothing for a while (doubling, up to ``RETRY_MAX_S``), so an
outage of any length delays reports but fails none.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from monitor import metrics
from monitor.drift_worker import DriftJob, DriftWorker, ReferenceSpec
from monitor.store import ReportOutcome
from monitor.tables import PENDING, SKIPPED
from monitor.windows import ClosedWindow
from streams.backoff import Backoff, set_degraded
from streams.settings import MonitorSettings

log = logging.getLogger(__name__)

RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0


class ReportQueue:
    def __init__(self, worker: DriftWorker, config: MonitorSettings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._worker = worker
        self._config = config
        self._clock = clock
        self._backlog: deque[DriftJob] = deque()
        self._jobs: dict[str, DriftJob] = {}
        self._finished: list[ReportOutcome] = []
        self._backoff = Backoff(RETRY_FIRST_S, RETRY_MAX_S)
        self._retry_at = 0.0

    def __len__(self) -> int:
        """Windows waiting for a report or being reported on."""
        return len(self._backlog) + self._worker.in_flight

    def reload(self, pending: Iterable[Any]) -> None:
        """Rebuild the backlog from the ``pending`` rows of ``monitor_drift_reports``."""
        self._backlog = deque(self._from_row(row) for row in pending
                              if not self._worker.queued(row.window_id))

    def job(self, window: ClosedWindow, reference: ReferenceSpec) -> DriftJob:
        return self._job(window.window_id, window.kind, window.model, window.version,
                         window.first_id, window.last_id, window.rows, reference)

    def add(self, job: DriftJob) -> None:
        self._backlog.append(job)

    def collect(self) -> list[tuple[ReportOutcome, DriftJob | None]]:
        """Every outcome not yet confirmed, with the job it answers when known; reports to
        try again go back to the backlog."""
        for outcome in self._worker.completed():
            if outcome.status != PENDING:
                self._finished.append(outcome)
                if self._backoff.failures:
                    self._backoff.reset()
                    set_degraded("drift-reports", False)
                continue
            job = self._jobs.pop(outcome.window_id, None)
            if job is not None:
                self._backlog.appendleft(job)
            delay = self._backoff.failed()
            self._retry_at = self._clock() + delay
            set_degraded("drift-reports", True)
            log.warning("drift report postponed; retrying", extra={
                "window_id": outcome.window_id, "error": outcome.error, "backoff_s": delay})
        return [(outcome, self._jobs.get(outcome.window_id)) for outcome in self._finished]

    def overflow(self) -> list[ReportOutcome]:
        """Give up the oldest waiting windows beyond the backlog limit."""
        dropped = []
        while len(self._backlog) > self._config.drift_backlog:
            job = self._backlog.popleft()
            dropped.append(ReportOutcome(job.window_id, SKIPPED, error="drift backlog full"))
        return dropped

    def confirm(self) -> None:
        """The collected outcomes are stored: forget them."""
        for outcome in self._finished:
            self._jobs.pop(outcome.window_id, None)
        self._finished = []

    def pump(self) -> None:
        """Hand the worker as many waiting jobs as it takes (none while a retry waits)."""
        while (self._backlog and self._worker.in_flight < self._worker.max_in_flight
               and self._clock() >= self._retry_at):
            job = self._backlog.popleft()
            self._jobs[job.window_id] = job
            self._worker.submit(job)
        metrics.DRIFT_BACKLOG.set(len(self))

    def _job(self, wid: str, kind: str, model: str, version: int, first_id: int, last_id: int,
             rows: int, reference: ReferenceSpec) -> DriftJob:
        return DriftJob(wid, kind, model, version, first_id, last_id, rows, reference,
                        self._config.drift_share_threshold, self._config.min_window_rows,
                        self._config.full_snapshots, self._config.quality_margin)

    def _from_row(self, row: Any) -> DriftJob:
        ref = row.reference or {}
        spec = ReferenceSpec(ref.get("source", "first"), ref.get("kind", row.kind), row.model,
                             int(ref.get("rows", self._config.reference_size)), ref.get("start"),
                             ref.get("end"))
        return self._job(row.window_id, row.kind, row.model, row.model_version, row.first_id,
                         row.last_id, row.rows, spec)
