from __future__ import annotations

from retrain.decision import Evaluation, decide, pick_rollback_metric, rollback_verdict


def _clf(accuracy: float, *, predicted: int = 2, finite: bool = True) -> Evaluation:
    return Evaluation({"accuracy": accuracy, "f1": accuracy}, rows=100, finite=finite,
                      predicted_classes=predicted, true_classes=2)


def test_the_first_sane_model_of_a_name_is_promoted() -> None:
    d = decide(_clf(0.6), None, task="classification", metric="accuracy", margin=0.1)
    assert d.promote
    assert "first model" in d.reason


def test_a_challenger_must_beat_the_champion_by_more_than_the_margin() -> None:
    assert decide(_clf(0.86), _clf(0.80), task="classification", metric="accuracy",
                  margin=0.05).promote
    d = decide(_clf(0.84), _clf(0.80), task="classification", metric="accuracy", margin=0.05)
    assert not d.promote
    assert "0.8400 vs champion 0.8000" in d.reason
    assert d.record()["champion"]["accuracy"] == 0.80


def test_a_tie_is_not_a_win() -> None:
    assert not decide(_clf(0.8), _clf(0.8), task="classification", metric="accuracy",
                      margin=0.0).promote


def test_class_collapse_and_non_finite_outputs_are_rejected_even_for_a_first_model() -> None:
    collapsed = decide(_clf(0.9, predicted=1), None, task="classification", metric="accuracy",
                       margin=0)
    assert not collapsed.promote
    assert "class collapse" in collapsed.reason
    broken = decide(_clf(0.9, finite=False), None, task="classification", metric="accuracy",
                    margin=0)
    assert not broken.promote
    assert "non-finite" in broken.reason


def test_lower_is_better_for_errors() -> None:
    new = Evaluation({"mse": 1.0}, rows=10, prediction_spread=1, target_spread=1)
    old = Evaluation({"mse": 2.0}, rows=10, prediction_spread=1, target_spread=1)
    assert decide(new, old, task="regression", metric="mse", margin=0.5).promote
    assert not decide(old, new, task="regression", metric="mse", margin=0.0).promote
    flat = Evaluation({"mse": 0.1}, rows=10, prediction_spread=0, target_spread=1)
    assert not decide(flat, None, task="regression", metric="mse", margin=0).promote


def test_an_unscorable_champion_lets_a_sane_challenger_through() -> None:
    d = decide(_clf(0.7), None, task="classification", metric="accuracy", margin=0,
               champion_error="missing features ['age']")
    assert d.promote
    assert "could not be scored" in d.reason


def test_rollback_when_the_new_champion_falls_below_the_old_by_the_margin() -> None:
    old = [{"accuracy": 0.90}, {"accuracy": 0.88}]
    assert rollback_verdict(old, [{"accuracy": 0.70}], margin=0.05, windows=2) is None
    verdict = rollback_verdict(old, [{"accuracy": 0.70}, {"accuracy": 0.74}], margin=0.05,
                               windows=2)
    assert verdict is not None
    assert verdict.metric == "accuracy"
    assert verdict.new_score == 0.72
    assert verdict.old_score == 0.89
    assert rollback_verdict(old, [{"accuracy": 0.86}, {"accuracy": 0.86}], margin=0.05,
                            windows=2) is None


def test_rollback_on_errors_that_grow() -> None:
    old = [{"mae": 1.0}]
    assert rollback_verdict(old, [{"mae": 1.5}], margin=0.2, windows=1) is not None
    assert rollback_verdict(old, [{"mae": 0.5}], margin=0.2, windows=1) is None


def test_the_rollback_metric_is_one_every_report_carries() -> None:
    assert pick_rollback_metric([{"f1": 1.0, "accuracy": 1.0}, {"f1": 1.0}], None) == "f1"
    assert pick_rollback_metric([{"custom": 1.0}], None) is None
    assert pick_rollback_metric([{"custom": 1.0}], "custom") == "custom"
