"""Riding out an outage: capped exponential waits, and a retry loop for work that must happen.

A process that lost its broker or its database keeps running and tries again, waiting a
little longer after each failure (``first_s``, doubled each time, at most ``max_s``), so an
outage of any length ends with the process back at work within ``max_s`` of the service.
Only transient errors are retried (``DriftloopError.transient``: the broker or the database
unreachable); any other error (bad settings, refused credentials) is raised at once, so the
process ends with a clear message.

While a component of a process waits it is *degraded*: :func:`retry` says so in one warning
per outage (and a debug line per try), sets the ``driftloop_degraded`` gauge of that component
to 1, and logs the recovery when the work passes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from streams.errors import DriftloopError
from streams.metrics import DEGRADED

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Backoff:
    """The waits between tries: ``first_s``, doubled after each failure, never over ``max_s``."""

    first_s: float = 0.5
    max_s: float = 5.0
    failures: int = field(default=0, init=False)

    def failed(self) -> float:
        """Count a failure; the wait before the next try."""
        self.failures += 1
        return min(self.first_s * 2.0 ** (self.failures - 1), self.max_s)

    def reset(self) -> None:
        """The last try passed: the next failure waits ``first_s`` again."""
        self.failures = 0


class RetryGate:
    """Lets work that an outage failed (a loop's idle chores) be tried again only after its
    backoff, and reports ``component`` degraded until a try passes.

    For work that must not block the loop that runs it: instead of waiting, the loop asks
    :meth:`open` each time round and skips the work while the gate is shut.
    """

    def __init__(self, what: str, component: str, *, backoff: Backoff | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._what = what
        self._component = component
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._retry_at = 0.0

    def open(self) -> bool:
        """Whether the work may be tried now."""
        return self._clock() >= self._retry_at

    def failed(self, exc: BaseException) -> float:
        """The work failed with ``exc``: shut the gate for the next wait; that wait."""
        delay = self._backoff.failed()
        self._retry_at = self._clock() + delay
        set_degraded(self._component, True)
        log.warning("%s failed; retrying", self._what, extra={
            "component": self._component, "error": str(exc), "backoff_s": delay})
        return delay

    def passed(self) -> None:
        """The work passed: the component is no longer degraded."""
        if self._backoff.failures:
            log.warning("recovered: %s", self._what, extra={
                "component": self._component, "failures": self._backoff.failures})
            self._backoff.reset()
            set_degraded(self._component, False)


def on_stop(stop: threading.Event, then: Callable[[], object], *, name: str) -> None:
    """Call ``then`` (a loop's or a process's own ``stop``) once ``stop`` is set, from a
    daemon thread: the CLI's signal handler only sets the event."""

    def relay() -> None:
        stop.wait()
        then()

    threading.Thread(target=relay, name=name, daemon=True).start()


class Stopped(DriftloopError):
    """The process was asked to stop while it waited for a service to come back."""


def retry(
    what: str,
    call: Callable[[], T],
    *,
    component: str,
    stop: threading.Event | None = None,
    backoff: Backoff | None = None,
    sleep: Callable[[float], object] | None = None,
) -> T:
    """``call()`` until it passes, waiting out transient errors; its result.

    ``what`` names the work in the log ("connect to Kafka"), ``component`` the part of the
    process that is degraded meanwhile (the label of the gauge). A non-transient error is
    raised at once; a stop request (``stop`` set) while waiting raises :class:`Stopped`.
    """
    backoff = backoff or Backoff()
    stop = stop or threading.Event()
    wait = sleep or stop.wait
    started = time.monotonic()
    while True:
        try:
            result = call()
        except DriftloopError as exc:
            if not exc.transient:
                raise
            delay = backoff.failed()
            if backoff.failures == 1:
                log.warning("cannot %s yet; retrying until it works", what,
                            extra={"component": component, "error": str(exc)})
                set_degraded(component, True)
            else:
                log.debug("still cannot %s", what, extra={
                    "component": component, "error": str(exc), "failures": backoff.failures,
                    "backoff_s": delay})
            if stop.is_set():
                raise Stopped(f"stopped while waiting to {what}") from exc
            wait(delay)
            if stop.is_set():
                raise Stopped(f"stopped while waiting to {what}") from exc
            continue
        if backoff.failures:
            log.warning("recovered: %s after %.1fs", what, time.monotonic() - started,
                        extra={"component": component, "failures": backoff.failures})
            set_degraded(component, False)
        backoff.reset()
        return result


def set_degraded(component: str, degraded: bool) -> None:
    """Say on the ``driftloop_degraded`` gauge whether ``component`` waits for a service."""
    DEGRADED.labels(component=component).set(1 if degraded else 0)
