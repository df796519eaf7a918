"""The canary a new model must pass before it replaces the one being served.

The batch loop keeps the features of the last few requests in :class:`RecentRequests`. A
candidate model scores them (or, before any request arrived, a synthetic batch built from its
manifest's feature specs) and passes when:

* it accepts at least as many of the recent requests as the current model does, so a model
  whose schema does not fit live traffic is refused while a deliberate schema change, which
  the current model already rejects, still goes through;
* every output is finite, and a classifier's probabilities sum to 1.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from serving.model import ServedModel
from streams.artifacts import FeatureSpec
from streams.errors import ArtifactError, SchemaError

Features = Mapping[str, Any]


class CanaryError(ArtifactError):
    """A candidate model failed its canary batch; the current model keeps serving."""


class RecentRequests:
    """A small thread-safe ring buffer of recent request features."""

    def __init__(self, size: int) -> None:
        self._rows: deque[Features] = deque(maxlen=size)
        self._lock = threading.Lock()

    def extend(self, rows: Sequence[Features]) -> None:
        tail = rows[-(self._rows.maxlen or 1):]
        with self._lock:
            self._rows.extend(tail)

    def snapshot(self) -> list[Features]:
        with self._lock:
            return list(self._rows)


def synthetic_rows(features: Sequence[FeatureSpec]) -> list[dict[str, Any]]:
    """A few rows that exercise every feature: means and one std either side, every category."""
    width = max([3] + [len(f.categories) for f in features])
    rows: list[dict[str, Any]] = []
    for i in range(width):
        row: dict[str, Any] = {}
        for spec in features:
            if spec.kind == "numeric":
                row[spec.name] = spec.mean + (i % 3 - 1) * spec.std
            elif spec.kind == "boolean":
                row[spec.name] = i % 2 == 1
            else:
                row[spec.name] = spec.categories[i % len(spec.categories)] if spec.categories \
                    else "unseen"
        rows.append(row)
    return rows


def run_canary(
    candidate: ServedModel, current: ServedModel | None, recent: Sequence[Features]
) -> int:
    """Score the canary batch with ``candidate``; return its size or raise ``CanaryError``."""
    accepted = [row for row in recent if candidate.accepts(row)]
    if current is not None and recent:
        before = sum(1 for row in recent if current.accepts(row))
        if len(accepted) < before:
            raise CanaryError(
                f"v{candidate.version} rejects {before - len(accepted)} of {len(recent)} recent "
                f"requests that v{current.version} accepts (feature schema does not fit traffic)"
            )
    rows = accepted or synthetic_rows(candidate.manifest.features)
    try:
        scores = candidate.scores(candidate.encode(rows))
    except SchemaError as exc:
        raise CanaryError(f"v{candidate.version} cannot encode its canary batch: {exc}") from exc
    except RuntimeError as exc:  # torch raises RuntimeError on shape or device trouble
        raise CanaryError(f"v{candidate.version} failed its forward pass: {exc}") from exc
    expected = (len(rows), candidate.manifest.output_width)
    if candidate.classification and scores.shape != expected:
        raise CanaryError(f"v{candidate.version} gave outputs of shape {scores.shape}")
    if not candidate.classification and scores.shape != (len(rows),):
        raise CanaryError(f"v{candidate.version} gave outputs of shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise CanaryError(f"v{candidate.version} gave non-finite outputs on its canary batch")
    if candidate.classification and not np.allclose(scores.sum(axis=1), 1.0, atol=1e-4):
        raise CanaryError(f"v{candidate.version} gave probabilities that do not sum to 1")
    return len(rows)
