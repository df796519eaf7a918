"""A monitor wired to a real broker and a real database, driven batch by batch by a test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from monitor.drift_worker import DriftWorker
from monitor.process import Monitor, build_loop
from streams.codec import Decoder
from streams.consumer import ConsumerLoop
from streams.db import Database
from streams.events import DriftEvent, DriftReport, RetrainRequested
from streams.producer import Producer
from streams.topics import Topic
from tests.conftest import Deployment
from tests.streams.kafka_helpers import read_all


class Running:
    """One monitor process, minus the process: its handler, loop, worker and producer."""

    def __init__(self, dep: Deployment, db: Database, *, worker_mode: str = "thread",
                 clock: Callable[[], Any] | None = None) -> None:
        self.dep = dep
        self.producer = Producer(dep.kafka)
        self.worker = DriftWorker(db.url, mode=worker_mode,  # type: ignore[arg-type]
                                  max_in_flight=dep.settings.monitor.drift_queue)
        kwargs = {"clock": clock} if clock is not None else {}
        self.monitor = Monitor.on(dep.settings, db, self.producer, self.worker, **kwargs)
        self.loop: ConsumerLoop[Any] = build_loop(dep.settings, self.monitor, self.producer)

    def drain(self, until: Callable[[], bool], *, max_polls: int = 400,
              settle_s: float = 0.0) -> None:
        """Poll until ``until()`` holds (or ``max_polls`` polls), idle work included."""
        polls = 0
        while polls < max_polls and not until():
            self.loop.run_once()
            polls += 1
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            self.loop.run_once()

    def finish_reports(self, timeout_s: float = 60.0) -> None:
        """Wait until every closed window's report ran and was written back."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.monitor.on_idle()
            if not self.monitor.store.pending_windows():
                return
            self.worker.wait(0.5)
        raise AssertionError("drift reports did not finish in time")

    def close(self) -> None:
        self.loop.close()
        self.worker.close()
        self.producer.close()


@contextmanager
def running(dep: Deployment, db: Database, **kwargs: Any) -> Iterator[Running]:
    run = Running(dep, db, **kwargs)
    try:
        yield run
    finally:
        run.close()


def drift_events(dep: Deployment, *, expect: int, timeout_s: float = 10.0) -> list[
        DriftReport | RetrainRequested]:
    decoder: Decoder[Any] = Decoder(DriftEvent, max_bytes=dep.kafka.max_message_bytes)
    messages = read_all(dep.broker.bootstrap, dep.names(Topic.DRIFT), expect=expect,
                        timeout_s=timeout_s)
    return [decoder.decode(m.value) for m in messages]
