"""How right a model was over a window, and each example's error for the detectors (pure).

Classification scores are accuracy and the macro averages of precision, recall and F1 over
every class seen in the labels or the predictions (a class never predicted has precision 0),
labels compared by their JSON spelling — the same definitions the retraining stage uses for
the champion's validation scores, so the two can be compared. Regression scores are MSE, MAE
and RMSE. Their names and directions are :mod:`streams.scores`'s.

The per-example error fed to the River detectors is 0 or 1 for both tasks: a wrong class, or
a regression error larger than a tolerance (twice the typical absolute error, see
:class:`ErrorScale`). One Bernoulli error stream lets one set of detector thresholds work for
every model, whatever the scale of its target.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from streams.scores import Task, label_key


@dataclass(frozen=True)
class Outcome:
    """One labelled prediction."""

    task: Task
    predicted: Any
    label: Any

    @property
    def hit(self) -> bool:
        return label_key(self.predicted) == label_key(self.label)

    @property
    def abs_error(self) -> float:
        return abs(float(self.predicted) - float(self.label))


@dataclass
class Performance:
    """Accumulates outcomes; ``metrics()`` gives the scores so far."""

    task: Task | None = None
    n: int = 0
    hits: Counter[str] = field(default_factory=Counter)
    truths: Counter[str] = field(default_factory=Counter)
    guesses: Counter[str] = field(default_factory=Counter)
    sum_sq: float = 0.0
    sum_abs: float = 0.0

    def update(self, outcome: Outcome) -> Performance:
        if self.task is None:
            self.task = outcome.task
        if outcome.task != self.task:
            return self  # a window never mixes tasks; a stray row is ignored
        self.n += 1
        if outcome.task == "classification":
            truth, guess = label_key(outcome.label), label_key(outcome.predicted)
            self.truths[truth] += 1
            self.guesses[guess] += 1
            if truth == guess:
                self.hits[truth] += 1
        else:
            error = float(outcome.predicted) - float(outcome.label)
            self.sum_sq += error * error
            self.sum_abs += abs(error)
        return self

    def metrics(self) -> dict[str, float]:
        if not self.n:
            return {}
        if self.task == "regression":
            mse = self.sum_sq / self.n
            return {"mse": mse, "mae": self.sum_abs / self.n, "rmse": math.sqrt(mse)}
        precisions, recalls, f1s = [], [], []
        for cls in sorted(self.truths.keys() | self.guesses.keys()):
            tp = self.hits[cls]
            precision = tp / self.guesses[cls] if self.guesses[cls] else 0.0
            recall = tp / self.truths[cls] if self.truths[cls] else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            precisions.append(precision)
            recalls.append(recall)
            f1s.append(f1)
        return {
            "accuracy": sum(self.hits.values()) / self.n,
            "precision": sum(precisions) / len(precisions),
            "recall": sum(recalls) / len(recalls),
            "f1": sum(f1s) / len(f1s),
        }

    def state(self) -> dict[str, Any]:
        return {
            "task": self.task, "n": self.n, "hits": dict(self.hits),
            "truths": dict(self.truths), "guesses": dict(self.guesses),
            "sum_sq": self.sum_sq, "sum_abs": self.sum_abs,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Performance:
        return cls(
            task=state.get("task"), n=int(state.get("n", 0)),
            hits=Counter(state.get("hits", {})), truths=Counter(state.get("truths", {})),
            guesses=Counter(state.get("guesses", {})), sum_sq=float(state.get("sum_sq", 0.0)),
            sum_abs=float(state.get("sum_abs", 0.0)),
        )


@dataclass
class ErrorScale:
    """Turns outcomes into the 0/1 errors the detectors watch, tagged with their example id.

    A regression error counts as 1 when it is larger than ``factor`` times the typical
    absolute error: the champion's validation MAE when known, otherwise the mean absolute error
    of the first ``calibration`` labelled examples (whose errors are released once it is known).
    """

    factor: float = 2.0
    calibration: int = 100
    mae: float | None = None
    _waiting: list[tuple[int, float]] = field(default_factory=list)

    @property
    def calibrated(self) -> bool:
        return self.mae is not None

    def errors(self, outcome: Outcome, example_id: int) -> list[tuple[int, float]]:
        """The errors to feed for this outcome: none while calibrating, several once done."""
        if outcome.task == "classification":
            return [(example_id, 0.0 if outcome.hit else 1.0)]
        if self.mae is not None:
            return [(example_id, self.error(outcome))]
        self._waiting.append((example_id, outcome.abs_error))
        if len(self._waiting) < self.calibration:
            return []
        self.mae = sum(e for _, e in self._waiting) / len(self._waiting)
        waiting, self._waiting = self._waiting, []
        return [(i, self._bit(e)) for i, e in waiting]

    def error(self, outcome: Outcome) -> float:
        """The error of one outcome once calibrated (classification needs no calibration)."""
        if outcome.task == "classification":
            return 0.0 if outcome.hit else 1.0
        return self._bit(outcome.abs_error)

    def _bit(self, error: float) -> float:
        mae = self.mae if self.mae is not None else 0.0
        return 1.0 if error > self.factor * max(mae, 1e-12) else 0.0

    def state(self) -> dict[str, Any]:
        return {"mae": self.mae, "waiting": [list(p) for p in self._waiting]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ErrorScale:
        scale = cls(mae=state.get("mae"))
        scale._waiting = [(int(i), float(e)) for i, e in state.get("waiting", [])]
        return scale
