"""How well a method keeps a model accurate through a scenario's drifts: metrics and the run.

The metrics are pure functions of a method's :class:`~driftloop.lab.prequential.Record` list (one
per post-warm-up event: index, predicted, true label, model version), so the real system is
measured exactly like the baselines: turn its stored predictions into
``(index, predicted, label, model_version)`` tuples and call :func:`evaluate_system`.

- **accuracy after warm-up**: share of correct predictions over every post-warm-up event;
- **windowed accuracy**: accuracy over consecutive windows of ``window`` events;
- per drift point (measured from the drift's ``start``, up to the next drift's start or the
  end of the stream, its *segment*):

  - ``before``: accuracy over the ``window`` events before the drift;
  - ``dip``: the lowest accuracy of the consecutive ``window``-event windows of the segment
    (for a gradual or incremental drift the worst comes late, not right at the start);
  - ``after``: accuracy over the last ``window`` events of the segment (where it settled);
  - ``recovery``: 0 if ``dip`` is within ``tolerance`` of ``before``; otherwise the events
    from the drift to the first ``window`` events, starting at or after the worst window,
    whose accuracy is back within ``tolerance`` of ``before`` (None if not in the segment);
  - ``new model``: events from the drift until the first prediction by a model version newer
    than any before the drift (None for online learners or when none came);
  - ``detection`` (real system only): events from the drift to the first detection at or
    after its start and before the next drift; the caller maps its drift reports' or retrain
    requests' timestamps to event indices with :func:`index_at`.
"""

from __future__ import annotations

import bisect
import logging
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

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 500
DEFAULT_TOLERANCE = 0.05


class _Correct:
    """Index-ordered correctness with prefix sums: accuracy of any index range in O(log n)."""

    def __init__(self, records: Iterable[Record]) -> None:
        ordered = sorted(records, key=lambda r: r.index)
        self.indices = [r.index for r in ordered]
        self.prefix = [0]
        for r in ordered:
            self.prefix.append(self.prefix[-1] + int(r.correct))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """(correct, count) over events with start <= index < end."""
        lo = bisect.bisect_left(self.indices, start)
        hi = bisect.bisect_left(self.indices, end)
        return self.prefix[hi] - self.prefix[lo], hi - lo

    def accuracy(self, start: int, end: int) -> float | None:
        correct, count = self.span(start, end)
        return correct / count if count else None


def accuracy(records: Sequence[Record], start: int | None = None, end: int | None = None
             ) -> float | None:
    """Share of correct predictions among records with start <= index < end (None if none)."""
    table = _Correct(records)
    if not table.indices:
        return None
    lo = table.indices[0] if start is None else start
    hi = table.indices[-1] + 1 if end is None else end
    return table.accuracy(lo, hi)


def windowed_accuracy(records: Sequence[Record], window: int, *, start: int | None = None,
                      end: int | None = None) -> list[tuple[int, float]]:
    """Accuracy over consecutive windows ``[a, a + window)`` from ``start``, as
    ``(a + window, accuracy)`` (the index just past each window); empty windows are skipped
    and a trailing partial window is dropped."""
    if window <= 0:
        raise ValueError("window must be positive")
    table = _Correct(records)
    if not table.indices:
        return []
    lo = table.indices[0] if start is None else start
    hi = table.indices[-1] + 1 if end is None else end
    series = []
    for a in range(lo, hi - window + 1, window):
        value = table.accuracy(a, a + window)
        if value is not None:
            series.append((a + window, value))
    return series


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


def worst_window(table: _Correct, start: int, segment_end: int, window: int
                 ) -> tuple[int, float] | None:
    """(start, accuracy) of the least accurate of the consecutive windows from ``start`` that
    fit in the segment (the first when tied); a short segment is one window."""
    worst: tuple[int, float] | None = None
    for a in range(start, max(start + 1, segment_end - window + 1), window):
        value = table.accuracy(a, min(a + window, segment_end))
        if value is not None and (worst is None or value < worst[1]):
            worst = (a, value)
    return worst


def recovery_events(table: _Correct, start: int, segment_end: int, target: float,
                    window: int, *, search_from: int | None = None) -> int | None:
    """Smallest k >= search_from - start with accuracy of [start + k, start + k + window) >=
    target, the window inside the segment; None if there is none."""
    first = bisect.bisect_left(table.indices, start if search_from is None else search_from)
    for i in range(first, len(table.indices)):
        a = table.indices[i]
        if a + window > segment_end:
            return None
        value = table.accuracy(a, a + window)
        if value is not None and value >= target - 1e-12:
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
    table = _Correct(records)
    starts = [d.start for d in scenario.drifts]
    out = []
    for k, drift in enumerate(scenario.drifts):
        seg_end = starts[k + 1] if k + 1 < len(starts) else scenario.length
        before = table.accuracy(drift.start - window, drift.start)
        after = table.accuracy(max(drift.start, seg_end - window), seg_end)
        worst = worst_window(table, drift.start, seg_end, window)
        recovery: int | None = None
        if before is not None and worst is not None:
            recovery = 0 if worst[1] >= before - tolerance - 1e-12 else recovery_events(
                table, drift.start, seg_end, before - tolerance, window, search_from=worst[0])
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
    """Everything the table and the plot show for one method."""

    key: str
    name: str
    accuracy: float | None
    windows: tuple[tuple[int, float], ...]
    recoveries: tuple[Recovery, ...]
    seconds: float = 0.0
    fits: int | None = None
    detections: tuple[int, ...] = ()


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
) -> MethodResult:
    versions = {r.model_version for r in records if r.model_version is not None}
    return MethodResult(
        key=key,
        name=name,
        accuracy=accuracy(records, scenario.warmup, scenario.length),
        windows=tuple(windowed_accuracy(records, window, start=scenario.warmup,
                                        end=scenario.length)),
        recoveries=drift_recoveries(records, scenario, window=window, tolerance=tolerance,
                                    detections=detections),
        seconds=seconds,
        fits=len(versions) if versions else None,
        detections=tuple(sorted(detections)),
    )


def evaluate_system(
    predictions: Iterable[tuple[int, Any, Any, int]],
    scenario: Scenario,
    *,
    detections: Sequence[int] = (),
    name: str = "driftloop (drift-triggered retraining)",
    window: int = DEFAULT_WINDOW,
    tolerance: float = DEFAULT_TOLERANCE,
    seconds: float = 0.0,
) -> MethodResult:
    """The hook for the real system: its per-event ``(index, predicted, label, model_version)``
    and the event indices at which it detected drift, measured like every baseline."""
    records = [Record(i, p, y, v) for i, p, y, v in predictions]
    return evaluate("driftloop", name, records, scenario, window=window, tolerance=tolerance,
                    detections=detections, seconds=seconds)


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
    """Prequential run of one method over the scenario, then its metrics."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"driftloop-bench-{method.key}-") as workdir:
        learner = method.build(Path(workdir))
        records = prequential(scenario.examples(), learner, warmup=scenario.warmup,
                              label_delay=scenario.label_delay, progress=progress)
    seconds = time.perf_counter() - started
    log.info("%s on %s: %d events in %.1fs", method.key, scenario.name, len(records), seconds)
    return evaluate(method.key, method.name, records, scenario, window=window,
                    tolerance=tolerance, seconds=seconds)


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
                result = future.result()
                results[futures[future].key] = result
                if done is not None:
                    done(result)
    return AdaptationReport(scenario, window, tuple(results[m.key] for m in methods))


def _bind(progress: Callable[[Method, int], None], method: Method) -> Progress:
    return lambda n: progress(method, n)
