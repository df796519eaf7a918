"""How well a method keeps a model accurate through a scenario's drifts: metrics and the run.

The metrics are pure functions of a method's :class:`~driftloop.lab.prequential.Record` list (one
per post-warm-up event: index, predicted, true label, model version), so the real system is
measured exactly like the baselines: turn its stored predictions into
``(index, predicted, label, model_version)`` tuples and call :func:`evaluate_system`.

The score is the accuracy for a classification scenario and the MAE (mean absolute error)
for a regression one (:class:`Scoring`; a regression also gets its RMSE over the stream):

- **score after warm-up**: accuracy or MAE over every post-warm-up event;
- **windowed score**: the same over consecutive windows of ``window`` events;
- per drift point (measured from the drift's ``start``, up to the next drift's start or the
  end of the stream, its *segment*):

  - ``before``: the score over the ``window`` events before the drift;
  - ``dip``: the worst score of the consecutive ``window``-event windows of the segment
    (for a gradual or incremental drift the worst comes late, not right at the start);
  - ``after``: the score over the last ``window`` events of the segment (where it settled);
  - ``recovery``: 0 if ``dip`` is within ``tolerance`` of ``before``; otherwise the events
    from the drift to the first ``window`` events, starting at or after the worst window,
    whose score is back within ``tolerance`` of ``before`` (None if not in the segment);
  - ``new model``: events from the drift until the first prediction by a model version newer
    than any before the drift (None for online learners or when none came);
  - ``detection`` (real system only): events from the drift to the first detection at or
    after its start and before the next drift; the caller maps its drift reports' or retrain
    requests' timestamps to event indices with :func:`index_at`.
"""

from __future__ import annotations

import bisect
import logging
import math
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from driftloop.lab.learners import Method
from driftloop.lab.prequential import Progress, Record, prequential
from driftloop.lab.scenarios import DriftPoint, Scenario
from streams.scores import Task

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 500
DEFAULT_TOLERANCE = 0.05


@dataclass(frozen=True)
class Scoring:
    """How a task's predictions are scored: a value per event, averaged over any span.

    Classification: 1 for a right class, 0 for a wrong one, so the mean is the accuracy
    (higher is better; "within tolerance" means at most ``tolerance`` below). Regression: the
    absolute error, so the mean is the MAE (lower is better; "within tolerance" means at most
    ``tolerance`` *times* above, 5% by default, since an error has the target's units).
    """

    task: Task = "classification"

    @property
    def name(self) -> str:
        return "accuracy" if self.task == "classification" else "MAE"

    @property
    def higher_is_better(self) -> bool:
        return self.task == "classification"

    def point(self, record: Record) -> float:
        if self.task == "classification":
            return float(record.correct)
        return abs(float(record.predicted) - float(record.label))

    def worse(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly worse than ``b``."""
        return a < b if self.higher_is_better else a > b

    def target(self, before: float, tolerance: float) -> float:
        """The worst value still within ``tolerance`` of ``before``."""
        return before - tolerance if self.higher_is_better else before * (1 + tolerance)

    def within(self, value: float, before: float, tolerance: float) -> bool:
        limit = self.target(before, tolerance)
        return value >= limit - 1e-12 if self.higher_is_better else value <= limit + 1e-12


CLASSIFICATION = Scoring("classification")
REGRESSION = Scoring("regression")


def scoring_for(task: Task) -> Scoring:
    return CLASSIFICATION if task == "classification" else REGRESSION


class _Series:
    """Index-ordered per-event scores with prefix sums: the mean of any index range in
    O(log n)."""

    def __init__(self, records: Iterable[Record], scoring: Scoring = CLASSIFICATION) -> None:
        ordered = sorted(records, key=lambda r: r.index)
        self.indices = [r.index for r in ordered]
        self.prefix = [0.0]
        for r in ordered:
            self.prefix.append(self.prefix[-1] + scoring.point(r))

    def span(self, start: int, end: int) -> tuple[float, int]:
        """(sum, count) over events with start <= index < end."""
        lo = bisect.bisect_left(self.indices, start)
        hi = bisect.bisect_left(self.indices, end)
        return self.prefix[hi] - self.prefix[lo], hi - lo

    def mean(self, start: int, end: int) -> float | None:
        total, count = self.span(start, end)
        return total / count if count else None


def score(records: Sequence[Record], start: int | None = None, end: int | None = None,
          *, scoring: Scoring = CLASSIFICATION) -> float | None:
    """The mean score (accuracy or MAE) of records with start <= index < end (None if none)."""
    table = _Series(records, scoring)
    if not table.indices:
        return None
    lo = table.indices[0] if start is None else start
    hi = table.indices[-1] + 1 if end is None else end
    return table.mean(lo, hi)


def accuracy(records: Sequence[Record], start: int | None = None, end: int | None = None
             ) -> float | None:
    """Share of correct predictions among records with start <= index < end (None if none)."""
    return score(records, start, end)


def rmse(records: Sequence[Record], start: int, end: int) -> float | None:
    """Root mean squared error of the (regression) records with start <= index < end."""
    errors = [REGRESSION.point(r) for r in records if start <= r.index < end]
    return math.sqrt(sum(e * e for e in errors) / len(errors)) if errors else None


def windowed_score(records: Sequence[Record], window: int, *, start: int | None = None,
                   end: int | None = None, scoring: Scoring = CLASSIFICATION
                   ) -> list[tuple[int, float]]:
    """The score over consecutive windows ``[a, a + window)`` from ``start``, as
    ``(a + window, score)`` (the index just past each window); empty windows are skipped
    and a trailing partial window is dropped."""
    if window <= 0:
        raise ValueError("window must be positive")
    table = _Series(records, scoring)
    if not table.indices:
        return []
    lo = table.indices[0] if start is None else start
    hi = table.indices[-1] + 1 if end is None else end
    series = []
    for a in range(lo, hi - window + 1, window):
        value = table.mean(a, a + window)
        if value is not None:
            series.append((a + window, value))
    return series


def windowed_accuracy(records: Sequence[Record], window: int, *, start: int | None = None,
                      end: int | None = None) -> list[tuple[int, float]]:
    """:func:`windowed_score` of a classifier: accuracy per window."""
    return windowed_score(records, window, start=start, end=end)


@dataclass(frozen=True)
class Recovery:
    """How one method went through one drift point; see the module docstring."""

    drift: DriftPoint
    before: float | None
    dip: float | None
    after: float | None
    recovery: int | None
    new_model: int | None = None
    detection: int | None = None


def worst_window(table: _Series, start: int, segment_end: int, window: int,
                 scoring: Scoring = CLASSIFICATION) -> tuple[int, float] | None:
    """(start, score) of the worst of the consecutive windows from ``start`` that fit in the
    segment (the first when tied); a short segment is one window."""
    worst: tuple[int, float] | None = None
    for a in range(start, max(start + 1, segment_end - window + 1), window):
        value = table.mean(a, min(a + window, segment_end))
        if value is not None and (worst is None or scoring.worse(value, worst[1])):
            worst = (a, value)
    return worst


def recovery_events(table: _Series, start: int, segment_end: int, before: float,
                    tolerance: float, window: int, *, search_from: int | None = None,
                    scoring: Scoring = CLASSIFICATION) -> int | None:
    """Smallest k >= search_from - start with the score of [start + k, start + k + window)
    within ``tolerance`` of ``before``, the window inside the segment; None if none is."""
    first = bisect.bisect_left(table.indices, start if search_from is None else search_from)
    for i in range(first, len(table.indices)):
        a = table.indices[i]
        if a + window > segment_end:
            return None
        value = table.mean(a, a + window)
        if value is not None and scoring.within(value, before, tolerance):
            return a - start
    return None


def new_model_delay(records: Sequence[Record], start: int, segment_end: int) -> int | None:
    """Events from ``start`` to the first prediction, within the segment, by a version newer
    than every version that answered before ``start``."""
    ordered = sorted(records, key=lambda r: r.index)
    seen = [r.model_version for r in ordered if r.index < start and r.model_version is not None]
    newest = max(seen, default=None)
    for r in ordered:
        if r.index < start or r.model_version is None:
            continue
        if r.index >= segment_end:
            return None
        if newest is None or r.model_version > newest:
            return r.index - start
    return None


def detection_delay(detections: Sequence[int], start: int, segment_end: int) -> int | None:
    """Events from ``start`` to the first detection in ``[start, segment_end)``."""
    hits = [d for d in detections if start <= d < segment_end]
    return min(hits) - start if hits else None


def drift_recoveries(
    records: Sequence[Record],
    scenario: Scenario,
    *,
    window: int = DEFAULT_WINDOW,
    tolerance: float = DEFAULT_TOLERANCE,
    detections: Sequence[int] = (),
) -> tuple[Recovery, ...]:
    scoring = scoring_for(scenario.task)
    table = _Series(records, scoring)
    starts = [d.start for d in scenario.drifts]
    out = []
    for k, drift in enumerate(scenario.drifts):
        seg_end = starts[k + 1] if k + 1 < len(starts) else scenario.length
        before = table.mean(drift.start - window, drift.start)
        after = table.mean(max(drift.start, seg_end - window), seg_end)
        worst = worst_window(table, drift.start, seg_end, window, scoring)
        recovery: int | None = None
        if before is not None and worst is not None:
            recovery = 0 if scoring.within(worst[1], before, tolerance) else recovery_events(
                table, drift.start, seg_end, before, tolerance, window, search_from=worst[0],
                scoring=scoring)
        out.append(Recovery(
            drift=drift,
            before=before,
            dip=None if worst is None else worst[1],
            after=after,
            recovery=recovery,
            new_model=new_model_delay(records, drift.start, seg_end),
            detection=detection_delay(detections, drift.start, seg_end) if detections else None,
        ))
    return tuple(out)


@dataclass(frozen=True)
class MethodResult:
    """Everything the table and the plot show for one method.

    ``accuracy`` for a classification, ``mae`` and ``rmse`` for a regression (the others
    None); ``windows`` and the recoveries are in the task's score (:class:`Scoring`).
    ``train_cpu_s`` is the CPU time spent training after the warm-up (None: not measured),
    over ``events`` post-warm-up events. ``error`` says why a method has no result.
    """

    key: str
    name: str
    accuracy: float | None
    windows: tuple[tuple[int, float], ...]
    recoveries: tuple[Recovery, ...]
    seconds: float = 0.0
    fits: int | None = None
    detections: tuple[int, ...] = ()
    task: Task = "classification"
    mae: float | None = None
    rmse: float | None = None
    train_cpu_s: float | None = None
    events: int = 0
    error: str | None = None

    @property
    def score(self) -> float | None:
        """The headline score: accuracy, or MAE for a regression."""
        return self.accuracy if self.task == "classification" else self.mae

    @property
    def cpu_per_1k(self) -> float | None:
        """CPU seconds of training per 1,000 post-warm-up events."""
        if self.train_cpu_s is None or self.events <= 0:
            return None
        return 1_000 * self.train_cpu_s / self.events


def evaluate(
    key: str,
    name: str,
    records: Sequence[Record],
    scenario: Scenario,
    *,
    window: int = DEFAULT_WINDOW,
    tolerance: float = DEFAULT_TOLERANCE,
    detections: Sequence[int] = (),
    seconds: float = 0.0,
    train_cpu_s: float | None = None,
) -> MethodResult:
    versions = {r.model_version for r in records if r.model_version is not None}
    scoring = scoring_for(scenario.task)
    measured = [r for r in records if scenario.warmup <= r.index < scenario.length]
    overall = score(measured, scenario.warmup, scenario.length, scoring=scoring)
    regression = scenario.task == "regression"
    return MethodResult(
        key=key,
        name=name,
        accuracy=None if regression else overall,
        windows=tuple(windowed_score(records, window, start=scenario.warmup,
                                     end=scenario.length, scoring=scoring)),
        recoveries=drift_recoveries(records, scenario, window=window, tolerance=tolerance,
                                    detections=detections),
        seconds=seconds,
        fits=len(versions) if versions else None,
        detections=tuple(sorted(detections)),
        task=scenario.task,
        mae=overall if regression else None,
        rmse=rmse(measured, scenario.warmup, scenario.length) if regression else None,
        train_cpu_s=train_cpu_s,
        events=len(measured),
    )


def failed(key: str, name: str, scenario: Scenario, error: str, *, seconds: float = 0.0
           ) -> MethodResult:
    """The row of a method that could not be run or scored: its name and why."""
    return MethodResult(key=key, name=name, accuracy=None, windows=(), recoveries=(),
                        seconds=seconds, task=scenario.task, error=error)


def evaluate_system(
    predictions: Iterable[tuple[int, Any, Any, int]],
    scenario: Scenario,
    *,
    detections: Sequence[int] = (),
    name: str = "driftloop (drift-triggered retraining)",
    window: int = DEFAULT_WINDOW,
    tolerance: float = DEFAULT_TOLERANCE,
    seconds: float = 0.0,
    train_cpu_s: float | None = None,
) -> MethodResult:
    """The hook for the real system: its per-event ``(index, predicted, label, model_version)``
    and the event indices at which it detected drift, measured like every baseline."""
    records = [Record(i, p, y, v) for i, p, y, v in predictions]
    return evaluate("driftloop", name, records, scenario, window=window, tolerance=tolerance,
                    detections=detections, seconds=seconds, train_cpu_s=train_cpu_s)


def index_at(sent: Sequence[tuple[datetime, int]], when: datetime) -> int:
    """The index of the last event sent at or before ``when`` (``sent`` in time order, as
    ``(timestamp, index)``); -1 if ``when`` is before every event."""
    times = [t for t, _ in sent]
    pos = bisect.bisect_right(times, when)
    return sent[pos - 1][1] if pos else -1


# -- running the baselines ---------------------------------------------------------------------


@dataclass(frozen=True)
class AdaptationReport:
    scenario: Scenario
    window: int
    results: tuple[MethodResult, ...] = field(default=())

    def with_result(self, result: MethodResult) -> AdaptationReport:
        return AdaptationReport(self.scenario, self.window, (*self.results, result))


def run_method(
    method: Method,
    scenario: Scenario,
    *,
    window: int = DEFAULT_WINDOW,
    tolerance: float = DEFAULT_TOLERANCE,
    progress: Progress | None = None,
) -> MethodResult:
    """Prequential run of one method over the scenario, then its metrics.

    Whatever goes wrong in the method or in scoring it (an exception of any kind) gives a
    :func:`failed` result naming the error, logged with its traceback, so that the other
    methods' results are kept."""
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix=f"driftloop-bench-{method.key}-") as workdir:
            learner = method.build(Path(workdir))
            records = prequential(scenario.examples(), learner, warmup=scenario.warmup,
                                  label_delay=scenario.label_delay, progress=progress)
        seconds = time.perf_counter() - started
        log.info("%s on %s: %d events in %.1fs", method.key, scenario.name, len(records),
                 seconds)
        return evaluate(method.key, method.name, records, scenario, window=window,
                        tolerance=tolerance, seconds=seconds, train_cpu_s=learner.train_cpu_s)
    except Exception as exc:  # one method's failure must not lose the others' results
        log.exception("%s on %s failed", method.key, scenario.name)
        return failed(method.key, method.name, scenario, f"{type(exc).__name__}: {exc}",
                      seconds=time.perf_counter() - started)


def run_adaptation(
    scenario: Scenario,
    methods: Sequence[Method],
    *,
    window: int = DEFAULT_WINDOW,
    tolerance: float = DEFAULT_TOLERANCE,
    jobs: int = 1,
    progress: Callable[[Method, int], None] | None = None,
    done: Callable[[MethodResult], None] | None = None,
) -> AdaptationReport:
    """Every method over the same stream; ``jobs`` > 1 runs methods in worker processes
    (then ``progress`` is not called, only ``done``)."""
    results: dict[str, MethodResult] = {}
    if jobs <= 1:
        for method in methods:
            report: Progress | None = None
            if progress is not None:
                report = _bind(progress, method)
            result = run_method(method, scenario, window=window, tolerance=tolerance,
                                progress=report)
            results[method.key] = result
            if done is not None:
                done(result)
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = {
                pool.submit(run_method, m, scenario, window=window, tolerance=tolerance): m
                for m in methods
            }
            for future in as_completed(futures):
                method = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # the worker died: keep the others' results
                    log.exception("%s on %s failed in its worker", method.key, scenario.name)
                    result = failed(method.key, method.name, scenario,
                                    f"{type(exc).__name__}: {exc}")
                results[method.key] = result
                if done is not None:
                    done(result)
    return AdaptationReport(scenario, window, tuple(results[m.key] for m in methods))


def _bind(progress: Callable[[Method, int], None], method: Method) -> Progress:
    return lambda n: progress(method, n)
