"""What the monitor needs to know about a model's champion, read from its artifact manifest.

``ModelPromoted`` and ``ModelRolledBack`` events on the model-updates topic name the champion
and its artifact. The manifest gives the task, the validation scores the policy compares
windowed performance with (``metrics``), and the lineage naming the training data, whose
examples become the drift reference.

Lineage is written by the retraining stage and its keys are read defensively: any mapping in
it (top level or one level down, except ``holdout``, which the model did not learn from) with
a time range under ``from``/``to``, ``start``/``end``, ``since``/``until``,
``data_start``/``data_end`` or ``first_timestamp``/``last_timestamp`` counts; the reference
range spans them all. Metric names may carry a ``val_``, ``validation_`` or ``holdout_``
prefix.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streams.artifacts import Manifest, load_artifact
from streams.errors import ArtifactError
from streams.events import ModelPromoted, ModelRolledBack

log = logging.getLogger(__name__)

RANGE_KEYS = (
    ("from", "to"),
    ("start", "end"),
    ("since", "until"),
    ("data_start", "data_end"),
    ("first_timestamp", "last_timestamp"),
)
SCORE_ORDER = {
    "classification": ("accuracy", "f1", "precision", "recall"),
    "regression": ("mse", "mae", "rmse"),
}
PREFIXES = ("", "val_", "validation_", "holdout_")


@dataclass(frozen=True)
class TrainingRange:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Champion:
    model: str
    version: int
    task: str | None = None
    metric: str | None = None
    score: float | None = None
    mae: float | None = None
    training: TrainingRange | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "version": self.version, "task": self.task,
            "metric": self.metric, "score": self.score, "mae": self.mae,
            "training": None if self.training is None else [
                self.training.start.isoformat(), self.training.end.isoformat()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Champion:
        training = data.get("training")
        return cls(
            model=str(data["model"]), version=int(data["version"]), task=data.get("task"),
            metric=data.get("metric"), score=data.get("score"), mae=data.get("mae"),
            training=None if not training else TrainingRange(
                datetime.fromisoformat(training[0]), datetime.fromisoformat(training[1])),
        )


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def training_range(lineage: Mapping[str, Any]) -> TrainingRange | None:
    """The time span of the training data named in ``lineage``, if it names one."""
    sections: list[Mapping[str, Any]] = [lineage]
    sections += [v for k, v in lineage.items() if isinstance(v, Mapping) and k != "holdout"]
    starts: list[datetime] = []
    ends: list[datetime] = []
    for section in sections:
        for lo, hi in RANGE_KEYS:
            start, end = _when(section.get(lo)), _when(section.get(hi))
            if start is not None and end is not None and start <= end:
                starts.append(start)
                ends.append(end)
    if not starts:
        return None
    return TrainingRange(min(starts), max(ends))


def champion_score(task: str, metrics: Mapping[str, float]) -> tuple[str, float] | None:
    """The validation score to compare windows with: accuracy (else F1...) or MSE (else MAE)."""
    for name in SCORE_ORDER.get(task, ()):
        for prefix in PREFIXES:
            value = metrics.get(prefix + name)
            if isinstance(value, int | float):
                return name, float(value)
    return None


def from_manifest(manifest: Manifest, version: int) -> Champion:
    picked = champion_score(manifest.task, manifest.metrics)
    mae = next((float(manifest.metrics[p + "mae"]) for p in PREFIXES
                if isinstance(manifest.metrics.get(p + "mae"), int | float)), None)
    return Champion(
        model=manifest.model, version=version, task=manifest.task,
        metric=picked[0] if picked else None, score=picked[1] if picked else None,
        mae=mae if manifest.task == "regression" else None,
        training=training_range(manifest.lineage),
    )


def champion_of(event: ModelPromoted | ModelRolledBack) -> Champion:
    """The champion an update names; without a readable artifact, only its version."""
    try:
        artifact = load_artifact(event.artifact_uri, expected_sha256=event.sha256)
    except ArtifactError as exc:
        log.warning(
            "champion artifact unreadable; no validation score or lineage for it",
            extra={"model": event.model, "version": event.version, "error": str(exc)},
        )
        return Champion(model=event.model, version=event.version)
    return from_manifest(artifact.manifest, event.version)
