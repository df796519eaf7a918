"""The Evidently adapter: explicit column types, per-column verdicts, the drifted share."""

from __future__ import annotations

import json
import random

from monitor.evidently_drift import column_plan, compare


def rows(n: int, seed: int, *, shift: float = 0.0, plans: tuple[str, ...] = ("a", "b"),
         with_label: bool = True) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out: list[dict[str, object]] = []
    for _ in range(n):
        row: dict[str, object] = {
            "x": rng.gauss(shift, 1.0), "y": rng.gauss(0.0, 1.0),
            "plan": rng.choice(plans), "count": rng.randint(0, 20),
            "prediction": rng.choice(["stay", "leave"]),
        }
        if with_label:
            row["label"] = rng.choice([0, 1])
        out.append(row)
    return out


def test_column_types_come_from_the_values() -> None:
    ref = [{"n": 1, "f": 0.5, "s": "a", "b": True, "mixed": 1, "gone": None, "prediction": 2}]
    cur = [{"n": 3, "f": 1, "s": "b", "b": False, "mixed": "x", "gone": None, "prediction": 1}]
    assert column_plan(ref, cur) == {"n": "numerical", "f": "numerical", "s": "categorical",
                                     "b": "categorical", "mixed": "categorical",
                                     "prediction": "numerical"}


def test_a_shifted_feature_drifts_and_the_others_do_not() -> None:
    # Each unshifted column is a test at the 5% level: seeds 1/2 and 10/20 each show one
    # false positive; 11/12 show none, which is what this test pins.
    result = compare(rows(800, 11), rows(400, 12, shift=1.5))
    verdicts = {c.column: c.drifted for c in result.columns}
    assert verdicts == {"x": True, "y": False, "plan": False, "count": False,
                        "prediction": False, "label": False}
    x = next(c for c in result.columns if c.column == "x")
    assert (x.method, x.threshold) == ("K-S p_value", 0.05)
    assert x.score < 0.05
    assert result.drifted_share == 1 / 6
    assert not result.drift_detected
    summary = json.loads(result.snapshot)
    assert {m["config"]["type"].split(":")[-1] for m in summary["metrics"]} == {
        "DriftedColumnsCount", "ValueDrift"}
    assert result.full_snapshot is None


def test_most_columns_drifting_is_a_drifted_window() -> None:
    ref = rows(1500, 3)
    cur = [dict(r, y=float(r["y"]) + 3.0, plan="z", count=int(r["count"]) + 50)  # type: ignore[call-overload]
           for r in rows(600, 4, shift=2.0)]
    result = compare(ref, cur, drift_share=0.5, full_snapshot=True)
    drifted = {c.column for c in result.columns if c.drifted}
    assert drifted == {"x", "y", "plan", "count"}
    # Above 1,000 reference rows Evidently switches to distances.
    assert {c.method for c in result.columns if c.column in ("x", "y")} == {
        "Wasserstein distance (normed)"}
    assert result.drift_detected
    assert result.drifted_share == 4 / 6
    assert result.full_snapshot
    assert json.loads(result.full_snapshot)["metric_results"]


def test_a_window_without_labels_is_compared_on_what_it_has() -> None:
    result = compare(rows(300, 5), rows(100, 6, with_label=False))
    assert "label" not in {c.column for c in result.columns}
