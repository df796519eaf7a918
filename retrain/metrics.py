"""Batch scores of predictions against true labels, for validation and the holdout gate.

The names and their direction are :mod:`streams.scores`'s, shared with the monitor's windows.
scikit-learn computes them: classification scores are accuracy and the macro averages of
precision, recall and F1 over every class that occurs in the true labels or the predictions
(a class never predicted has precision 0, no warning), labels compared by their JSON spelling
(:func:`streams.scores.label_key`); regression scores are MSE, MAE and RMSE.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
)

from streams.scores import label_keys


def classification_metrics(y_true: Sequence[Any], y_pred: Sequence[Any]) -> dict[str, float]:
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    if not y_true:
        return {}
    truth, pred = label_keys(y_true), label_keys(y_pred)
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, pred, average="macro", zero_division=0.0)
    return {
        "accuracy": float(accuracy_score(truth, pred)),
        "f1": float(f1),
        "precision": float(precision),
        "recall": float(recall),
    }


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} targets but {len(y_pred)} predictions")
    if not y_true:
        return {}
    truth = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    mse = float(mean_squared_error(truth, pred))
    return {"mse": mse, "mae": float(mean_absolute_error(truth, pred)), "rmse": math.sqrt(mse)}

