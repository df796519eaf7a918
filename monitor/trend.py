"""A slow-drift detector over the champion's windowed error (pure).

River's detectors (:mod:`monitor.detectors`) compare a model's recent errors with its own
past, and the policy's ``performance`` rule judges one window at a time. A drift spread over
tens of thousands of events makes the error creep up a little per window; this detector
compares each labelled window's error with the champion's validation error and looks for a
rise that is both *significant* and *persistent*:

* **trend** — a one-sided Mann-Kendall test on the errors of the last ``windows`` windows
  (since the champion took over, at least ``min_windows`` of them): the share of later windows
  worse than earlier ones, tie-corrected, must reach ``confidence``. It uses ranks only, so a
  window of noisy labels or a short time-closed window counts as one rank, not as its size;
* **level** — the Theil-Sen line through the same windows (median pairwise slope, median
  intercept), read at the newest window, must exceed the reference by ``margin``: an absolute
  margin for errors in [0, 1] (1 - accuracy, 1 - F1, ...), a relative one for regression errors
  (MSE, MAE, RMSE: above ``reference * (1 + margin)``);
* **persistence** — both must hold on ``persist`` consecutive windows.

It then fires once and starts over (its windows are forgotten, as River resets a detector
after it fires), so an ongoing drift needs fresh evidence before it fires again; a new
champion starts a new detector.

The defaults (``confidence`` 0.9999, 40 windows, 10 at least, 2 in a row, margin 0.02) were
chosen on seeded Bernoulli streams of windows of 500 labels. On 450 stationary streams of
100,000 labels (error rates 0.02, 0.2 and 0.5) none fired, against a reference equal to the
rate or against a reference of 0 (for 0.2 and 0.5 only the trend test then holds it back; an
earlier run of the same statistics on other seeds, the level test left out, had one of 450
fire). An error rising from 0.1 to 0.2 over 20,000 labels was caught in all of 50 runs, a
median 9,250 labels after the rise began (0.1 to 0.15: all 50, median 13,500). Only the errors
of the last ``windows`` windows and a counter are held.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist, median
from typing import Any

from streams.settings import MonitorSettings


@dataclass(frozen=True)
class TrendConfig:
    """``confidence`` of the one-sided Mann-Kendall test, over the last ``windows`` windows
    once ``min_windows`` are there; ``persist`` consecutive windows must pass it and the level
    test (``margin`` above the reference). All but ``persist`` are ``monitor.trend_*``."""

    confidence: float = 0.9999
    windows: int = 40
    min_windows: int = 10
    persist: int = 2
    margin: float = 0.02

    @classmethod
    def from_settings(cls, settings: MonitorSettings) -> TrendConfig:
        return cls(confidence=settings.trend_confidence, windows=settings.trend_windows,
                   min_windows=settings.trend_min_windows, margin=settings.trend_margin)


@dataclass(frozen=True)
class TrendAlarm:
    """Why the detector fired, on the window ``window_id``."""

    window_id: str
    windows: int
    z: float
    slope: float
    level: float
    reference: float
    threshold: float

    def as_dict(self) -> dict[str, Any]:
        return {"window_id": self.window_id, "windows": self.windows, "z": round(self.z, 3),
                "slope": self.slope, "level": self.level, "reference": self.reference,
                "threshold": self.threshold}


def mann_kendall_z(values: Sequence[float]) -> float:
    """The Mann-Kendall statistic of ``values`` (oldest first) as a standard normal score,
    continuity- and tie-corrected: large and positive when later values tend to be larger."""
    n = len(values)
    s = sum((values[j] > values[i]) - (values[j] < values[i])
            for i in range(n) for j in range(i + 1, n))
    ties: dict[float, int] = {}
    for value in values:
        ties[value] = ties.get(value, 0) + 1
    variance = (n * (n - 1) * (2 * n + 5)
                - sum(t * (t - 1) * (2 * t + 5) for t in ties.values())) / 18
    if variance <= 0 or s == 0:
        return 0.0
    return (s - math.copysign(1, s)) / math.sqrt(variance)


def theil_sen(values: Sequence[float]) -> tuple[float, float]:
    """(slope per window, level at the newest window) of the Theil-Sen line through
    ``values`` at positions 0, 1, ..."""
    n = len(values)
    slope = median([(values[j] - values[i]) / (j - i)
                    for i in range(n) for j in range(i + 1, n)]) if n > 1 else 0.0
    intercept = median([v - slope * t for t, v in enumerate(values)])
    return slope, intercept + slope * (n - 1)


class TrendDetector:
    """Mann-Kendall trend and Theil-Sen level of windowed errors; ``update(error) -> self``.

    ``reference`` is the champion's validation error; ``relative`` makes the margin a ratio
    (regression errors) rather than a difference (errors in [0, 1]).
    """

    def __init__(self, config: TrendConfig, reference: float, *, relative: bool = False,
                 errors: Sequence[float] = (), run: int = 0) -> None:
        self.config = config
        self.reference = reference
        self.relative = relative
        self._z = NormalDist().inv_cdf(config.confidence)
        self._errors = list(errors)[-config.windows:]
        self._run = run
        self._alarm: TrendAlarm | None = None

    @property
    def threshold(self) -> float:
        """The level the windowed error must exceed."""
        if self.relative:
            return self.reference * (1.0 + self.config.margin)
        return self.reference + self.config.margin

    @property
    def alarm(self) -> TrendAlarm | None:
        """Why the last update fired, if it did."""
        return self._alarm

    @property
    def drift_detected(self) -> bool:
        return self._alarm is not None

    @property
    def errors(self) -> tuple[float, ...]:
        """The windowed errors held, oldest first."""
        return tuple(self._errors)

    def update(self, error: float, window_id: str = "") -> TrendDetector:
        self._alarm = None
        self._errors = [*self._errors, error][-self.config.windows:]
        if len(self._errors) < min(self.config.min_windows, self.config.windows):
            self._run = 0
            return self
        z = mann_kendall_z(self._errors)
        slope, level = theil_sen(self._errors)
        if z >= self._z and slope > 0 and level > self.threshold:
            self._run += 1
        else:
            self._run = 0
        if self._run >= self.config.persist:
            self._alarm = TrendAlarm(window_id, len(self._errors), z, slope, level,
                                     self.reference, self.threshold)
            self._errors, self._run = [], 0
        return self

    def state(self) -> dict[str, Any]:
        return {"errors": list(self._errors), "run": self._run}

    @classmethod
    def restore(cls, config: TrendConfig, reference: float, state: dict[str, Any], *,
                relative: bool = False) -> TrendDetector:
        return cls(config, reference, relative=relative,
                   errors=[float(e) for e in state.get("errors", ())],
                   run=int(state.get("run", 0)))
