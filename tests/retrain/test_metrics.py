from __future__ import annotations

import pytest

from retrain.metrics import classification_metrics, higher_is_better, regression_metrics


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
    assert m == {"mse": pytest.approx(5 / 3), "mae": pytest.approx(1.0)}


def test_direction_of_each_metric() -> None:
    assert higher_is_better("accuracy")
    assert higher_is_better("f1")
    assert not higher_is_better("mse")
    assert not higher_is_better("mae")


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="2 labels but 1"):
        classification_metrics([1, 2], [1])
