from __future__ import annotations

import pytest

from streams.scores import (
    HEADLINE_ORDER,
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    SCORES,
    better,
    gain,
    headline,
    higher_is_better,
    label_key,
    label_keys,
)


def test_every_score_a_task_reports_has_a_direction() -> None:
    for names in SCORES.values():
        for name in names:
            assert (name in HIGHER_IS_BETTER) != (name in LOWER_IS_BETTER), name
    assert not HIGHER_IS_BETTER & LOWER_IS_BETTER


@pytest.mark.parametrize(("metric", "up"), [
    ("accuracy", True), ("f1", True), ("mse", False), ("mae", False), ("rmse", False),
    ("log_loss", False), ("error_rate", False), ("some_custom_score", True),
])
def test_direction(metric: str, up: bool) -> None:
    assert higher_is_better(metric) is up
    assert better(metric, 2.0, 1.0) is up
    assert better(metric, 1.0, 2.0) is not up
    assert not better(metric, 1.0, 1.0)
    assert gain(metric, 2.0, 1.0) == (1.0 if up else -1.0)


def test_headline_takes_the_first_known_score_a_version_has() -> None:
    assert headline(["recall", "f1", "accuracy"]) == "accuracy"
    assert headline(["mae", "mse"]) == "mse"
    assert headline(["recall", "r2"]) is None
    assert headline([]) is None
    assert set(HEADLINE_ORDER) <= HIGHER_IS_BETTER | LOWER_IS_BETTER


def test_labels_are_the_same_class_only_when_spelled_alike_in_json() -> None:
    assert label_key(1) != label_key(True) != label_key("1")
    assert label_key({"b": 1, "a": 2}) == label_key({"a": 2, "b": 1})
    assert label_keys([1, True, "1", 1, [1, 2]]) == ["1", "true", '"1"', "1", "[1, 2]"]
