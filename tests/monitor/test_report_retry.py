"""A drift report that meets an outage is tried again later, never left failed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from monitor.drift_worker import DriftJob, DriftWorker, ReferenceSpec
from monitor.report_queue import ReportQueue
from monitor.tables import DONE, SKIPPED
from streams.db import Database
from streams.metrics import DEGRADED
from streams.settings import MonitorSettings
from streams.store import EventStore
from tests.monitor.events import prediction
from tests.processes import command_line, descendants


def job(rows: int = 40) -> DriftJob:
    return DriftJob("churn.served.v1.0", "served", "churn", 1, rows + 1, 2 * rows, rows,
                    ReferenceSpec("first", "served", "churn", rows), 0.5, 30)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def collect(queue: ReportQueue, worker: DriftWorker, timeout_s: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        worker.wait(0.5)
        found = [outcome.status for outcome, _ in queue.collect()]
        if found or not worker.in_flight:
            return found
    raise AssertionError("no drift report finished")


def test_a_report_that_meets_a_database_outage_waits_and_runs_when_it_is_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "driftloop.db"
    path.mkdir()  # SQLite cannot open a folder: for the worker the database is down
    worker = DriftWorker(f"sqlite:///{path}", mode="thread", max_in_flight=1)
    clock = Clock()
    queue = ReportQueue(worker, MonitorSettings(), clock=clock)
    try:
        queue.add(job())
        queue.pump()
        assert collect(queue, worker) == [], "nothing is reported while the database is down"
        assert DEGRADED.labels(component="drift-reports")._value.get() == 1
        assert len(queue) == 1, "the window waits at the head of the backlog"
        queue.pump()
        assert worker.in_flight == 0, "and is not tried again before its backoff ran out"
        clock.now += 1.0
        queue.pump()
        assert collect(queue, worker) == [], "still down: the wait doubles"
        clock.now += 1.5
        queue.pump()
        assert worker.in_flight == 0

        path.rmdir()  # the database is back, still without rows for the window
        from driftloop.migrations import migrate_database

        migrate_database(Database(f"sqlite:///{path}")).dispose()
        clock.now += 0.5
        queue.pump()
        assert collect(queue, worker) == [SKIPPED], "the report ran: too few rows, not failed"
        assert DEGRADED.labels(component="drift-reports")._value.get() == 0
    finally:
        worker.close()


def test_a_killed_drift_worker_is_replaced_and_the_report_still_runs(tmp_path: Path) -> None:
    from driftloop.migrations import migrate_database

    database = migrate_database(Database(f"sqlite:///{tmp_path / 'driftloop.db'}"))
    EventStore(database).add_predictions(
        [prediction(f"r{i}", features={"x": float(i % 7)}) for i in range(80)])
    worker = DriftWorker(database.url, mode="process", max_in_flight=1)
    clock = Clock()
    queue = ReportQueue(worker, MonitorSettings(), clock=clock)
    try:
        queue.add(job())
        queue.pump()
        [pid] = [p for p in descendants(os.getpid()) if "spawn_main" in command_line(p)
                 and "resource_tracker" not in command_line(p)]
        os.kill(pid, signal.SIGKILL)
        assert collect(queue, worker) == [], "the window is not failed for the dead worker"
        assert len(queue) == 1, "it waits to be tried again"
        clock.now += 60
        queue.pump()
        assert collect(queue, worker) == [DONE]
    finally:
        worker.close()
