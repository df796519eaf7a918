"""What the monitor needs to know about a model's champion, read from its artifact manifest.

``ModelPromoted`` and ``ModelRolledBack`` events on the model-updates topic name the champion
and its artifact. The manifest gives the task, the validation scores the policy compares
windowed performance with (``metrics``), and the lineage naming the training data, whose
examples become the drift reference: :attr:`streams.lineage.Lineage.training_range`, the span
of the train and validation examples (not the holdout, which the model did not learn from).
Metric names may carry a ``val_``, ``validation_`` or ``holdout_`` prefix. A classifier's
manifest may also hold its calibration (:mod:`streams.calibration`), from which the served
windows' performance is estimated before labels arrive; an older artifact has none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.artifacts import Manifest, load_artifact
from streams.calibration import Calibration
from streams.errors import ArtifactError
from streams.events import ModelPromoted, ModelRolledBack
from streams.lineage import Span
from streams.scores import SCORES

log = logging.getLogger(__name__)

PREFIXES = ("", "val_", "validation_", "holdout_")


@dataclass(frozen=True)
class ChampionProfile:
    """What the monitor holds about its model's champion: the validation score to compare
    windows with and the span of its training data (serving's ``Champion`` is the swap target)."""

    model: str
    version: int
    task: str | None = None
    metric: str | None = None
    score: float | None = None
    mae: float | None = None
    training: Span | None = None
    calibration: Calibration | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "version": self.version, "task": self.task,
            "metric": self.metric, "score": self.score, "mae": self.mae,
            "training": None if self.training is None else [
                self.training.start.isoformat(), self.training.end.isoformat()],
            "calibration": None if self.calibration is None
            else self.calibration.model_dump(mode="json"),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChampionProfile:
        training = data.get("training")
        calibration = data.get("calibration")
        return cls(
            model=str(data["model"]), version=int(data["version"]), task=data.get("task"),
            metric=data.get("metric"), score=data.get("score"), mae=data.get("mae"),
            training=None if not training else Span(
                datetime.fromisoformat(training[0]), datetime.fromisoformat(training[1])),
            calibration=None if not calibration else Calibration.model_validate(calibration),
        )


def champion_score(task: str, metrics: Mapping[str, float]) -> tuple[str, float] | None:
    """The validation score to compare windows with: accuracy (else F1...) or MSE (else MAE)."""
    for name in SCORES.get(task, ()):
        for prefix in PREFIXES:
            value = metrics.get(prefix + name)
            if isinstance(value, int | float):
                return name, float(value)
    return None


def from_manifest(manifest: Manifest, version: int) -> ChampionProfile:
    picked = champion_score(manifest.task, manifest.metrics)
    mae = next((float(manifest.metrics[p + "mae"]) for p in PREFIXES
                if isinstance(manifest.metrics.get(p + "mae"), int | float)), None)
    return ChampionProfile(
        model=manifest.model, version=version, task=manifest.task,
        metric=picked[0] if picked else None, score=picked[1] if picked else None,
        mae=mae if manifest.task == "regression" else None,
        training=manifest.lineage.training_range,
        calibration=manifest.calibration if manifest.task == "classification" else None,
    )


def champion_of(event: ModelPromoted | ModelRolledBack) -> ChampionProfile:
    """The champion an update names; without a readable artifact, only its version."""
    try:
        artifact = load_artifact(event.artifact_uri, expected_sha256=event.sha256)
    except ArtifactError as exc:
        log.warning(
            "champion artifact unreadable; no validation score or lineage for it",
            extra={"model": event.model, "version": event.version, "error": str(exc)},
        )
        return ChampionProfile(model=event.model, version=event.version)
    return from_manifest(artifact.manifest, event.version)
