"""Fit a classifier's calibration and estimate bands on its validation split (scikit-learn).

One isotonic regression per class, one-vs-rest, from the network's softmax probability of the
class to whether the label is that class (:class:`sklearn.isotonic.IsotonicRegression`,
clipped to [0, 1]); its knots become a :class:`streams.calibration.Curve`. The bands are the
spread of the estimate (:class:`streams.calibration.Expectation`) on ``draws`` seeded random
chunks of the validation rows, ``chunk_rows`` each or a quarter of the split when it is
smaller; each row of a chunk is calibrated out of fold (``FOLDS``-fold cross-fitting), so
the band reflects how the curves do on rows they did not see. Chunks drawn from a finite
split vary less than windows drawn from the population, so their standard deviation is
divided by the finite-population factor ``sqrt((N - m) / (N - 1))``.

Too few validation rows (under ``MIN_ROWS``), or a split with a single class, give no
calibration: the model then shows "no estimate", like an artifact from before calibration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from sklearn.isotonic import IsotonicRegression

from streams.calibration import ESTIMATED, Band, Calibration, Curve, Expectation, Probabilities

#: Fewest validation rows worth calibrating on.
MIN_ROWS = 50
#: Random reference chunks the band's spread is measured on.
DRAWS = 200
#: Folds of the validation split for the out-of-fold estimates of the reference chunks.
FOLDS = 5


def fit_calibration(
    probabilities: Probabilities,
    labels: Sequence[int],
    classes: Sequence[str],
    *,
    chunk_rows: int = 500,
    width: float = 3.0,
    seed: int = 0,
    draws: int = DRAWS,
) -> Calibration | None:
    """The calibration of ``probabilities`` ``(n, classes)`` against class indices ``labels``."""
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1, len(classes))
    y = np.asarray(labels, dtype=np.int64)
    rows = len(p)
    if rows < MIN_ROWS or len(set(y.tolist())) < 2 or not np.isfinite(p).all():
        return None
    calibration = _fit(p, y, classes)
    rng = np.random.default_rng(seed)
    # The reference chunks are estimated out of fold: each row calibrated by curves fitted
    # without it, as the served rows will be. In-fold, the curves would have seen the very
    # labels they are judged on, and the band would sit too high and too narrow.
    folds = np.array_split(rng.permutation(rows), FOLDS)
    calibrated = np.empty_like(p)
    for fold in folds:
        rest = np.setdiff1d(np.arange(rows), fold)
        calibrated[fold] = _fit(p[rest], y[rest], classes).apply(p[fold])
    served = p.argmax(axis=1).astype(np.int64)
    m = max(2, min(chunk_rows, rows // 4))
    scores = np.asarray([
        [_metrics(calibrated, served, rng.choice(rows, size=m, replace=False))[k]
         for k in ESTIMATED]
        for _ in range(draws)
    ])
    finite_population = math.sqrt((rows - m) / (rows - 1))
    bands = {
        name: Band(mean=float(scores[:, i].mean()),
                   std=float(scores[:, i].std(ddof=1)) / finite_population,
                   chunk_rows=m, chunks=draws, width=width, reference_rows=rows)
        for i, name in enumerate(ESTIMATED)
    }
    return calibration.model_copy(update={"bands": bands})


def _fit(p: Probabilities, y: npt.NDArray[np.int64], classes: Sequence[str]) -> Calibration:
    curves = []
    for c in range(len(classes)):
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(p[:, c], (y == c).astype(np.float64))
        curves.append(Curve(x=tuple(float(v) for v in iso.X_thresholds_),
                            y=tuple(float(v) for v in iso.y_thresholds_)))
    return Calibration(classes=tuple(classes), curves=tuple(curves), rows=len(p))


def _metrics(calibrated: Probabilities, served: npt.NDArray[np.int64],
             rows: npt.NDArray[np.int64]) -> dict[str, float]:
    return Expectation(calibrated.shape[1]).update(calibrated[rows], served[rows]).metrics()
