"""The real system's run of a scenario for ``driftloop bench adaptation``.

The whole loop runs as in ``driftloop demo`` (broker, database, serving, monitor, retraining
as separate processes; :mod:`driftloop.local.demo`), without the dashboard, until every request of
the stream is answered. Its stored predictions are then read back
(:func:`driftloop.lab.system_run.load_system_run`) and measured exactly like the baselines
(:func:`driftloop.lab.adaptation.evaluate_system`). Detections are the retrain requests and the
drift reports in which a River detector fired, each dated by the last event predicted before
it (:func:`driftloop.lab.adaptation.index_at`).

The system's training CPU is the CPU time (user and system, all threads) of the ``driftloop
retrain`` process when every request is answered, read from ``/proc/<pid>/stat``: every
retraining after the warm-up, and also what that process does in between (consuming requests,
scoring champions, polling), so it is an upper bound on training alone. The first model's
training (``retrain --once``, a process of its own) is not counted, as no method's warm-up
training is. Where ``/proc`` is missing (not Linux) it is not measured.

If measuring fails, the stored predictions are still written to ``predictions.json`` in the
working folder and the result names the error, so a long run is never lost.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from rich.console import Console

from driftloop.lab.adaptation import (
    DEFAULT_TOLERANCE,
    DEFAULT_WINDOW,
    MethodResult,
    evaluate_system,
    failed,
    index_at,
)
from driftloop.lab.scenarios import Scenario
from driftloop.lab.system_run import SystemRun, load_system_run
from driftloop.local.demo import Demo, DemoOptions, DemoResult
from driftloop.local.loop import BrokerChoice, LocalLoop
from streams.errors import DriftloopError
from streams.events import DriftReport, ModelPromoted, RetrainRequested
from streams.settings import Settings

log = logging.getLogger(__name__)

NAME = "driftloop (drift-triggered retraining)"


@dataclass(frozen=True)
class SystemOutcome:
    """The system's result, and what it is made of."""

    result: MethodResult
    run: SystemRun
    unanswered: int
    detections: tuple[int, ...]
    promotions: tuple[tuple[int, int], ...]
    """(event index, version) of every promotion, dated like the detections."""


def detection_times(events: list[object]) -> list[datetime]:
    """When the loop said it saw drift: retrain requests and River alarms in drift reports."""
    times = []
    for event in events:
        if isinstance(event, RetrainRequested) or (
                isinstance(event, DriftReport) and event.alarms):
            times.append(event.timestamp)
    return sorted(times)


def process_cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float | None:
    """User plus system CPU seconds of a live process (all its threads), from
    ``/proc/<pid>/stat``; None if it cannot be read."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
        # The command name (field 2) may hold spaces; the fields after its ")" are fixed.
        fields = stat[stat.rindex(")") + 2:].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def retrain_cpu_seconds(loop: LocalLoop) -> float | None:
    """The CPU time of the loop's ``driftloop retrain`` process so far."""
    supervisor = loop.supervisor
    if supervisor is None:
        return None
    for child in supervisor.children:
        if child.name == "retrain" and child.alive():
            return process_cpu_seconds(child.pid)
    return None


def save_predictions(run: SystemRun, path: Path) -> Path:
    """The stored predictions as JSON ``[index, predicted, label, version]`` rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([list(p) for p in run.predictions]))
    return path


def run_system(
    settings: Settings,
    scenario: Scenario,
    *,
    workdir: Path,
    console: Console,
    broker: BrokerChoice = "tansu",
    database_url: str | None = None,
    speed: float = 1.0,
    window: int = DEFAULT_WINDOW,
    tolerance: float = DEFAULT_TOLERANCE,
    stop: threading.Event | None = None,
) -> SystemOutcome:
    """Run the loop over ``scenario`` and measure it; DriftloopError if the run failed."""
    found: list[SystemOutcome] = []

    def measure(loop: LocalLoop, result: DemoResult) -> None:
        cpu = retrain_cpu_seconds(loop)
        run = load_system_run(loop.db, scenario, model=result.model, prefix=result.prefix)
        saved = save_predictions(run, workdir / "predictions.json")
        detections = tuple(index_at(run.sent, t) for t in detection_times(result.events))
        promotions = tuple((index_at(run.sent, e.timestamp), e.version)
                           for e in result.events if isinstance(e, ModelPromoted))
        try:
            measured = evaluate_system(run.predictions, scenario, detections=detections,
                                       name=NAME, window=window, tolerance=tolerance,
                                       seconds=result.seconds, train_cpu_s=cpu)
        except Exception as exc:  # the run's predictions are saved; keep the others going
            log.exception("could not score the real system's run of %s", scenario.name)
            measured = failed("driftloop", NAME, scenario,
                              f"{type(exc).__name__}: {exc} (predictions in {saved})")
        found.append(SystemOutcome(measured, run, len(run.unanswered(scenario)), detections,
                                   promotions))

    options = DemoOptions(scenario=scenario.name, broker=broker, database_url=database_url,
                          speed=speed, dashboard=False, workdir=workdir, exit_when_done=True)
    demo = Demo(settings, options, console=console, stop=stop, after_stream=measure,
                scenario=scenario)
    outcome = demo.run()
    if outcome.code != 0 or not found:
        raise DriftloopError(f"the real system's run of {scenario.name} failed "
                             f"(logs in {workdir / 'logs'})")
    # The whole run's wall time: start-up, first model, stream and answers.
    return replace(found[0], result=replace(found[0].result, seconds=outcome.seconds))
