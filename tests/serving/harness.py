"""Running a serving process in a thread, and reading what it produced."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from serving.process import ServingProcess
from streams.events import Prediction
from streams.settings import Settings
from tests.conftest import Deployment
from tests.streams.kafka_helpers import read_all


@contextmanager
def running(process: ServingProcess) -> Iterator[ServingProcess]:
    """Run ``process`` in a thread; stop it on exit and re-raise whatever killed it."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            process.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="serving-under-test", daemon=True)
    thread.start()
    try:
        yield process
    finally:
        process.stop()
        thread.join(30)
    assert not thread.is_alive(), "the serving process did not stop"
    if errors:
        raise errors[0]


def wait_for(condition: Callable[[], Any], timeout_s: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or condition}")


def predictions(bootstrap: str, topic: str, *, expect: int,
                timeout_s: float = 60.0) -> list[tuple[int, int, Prediction]]:
    """(partition, offset, prediction) of every message on ``topic``."""
    return [(m.partition, m.offset, Prediction.model_validate_json(m.value))
            for m in read_all(bootstrap, topic, expect=expect, timeout_s=timeout_s)]


def quick_join(dep: Deployment) -> Settings:
    """The deployment's settings (its short session timeout makes Tansu's first join quick)."""
    return dep.settings
