"""Artifacts the serving tests build themselves (retraining writes real ones elsewhere)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streams.artifacts import Architecture, Artifact, Manifest, Preprocessor, write_artifact
from streams.events import ModelPromoted, ModelRolledBack, new_event_id
from streams.nn import module_for, state_to_numpy

MODEL = "churn"
CLASSES = ("stay", "leave")
PLANS = ("free", "pro", "team")


def row(i: int) -> dict[str, Any]:
    """A valid feature dict for the test schema (x, y numeric; plan categorical)."""
    return {"x": float(i % 17) - 8.0, "y": float(i % 5) / 4.0, "plan": PLANS[i % 3]}


def preprocessor() -> Preprocessor:
    return Preprocessor.fit([row(i) for i in range(60)])


def make_artifact(
    root: Path,
    version: int,
    *,
    model: str = MODEL,
    task: str = "classification",
    nan: bool = False,
    pre: Preprocessor | None = None,
    hidden: tuple[int, ...] = (8,),
    target: tuple[float, float] = (0.0, 1.0),
) -> Artifact:
    """Write ``<root>/<model>/v<version>`` with seeded random weights (NaN ones if asked)."""
    pre = pre or preprocessor()
    manifest = Manifest(
        model=model, version=version, task=task,  # type: ignore[arg-type]
        architecture=Architecture(name="mlp", params={"hidden": list(hidden)}),
        features=pre.features,
        classes=CLASSES if task == "classification" else (),
        target_mean=target[0], target_std=target[1],
    )
    torch.manual_seed(version)
    tensors = state_to_numpy(module_for(manifest))
    if nan:
        tensors = {k: np.full_like(v, np.nan) for k, v in tensors.items()}
    return write_artifact(root / model / f"v{version}", manifest, tensors)


def promoted(artifact: Artifact, *, previous: int | None = None) -> ModelPromoted:
    m = artifact.manifest
    return ModelPromoted(event_id=new_event_id(), model=m.model, version=m.version,
                         previous_version=previous, artifact_uri=artifact.uri,
                         sha256=artifact.sha256, timestamp=datetime.now(UTC))


def rolled_back(artifact: Artifact, *, from_version: int) -> ModelRolledBack:
    m = artifact.manifest
    return ModelRolledBack(event_id=new_event_id(), model=m.model, version=m.version,
                           from_version=from_version, artifact_uri=artifact.uri,
                           sha256=artifact.sha256, timestamp=datetime.now(UTC))
