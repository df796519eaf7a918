"""``driftloop demo``: the whole loop on one machine, a drifting scenario, the key moments.

In order: the working folder (``<home>/demo``, reset at each run), the broker (embedded
Tansu by default), topics and database; the scenario's warm-up set stored as labelled
examples and the first model trained on it (``driftloop retrain --once``); then serving,
monitor, retraining and the dashboard as separate processes (:mod:`driftloop.local.loop`),
and the simulated production app (:mod:`driftloop.lab.simulator`) streaming the scenario as
inference requests with delayed feedback. The terminal shows progress and the key moments
(:mod:`driftloop.local.moments`); every child logs to ``<workdir>/logs``.

The demo runs until Ctrl-C or SIGTERM (or, with ``exit_when_done``, until the stream is
over and answered); then it stops the children and the broker it started, and returns 0. A
child that dies on its own ends the demo with 1, its log tail on the terminal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select

from driftloop.lab.scenarios import Scenario, get_scenario
from driftloop.lab.simulator import SimulationProgress, Simulator, default_prefix
from driftloop.local.loop import BrokerChoice, LocalLoop, LoopOptions
from driftloop.local.moments import LoopWatcher, Moment
from driftloop.local.supervisor import ChildError, Exit
from retrain.registry import Registry
from streams.client import Client
from streams.errors import DriftloopError
from streams.settings import Settings
from streams.store import PredictionRow

log = logging.getLogger(__name__)

STYLES = {"drift": "bold yellow", "data_drift": "dim yellow", "requested": "yellow",
          "training": "cyan", "rejected": "magenta", "failed": "red", "promoted": "bold green",
          "rolled_back": "bold magenta", "swap_failed": "red", "recovered": "bold green"}


@dataclass(frozen=True)
class DemoOptions:
    scenario: str = "abrupt"
    broker: BrokerChoice = "tansu"
    database_url: str | None = None
    speed: float = 1.0
    length: int | None = None
    dashboard: bool = True
    workdir: Path | None = None
    exit_when_done: bool = False
    """Stop once the stream is over and every request answered (the benchmark)."""
    answer_timeout_s: float = 120.0


@dataclass
class DemoResult:
    """What a finished run leaves for whoever ran it (the benchmark reads the database)."""

    code: int
    scenario: Scenario
    model: str = ""
    prefix: str = ""
    database_url: str = ""
    settings: Settings | None = None
    sent: int = 0
    answered: int = 0
    seconds: float = 0.0
    moments: list[Moment] = field(default_factory=list)
    events: list[object] = field(default_factory=list)
    crashed: list[Exit] = field(default_factory=list)


def run_id(now: datetime) -> str:
    return now.strftime("%Y%m%d%H%M%S")


class Demo:
    """One run of the demo; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        options: DemoOptions,
        *,
        console: Console,
        stop: threading.Event | None = None,
        after_stream: Callable[[LocalLoop, DemoResult], None] | None = None,
        scenario: Scenario | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.console = console
        self.stop = stop or threading.Event()
        self._after_stream = after_stream
        if scenario is None:
            scenario = get_scenario(options.scenario)
            if options.length is not None:
                scenario = scenario.resized(options.length)
        self.scenario = scenario
        self.rate = scenario.events_per_second * options.speed
        self._started = time.monotonic()
        self._index: int | None = None
        self._progress: Progress | None = None

    # -- output ------------------------------------------------------------------------------

    def say(self, text: str, style: str = "") -> None:
        stamp = f"[dim]{time.monotonic() - self._started:7.1f}s[/dim] "
        where = f"[dim]event {self._index:>7,}[/dim] " if self._index is not None else ""
        target = self._progress.console if self._progress is not None else self.console
        body = f"[{style}]{text}[/{style}]" if style else text
        target.print(stamp + where + body, highlight=False, soft_wrap=True)

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> DemoResult:
        opts = self.options
        now = datetime.now(UTC)
        workdir = (opts.workdir or self.settings.home / "demo").resolve()
        result = DemoResult(1, self.scenario)
        loop = LocalLoop(
            self.settings,
            LoopOptions(workdir=workdir, broker=opts.broker, database_url=opts.database_url,
                        dashboard=opts.dashboard, model=self.scenario.name,
                        topic_prefix=f"driftloop-demo-{run_id(now)}"),
            events_per_second=self.rate, stop=self.stop,
        )
        try:
            result = self._run(loop, result)
        except ChildError as exc:
            if not self.stop.is_set():
                self.say(f"error: {exc}", "red")
                result.code = 1
            else:
                result.code = 0
        except DriftloopError as exc:
            self.say(f"error: {exc}", "red")
            result.code = 1
        finally:
            if loop.supervisor is not None or loop.broker is not None:
                self.say("stopping the loop")
            loop.close()
            if result.code == 0:
                self.say("stopped cleanly", "green")
        result.seconds = time.monotonic() - self._started
        return result

    def _run(self, loop: LocalLoop, result: DemoResult) -> DemoResult:
        s = self.scenario
        self.say(f"working folder [bold]{loop.workdir}[/bold] (logs in {loop.log_dir})")
        loop.reset()
        with self.console.status(f"starting the {loop.options.broker} broker"):
            bootstrap = loop.start_broker()
        self.say(f"broker [bold]{loop.options.broker}[/bold] at {bootstrap}")
        if self.stop.is_set():
            return self._stopped(result)
        settings = loop.prepare()
        model = self._model_name(loop)
        if model != loop.options.model:
            loop.options = replace(loop.options, model=model)
        db_name = settings.database_url.split("@")[-1]
        self.say(f"database {db_name}; topics {settings.topics.prefix}.*")
        result.model, result.settings = model, settings
        result.database_url = settings.database_url
        result.prefix = default_prefix(s)
        self.say(f"scenario [bold]{s.name}[/bold]: {s.description} {s.length:,} events "
                 f"({s.warmup:,} warm-up), drifts at "
                 f"{', '.join(f'{d.index:,}' for d in s.drifts)}; labels {s.label_delay:,} "
                 f"events late for {100 * s.feedback_rate:.0f}% of requests; "
                 f"{self.rate:,.0f} requests/s")
        stored = loop.warm_up(s)
        if self.stop.is_set():
            return self._stopped(result)
        with self.console.status(f"training the first model on {stored:,} warm-up examples"):
            loop.train_first_model()
        self.say(f"first model trained on the {stored:,} warm-up examples: "
                 f"[bold]{model} v1[/bold]", "green")
        children = loop.start_stages()
        self.say("started " + ", ".join(f"{c.name} (pid {c.pid})" for c in children))
        if loop.dashboard_url is not None:
            self.say(f"dashboard at [bold link={loop.dashboard_url}]{loop.dashboard_url}"
                     "[/bold link]", "bold")
        watcher = LoopWatcher(settings, loop.db, model=model,
                              window=min(500, max(100, s.length // 20))).start()
        try:
            if not self._await_ready(loop, watcher, result):
                return result
            return self._stream(loop, watcher, result)
        finally:
            watcher.stop()
            result.moments = list(watcher.tracker.all)
            result.events = list(watcher.events)

    def _stream(self, loop: LocalLoop, watcher: LoopWatcher, result: DemoResult) -> DemoResult:
        s = self.scenario
        if result.settings is None:
            raise DriftloopError("the loop has no settings yet")
        simulated: list[SimulationProgress] = []
        client = Client(result.settings)

        def progress(p: SimulationProgress) -> None:
            self._index = p.index
            simulated.append(p)

        simulator = Simulator(s, client, model=result.model, speed=self.options.speed,
                              stop=self.stop, progress=progress,
                              progress_every=max(1, int(self.rate // 4)))
        failure: list[BaseException] = []

        def stream() -> None:
            try:
                simulator.run()
            except BaseException as exc:  # reported by the main loop
                failure.append(exc)

        thread = threading.Thread(target=stream, name="simulated-app", daemon=True)
        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                       MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
                       TimeElapsedColumn(), console=self.console, transient=False)
        self._progress = bar
        total = s.length - s.warmup
        try:
            with bar:
                task = bar.add_task(f"{s.name}", total=total, note="")
                thread.start()
                done_at: float | None = None
                while not self.stop.is_set():
                    if self._check(loop, watcher, result):
                        return result
                    last = simulated[-1] if simulated else None
                    sent = last.sent if last else 0
                    bar.update(task, completed=sent, note=self._note(watcher))
                    if failure:
                        raise DriftloopError(f"the simulated app failed: {failure[0]}")
                    if not thread.is_alive() and done_at is None:
                        done_at = time.monotonic()
                        result.sent = sent
                        result.answered = self._answered(loop, result)
                    if done_at is not None and self._wait_answers(loop, result, done_at):
                        break
                    self.stop.wait(0.5)
        finally:
            self._progress = None
            client.close()
        if self.stop.is_set():
            return self._stopped(result)
        result.moments = list(watcher.tracker.all)
        result.events = list(watcher.events)
        self._summary(loop, result)
        if self._after_stream is not None:
            self._after_stream(loop, result)
        if self.options.exit_when_done:
            result.code = 0
            return result
        self.say("the stream is over; the loop keeps running"
                 + (f" (dashboard at {loop.dashboard_url})" if loop.dashboard_url else "")
                 + ". Press Ctrl-C to stop.", "bold")
        while not self.stop.wait(1.0):
            if self._check(loop, watcher, result):
                return result
        return self._stopped(result)

    # -- helpers -----------------------------------------------------------------------------

    def _await_ready(self, loop: LocalLoop, watcher: LoopWatcher, result: DemoResult) -> bool:
        """Send one probe request and wait until its prediction is stored: serving has loaded
        the model and joined its group, and the monitor is storing. False if stopped or a
        child died."""
        if result.settings is None:
            raise DriftloopError("the loop has no settings yet")
        probe = f"probe-{run_id(datetime.now(UTC))}"
        features = self.scenario.warmup_examples()[0].features
        with Client(result.settings) as client:
            client.request(result.model, features, request_id=probe)
        started = time.monotonic()
        with self.console.status("waiting for serving to answer a first request"):
            while not self.stop.wait(0.3):
                if self._check(loop, watcher, result):
                    return False
                if loop.db_has_prediction(result.model, probe):
                    self.say(f"serving answered a first request after "
                             f"{time.monotonic() - started:.1f}s; streaming the scenario")
                    return True
                if time.monotonic() - started > self.options.answer_timeout_s:
                    raise DriftloopError("serving answered no request within "
                                         f"{self.options.answer_timeout_s:.0f}s (logs in "
                                         f"{loop.log_dir})")
        self._stopped(result)
        return False

    def _check(self, loop: LocalLoop, watcher: LoopWatcher, result: DemoResult) -> bool:
        """Print new moments; True (and code 1) when a child died."""
        for moment in watcher.poll():
            self.say(moment.text, STYLES.get(moment.kind, ""))
        dead = loop.dead()
        if not dead:
            return False
        for exit_ in dead:
            self.say(f"{exit_.describe()} unexpectedly; the end of its log "
                     f"({loop.log_dir / (exit_.name + '.log')}):", "bold red")
            self.console.print(exit_.log_tail, markup=False, highlight=False)
        result.crashed = dead
        result.code = 1
        return True

    def _note(self, watcher: LoopWatcher) -> str:
        tracker = watcher.tracker
        parts = [f"v{tracker.champion}" if tracker.champion else "v1"]
        if tracker.accuracy is not None:
            parts.append(f"{tracker.accuracy.describe()} (last {tracker.accuracy.rows} labels)")
        return " · ".join(parts)

    def _answered(self, loop: LocalLoop, result: DemoResult) -> int:
        stmt = select(func.count()).select_from(PredictionRow).where(
            PredictionRow.model == result.model,
            PredictionRow.request_id.startswith(result.prefix, autoescape=True))
        with loop.db.session() as session:
            return int(session.execute(stmt).scalar_one())

    def _wait_answers(self, loop: LocalLoop, result: DemoResult, since: float) -> bool:
        result.answered = self._answered(loop, result)
        if result.answered >= result.sent:
            self.say(f"all {result.sent:,} requests answered and stored")
            return True
        if time.monotonic() - since > self.options.answer_timeout_s:
            self.say(f"{result.sent - result.answered:,} of {result.sent:,} requests still "
                     f"unanswered after {self.options.answer_timeout_s:.0f}s", "yellow")
            return True
        return False

    def _summary(self, loop: LocalLoop, result: DemoResult) -> None:
        from driftloop.lab.adaptation import evaluate_system
        from driftloop.lab.system_run import load_system_run

        run = load_system_run(loop.db, self.scenario, model=result.model, prefix=result.prefix)
        if not run.predictions:
            return
        measured = evaluate_system(run.predictions, self.scenario,
                                   window=min(500, max(50, self.scenario.length // 40)))
        regression = self.scenario.task == "regression"

        def show(x: float | None) -> str:
            if x is None:
                return "-"
            return f"{x:.3f}" if regression else f"{100 * x:.1f}%"

        score = (f"MAE over the stream {show(measured.mae)} (RMSE {show(measured.rmse)})"
                 if regression else f"accuracy over the stream {show(measured.accuracy)}")
        versions = sorted({v for *_, v in run.predictions})
        self.say(f"{score}, served by " + ", ".join(f"v{v}" for v in versions), "bold")
        for r in measured.recoveries:
            new = "-" if r.new_model is None else f"{r.new_model:,} events"
            self.say(f"drift at {r.drift.index:,}: before {show(r.before)}, worst window "
                     f"{show(r.dip)}, settled {show(r.after)}; new model after {new}")

    def _model_name(self, loop: LocalLoop) -> str:
        """The scenario's name, or a run-unique one when the database already knows it."""
        name = self.scenario.name
        known = {m.name for m in Registry(loop.db).models()}
        return name if name not in known else f"{name}-{run_id(datetime.now(UTC))}"

    def _stopped(self, result: DemoResult) -> DemoResult:
        self.say("stopping on request")
        result.code = 0
        return result


def run_demo(settings: Settings, options: DemoOptions, *, console: Console,
             stop: threading.Event | None = None) -> int:
    """Run the demo; its exit status (0: stopped cleanly, 1: something failed)."""
    return Demo(settings, options, console=console, stop=stop).run().code
