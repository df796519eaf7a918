"""Window scores match the textbook definitions; errors for the detectors are 0 or 1."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from monitor.performance import ErrorScale, Outcome, Performance

labels = st.sampled_from(["a", "b", "c", 1, True])


@given(pairs=st.lists(st.tuples(labels, labels), min_size=1, max_size=50))
def test_classification_scores_are_the_macro_averages(pairs: list[tuple[object, object]]) -> None:
    perf = Performance()
    for predicted, truth in pairs:
        perf.update(Outcome("classification", predicted, truth))
    truth = [repr(t) for _, t in pairs]
    guess = [repr(p) for p, _ in pairs]
    got = perf.metrics()
    assert got["accuracy"] == pytest.approx(accuracy_score(truth, guess))
    for name, fn in (("precision", precision_score), ("recall", recall_score),
                     ("f1", f1_score)):
        assert got[name] == pytest.approx(fn(truth, guess, average="macro", zero_division=0))


def test_true_one_and_text_one_are_different_classes() -> None:
    perf = Performance().update(Outcome("classification", 1, True)).update(
        Outcome("classification", "1", 1))
    assert perf.metrics()["accuracy"] == 0.0


def test_regression_scores() -> None:
    perf = Performance()
    for predicted, truth in [(1.0, 2.0), (3.0, 3.0), (0.0, 2.0)]:
        perf.update(Outcome("regression", predicted, truth))
    assert perf.metrics() == pytest.approx({"mse": 5 / 3, "mae": 1.0, "rmse": math.sqrt(5 / 3)})
    assert Performance.from_state(perf.state()).metrics() == perf.metrics()


def test_regression_errors_wait_for_calibration_then_all_come_out() -> None:
    scale = ErrorScale(calibration=4)
    out = []
    for i, error in enumerate([1.0, 1.0, 1.0, 5.0, 0.5, 9.0], start=1):
        out.append(scale.errors(Outcome("regression", error, 0.0), i))
    assert out[:3] == [[], [], []]
    assert scale.mae == 2.0
    assert out[3] == [(1, 0.0), (2, 0.0), (3, 0.0), (4, 1.0)]
    assert out[4:] == [[(5, 0.0)], [(6, 1.0)]]
    restored = ErrorScale.from_state(scale.state())
    assert restored.error(Outcome("regression", 4.5, 0.0)) == 1.0


def test_a_known_champion_mae_needs_no_calibration() -> None:
    scale = ErrorScale(mae=1.0)
    assert scale.errors(Outcome("regression", 3.0, 0.0), 7) == [(7, 1.0)]
    assert ErrorScale().errors(Outcome("classification", "a", "b"), 1) == [(1, 1.0)]
