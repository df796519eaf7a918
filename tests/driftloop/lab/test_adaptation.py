"""The adaptation benchmark: delayed-label prequential loop, metrics, baselines, report, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from driftloop.lab.adaptation import (
    REGRESSION,
    AdaptationReport,
    accuracy,
    detection_delay,
    drift_recoveries,
    evaluate,
    evaluate_system,
    index_at,
    new_model_delay,
    run_adaptation,
    windowed_accuracy,
    windowed_score,
)
from driftloop.lab.learners import TrainerLearner, default_methods
from driftloop.lab.plot import COLORS, plot_accuracy
from driftloop.lab.prequential import Record, prequential
from driftloop.lab.report import HEADERS, markdown, summary_rows, to_json
from driftloop.lab.scenarios import DriftPoint, Example, Scenario, get_scenario
from retrain.dataset import DatasetPlan
from retrain.mlp import MLPTrainer
from streams.settings import RetrainSettings


class RecordingLearner:
    """Remembers which labels it had learnt each time it was asked to predict."""

    def __init__(self) -> None:
        self.learnt: set[int] = set()
        self.warm: list[int] = []
        self.seen_at_predict: dict[int, frozenset[int]] = {}
        self.train_cpu_s = 0.0

    @property
    def version(self) -> int | None:
        return None

    def warm_up(self, examples: Sequence[Example]) -> None:
        self.warm = [e.index for e in examples]
        self.learnt.update(self.warm)

    def predict(self, index: int, features: Any) -> Any:
        self.seen_at_predict[index] = frozenset(self.learnt)
        return 0

    def learn(self, index: int, features: Any, label: Any) -> None:
        assert index not in self.learnt, "a label was learnt twice"
        self.learnt.add(index)


def tiny(delay: int, rate: float = 0.5) -> Scenario:
    return get_scenario("recurring").resized(400, warmup=50, label_delay=delay).with_feedback(
        feedback_rate=rate)


@pytest.mark.parametrize("delay", [0, 1, 17])
def test_prequential_never_learns_a_label_before_its_delay(delay: int) -> None:
    scenario = tiny(delay)
    examples = list(scenario.examples())
    learner = RecordingLearner()
    records = prequential(examples, learner, warmup=scenario.warmup, label_delay=delay)

    assert learner.warm == list(range(50))
    assert [r.index for r in records] == list(range(50, 400))
    flagged = {e.index for e in examples if e.feedback and e.index >= 50}
    for t in range(50, 400):
        expected = set(range(50)) | {i for i in flagged if i + delay < t}
        assert learner.seen_at_predict[t] == expected, t
    assert [r.label for r in records] == [e.label for e in examples[50:]]


def test_prequential_learns_only_flagged_labels() -> None:
    scenario = tiny(0, rate=0.3)
    examples = list(scenario.examples())
    learner = RecordingLearner()
    prequential(examples, learner, warmup=scenario.warmup, label_delay=0)
    unflagged = {e.index for e in examples if not e.feedback}
    assert unflagged
    assert not (learner.learnt & unflagged)


def rec(index: int, correct: bool, version: int | None = None) -> Record:
    return Record(index, 1 if correct else 0, 1, version)


def test_accuracy_and_windows_on_hand_made_records() -> None:
    # indices 10..29: correct on 10..19, wrong on 20..24, correct on 25..29
    records = [rec(i, not 20 <= i < 25) for i in range(10, 30)]
    assert accuracy(records) == 15 / 20
    assert accuracy(records, 20, 25) == 0.0
    assert accuracy(records, 18, 22) == 0.5
    assert accuracy(records, 100, 200) is None
    assert windowed_accuracy(records, 5) == [(15, 1.0), (20, 1.0), (25, 0.0), (30, 1.0)]
    assert windowed_accuracy(records, 8) == [(18, 1.0), (26, 3 / 8)]
    assert windowed_accuracy(records, 5, start=12, end=27) == [(17, 1.0), (22, 0.6), (27, 0.4)]
    assert windowed_accuracy([], 5) == []


def hand_scenario() -> Scenario:
    return Scenario(
        name="hand", description="", generator="", seed=0, length=40, warmup=10,
        drifts=(DriftPoint(20, "abrupt"), DriftPoint(30, "abrupt")), label_delay=0,
        feedback_rate=1.0, source=lambda s: iter(()),
    )


def test_recovery_per_drift_on_hand_made_records() -> None:
    # 10..19 all correct; from the drift at 20: wrong 20..23, right from 24;
    # from the drift at 30: wrong 30..39 (never recovers before the end).
    correct = {i: (i < 20 or 24 <= i < 30) for i in range(10, 40)}
    versions = {i: 1 if i < 26 else 2 for i in range(10, 40)}
    records = [rec(i, correct[i], versions[i]) for i in range(10, 40)]
    first, second = drift_recoveries(records, hand_scenario(), window=4, tolerance=0.0,
                                     detections=[12, 22, 35])
    assert (first.before, first.dip, first.after) == (1.0, 0.0, 1.0)
    assert first.recovery == 4  # [24, 28) is the first whole window back at 100%
    assert first.new_model == 6  # version 2 answers from 26
    assert first.detection == 2
    assert (second.before, second.dip, second.after) == (1.0, 0.0, 0.0)
    assert second.recovery is None
    assert second.new_model is None
    assert second.detection == 5

    loose = drift_recoveries(records, hand_scenario(), window=4, tolerance=0.5)
    assert loose[0].recovery == 2  # [22, 26) is half right: within 0.5 of 1.0


def test_a_late_dip_is_found_and_recovery_counted_from_it() -> None:
    # A gradual drift at 20: still right over [20, 28), wrong over [28, 32), right again after.
    scenario = Scenario(
        name="late", description="", generator="", seed=0, length=40, warmup=10,
        drifts=(DriftPoint(20, "incremental", width=8),), label_delay=0, feedback_rate=1.0,
        source=lambda s: iter(()),
    )
    records = [rec(i, not 28 <= i < 32) for i in range(10, 40)]
    (late,) = drift_recoveries(records, scenario, window=4, tolerance=0.0)
    assert (late.before, late.dip, late.after) == (1.0, 0.0, 1.0)
    assert late.recovery == 12  # the first whole right window after the worst starts at 32
    (shallow,) = drift_recoveries(records, scenario, window=8, tolerance=0.5)
    assert shallow.dip == 0.5  # [28, 36) is half right: never fell by more than 0.5
    assert shallow.recovery == 0


def test_new_model_and_detection_delays() -> None:
    records = [rec(i, True, v) for i, v in [(0, 1), (5, 2), (10, 2), (15, 1), (20, 3)]]
    assert new_model_delay(records, 8, 100) == 12  # versions before 8 reach 2; 3 comes at 20
    assert new_model_delay(records, 8, 20) is None
    assert new_model_delay(records, 0, 100) == 0  # nothing before: the first version counts
    assert new_model_delay([rec(i, True) for i in range(10)], 3, 10) is None
    assert detection_delay([3, 9, 14], 5, 12) == 4
    assert detection_delay([3, 14], 5, 12) is None


def test_the_real_system_hook_measures_like_the_baselines() -> None:
    scenario = hand_scenario()
    predictions = [(i, 1 if (i < 20 or i >= 24) else 0, 1, 1 if i < 22 else 2)
                   for i in range(10, 40)]
    result = evaluate_system(predictions, scenario, detections=[21], window=5)
    same = evaluate("driftloop", result.name, [Record(*p) for p in predictions], scenario,
                    window=5, detections=[21])
    assert result == same
    assert result.accuracy == 26 / 30
    assert result.recoveries[0].detection == 1
    assert result.recoveries[0].new_model == 2
    assert result.fits == 2
    row = summary_rows(AdaptationReport(scenario, 5, (result,)))[0]
    assert row[:3] == [result.name, "86.7", "20"]
    assert row[7:9] == ["1", "2"]


def test_index_at_maps_times_to_the_last_event_sent() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    sent = [(t0 + timedelta(seconds=i), 100 + i) for i in range(5)]
    assert index_at(sent, t0 - timedelta(seconds=1)) == -1
    assert index_at(sent, t0) == 100
    assert index_at(sent, t0 + timedelta(seconds=2.5)) == 102
    assert index_at(sent, t0 + timedelta(hours=1)) == 104


def fast_settings() -> RetrainSettings:
    return RetrainSettings(epochs=3, patience=2, hidden=(16,), min_examples=50)


def test_periodic_trainer_refits_on_schedule_and_versions_its_predictions(
    tmp_path: Path,
) -> None:
    scenario = get_scenario("abrupt").resized(1_300, warmup=300, label_delay=20)
    settings = fast_settings()
    learner = TrainerLearner(MLPTrainer(settings), DatasetPlan.from_settings(settings),
                             tmp_path, period=400)
    records = prequential(scenario.examples(), learner, warmup=scenario.warmup,
                          label_delay=scenario.label_delay)
    assert learner.fits == [300, 700, 1_100]
    by_index = {r.index: r.model_version for r in records}
    assert {by_index[i] for i in range(300, 700)} == {1}
    assert {by_index[i] for i in range(700, 1_100)} == {2}
    assert {by_index[i] for i in range(1_100, 1_300)} == {3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1", "v2", "v3"]


def test_initial_model_is_never_refitted(tmp_path: Path) -> None:
    scenario = get_scenario("abrupt").resized(800, warmup=300)
    settings = fast_settings()
    learner = TrainerLearner(MLPTrainer(settings), DatasetPlan.from_settings(settings), tmp_path)
    records = prequential(scenario.examples(), learner, warmup=scenario.warmup,
                          label_delay=scenario.label_delay)
    assert {r.model_version for r in records} == {1}
    assert learner.fits == [300]


def test_run_adaptation_report_and_plot(tmp_path: Path) -> None:
    scenario = get_scenario("abrupt").resized(4_000)
    methods = [m for m in default_methods(RetrainSettings(min_examples=50), scenario, seed=1,
                                          period=500)
               if m.key in ("initial", "hat", "logreg")]
    seen: list[str] = []
    report = run_adaptation(scenario, methods, window=200, done=lambda r: seen.append(r.key))
    assert seen == ["initial", "hat", "logreg"]
    assert [r.key for r in report.results] == seen
    for result in report.results:
        assert [end for end, _ in result.windows] == list(range(600, 4_001, 200))
        assert len(result.recoveries) == 2
        assert result.accuracy is not None
    assert report.results[0].fits == 1
    assert report.results[1].fits is None
    # Agrawal's switch from function 6 to 0 takes the initial model down to a coin flip for
    # good; the online tree climbs back.
    initial, tree = report.results[0].recoveries[0], report.results[1].recoveries[0]
    assert initial.before is not None
    assert initial.dip is not None
    assert initial.after is not None
    assert initial.before > 0.8
    assert initial.dip < 0.6
    assert initial.after < 0.6
    assert initial.recovery is None
    assert tree.after is not None
    assert tree.dip is not None
    assert tree.after > tree.dip + 0.2

    table = markdown(report)
    assert table.count("\n| initial model, never retrained |") == 1
    assert len(summary_rows(report)) == 3 * 2
    dumped = json.loads(json.dumps(to_json(report)))
    assert dumped["results"][1]["key"] == "hat"

    png = plot_accuracy(report, tmp_path / "plot.png", size=(700, 350))
    image = Image.open(png).convert("RGB")
    assert image.size == (700, 350)
    colors = {c for _, c in image.getcolors(maxcolors=1 << 20)}
    for key in ("initial", "hat", "logreg"):
        assert COLORS[key] in colors


def test_bench_command_writes_table_plot_and_data(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "driftloop.cli", "bench", "adaptation",
         "--scenario", "recurring", "--length", "2000", "--method", "logreg",
         "--window", "200", "--out-dir", str(tmp_path), "--no-system"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "River logistic regression" in result.stdout
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["adaptation-recurring.json", "adaptation-recurring.md",
                     "adaptation-recurring.png"]
    data = json.loads((tmp_path / "adaptation-recurring.json").read_text())
    assert data["scenario"]["length"] == 2_000
    assert [r["key"] for r in data["results"]] == ["logreg"]

    bad = subprocess.run(
        [sys.executable, "-m", "driftloop.cli", "bench", "adaptation",
         "--scenario", "recurring", "--method", "svm", "--out-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert bad.returncode != 0
    assert "unknown method svm" in bad.stderr


def test_worker_processes_give_the_same_results() -> None:
    scenario = get_scenario("recurring").resized(1_500)
    methods = [m for m in default_methods(fast_settings(), scenario, seed=1, period=500)
               if m.key in ("hat", "logreg")]
    alone = run_adaptation(scenario, methods, window=250)
    pooled = run_adaptation(scenario, methods, window=250, jobs=2)
    assert [r.key for r in pooled.results] == ["hat", "logreg"]
    for a, b in zip(alone.results, pooled.results, strict=True):
        assert (a.accuracy, a.windows, a.recoveries) == (b.accuracy, b.windows, b.recoveries)


# -- regression, multi-class, failures and training CPU ----------------------------------------


def regression_scenario() -> Scenario:
    return Scenario(
        name="values", description="", generator="", seed=0, length=40, warmup=10,
        drifts=(DriftPoint(20, "abrupt"),), label_delay=0, feedback_rate=1.0,
        source=lambda s: iter(()), task="regression", classes=0,
    )


def test_regression_is_scored_by_mae_and_rmse_on_hand_made_records() -> None:
    # Errors of 1 on 10..19, of 4 on 20..23, of 1 again from 24.
    records = [Record(i, 10.0 + (4 if 20 <= i < 24 else 1), 10.0) for i in range(10, 40)]
    result = evaluate("m", "m", records, regression_scenario(), window=4, tolerance=0.0)
    assert result.accuracy is None
    assert result.score == result.mae == pytest.approx((26 * 1 + 4 * 4) / 30)
    assert result.rmse == pytest.approx(((26 * 1 + 4 * 16) / 30) ** 0.5)
    (drift,) = result.recoveries
    assert (drift.before, drift.dip, drift.after) == (1.0, 4.0, 1.0)  # the worst is the highest
    assert drift.recovery == 4
    # The tolerance of a regression is a share of the MAE before the drift.
    assert windowed_score(records, 10, start=10, scoring=REGRESSION) == [
        (20, 1.0), (30, pytest.approx(2.2)), (40, 1.0)]
    loose = evaluate("m", "m", records, regression_scenario(), window=10, tolerance=1.5)
    assert loose.recoveries[0].recovery == 0  # 2.2 is within 150% above 1.0


def test_a_value_output_artifact_is_predicted_and_scored(tmp_path: Path) -> None:
    scenario = get_scenario("friedman").resized(2_000, warmup=600, label_delay=20)
    settings = RetrainSettings(epochs=30, patience=5, hidden=(32,), min_examples=50)
    learner = TrainerLearner(MLPTrainer(settings), DatasetPlan.from_settings(settings),
                             tmp_path)
    records = prequential(scenario.examples(), learner, warmup=scenario.warmup,
                          label_delay=scenario.label_delay)
    assert all(type(r.predicted) is float for r in records)
    result = evaluate("initial", "initial", records, scenario, window=200)
    assert result.task == "regression"
    assert result.accuracy is None
    assert result.mae is not None
    assert result.rmse is not None
    assert result.rmse >= result.mae
    # Better than always answering the warm-up's mean: the outputs are scaled back to labels.
    labels = [e.label for e in scenario.warmup_examples()]
    mean = sum(labels) / len(labels)
    before = [r for r in records if r.index < scenario.drifts[0].start]
    guess = sum(abs(mean - r.label) for r in before) / len(before)
    mae_before = sum(abs(r.predicted - r.label) for r in before) / len(before)
    assert mae_before < 0.8 * guess
    rows = summary_rows(AdaptationReport(scenario, 200, (result,)))
    assert rows[0][1:3] == [f"{result.mae:.3f}", f"{result.rmse:.3f}"]


def test_the_regression_baselines_are_river_regressors() -> None:
    scenario = get_scenario("friedman").resized(1_500)
    methods = default_methods(fast_settings(), scenario, period=500)
    assert [m.key for m in methods] == ["initial", "periodic", "hat", "arf", "linreg"]
    report = run_adaptation(scenario, [m for m in methods if m.key in ("hat", "linreg")],
                            window=250)
    for result in report.results:
        assert result.error is None
        assert result.mae is not None
        assert 0 < result.mae < 5
    table = markdown(report)
    assert "| method | MAE | RMSE | drift at |" in table
    assert "River linear regression" in table


def test_multi_class_streams_get_a_logistic_baseline_that_predicts_real_classes() -> None:
    led = get_scenario("led").resized(3_000)
    by_key = {m.key: m for m in default_methods(fast_settings(), led)}
    assert by_key["logreg"].name == "River logistic regression (one-vs-rest)"
    report = run_adaptation(led, [by_key["logreg"]], window=300)
    (result,) = report.results
    records = prequential(led.examples(), by_key["logreg"].build(Path(".")), warmup=led.warmup,
                          label_delay=led.label_delay)
    predicted = {r.predicted for r in records}
    assert predicted <= set(range(10))
    assert len(predicted) == 10
    # A plain noisy display before the first drift: three digits in four are read right.
    assert result.recoveries[0].before is not None
    assert result.recoveries[0].before > 0.6
    binary = {m.key: m.name for m in default_methods(fast_settings(), get_scenario("sea"))}
    assert binary["logreg"] == "River logistic regression"


class Broken:
    """A learner that fails half-way through the stream."""

    version = None
    train_cpu_s = 0.0

    def warm_up(self, examples: Sequence[Example]) -> None:
        pass

    def predict(self, index: int, features: Any) -> Any:
        if index >= 300:
            raise IndexError("tuple index out of range")
        return 0

    def learn(self, index: int, features: Any, label: Any) -> None:
        pass


def broken(_workdir: Path) -> Broken:
    return Broken()


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_method_that_fails_keeps_its_row_and_the_others_results(jobs: int,
                                                                   tmp_path: Path) -> None:
    from driftloop.lab.learners import Method

    scenario = get_scenario("recurring").resized(1_000)
    methods = [Method("broken", "broken learner", broken),
               *(m for m in default_methods(fast_settings(), scenario) if m.key == "hat")]
    report = run_adaptation(scenario, methods, window=200, jobs=jobs)
    failed, tree = report.results
    assert failed.error == "IndexError: tuple index out of range"
    assert failed.accuracy is None
    assert tree.error is None
    assert tree.accuracy is not None
    rows = summary_rows(report)
    assert rows[0][:2] == ["broken learner", "failed: IndexError: tuple index out of range"]
    assert len(rows[0]) == len(rows[1])
    assert to_json(report)["results"][0]["error"] == failed.error
    plot_accuracy(report, tmp_path / "plot.png", size=(700, 350))


def test_every_row_shows_the_cpu_seconds_spent_training_per_thousand_events() -> None:
    scenario = get_scenario("abrupt").resized(2_000, warmup=300, label_delay=20)
    methods = [m for m in default_methods(fast_settings(), scenario, period=500)
               if m.key in ("initial", "periodic", "hat")]
    report = run_adaptation(scenario, methods, window=200)
    initial, periodic, tree = report.results
    assert initial.train_cpu_s == 0.0  # the warm-up's training is not counted
    assert periodic.train_cpu_s is not None
    assert periodic.train_cpu_s > 0
    assert tree.train_cpu_s is not None
    assert tree.train_cpu_s > 0
    assert periodic.events == tree.events == 1_700
    assert periodic.cpu_per_1k == pytest.approx(1_000 * periodic.train_cpu_s / 1_700)
    column = HEADERS.index("train CPU s / 1k events")
    rows = summary_rows(report)
    first_rows = [rows[0], rows[2], rows[4]]
    assert [r[column] for r in first_rows] == [
        "0.00", f"{periodic.cpu_per_1k:.2f}", f"{tree.cpu_per_1k:.2f}"]
    assert "train CPU s / 1k events" in markdown(report)
    data = to_json(report)["results"]
    assert [r["train_cpu_s_per_1k_events"] for r in data] == [
        0.0, periodic.cpu_per_1k, tree.cpu_per_1k]


def test_bench_command_scores_a_regression_by_mae(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "driftloop.cli", "bench", "adaptation",
         "--scenario", "friedman", "--length", "1500", "--method", "linreg",
         "--window", "250", "--out-dir", str(tmp_path), "--no-system"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "River linear regression" in result.stdout
    data = json.loads((tmp_path / "adaptation-friedman.json").read_text())
    assert data["score"] == "MAE"
    (linear,) = data["results"]
    assert linear["accuracy"] is None
    assert linear["mae"] > 0
    assert linear["rmse"] >= linear["mae"]
    assert linear["train_cpu_s_per_1k_events"] > 0
    assert "| method | MAE | RMSE |" in (tmp_path / "adaptation-friedman.md").read_text()
