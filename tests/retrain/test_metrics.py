from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.performance import Outcome, Performance
from retrain.metrics import classification_metrics, regression_metrics


def test_classification_scores_are_macro_averages() -> None:
    truth = ["a", "a", "a", "b"]
    pred = ["a", "a", "b", "b"]
    m = classification_metrics(truth, pred)
    assert m["accuracy"] == pytest.approx(0.75)
    # a: precision 1, recall 2/3; b: precision 1/2, recall 1
    assert m["precision"] == pytest.approx((1 + 0.5) / 2)
    assert m["recall"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["f1"] == pytest.approx((0.8 + 2 / 3) / 2)


def test_a_class_never_predicted_scores_zero_precision_without_dividing_by_zero() -> None:
    m = classification_metrics([0, 1, 1], [1, 1, 1])
    assert m["precision"] == pytest.approx((0 + 2 / 3) / 2)
    assert m["recall"] == pytest.approx((0 + 1) / 2)


def test_labels_compare_by_their_json_spelling() -> None:
    assert classification_metrics([True, 1, "1"], [1, True, 1])["accuracy"] == 0.0
    assert classification_metrics([True, 1, "1"], [True, 1, "1"])["accuracy"] == 1.0


def test_regression_scores() -> None:
    m = regression_metrics([1.0, 2.0, 3.0], [1.0, 3.0, 1.0])
    assert m == {"mse": pytest.approx(5 / 3), "mae": pytest.approx(1.0),
                 "rmse": pytest.approx((5 / 3) ** 0.5)}


labels = st.sampled_from([0, 1, 2, "a", True])


@given(st.lists(st.tuples(labels, labels), min_size=1, max_size=60))
def test_the_gate_and_the_monitor_score_classification_alike(pairs: list[tuple[object, object]]
                                                             ) -> None:
    truth, pred = [t for t, _ in pairs], [p for _, p in pairs]
    window = Performance()
    for t, p in pairs:
        window.update(Outcome("classification", predicted=p, label=t))
    assert window.metrics() == pytest.approx(classification_metrics(truth, pred))


@given(st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), min_size=1, max_size=60))
def test_the_gate_and_the_monitor_score_regression_alike(pairs: list[tuple[float, float]]
                                                         ) -> None:
    window = Performance()
    for t, p in pairs:
        window.update(Outcome("regression", predicted=p, label=t))
    batch = regression_metrics([t for t, _ in pairs], [p for _, p in pairs])
    assert window.metrics() == pytest.approx(batch, rel=1e-9, abs=1e-9)


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="2 labels but 1"):
        classification_metrics([1, 2], [1])
