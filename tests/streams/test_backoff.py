from __future__ import annotations

import threading

import pytest

from streams.backoff import Backoff, RetryGate, Stopped, retry
from streams.errors import BrokerError, ConfigError, StoreError
from streams.metrics import DEGRADED


def degraded(component: str) -> float:
    return DEGRADED.labels(component=component)._value.get()


def test_waits_double_up_to_the_cap_and_start_over_after_a_success() -> None:
    backoff = Backoff(first_s=0.5, max_s=5.0)
    assert [backoff.failed() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.failed() == 0.5


def test_an_outage_is_waited_out_and_shown_as_degraded_meanwhile() -> None:
    outage = [StoreError("connection refused"), BrokerError("no brokers"),
              StoreError("connection refused")]
    waits: list[float] = []
    seen: list[float] = []

    def call() -> str:
        seen.append(degraded("test-outage"))
        if outage:
            raise outage.pop(0)
        return "done"

    result = retry("reach the store", call, component="test-outage",
                   backoff=Backoff(first_s=1.0, max_s=3.0), sleep=waits.append)
    assert result == "done"
    assert waits == [1.0, 2.0, 3.0]
    assert seen == [0.0, 1.0, 1.0, 1.0]
    assert degraded("test-outage") == 0.0


def test_a_fatal_error_is_raised_at_once() -> None:
    calls = []

    def call() -> None:
        calls.append(1)
        raise ConfigError("bad bootstrap address")

    with pytest.raises(ConfigError):
        retry("connect", call, component="test-fatal", sleep=lambda _s: None)
    assert len(calls) == 1
    store_refused = StoreError("value out of range", transient=False)
    with pytest.raises(StoreError):
        retry("write", lambda: (_ for _ in ()).throw(store_refused), component="test-fatal")


def test_a_stop_ends_the_wait() -> None:
    stop = threading.Event()

    def call() -> None:
        stop.set()  # SIGTERM arrives during the outage
        raise BrokerError("no brokers")

    with pytest.raises(Stopped):
        retry("connect", call, component="test-stop", stop=stop)


def test_a_gate_holds_failed_work_back_for_its_backoff() -> None:
    now = [100.0]
    gate = RetryGate("chores", "test-gate", backoff=Backoff(first_s=1.0, max_s=4.0),
                     clock=lambda: now[0])
    assert gate.open()
    assert gate.failed(StoreError("connection refused")) == 1.0
    assert not gate.open()
    assert degraded("test-gate") == 1
    now[0] += 1.0
    assert gate.open()
    assert gate.failed(StoreError("connection refused")) == 2.0
    now[0] += 1.5
    assert not gate.open()
    now[0] += 0.5
    gate.passed()
    assert gate.open()
    assert degraded("test-gate") == 0
    assert gate.failed(StoreError("connection refused")) == 1.0, "a new outage starts over"
