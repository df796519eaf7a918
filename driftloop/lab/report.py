"""The adaptation benchmark's results as table rows, Markdown and JSON (pure).

One row per method and drift point (see :func:`legend`): accuracy for a classification,
MAE and RMSE for a regression (:func:`headers`), and every method's training CPU seconds per
1,000 events; ``-`` means "not applicable" (an online learner has no model versions, a
baseline detects nothing) or "did not happen before the next drift". A method that failed
keeps its row, with the error.
"""

from __future__ import annotations

import json
from typing import Any

from driftloop.lab.adaptation import AdaptationReport, MethodResult

CLASSIFICATION_HEADERS = (
    "method",
    "accuracy",
    "drift at",
    "before",
    "dip",
    "settled",
    "recovered after",
    "detected after",
    "new model after",
    "train CPU s / 1k events",
    "runtime s",
)
#: A regression's table: MAE and RMSE where a classification has its accuracy; before, dip
#: and settled are MAE.
REGRESSION_HEADERS = (
    "method",
    "MAE",
    "RMSE",
    *CLASSIFICATION_HEADERS[2:],
)
HEADERS = CLASSIFICATION_HEADERS


def headers(report: AdaptationReport) -> tuple[str, ...]:
    return REGRESSION_HEADERS if report.scenario.task == "regression" else CLASSIFICATION_HEADERS


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _error(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _events(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _cpu(result: MethodResult) -> str:
    value = result.cpu_per_1k
    return "-" if value is None else f"{value:.2f}"


def method_rows(result: MethodResult, *, system: bool = False) -> list[list[str]]:
    """One row per drift point; the method's name, score, training CPU and runtime on the
    first. A method that failed has one row: its name and the error."""
    regression = result.task == "regression"
    fmt = _error if regression else _pct
    first = ([result.name, _error(result.mae), _error(result.rmse)] if regression
             else [result.name, _pct(result.accuracy)])
    width = len(REGRESSION_HEADERS if regression else CLASSIFICATION_HEADERS)
    last = [_cpu(result), f"{result.seconds:.1f}"]
    if result.error is not None:
        return [[result.name, f"failed: {result.error}", *["-"] * (width - 2 - len(last)),
                 *last]]
    if not result.recoveries:
        return [first + ["-"] * (width - len(first) - len(last)) + last]
    rows = []
    for k, r in enumerate(result.recoveries):
        rows.append([
            *(first if k == 0 else [""] * len(first)),
            f"{r.drift.index:,}",
            fmt(r.before),
            fmt(r.dip),
            fmt(r.after),
            _events(r.recovery),
            _events(r.detection) if system or result.detections else "-",
            _events(r.new_model) if result.fits is not None else "-",
            *(last if k == 0 else ["", ""]),
        ])
    return rows


def summary_rows(report: AdaptationReport) -> list[list[str]]:
    rows: list[list[str]] = []
    for result in report.results:
        rows += method_rows(result, system=result.key == "driftloop")
    return rows


_CPU_LEGEND = (
    "train CPU s / 1k events: CPU seconds spent training after the warm-up per 1,000 events "
    "(driftloop: the whole retrain process, its waiting and scoring included; periodic "
    "retraining: its refits; River: learn_one)"
)
CLASSIFICATION_LEGEND = (
    "accuracy: % correct over every event after the warm-up; before / dip / settled: % "
    "correct over the window before the drift, the worst window after it, and the last window "
    "before the next drift (or the end); recovered after: events from the drift until a whole "
    "window after the worst is back within the tolerance of 'before' (0: it never fell "
    "further); detected after / new model after: events from "
    "the drift to the first detection / the first prediction by a newer model version; "
    f"{_CPU_LEGEND}; "
    "'-': not applicable or did not happen before the next drift."
)
REGRESSION_LEGEND = (
    "MAE / RMSE: mean absolute / root mean squared error over every event after the warm-up "
    "(lower is better); before / dip / settled: MAE over the window before the drift, the "
    "worst window after it, and the last window before the next drift (or the end); "
    "recovered after: events from the drift until a whole window after the worst has an MAE "
    "within the tolerance (as a share) above 'before' (0: it never got worse); detected "
    "after / new model after: events from the drift to the first detection / the first "
    "prediction by a newer model version; "
    f"{_CPU_LEGEND}; "
    "'-': not applicable or did not happen before the next drift."
)
LEGEND = CLASSIFICATION_LEGEND


def legend(report: AdaptationReport) -> str:
    return REGRESSION_LEGEND if report.scenario.task == "regression" else CLASSIFICATION_LEGEND


def caption(report: AdaptationReport) -> str:
    s = report.scenario
    drifts = ", ".join(f"{d.kind} at {d.index:,}" + (f" (width {d.width:,})" if d.width else "")
                       for d in s.drifts)
    return (
        f"scenario {s.name} (seed {s.seed}): {s.generator}; {s.length:,} events, warm-up "
        f"{s.warmup:,}, drifts: {drifts}; labels after {s.label_delay:,} events for "
        f"{100 * s.feedback_rate:.0f}% of requests; "
        + ("MAE" if s.task == "regression" else "accuracy in %")
        + f" over windows of {report.window:,} events"
    )


def markdown(report: AdaptationReport) -> str:
    names = headers(report)
    lines = [
        f"_{caption(report)}_",
        "",
        f"_{legend(report)}_",
        "",
        "| " + " | ".join(names) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(names))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(report)]
    return "\n".join(lines) + "\n"


def to_json(report: AdaptationReport) -> dict[str, Any]:
    s = report.scenario
    return {
        "scenario": {
            "name": s.name, "seed": s.seed, "length": s.length, "warmup": s.warmup,
            "label_delay": s.label_delay, "feedback_rate": s.feedback_rate,
            "generator": s.generator, "task": s.task, "classes": s.classes,
            "drifts": [{"index": d.index, "kind": d.kind, "width": d.width, "start": d.start,
                        "end": d.end, "note": d.note} for d in s.drifts],
        },
        "window": report.window,
        "score": "MAE" if s.task == "regression" else "accuracy",
        "results": [
            {
                "key": r.key, "name": r.name, "accuracy": r.accuracy, "mae": r.mae,
                "rmse": r.rmse, "seconds": r.seconds, "train_cpu_s": r.train_cpu_s,
                "events": r.events, "train_cpu_s_per_1k_events": r.cpu_per_1k,
                "error": r.error, "fits": r.fits, "detections": list(r.detections),
                "windows": [[end, value] for end, value in r.windows],
                "drifts": [{"index": x.drift.index, "before": x.before, "dip": x.dip,
                            "after": x.after, "recovery": x.recovery,
                            "new_model": x.new_model, "detection": x.detection}
                           for x in r.recoveries],
            }
            for r in report.results
        ],
    }


def dumps(report: AdaptationReport) -> str:
    return json.dumps(to_json(report), indent=2) + "\n"
