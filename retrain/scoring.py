"""Score an artifact on a split the way serving would run it: load, preprocess, forward.

Both the champion and the challenger are loaded from their artifacts with
:func:`streams.nn.load_module` and fed through the artifact's own
:class:`~streams.artifacts.Preprocessor`, so the numbers compared are those serving would get.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from retrain.dataset import Split
from retrain.decision import Evaluation
from retrain.metrics import classification_metrics, regression_metrics
from streams.artifacts import Artifact, Preprocessor
from streams.nn import load_module
from streams.scores import label_keys

_BATCH = 8192


@dataclass(frozen=True)
class HoldoutScore:
    """A model's result on a split, and what it predicted for each row (in order)."""

    evaluation: Evaluation
    predictions: list[Any]


def score(artifact: Artifact, split: Split, device: torch.device) -> HoldoutScore:
    """Run ``artifact`` on ``split``; SchemaError if its preprocessing refuses the features."""
    manifest = artifact.manifest
    x = Preprocessor(manifest.features).transform(split.features)
    module = load_module(artifact, device)
    with torch.no_grad():
        parts = [
            module(torch.from_numpy(x[i : i + _BATCH]).to(device)).float().cpu()
            for i in range(0, len(x), _BATCH)
        ]
    out = torch.cat(parts) if parts else torch.zeros((0, manifest.output_width))
    finite = bool(torch.isfinite(out).all())
    truth = split.labels
    if manifest.task == "classification":
        predicted = [manifest.classes[i] for i in out.argmax(dim=1).tolist()]
        metrics = classification_metrics(truth, predicted)
        evaluation = Evaluation(
            metrics=_finite(metrics),
            rows=len(split),
            finite=finite,
            predicted_classes=len(set(label_keys(predicted))),
            true_classes=len(set(label_keys(truth))),
        )
        return HoldoutScore(evaluation, predicted)
    values = (out.squeeze(1).double() * manifest.target_std + manifest.target_mean).numpy()
    metrics = regression_metrics(truth, values.tolist()) if finite else {}
    evaluation = Evaluation(
        metrics=_finite(metrics),
        rows=len(split),
        finite=finite,
        prediction_spread=float(np.std(values)) if finite and len(values) else 0.0,
        target_spread=float(np.std(np.asarray(truth, dtype=np.float64))) if truth else 0.0,
    )
    return HoldoutScore(evaluation, values.tolist())


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if np.isfinite(v)}
