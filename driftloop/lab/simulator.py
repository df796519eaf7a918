"""A simulated production app: streams a scenario as inference requests and delayed feedback.

For each post-warm-up example, in order, the app sends an ``InferenceRequest`` (the serving
process answers it); ``label_delay`` events later it sends the true label as ``Feedback``
(source ``app``), but only for the examples the scenario flagged as getting feedback. So before
the request of event ``t`` goes out, exactly the flagged labels of events ``i`` with
``i + label_delay < t`` have been sent: the same rule the adaptation benchmark's prequential
loop follows. Labels still owed when the stream ends are sent at the end.

Requests are paced at ``scenario.events_per_second * speed`` (``speed=math.inf``: as fast as
the client takes them) on an injected monotonic ``clock`` and ``sleep``; by default the sleep
is ``stop.wait``, so setting ``stop`` ends the run at once, after a final flush.

Request ids are ``<prefix><index:08d>``, the prefix defaulting to ``<scenario>-<seed>-``, so
a stored prediction maps back to its event with :func:`index_of`. Re-running a scenario into
the same database needs another prefix (the store ignores a request id it already has).

The initial model needs labelled examples before any request: :func:`send_warmup` logs the
warm-up set through Kafka as predictions of version 0 plus feedback (the monitor joins them
into ``labelled_examples``); :func:`store_warmup` writes the same rows straight into the
event store, for when the monitor is not running yet. Either way ``driftloop retrain --once``
can then train version 1 from ``EventStore.examples``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from driftloop.lab.scenarios import Example, Scenario
from streams.clock import Clock, utc_now
from streams.events import ClassOutput, Feedback, Prediction
from streams.store import EventStore, LabelledExample

log = logging.getLogger(__name__)


class AppClient(Protocol):
    """The part of :class:`streams.client.Client` the simulated app uses."""

    def request(
        self, model: str, features: Mapping[str, Any], *, request_id: str | None = None
    ) -> str: ...

    def log_prediction(
        self, model: str, request_id: str, features: Mapping[str, Any], *, label: Any = None,
        model_version: int = 0,
    ) -> str: ...

    def log_feedback(self, model: str, request_id: str, label: Any, *, source: str = "app"
                     ) -> str: ...

    def flush(self, timeout_s: float | None = None) -> int: ...


def default_prefix(scenario: Scenario) -> str:
    return f"{scenario.name}-{scenario.seed}-"


def request_id(prefix: str, index: int) -> str:
    return f"{prefix}{index:08d}"


def index_of(rid: str, prefix: str) -> int | None:
    """The event index of a request id made with ``prefix``; None for any other id."""
    if not rid.startswith(prefix):
        return None
    tail = rid[len(prefix):]
    return int(tail) if tail.isdigit() else None


@dataclass(frozen=True)
class SimulationProgress:
    """Where the simulated app stands."""

    sent: int
    total: int
    feedback: int
    index: int | None
    elapsed_s: float
    stopped: bool = False
    done: bool = False


ProgressCallback = Callable[[SimulationProgress], None]


class Simulator:
    """Sends one scenario's stream through an :class:`AppClient`; see the module docstring."""

    def __init__(
        self,
        scenario: Scenario,
        client: AppClient,
        *,
        model: str,
        speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] | None = None,
        stop: threading.Event | None = None,
        prefix: str | None = None,
        progress: ProgressCallback | None = None,
        progress_every: int = 100,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive (math.inf for no pacing)")
        self.scenario = scenario
        self._client = client
        self._model = model
        self._interval = 1.0 / (scenario.events_per_second * speed)
        self._clock = clock
        self._stop = stop or threading.Event()
        self._sleep = sleep or self._stop.wait
        self.prefix = prefix if prefix is not None else default_prefix(scenario)
        self._progress = progress
        self._every = max(1, progress_every)

    def run(self) -> SimulationProgress:
        """Stream until the end of the scenario or until ``stop`` is set; flush; report."""
        s = self.scenario
        total = s.length - s.warmup
        pending: deque[Example] = deque()
        sent = feedback = 0
        last: int | None = None
        started = self._clock()
        stopped = False
        for k, example in enumerate(s.stream()):
            wait = started + k * self._interval - self._clock()
            if wait > 0:
                self._sleep(wait)
            if self._stop.is_set():
                stopped = True
                break
            rid = request_id(self.prefix, example.index)
            self._client.request(self._model, example.features, request_id=rid)
            sent, last = sent + 1, example.index
            if example.feedback:
                pending.append(example)
            while pending and pending[0].index + s.label_delay <= example.index:
                feedback += self._feedback(pending.popleft())
            if self._progress is not None and sent % self._every == 0:
                self._progress(SimulationProgress(sent, total, feedback, last,
                                                  self._clock() - started))
        if not stopped:
            while pending:
                feedback += self._feedback(pending.popleft())
        self._client.flush()
        final = SimulationProgress(sent, total, feedback, last, self._clock() - started,
                                   stopped=stopped, done=not stopped)
        if self._progress is not None:
            self._progress(final)
        log.info("simulated %d requests and %d labels of %s%s", sent, feedback, s.name,
                 " (stopped)" if stopped else "")
        return final

    def _feedback(self, example: Example) -> int:
        rid = request_id(self.prefix, example.index)
        self._client.log_feedback(self._model, rid, example.label, source="app")
        return 1


def placeholder_label(examples: Sequence[Example]) -> Any:
    """The warm-up's most frequent label: what "no model yet" (version 0) is said to predict."""
    counts = Counter(e.label for e in examples)
    return counts.most_common(1)[0][0] if counts else 0


def send_warmup(
    client: AppClient, scenario: Scenario, *, model: str, prefix: str | None = None
) -> int:
    """Log the warm-up set as version-0 predictions plus their true labels; return the count."""
    prefix = prefix if prefix is not None else default_prefix(scenario)
    examples = scenario.warmup_examples()
    guess = placeholder_label(examples)
    for example in examples:
        rid = request_id(prefix, example.index)
        client.log_prediction(model, rid, example.features, label=guess, model_version=0)
        client.log_feedback(model, rid, example.label, source="app")
    client.flush()
    return len(examples)


def warmup_events(
    scenario: Scenario, *, model: str, end: datetime, prefix: str | None = None
) -> list[tuple[Prediction, Feedback]]:
    """The warm-up as (prediction, feedback) events, paced at the scenario's rate up to ``end``
    (feedback ``label_delay`` events after its prediction, never after ``end``). Event ids
    derive from the request ids, so writing them twice stores nothing new."""
    prefix = prefix if prefix is not None else default_prefix(scenario)
    examples = scenario.warmup_examples()
    guess = placeholder_label(examples)
    step = timedelta(seconds=1.0 / scenario.events_per_second)
    first = end - step * len(examples)
    pairs = []
    for example in examples:
        rid = request_id(prefix, example.index)
        at = first + step * example.index
        prediction = Prediction(
            event_id=f"{rid}-p", request_id=rid, model=model, model_version=0,
            features=dict(example.features), output=ClassOutput(label=guess), timestamp=at,
        )
        told = min(end, at + step * scenario.label_delay)
        label = Feedback(event_id=f"{rid}-f", request_id=rid, model=model,
                         label=example.label, source="app", timestamp=told)
        pairs.append((prediction, label))
    return pairs


def store_warmup(
    store: EventStore,
    scenario: Scenario,
    *,
    model: str,
    clock: Clock = utc_now,
    prefix: str | None = None,
    chunk: int = 1_000,
) -> int:
    """Write the warm-up set into the store as predictions, feedback and labelled examples
    (idempotent: a second call adds nothing); return how many examples it holds."""
    pairs = warmup_events(scenario, model=model, end=clock(), prefix=prefix)
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        store.add_predictions([p for p, _ in part])
        store.add_feedback([f for _, f in part])
        store.upsert_examples([LabelledExample.join(p, f) for p, f in part])
    return len(pairs)


def run_simulation(
    client: AppClient,
    scenario: Scenario,
    *,
    model: str,
    speed: float = 1.0,
    stop: threading.Event | None = None,
    prefix: str | None = None,
    console: Any = None,
) -> SimulationProgress:
    """Run a :class:`Simulator` with a rich progress bar on ``console`` (stderr by default)."""
    with progress_bar(scenario, console) as show:
        return Simulator(scenario, client, model=model, speed=speed, stop=stop, prefix=prefix,
                         progress=show).run()


@contextlib.contextmanager
def progress_bar(scenario: Scenario, console: Any = None) -> Iterator[ProgressCallback]:
    """A rich progress bar fed by :class:`SimulationProgress` updates."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
        console=console or Console(stderr=True),
    )
    total = scenario.length - scenario.warmup
    with bar:
        task = bar.add_task(f"scenario {scenario.name}", total=total, note="")

        def show(p: SimulationProgress) -> None:
            rate = p.sent / p.elapsed_s if p.elapsed_s > 0 else math.inf
            note = f"{p.feedback:,} labels, {rate:,.0f} req/s"
            if p.stopped:
                note += " (stopped)"
            bar.update(task, completed=p.sent, note=note)

        yield show
