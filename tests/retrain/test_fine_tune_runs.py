"""Whole runs that fine-tune, on SQLite and PostgreSQL: a refresh starts from the champion (or
a user's checkpoint), a start that does not fit the data falls back to training from scratch
and says so, a NaN loss leaves the champion, and the lineage records which happened."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np

from retrain.runner import Retrainer, Trigger
from streams.artifacts import load_artifact
from streams.db import Database
from streams.lineage import Origin
from tests.retrain.helpers import MODEL, agrawal, seed_store, tamper

Factory = Callable[..., Retrainer]

#: An artifact written by driftloop before fine-tuning existed (no origin in its lineage).
OLD_ARTIFACT = Path(__file__).parent / "data" / "agrawal-v1"


def _champion(database: Database, retrainer: Retrainer) -> datetime:
    """v1 learns Agrawal concept 0, then 400 more examples of it arrive; returns the time
    after them."""
    after = seed_store(database, agrawal(600, function=0), prefix="a")
    assert retrainer.run(MODEL, Trigger("manual")).decision == "promoted"
    return seed_store(database, agrawal(400, function=0, seed=5), start=after, prefix="b")


def test_a_scheduled_run_fine_tunes_the_champion(
    database: Database, retrainer_factory: Factory
) -> None:
    retrainer = retrainer_factory(hidden=(16,))
    _champion(database, retrainer)
    first = retrainer.registry.version(MODEL, 1)
    assert first.lineage.origin == Origin(mode="fresh", reason="a manual run trains from scratch")

    outcome = retrainer.run(MODEL, Trigger("schedule"))
    assert outcome.status == "succeeded"
    version = retrainer.registry.version(MODEL, 2)
    assert version.lineage.origin == Origin(
        mode="fine-tuned", reason="a schedule run refreshes the model it starts from",
        parent_version=1, parent_sha256=first.sha256)
    assert version.parent_version == 1
    artifact = load_artifact(version.artifact_uri or "", expected_sha256=version.sha256)
    champion = load_artifact(first.artifact_uri or "", expected_sha256=first.sha256)
    assert artifact.manifest.architecture == champion.manifest.architecture
    assert artifact.manifest.features == champion.manifest.features
    assert artifact.manifest.lineage.training.learning_rate == 1e-3
    log = retrainer.runs.run(outcome.run_id).log
    assert "start: fine-tuned from v1 (a schedule run refreshes the model it starts from)" in log
    assert "trained:" not in log, "the trainer did what was planned"


def test_a_start_with_another_feature_schema_falls_back_to_training_from_scratch(
    database: Database, retrainer_factory: Factory
) -> None:
    retrainer = retrainer_factory()
    after = _champion(database, retrainer)
    renamed = [({("years" if k == "age" else k): v for k, v in x.items()}, y)
               for x, y in agrawal(600, function=0, seed=6)]
    seed_store(database, renamed, start=after, prefix="c")

    outcome = retrainer.run(MODEL, Trigger("schedule"))
    assert outcome.status == "succeeded"
    origin = retrainer.registry.version(MODEL, 2).lineage.origin
    assert origin.mode == "fresh"
    assert origin.parent_version == 1
    assert origin.fallback.startswith(
        "its feature schema does not fit the data: missing features ['age']")
    log = retrainer.runs.run(outcome.run_id).log
    assert ("start: trained from scratch instead of fine-tuning v1: its feature schema does "
            "not fit the data") in log
    features = load_artifact(retrainer.registry.version(MODEL, 2).artifact_uri or "").manifest
    assert "years" in [f.name for f in features.features]


def test_a_start_without_the_datas_classes_falls_back_to_training_from_scratch(
    database: Database, retrainer_factory: Factory
) -> None:
    retrainer = retrainer_factory()
    after = _champion(database, retrainer)
    three = [(x, 2 if i % 4 == 0 else y)
             for i, (x, y) in enumerate(agrawal(800, function=0, seed=6))]
    seed_store(database, three, start=after, prefix="c")

    outcome = retrainer.run(MODEL, Trigger("follow-up"))
    assert outcome.status == "succeeded"
    origin = retrainer.registry.version(MODEL, 2).lineage.origin
    assert (origin.mode, origin.fallback) == (
        "fresh", "its classes [0, 1] do not hold the labels 2")
    assert ("trained from scratch instead of fine-tuning v1: its classes [0, 1] do not hold "
            "the labels 2") in retrainer.runs.run(outcome.run_id).log
    artifact = load_artifact(retrainer.registry.version(MODEL, 2).artifact_uri or "")
    assert artifact.manifest.classes == (0, 1, 2)


def test_a_champion_whose_artifact_does_not_load_is_not_fine_tuned(
    database: Database, retrainer_factory: Factory
) -> None:
    retrainer = retrainer_factory()
    _champion(database, retrainer)
    tamper(retrainer.registry.version(MODEL, 1).artifact_uri)
    outcome = retrainer.run(MODEL, Trigger("schedule"))
    assert outcome.status == "succeeded"
    origin = retrainer.registry.version(MODEL, 2).lineage.origin
    assert origin.mode == "fresh"
    assert origin.fallback == ("its artifact does not load: weights.safetensors in "
                                  f"{retrainer.artifacts / MODEL / 'v1'} does not match its "
                                  "sha256 in the manifest")
    assert "start: trained from scratch instead of fine-tuning v1: its artifact does not load" \
        in retrainer.runs.run(outcome.run_id).log


def test_a_first_refresh_without_a_champion_trains_from_scratch(
    database: Database, retrainer_factory: Factory
) -> None:
    retrainer = retrainer_factory()
    seed_store(database, agrawal(600, function=0))
    outcome = retrainer.run(MODEL, Trigger("schedule"))
    assert outcome.decision == "promoted"
    origin = retrainer.registry.version(MODEL, 1).lineage.origin
    assert (origin.mode, origin.fallback) == ("fresh", "there is nothing to start from")


def test_a_nan_loss_while_fine_tuning_fails_the_run_and_leaves_the_champion(
    database: Database, retrainer_factory: Factory
) -> None:
    _champion(database, retrainer_factory())
    exploding = retrainer_factory(fine_tune_learning_rate=1e30)
    outcome = exploding.run(MODEL, Trigger("schedule"))
    assert outcome.status == "failed"
    run = exploding.runs.run(outcome.run_id)
    assert "TrainingError: loss is not finite" in (run.error or "")
    assert "start: fine-tuned from v1" in run.log
    assert exploding.registry.version(MODEL, 2).status == "failed"
    assert exploding.registry.champion(MODEL).version == 1  # type: ignore[union-attr]
    assert len(exploding.registry.audit(MODEL)) == 1


def test_a_checkpoint_is_the_start_of_a_models_first_refresh(
    database: Database, retrainer_factory: Factory, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "pretrained"
    shutil.copytree(OLD_ARTIFACT, checkpoint)  # written before fine-tuning existed
    retrainer = retrainer_factory(checkpoints={MODEL: checkpoint / "weights.safetensors"})
    seed_store(database, agrawal(600, function=0))

    outcome = retrainer.run(MODEL, Trigger("schedule"))
    assert outcome.status == "succeeded"
    version = retrainer.registry.version(MODEL, 1)
    started = load_artifact(checkpoint)
    assert version.lineage.origin.mode == "fine-tuned"
    assert version.lineage.origin.checkpoint == checkpoint.resolve().as_uri()
    assert version.lineage.origin.parent_sha256 == started.sha256
    assert version.lineage.origin.parent_version is None
    artifact = load_artifact(version.artifact_uri or "")
    assert artifact.manifest.architecture.params["hidden"] == [8]  # the checkpoint's, not (64, 64)
    assert artifact.manifest.features == started.manifest.features
    assert any(not np.array_equal(t, started.tensors[k]) for k, t in artifact.tensors.items())


def test_with_fine_tune_never_every_run_trains_from_scratch(
    database: Database, retrainer_factory: Factory
) -> None:
    retrainer = retrainer_factory(fine_tune="never")
    _champion(database, retrainer)
    assert retrainer.run(MODEL, Trigger("schedule")).status == "succeeded"
    origin = retrainer.registry.version(MODEL, 2).lineage.origin
    assert (origin.mode, origin.reason) == ("fresh", "fine_tune is 'never'")


def test_a_trainer_that_ignores_the_start_is_recorded_as_training_from_scratch(
    database: Database, retrainer_factory: Factory
) -> None:
    _champion(database, retrainer_factory())
    ignoring = retrainer_factory("tests.retrain.trainers:StartIgnoringTrainer")
    outcome = ignoring.run(MODEL, Trigger("schedule"))
    assert outcome.status == "succeeded"
    origin = ignoring.registry.version(MODEL, 2).lineage.origin
    assert origin.mode == "fresh"
    assert origin.fallback == "tests.retrain.trainers:StartIgnoringTrainer did not fine-tune"
    assert ("trained: trained from scratch instead of fine-tuning v1: "
            "tests.retrain.trainers:StartIgnoringTrainer did not fine-tune"
            ) in ignoring.runs.run(outcome.run_id).log

