"""Data drift of one window against its reference with Evidently 0.7 (the only Evidently user).

Rows are plain dicts (the features, the prediction, and the label when the window has one).
:func:`column_plan` decides each column's type from the values themselves — numbers (not
booleans) are numerical, anything else categorical (compared as text) — and Evidently gets
an explicit ``DataDefinition`` built from it, so its inference never sees request ids or
treats a category as free text. Columns empty on either side are left out.

One report per window: ``DataDriftPreset`` with its tests, so each column gets Evidently's own
method choice (K-S or chi-square below 1,000 reference rows, Wasserstein or Jensen-Shannon
above), score, threshold and drift verdict (the ``ValueDrift`` test failing), and the share of
drifted columns. A window counts as drifted when that share is at or above ``drift_share``,
Evidently's own dataset-drift rule.

Two snapshot forms are returned for the dashboard: ``snapshot`` is ``Snapshot.json()`` (every
metric and test result, a few kB) and, when asked for, ``full_snapshot`` is
``Snapshot.dumps()`` (with the rendered widgets, loadable with ``Snapshot.loads`` and
renderable as HTML, but about 60 kB per column).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd  # type: ignore[import-untyped, unused-ignore]
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

from streams.events import ColumnDrift

log = logging.getLogger(__name__)

ColumnKind = Literal["numerical", "categorical"]


@dataclass(frozen=True)
class DriftResult:
    columns: tuple[ColumnDrift, ...]
    drifted_share: float
    drift_detected: bool
    snapshot: str
    full_snapshot: str | None = None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def column_plan(
    reference: Sequence[Mapping[str, Any]], current: Sequence[Mapping[str, Any]]
) -> dict[str, ColumnKind]:
    """Each column present with values on both sides, and its type."""
    names: dict[str, None] = {}
    for row in (*reference[:1], *current[:1]):
        names.update(dict.fromkeys(row))
    plan: dict[str, ColumnKind] = {}
    for name in names:
        ref = [r[name] for r in reference if r.get(name) is not None]
        cur = [r[name] for r in current if r.get(name) is not None]
        if not ref or not cur:
            continue
        numeric = all(_is_number(v) and math.isfinite(v) for v in (*ref, *cur))
        plan[name] = "numerical" if numeric else "categorical"
    return plan


def _frame(rows: Sequence[Mapping[str, Any]], plan: Mapping[str, ColumnKind]) -> pd.DataFrame:
    data: dict[str, list[Any]] = {}
    for name, kind in plan.items():
        values = [row.get(name) for row in rows]
        if kind == "numerical":
            data[name] = [float(v) if v is not None else math.nan for v in values]
        else:
            data[name] = [json.dumps(v) if not isinstance(v, str) and v is not None else v
                          for v in values]
    return pd.DataFrame(data)


def compare(
    reference: Sequence[Mapping[str, Any]],
    current: Sequence[Mapping[str, Any]],
    *,
    drift_share: float = 0.5,
    full_snapshot: bool = False,
) -> DriftResult:
    """Run Evidently's data drift on ``current`` against ``reference``."""
    plan = column_plan(reference, current)
    if not plan:
        raise ValueError("no column has values in both the reference and the window")
    definition = DataDefinition(
        numerical_columns=[n for n, k in plan.items() if k == "numerical"],
        categorical_columns=[n for n, k in plan.items() if k == "categorical"],
    )
    ref = Dataset.from_pandas(_frame(reference, plan), data_definition=definition)
    cur = Dataset.from_pandas(_frame(current, plan), data_definition=definition)
    report = Report([DataDriftPreset(drift_share=drift_share)], include_tests=True)
    snapshot = report.run(cur, ref)
    summary = snapshot.dict()
    result = _read(summary, drift_share)
    return DriftResult(
        result.columns, result.drifted_share, result.drift_detected,
        snapshot=snapshot.json(), full_snapshot=snapshot.dumps() if full_snapshot else None,
    )


def _read(summary: dict[str, Any], drift_share: float) -> DriftResult:
    failed = {
        t["metric_config"]["metric_id"]: t.get("status") == "FAIL"
        for t in summary.get("tests", [])
        if t.get("id") == "drift"
    }
    columns: list[ColumnDrift] = []
    share: float | None = None
    for metric in summary.get("metrics", []):
        config = metric.get("config", {})
        kind = str(config.get("type", ""))
        if kind.endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif kind.endswith(":ValueDrift"):
            score = float(metric["value"])
            columns.append(ColumnDrift(
                column=str(config["column"]),
                method=str(config.get("method", "")),
                score=score if math.isfinite(score) else 0.0,
                threshold=float(config.get("threshold") or 0.0),
                drifted=failed.get(metric["id"], False),
            ))
    if share is None:
        share = sum(c.drifted for c in columns) / len(columns) if columns else 0.0
    share = min(max(share, 0.0), 1.0)
    return DriftResult(tuple(columns), share, share >= drift_share, snapshot="")
