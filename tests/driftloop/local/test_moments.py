"""The key moments a person watching the loop is shown, from events, runs and accuracy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from driftloop.local.moments import Accuracy, KeyMoments, window_score, windowed_accuracy
from retrain.runs import RunInfo
from streams.db import Database
from streams.events import DriftReport, ModelPromoted, RetrainRequested
from streams.store import ExampleRow

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SHA = "0" * 64


def _at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def _run(run_id: int, status: str, decision: str | None = None,
         version: int | None = None) -> RunInfo:
    return RunInfo(run_id, "m", "request", "req", status, decision, version, "cpu",
                   {"holdout": {"reason": "does not beat the champion"}}, None, "", _at(0),
                   _at(1) if status != "running" else None)


def _kinds(tracker: KeyMoments) -> list[str]:
    return [m.kind for m in tracker.moments]


def test_drift_retraining_promotion_and_recovery_in_order() -> None:
    t = KeyMoments("m", tolerance=0.05, min_rows=100)
    for s, value in enumerate([0.95, 0.97, 0.96]):
        assert _kinds(t.update(Accuracy(value, 500, _at(s)))) == []
    t.update(Accuracy(0.70, 500, _at(3)))
    request = RetrainRequested(event_id="r1", model="m", champion_version=1,
                               reasons=("detector:adwin",), timestamp=_at(4))
    assert _kinds(t.update(request)) == ["drift", "requested"]
    assert t.level == pytest.approx(0.955), "the median window before the drift"
    assert _kinds(t.update(request)) == ["requested"], "one drift until it is over"
    assert _kinds(t.update(_run(2, "running"))) == ["training"]
    assert _kinds(t.update(_run(2, "running"))) == []
    assert _kinds(t.update(_run(2, "succeeded", "promoted", 2))) == []
    assert _kinds(t.update(Accuracy(0.50, 500, _at(5)))) == []
    assert _kinds(t.update(Accuracy(0.95, 500, _at(6)))) == [], "not before a promotion"
    assert t.judged_version is None, "every version's examples until a promotion"
    promoted = ModelPromoted(event_id="p2", model="m", version=2, previous_version=1,
                             artifact_uri="file:///a", sha256=SHA, reason="request: better",
                             timestamp=_at(7))
    assert [m.text for m in t.update(promoted).moments] == ["promoted v2 (request: better)"]
    assert t.judged_version == 2, "recovery is the new champion's own record"
    assert _kinds(t.update(Accuracy(0.90, 500, _at(8)))) == [], "below 0.955 - 0.05"
    [recovered] = t.update(Accuracy(0.93, 500, _at(9))).moments
    assert recovered.kind == "recovered"
    assert "93.0%" in recovered.text
    assert "before the drift 95.5%" in recovered.text
    assert "lowest 50.0%" in recovered.text
    assert not t.drifting
    assert t.judged_version is None


def test_reports_rejections_and_other_models() -> None:
    t = KeyMoments("m")
    quiet = DriftReport(event_id="d0", model="m", window_id="w0", window_start=_at(0),
                        window_end=_at(1), rows=500, drifted_share=0.1, drift_detected=False,
                        timestamp=_at(1))
    assert _kinds(t.update(quiet)) == []
    other = quiet.model_copy(update={"model": "other", "alarms": ("adwin",)})
    assert _kinds(t.update(other)) == []
    data = quiet.model_copy(update={"drift_detected": True, "drifted_share": 0.5,
                                    "model_version": 1})
    assert _kinds(t.update(data)) == ["data_drift"]
    assert _kinds(t.update(data)) == [], "once per version"
    assert not t.drifting
    alarm = quiet.model_copy(update={"alarms": ("adwin",), "performance": {"accuracy": 0.6}})
    [drift] = t.update(alarm).moments
    assert drift.text == "drift detected in window w0 (detectors adwin, window accuracy 60.0%)"
    [rejected] = t.update(_run(3, "succeeded", "rejected", 3)).moments
    assert rejected.text == "challenger v3 rejected: does not beat the champion"


def test_a_regression_model_is_followed_by_its_mae() -> None:
    t = KeyMoments("m", tolerance=0.1, min_rows=100)
    for s, value in enumerate([1.6, 1.5, 1.55]):
        t.update(Accuracy(value, 500, _at(s), "mae"))
    assert t.accuracy is not None
    assert t.accuracy.describe() == "MAE 1.550"
    request = RetrainRequested(event_id="r1", model="m", champion_version=1,
                               reasons=("detector:adwin",), timestamp=_at(4))
    t.update(request)
    assert t.level == 1.55, "the median MAE before the drift"
    t.update(Accuracy(4.0, 500, _at(5), "mae"))
    promoted = ModelPromoted(event_id="p2", model="m", version=2, previous_version=1,
                             artifact_uri="file:///a", sha256=SHA, reason="request: better",
                             timestamp=_at(7))
    t.update(promoted)
    assert _kinds(t.update(Accuracy(1.75, 500, _at(8), "mae"))) == [], "above 1.55 * 1.1"
    [recovered] = t.update(Accuracy(1.6, 500, _at(9), "mae")).moments
    assert recovered.text == ("MAE recovered: 1.600 over the last 500 labels (before the "
                              "drift 1.550, highest 4.000)")


def test_the_window_score_is_an_mae_when_the_labels_are_quantities() -> None:
    assert window_score([(1, 1), (0, 1), ("a", "a"), ("b", "a")]) == (0.5, 4, "accuracy")
    assert window_score([(1.5, 1.0), (2.0, 3.0), (None, 2.5)]) == (0.75, 2, "mae")
    assert window_score([]) is None


def test_the_windowed_accuracy_can_judge_one_version_alone(database: Database) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    # v1 is right on 2 of its 4 newest examples, v2 on all 3 of its own; v0 is untrained.
    served = [(0, 1, 0), (1, 1, 1), (1, 0, 1), (2, 1, 1), (1, 1, 1), (2, 0, 0), (1, 0, 1),
              (2, 1, 1)]
    with database.session() as session:
        session.add_all(ExampleRow(
            model="m", request_id=f"r{i}", model_version=v, features={}, predicted=p, label=y,
            label_source="label", label_rank=0, label_event_id=f"e{i}", label_timestamp=now,
            prediction_timestamp=now, updated_at=now) for i, (v, p, y) in enumerate(served))

    assert windowed_accuracy(database, "m", 100) == (5 / 7, 7, "accuracy")
    assert windowed_accuracy(database, "m", 100, version=2) == (1.0, 3, "accuracy")
    assert windowed_accuracy(database, "m", 2, version=1) == (0.5, 2, "accuracy")
    assert windowed_accuracy(database, "m", 100, version=3) is None
