"""Estimated performance of served windows, before labels arrive (pure; CBPE).

The champion's manifest may hold a calibration (:mod:`streams.calibration`, fitted on its
validation split at training time). Each served prediction of that version whose output
carries a probability for every class is calibrated here (:func:`calibrate`), the served
windows sum the calibrated probabilities, and at close :func:`window_estimate` turns the sums
into the expected accuracy and macro F1 with their reference band for the window's rows.

No estimate (None) when the champion has no calibration (an artifact from before
calibration, or a regressor), when the window is of another version than the champion's
(the band belongs to the champion), or when no row of the window could be calibrated. The
dashboard shows that as "no estimate", never as a number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from monitor.windows import Calibrated, ClosedWindow
from streams.calibration import Calibration, Estimate


def probabilities_of(output: Mapping[str, Any] | None) -> Mapping[str, float] | None:
    """The class probabilities of a stored prediction output, if it has any."""
    if not output or output.get("kind") != "class":
        return None
    probabilities = output.get("probabilities")
    return probabilities if isinstance(probabilities, Mapping) and probabilities else None


def calibrate(
    calibration: Calibration, outputs: Sequence[Mapping[str, Any] | None]
) -> list[Calibrated | None]:
    """Each output's calibrated probabilities and served class (None: cannot be calibrated)."""
    found: list[int] = []
    rows: list[list[float]] = []
    for i, output in enumerate(outputs):
        probabilities = probabilities_of(output)
        if probabilities is None:
            continue
        try:
            row = [float(probabilities[c]) for c in calibration.classes]
        except (KeyError, TypeError, ValueError):
            continue
        found.append(i)
        rows.append(row)
    result: list[Calibrated | None] = [None] * len(outputs)
    if not rows:
        return result
    served = np.asarray(rows, dtype=np.float64)
    calibrated = calibration.apply(served).tolist()
    chosen = served.argmax(axis=1).tolist()
    for i, probabilities, best in zip(found, calibrated, chosen, strict=True):
        result[i] = Calibrated(tuple(probabilities), int(best))
    return result


def window_estimate(
    calibration: Calibration | None, champion_version: int | None, window: ClosedWindow
) -> Estimate | None:
    """The estimate of a closed window, or None (see the module docstring)."""
    if (calibration is None or window.expectation is None
            or window.version != champion_version
            or window.expectation.classes != len(calibration.classes)):
        return None
    return Estimate.of(calibration, window.expectation)
