"""What the monitor reads from a champion's manifest: score, lineage, task."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from monitor.champion import ChampionProfile, champion_of, champion_score
from streams.artifacts import Architecture, FeatureSpec, Manifest, artifact_path, write_artifact
from streams.events import ModelPromoted
from streams.lineage import Lineage, Span


def when(day: int) -> datetime:
    return datetime(2026, 1, day, tzinfo=UTC)


def test_the_training_range_is_the_data_learnt_from_not_the_holdout(tmp_path: Path) -> None:
    artifact = write(tmp_path, lineage=Lineage.of({"data": {
        "from": when(1).isoformat(), "to": when(6).isoformat(),
        "train": {"count": 800, "from": when(1).isoformat(), "to": when(5).isoformat()},
        "validation": {"count": 100, "from": when(5).isoformat(), "to": when(6).isoformat()},
        "holdout": {"count": 100, "from": when(6).isoformat(), "to": when(9).isoformat()},
    }, "training": {"device": "cpu"}}))
    champion = champion_of(promoted(artifact.path, artifact.sha256))
    assert champion.training == Span(when(1), when(6))


def test_a_lineage_without_data_names_no_training_range(tmp_path: Path) -> None:
    artifact = write(tmp_path, lineage=Lineage.of({"trigger": {"kind": "manual"}}))
    assert champion_of(promoted(artifact.path, artifact.sha256)).training is None


def test_the_champion_score_is_accuracy_or_mse_first() -> None:
    assert champion_score("classification", {"f1": 0.7, "accuracy": 0.8}) == ("accuracy", 0.8)
    assert champion_score("classification", {"val_f1": 0.7}) == ("f1", 0.7)
    assert champion_score("regression", {"mae": 1.0, "holdout_mse": 2.0}) == ("mse", 2.0)
    assert champion_score("regression", {"loss": 1.0}) is None


def promoted(path: Path, sha256: str, version: int = 3) -> ModelPromoted:
    return ModelPromoted(event_id=f"e{version}", model="churn", version=version,
                         artifact_uri=path.resolve().as_uri(), sha256=sha256, timestamp=when(7))


def write(tmp_path: Path, **manifest: Any) -> Any:
    fields: dict[str, Any] = {
        "model": "churn", "version": 3, "task": "regression",
        "architecture": Architecture(name="mlp"),
        "features": (FeatureSpec(name="x", kind="numeric"),),
        "metrics": {"mse": 4.0, "mae": 1.5},
        "lineage": Lineage.of({"data": {"from": when(1).isoformat(), "to": when(2).isoformat()}}),
    }
    fields.update(manifest)
    return write_artifact(artifact_path(tmp_path, "churn", 3), Manifest(**fields),
                          {"w": np.zeros(2, dtype=np.float32)})


def test_a_promotion_names_the_champion_with_its_scores(tmp_path: Path) -> None:
    artifact = write(tmp_path)
    champion = champion_of(promoted(artifact.path, artifact.sha256))
    assert champion == ChampionProfile(model="churn", version=3, task="regression", metric="mse",
                                score=4.0, mae=1.5, training=Span(when(1), when(2)))
    assert ChampionProfile.from_dict(champion.as_dict()) == champion


def test_an_unreadable_artifact_still_names_the_version(tmp_path: Path) -> None:
    artifact = write(tmp_path)
    champion = champion_of(promoted(artifact.path, "0" * 64))
    assert champion == ChampionProfile(model="churn", version=3)
