"""The adaptation benchmark's results as table rows, Markdown and JSON (pure).

One row per method and drift point (see :data:`LEGEND`); ``-`` means "not applicable" (an
online learner has no model versions, a baseline detects nothing) or "did not happen before
the next drift".
"""

from __future__ import annotations

import json
from typing import Any

from driftloop.lab.adaptation import AdaptationReport, MethodResult

HEADERS = (
    "method",
    "accuracy",
    "drift at",
    "before",
    "dip",
    "settled",
    "recovered after",
    "detected after",
    "new model after",
    "runtime s",
)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _events(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def method_rows(result: MethodResult, *, system: bool = False) -> list[list[str]]:
    """One row per drift point; the method's name, accuracy and runtime on the first."""
    first = [result.name, _pct(result.accuracy)]
    last = [f"{result.seconds:.1f}"]
    if not result.recoveries:
        return [first + ["-"] * (len(HEADERS) - 3) + last]
    rows = []
    for k, r in enumerate(result.recoveries):
        rows.append([
            *(first if k == 0 else ["", ""]),
            f"{r.drift.index:,}",
            _pct(r.before),
            _pct(r.dip),
            _pct(r.after),
            _events(r.recovery),
            _events(r.detection) if system or result.detections else "-",
            _events(r.new_model) if result.fits is not None else "-",
            *(last if k == 0 else [""]),
        ])
    return rows


def summary_rows(report: AdaptationReport) -> list[list[str]]:
    rows: list[list[str]] = []
    for result in report.results:
        rows += method_rows(result, system=result.key == "driftloop")
    return rows


LEGEND = (
    "accuracy: % correct over every event after the warm-up; before / dip / settled: % "
    "correct over the window before the drift, the worst window after it, and the last window "
    "before the next drift (or the end); recovered after: events from the drift until a whole "
    "window after the worst is back within the tolerance of 'before' (0: it never fell "
    "further); detected after / new model after: events from "
    "the drift to the first detection / the first prediction by a newer model version; "
    "'-': not applicable or did not happen before the next drift."
)


def caption(report: AdaptationReport) -> str:
    s = report.scenario
    drifts = ", ".join(f"{d.kind} at {d.index:,}" + (f" (width {d.width:,})" if d.width else "")
                       for d in s.drifts)
    return (
        f"scenario {s.name} (seed {s.seed}): {s.generator}; {s.length:,} events, warm-up "
        f"{s.warmup:,}, drifts: {drifts}; labels after {s.label_delay:,} events for "
        f"{100 * s.feedback_rate:.0f}% of requests; accuracy in % over windows of "
        f"{report.window:,} events"
    )


def markdown(report: AdaptationReport) -> str:
    lines = [
        f"_{caption(report)}_",
        "",
        f"_{LEGEND}_",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(HEADERS))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(report)]
    return "\n".join(lines) + "\n"


def to_json(report: AdaptationReport) -> dict[str, Any]:
    s = report.scenario
    return {
        "scenario": {
            "name": s.name, "seed": s.seed, "length": s.length, "warmup": s.warmup,
            "label_delay": s.label_delay, "feedback_rate": s.feedback_rate,
            "generator": s.generator,
            "drifts": [{"index": d.index, "kind": d.kind, "width": d.width, "start": d.start,
                        "end": d.end, "note": d.note} for d in s.drifts],
        },
        "window": report.window,
        "results": [
            {
                "key": r.key, "name": r.name, "accuracy": r.accuracy, "seconds": r.seconds,
                "fits": r.fits, "detections": list(r.detections),
                "windows": [[end, acc] for end, acc in r.windows],
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
