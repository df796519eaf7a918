"""The monitor's idle work rides out a database outage and catches up when it is back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from monitor.handler import IDLE_COMPONENT
from streams.codec import encode
from streams.db import Database
from streams.errors import StoreError
from streams.metrics import DEGRADED
from streams.settings import MonitorSettings
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment
from tests.monitor.events import prediction
from tests.monitor.harness import running
from tests.monitor.test_process import Clock
from tests.streams.kafka_helpers import produce_raw


class Outage:
    """Makes every session of ``db`` fail as a database that went away does."""

    def __init__(self, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.down = False
        real = db.session

        @contextmanager
        def session() -> Iterator[Session]:
            if self.down:
                raise StoreError("database error: OperationalError: connection refused",
                                 transient=True)
            with real() as opened:
                yield opened

        monkeypatch.setattr(db, "session", session)


def degraded() -> float:
    return DEGRADED.labels(component=IDLE_COMPONENT)._value.get()


def test_a_database_outage_while_idle_never_stops_the_monitor(
    tansu: BrokerInfo, deployment_factory: Callable[..., Deployment], database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = MonitorSettings(drift_workers="thread", drift_kinds=(), window_size=500,
                               window_seconds=60, reference_size=40, min_window_rows=30)
    dep = deployment_factory(tansu, partitions=1, monitor=settings)
    produce_raw(tansu.bootstrap, dep.names(Topic.PREDICTIONS),
                [encode(prediction(f"r{i}")) for i in range(75)])
    clock = Clock()
    outage = Outage(database, monkeypatch)
    with running(dep, database, clock=clock) as run:
        run.drain(lambda: run.loop.stats.consumed >= 75)
        outage.down = True
        clock.now += timedelta(seconds=61)  # the open window is due to close while idle
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            run.monitor.on_idle()  # never raises, however often the database refuses
            time.sleep(0.05)
        assert degraded() == 1

        outage.down = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and run.monitor.store.reports() == []:
            run.monitor.on_idle()
            time.sleep(0.05)
        [report] = run.monitor.store.reports()
        assert (report.trigger, report.rows) == ("time", 35), "closed once, after the outage"
        assert degraded() == 0
