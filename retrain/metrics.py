"""Scores of predictions against true labels: accuracy, F1, precision, recall; MSE, MAE.

Pure numpy. Classification scores are macro averages over every class that occurs in the
true labels or the predictions; a class never predicted has precision 0 (no division by zero).
Labels are compared by their JSON spelling, so ``True``, ``1`` and ``"1"`` are three classes,
as they are on the wire.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

HIGHER_IS_BETTER = frozenset({"accuracy", "f1", "precision", "recall", "r2", "auc"})
LOWER_IS_BETTER = frozenset({"mse", "mae", "rmse", "log_loss", "error_rate"})
CLASSIFICATION_METRICS = ("accuracy", "f1", "precision", "recall")
REGRESSION_METRICS = ("mse", "mae")


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


def higher_is_better(metric: str) -> bool:
    """Whether a bigger value of ``metric`` is the better one (unknown names: yes)."""
    return metric not in LOWER_IS_BETTER


def classification_metrics(y_true: Sequence[Any], y_pred: Sequence[Any]) -> dict[str, float]:
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    if not y_true:
        return {}
    truth, pred = label_keys(y_true), label_keys(y_pred)
    hit_counts = Counter(t for t, p in zip(truth, pred, strict=True) if t == p)
    true_counts, pred_counts = Counter(truth), Counter(pred)
    precisions, recalls, f1s = [], [], []
    for cls in sorted(true_counts.keys() | pred_counts.keys()):
        tp = hit_counts[cls]
        precision = tp / pred_counts[cls] if pred_counts[cls] else 0.0
        recall = tp / true_counts[cls] if true_counts[cls] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(f1)
    return {
        "accuracy": sum(hit_counts.values()) / len(truth),
        "f1": float(np.mean(f1s)),
        "precision": float(np.mean(precisions)),
        "recall": float(np.mean(recalls)),
    }


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} targets but {len(y_pred)} predictions")
    if not y_true:
        return {}
    err = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return {"mse": float(np.mean(err**2)), "mae": float(np.mean(np.abs(err)))}


def all_finite(values: Sequence[float]) -> bool:
    return all(math.isfinite(v) for v in values)
