"""The names of the scores the stages compute and compare, and which way each is better.

The retraining stage scores a challenger and the champion on held-out examples, the monitor
scores each window of live predictions, and the dashboard picks one score to headline. They
compare each other's numbers, so they share one vocabulary:

- classification: ``accuracy`` and the macro averages ``f1``, ``precision``, ``recall``;
- regression: ``mse``, ``mae``, ``rmse``;
- others a trainer may report (``log_loss``, ``error_rate``, ``r2``, ``auc``) keep their usual
  direction. A name not listed here counts as higher-is-better.

Two labels are the same class when their JSON spellings are equal (:func:`label_key`), so
``True``, ``1`` and ``"1"`` are three classes, as they are on the wire.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal

Task = Literal["classification", "regression"]

CLASSIFICATION_SCORES = ("accuracy", "f1", "precision", "recall")
REGRESSION_SCORES = ("mse", "mae", "rmse")
SCORES: dict[str, tuple[str, ...]] = {
    "classification": CLASSIFICATION_SCORES,
    "regression": REGRESSION_SCORES,
}
"""Each task's scores, the preferred one first."""

HIGHER_IS_BETTER = frozenset({"accuracy", "f1", "precision", "recall", "r2", "auc"})
LOWER_IS_BETTER = frozenset({"mse", "mae", "rmse", "log_loss", "error_rate"})

HEADLINE_ORDER = ("accuracy", "f1", "mse", "rmse", "mae")
"""The score a page shows first, whichever task: the first of these a version has."""


def higher_is_better(metric: str) -> bool:
    """Whether a bigger value of ``metric`` is the better one (unknown names: yes)."""
    return metric not in LOWER_IS_BETTER


def better(metric: str, a: float, b: float) -> bool:
    """Whether ``a`` is strictly better than ``b`` as a value of ``metric``."""
    return a > b if higher_is_better(metric) else a < b


def gain(metric: str, new: float, old: float) -> float:
    """How much better ``new`` is than ``old`` (negative when worse), in the metric's units."""
    return new - old if higher_is_better(metric) else old - new


def headline(available: Iterable[str]) -> str | None:
    """The score to show first among ``available`` names (None when it has none of them)."""
    names = set(available)
    return next((m for m in HEADLINE_ORDER if m in names), None)


def label_key(value: Any) -> str:
    """The canonical spelling of a label: equal keys mean the same class."""
    return json.dumps(value, sort_keys=True)


def label_keys(values: Sequence[Any]) -> list[str]:
    """:func:`label_key` of each value, computed once per distinct (type, value)."""
    cache: dict[tuple[type, Any], str] = {}
    keys = []
    for value in values:
        try:
            marker = (type(value), value)
            key = cache.get(marker)
            if key is None:
                key = cache[marker] = label_key(value)
        except TypeError:  # an unhashable label (a list): spell it every time
            key = label_key(value)
        keys.append(key)
    return keys
