"""A classifier's calibration and confidence-based performance estimation (CBPE), pure numpy.

Training fits, on the validation split, one isotonic curve per class (one-vs-rest: the served
probability of class ``c`` against "the label is ``c``"); :meth:`Calibration.apply` maps each
served probability through its class's curve and renormalises the row. The curves are
stored in the artifact's manifest as JSON numbers (the knots of a piecewise-linear map), never
pickled, so the monitor needs no scikit-learn and no reference rows.

Without labels, a window's performance is *expected* from the calibrated probabilities
(:class:`Expectation`): the expected accuracy is the mean calibrated probability of the class
that was served; per class ``c`` the expected true positives are the summed calibrated
probability of ``c`` over rows served as ``c``, the expected number of rows truly ``c`` the
summed probability of ``c`` over all rows, hence expected precision, recall and F1. F1 is the
macro average over classes, as :mod:`monitor.performance` scores realised F1, so the two can
be compared (for two classes too, not the positive class alone).

The band (:class:`Band`) is the spread of the same estimate on chunks of the reference
(validation) rows: mean ± ``width`` standard deviations (3 by default). It is measured on
chunks of ``chunk_rows`` rows; for a window of ``n`` rows the standard deviation is scaled
by ``sqrt(chunk_rows / n)`` (sampling spread shrinks as 1/sqrt(rows)), so a small
time-closed window gets a wider band, not false alarms. The mean is itself measured on the
``N`` validation rows only, so its own spread is added: ``sqrt(chunk_rows / n + chunk_rows /
N)`` in all. Without it a model validated on 160 rows (the demo's) fired on two windows in a
row of an abrupt concept drift, where the inputs, and so the confidences, did not move.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

#: The estimated scores and how they are named beside the realised ones.
ESTIMATED = ("accuracy", "f1")

Probabilities = npt.NDArray[np.float64]


class Curve(BaseModel):
    """A monotone piecewise-linear map of one class's probability (isotonic knots)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    x: tuple[float, ...] = Field(min_length=1, description="Served probabilities, increasing.")
    y: tuple[float, ...] = Field(min_length=1, description="Calibrated probability at each x.")

    def __call__(self, p: Probabilities) -> Probabilities:
        mapped: Probabilities = np.interp(p, np.asarray(self.x), np.asarray(self.y))
        return mapped


class Band(BaseModel):
    """The spread of one estimated score on reference chunks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mean: float
    std: float = Field(ge=0.0)
    chunk_rows: int = Field(ge=1, description="Rows per reference chunk the std was taken on.")
    chunks: int = Field(ge=1, description="How many reference chunks.")
    width: float = Field(3.0, gt=0.0, description="Standard deviations either side of the mean.")
    reference_rows: int | None = Field(
        None, ge=1, description="Rows the mean was taken over (none: bands written before).")

    def spread(self, rows: int) -> float:
        """Half the band for a window of ``rows`` rows: the window's own sampling spread and,
        when known, that of the mean, itself measured on ``reference_rows`` rows only (with a
        few hundred validation rows that is as large as a window's)."""
        variance = self.chunk_rows / max(rows, 1)
        if self.reference_rows is not None:
            variance += self.chunk_rows / self.reference_rows
        return self.width * self.std * math.sqrt(variance)

    def lower(self, rows: int) -> float:
        return self.mean - self.spread(rows)

    def upper(self, rows: int) -> float:
        return self.mean + self.spread(rows)


class Calibration(BaseModel):
    """A classifier's calibration, fitted on its validation split, and its estimate bands."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["isotonic"] = "isotonic"
    classes: tuple[str, ...] = Field(
        min_length=2, description="Probability keys in output order (as serving writes them)."
    )
    curves: tuple[Curve, ...] = Field(min_length=2, description="One per class, same order.")
    rows: int = Field(ge=1, description="Validation rows it was fitted on.")
    bands: dict[str, Band] = Field(
        default_factory=dict, description="Estimated score name -> its reference band."
    )

    def apply(self, probabilities: Probabilities) -> Probabilities:
        """Calibrated probabilities ``(n, classes)``, each row summing to 1."""
        p = np.asarray(probabilities, dtype=np.float64).reshape(-1, len(self.classes))
        out = np.column_stack([curve(p[:, i]) for i, curve in enumerate(self.curves)])
        total = out.sum(axis=1, keepdims=True)
        uniform = np.full_like(out, 1.0 / len(self.classes))
        return np.where(total > 0, out / np.where(total > 0, total, 1.0), uniform)



@dataclass
class Expectation:
    """Sums of calibrated probabilities over a window; ``metrics()`` is the estimate.

    ``served`` is the class each row was served as (the argmax of its served probabilities).
    """

    classes: int
    n: int = 0
    hits: float = 0.0
    predicted: list[float] = field(default_factory=list)
    truths: list[float] = field(default_factory=list)
    true_positives: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("predicted", "truths", "true_positives"):
            if not getattr(self, name):
                setattr(self, name, [0.0] * self.classes)

    def update(self, calibrated: Probabilities, served: npt.NDArray[np.int64]) -> Expectation:
        """Add rows: calibrated probabilities ``(n, classes)`` and their served classes."""
        p = np.asarray(calibrated, dtype=np.float64).reshape(-1, self.classes)
        if not len(p):
            return self
        chosen = p[np.arange(len(p)), served]
        predicted = np.bincount(served, minlength=self.classes)
        tp = np.bincount(served, weights=chosen, minlength=self.classes)
        truths = p.sum(axis=0)
        self.n += len(p)
        self.hits += float(chosen.sum())
        for c in range(self.classes):
            self.predicted[c] += float(predicted[c])
            self.truths[c] += float(truths[c])
            self.true_positives[c] += float(tp[c])
        return self

    def add(self, calibrated: Sequence[float], served: int) -> Expectation:
        """Add one row (plain Python: the monitor adds served rows one at a time)."""
        chosen = float(calibrated[served])
        self.n += 1
        self.hits += chosen
        self.predicted[served] += 1.0
        self.true_positives[served] += chosen
        for c, value in enumerate(calibrated):
            self.truths[c] += float(value)
        return self

    def metrics(self) -> dict[str, float]:
        """Expected accuracy and macro F1 (empty with no rows)."""
        if not self.n:
            return {}
        f1s = [2 * tp / (pred + truth)
               for tp, pred, truth in zip(self.true_positives, self.predicted, self.truths,
                                          strict=True)
               if pred + truth > 0]
        return {"accuracy": self.hits / self.n, "f1": sum(f1s) / len(f1s) if f1s else 0.0}

    def state(self) -> dict[str, Any]:
        return {"classes": self.classes, "n": self.n, "hits": self.hits,
                "predicted": list(self.predicted), "truths": list(self.truths),
                "true_positives": list(self.true_positives)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Expectation:
        return cls(classes=int(state["classes"]), n=int(state["n"]),
                   hits=float(state["hits"]),
                   predicted=[float(v) for v in state["predicted"]],
                   truths=[float(v) for v in state["truths"]],
                   true_positives=[float(v) for v in state["true_positives"]])


def estimate(calibration: Calibration, probabilities: Probabilities) -> dict[str, float]:
    """The estimate for a block of served probabilities ``(n, classes)``."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1, len(calibration.classes))
    served = p.argmax(axis=1).astype(np.int64)
    return Expectation(len(calibration.classes)).update(calibration.apply(p), served).metrics()


@dataclass(frozen=True)
class Estimate:
    """A window's estimated scores with their bands (the window's rows decide the width)."""

    rows: int
    metrics: dict[str, float]
    lower: dict[str, float]
    upper: dict[str, float]

    @classmethod
    def of(cls, calibration: Calibration, expectation: Expectation) -> Estimate | None:
        metrics = expectation.metrics()
        if not metrics:
            return None
        bands = {k: b for k, b in calibration.bands.items() if k in metrics}
        n = expectation.n
        return cls(n, metrics, {k: b.lower(n) for k, b in bands.items()},
                   {k: b.upper(n) for k, b in bands.items()})

    def below(self) -> tuple[str, ...]:
        """The estimated scores under their band's lower edge."""
        return tuple(k for k, low in self.lower.items() if self.metrics[k] < low)

    def record(self) -> dict[str, float]:
        """The stored form: ``accuracy``, ``accuracy_lower``, ``accuracy_upper``, ..."""
        out = dict(self.metrics)
        out.update({f"{k}_lower": v for k, v in self.lower.items()})
        out.update({f"{k}_upper": v for k, v in self.upper.items()})
        return out
