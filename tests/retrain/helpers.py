"""Seeded labelled examples from River's Agrawal stream, stored the way the monitor stores them,
and small real artifacts for the registry to verify."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from river.datasets import synth

from retrain.dataset import Example
from retrain.registry import Registry
from streams.artifacts import WEIGHTS, Artifact, path_from_uri
from streams.db import Database
from streams.events import ClassOutput, Feedback, Prediction
from streams.lineage import Lineage
from streams.settings import RetrainSettings
from streams.store import EventStore, LabelledExample
from tests.serving.artifacts import make_artifact

T0 = datetime(2024, 1, 1, tzinfo=UTC)
MODEL = "agrawal"

#: Small and quick on a shared 2-core machine; still learns Agrawal to ~90% accuracy.
FAST = {
    "epochs": 15, "batch_size": 32, "learning_rate": 3e-3, "patience": 4, "recent_examples": 800,
    "holdout_share": 0.25, "older_share": 0.0, "min_examples": 100, "cpu_threads": 1,
}


def fast_settings(**overrides: Any) -> RetrainSettings:
    return RetrainSettings(**{**FAST, **overrides})


def agrawal(n: int, *, function: int = 0, seed: int = 1, flip: bool = False
            ) -> list[tuple[dict[str, Any], int]]:
    """``n`` rows of Agrawal concept ``function``; ``flip`` inverts every label (bad labels)."""
    rows = synth.Agrawal(classification_function=function, seed=seed).take(n)
    return [(dict(x), (1 - int(y)) if flip else int(y)) for x, y in rows]


def examples(rows: Sequence[tuple[dict[str, Any], Any]], *, start: datetime = T0,
             prefix: str = "r") -> list[Example]:
    return [Example(f"{prefix}{i}", x, y, start + timedelta(seconds=i))
            for i, (x, y) in enumerate(rows)]


def seed_store(
    db: Database, rows: Sequence[tuple[dict[str, Any], Any]], *, model: str = MODEL,
    start: datetime = T0, prefix: str = "r",
) -> datetime:
    """Store predictions, feedback and joined examples; return the time after the last one."""
    store = EventStore(db)
    predictions, feedback = [], []
    for i, (x, y) in enumerate(rows):
        at = start + timedelta(seconds=i)
        predictions.append(Prediction(
            event_id=f"p-{prefix}{i}", request_id=f"{prefix}{i}", model=model, model_version=0,
            features=x, output=ClassOutput(label=0), timestamp=at))
        feedback.append(Feedback(event_id=f"f-{prefix}{i}", request_id=f"{prefix}{i}",
                                 model=model, label=y, timestamp=at + timedelta(milliseconds=1)))
    store.add_predictions(predictions)
    store.add_feedback(feedback)
    store.upsert_examples([LabelledExample.join(p, f)
                           for p, f in zip(predictions, feedback, strict=True)])
    return start + timedelta(seconds=len(rows))


def attach_artifact(
    registry: Registry, root: Path, model: str, version: int, *,
    metrics: Mapping[str, float] | None = None, lineage: Mapping[str, Any] | None = None,
) -> Artifact:
    """Write a real (small, seeded) artifact of ``model`` ``version`` under ``root`` and record
    it in the registry, so that promotions and rollbacks can verify it."""
    artifact = make_artifact(root, version, model=model)
    registry.attach_artifact(model, version, artifact_uri=artifact.uri, sha256=artifact.sha256,
                             metrics=dict(metrics or {}), lineage=Lineage.of(lineage))
    return artifact


def tamper(artifact_uri: str | None) -> None:
    """Change one byte of the weights after the registry recorded the artifact's digest."""
    weights = path_from_uri(artifact_uri or "") / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
