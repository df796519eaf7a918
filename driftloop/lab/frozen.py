"""A model that never learns again, on River's slowly rotating hyperplane.

The slow-drift benchmark (``benchmarks/bench_slow_drift.py``) and the trend tests
(``tests/monitor/test_trend.py``) judge drift signals on the same stream: a model that learnt
the hyperplane's first concept exactly (10 features, 3 drifting weights, 5% label noise, the
generator of the ``incremental`` scenario) keeps predicting while the drifting weights move by
``change`` each, evenly, over ``width`` events after the first ``before``.
"""

from __future__ import annotations

import itertools

from river.datasets import synth


def frozen_hyperplane(seed: int, change: float, before: int, width: int,
                      after: int = 0) -> list[tuple[int, int]]:
    """(predicted, label) of each of the ``before + width + after`` events."""
    plane = synth.Hyperplane(seed=seed, n_features=10, n_drift_features=3, mag_change=0.0,
                             sigma=0.0, noise_percentage=0.05)
    samples = iter(plane)
    x, y = next(samples)
    weights = list(plane._weights)  # the concept the frozen model learnt
    out: list[tuple[int, int]] = []
    for index in itertools.count():
        predicted = int(sum(w * x[i] for i, w in enumerate(weights)) >= sum(weights) / 2)
        out.append((predicted, int(y)))
        if len(out) == before + width + after:
            break
        plane.mag_change = change / width if before <= index < before + width else 0.0
        x, y = next(samples)
    return out
