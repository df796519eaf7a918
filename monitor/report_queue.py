"""Closed windows waiting for their Evidently report, in front of the drift worker.

A window that needs a report is written ``pending`` first (by the monitor's batch
transaction) and only then queued here, so the database always knows every window still owed
a report: on start the backlog is rebuilt from the pending rows. The queue hands the worker at
most ``drift_queue`` jobs at a time and never waits for it; beyond ``drift_backlog`` waiting
windows the oldest are given up (``skipped``, counted) so a monitor that cannot keep up with
Evidently falls behind on reports, never on traffic. Finished outcomes are kept until the
transaction that records them has committed (:meth:`ReportQueue.confirm`), so a failed write
loses none.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from monitor import metrics
from monitor.drift_worker import DriftJob, DriftWorker, ReferenceSpec
from monitor.store import ReportOutcome
from monitor.tables import SKIPPED
from monitor.windows import ClosedWindow
from streams.settings import MonitorSettings


class ReportQueue:
    def __init__(self, worker: DriftWorker, config: MonitorSettings) -> None:
        self._worker = worker
        self._config = config
        self._backlog: deque[DriftJob] = deque()
        self._jobs: dict[str, DriftJob] = {}
        self._finished: list[ReportOutcome] = []

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
        """Every outcome not yet confirmed, with the job it answers when known."""
        self._finished.extend(self._worker.completed())
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
        """Hand the worker as many waiting jobs as it takes."""
        while self._backlog and self._worker.in_flight < self._worker.max_in_flight:
            job = self._backlog.popleft()
            self._jobs[job.window_id] = job
            self._worker.submit(job)
        metrics.DRIFT_BACKLOG.set(len(self))

    def _job(self, wid: str, kind: str, model: str, version: int, first_id: int, last_id: int,
             rows: int, reference: ReferenceSpec) -> DriftJob:
        return DriftJob(wid, kind, model, version, first_id, last_id, rows, reference,
                        self._config.drift_share_threshold, self._config.min_window_rows,
                        self._config.full_snapshots)

    def _from_row(self, row: Any) -> DriftJob:
        ref = row.reference or {}
        spec = ReferenceSpec(ref.get("source", "first"), ref.get("kind", row.kind), row.model,
                             int(ref.get("rows", self._config.reference_size)), ref.get("start"),
                             ref.get("end"))
        return self._job(row.window_id, row.kind, row.model, row.model_version, row.first_id,
                         row.last_id, row.rows, spec)
