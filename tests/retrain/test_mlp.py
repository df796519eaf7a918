"""The built-in trainer on River's Agrawal stream: it learns, it is seeded, it fails loudly, and
it fine-tunes from the champion's own weights, architecture and preprocessing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from river.datasets import synth

from retrain.dataset import DatasetPlan, build_dataset
from retrain.mlp import MLPTrainer
from retrain.scoring import score
from retrain.start import Start
from retrain.trainer import EpochReport, Trainer, TrainingJob, load_trainer
from streams.artifacts import Architecture, Preprocessor, load_artifact
from streams.errors import ConfigError, TrainingError
from streams.lineage import Lineage, Origin, TriggerLineage
from streams.nn import load_module
from tests.retrain.helpers import agrawal, examples, fast_settings


def _dataset(rows: list, **overrides: object):  # type: ignore[no-untyped-def]
    return build_dataset("agrawal", examples(rows),
                         DatasetPlan.from_settings(fast_settings(**overrides)))


def test_learns_agrawal_and_writes_an_artifact_serving_loads(tmp_path: Path) -> None:
    data = _dataset(agrawal(800, function=2))
    reports: list[EpochReport] = []
    trainer = MLPTrainer(fast_settings())
    lineage = Lineage(trigger=TriggerLineage(kind="test"))
    artifact = trainer.fit(TrainingJob(data, 3, tmp_path / "v3", lineage,
                                       progress=reports.append))

    loaded = load_artifact(artifact.uri, expected_sha256=artifact.sha256)
    module = load_module(loaded, torch.device("cpu"))
    x = Preprocessor(loaded.manifest.features).transform(data.holdout.features)
    predicted = module(torch.from_numpy(x)).argmax(dim=1).numpy()
    truth = np.array(data.holdout.labels)
    majority = max(truth.mean(), 1 - truth.mean())
    accuracy = float((np.array(loaded.manifest.classes)[predicted] == truth).mean())
    assert accuracy > majority + 0.2, (accuracy, majority)
    assert loaded.manifest.version == 3
    assert loaded.manifest.task == "classification"
    assert loaded.manifest.classes == (0, 1)
    assert loaded.manifest.metrics["accuracy"] > 0.8
    assert loaded.manifest.lineage.trigger == TriggerLineage(kind="test")
    assert loaded.manifest.lineage.training.device == trainer.device == "cpu"
    assert [r.epoch for r in reports] == list(range(1, len(reports) + 1))
    assert reports[-1].best_epoch <= reports[-1].epoch


def _with_nulls(rows: list, feature: str, every: int) -> list:  # type: ignore[type-arg]
    return [({**x, feature: None} if i % every == 0 else x, y) for i, (x, y) in enumerate(rows)]


def test_nulls_are_trained_on_with_an_indicator_and_a_champion_fine_tunes_on_them(
        tmp_path: Path) -> None:
    # Concept 0 depends on age: a fifth of the rows lose it, the rest still teach it.
    data = _dataset(_with_nulls(agrawal(800, function=0), "age", every=5))
    artifact = MLPTrainer(fast_settings()).fit(TrainingJob(data, 1, tmp_path / "v1"))
    age = next(f for f in artifact.manifest.features if f.name == "age")
    assert age.indicator
    assert 0.1 < age.missing_share < 0.3
    assert artifact.manifest.metrics["accuracy"] > 0.8

    # A champion that never saw a null fine-tunes on data with them: imputed, no indicator.
    champion = _champion(tmp_path)
    assert not any(f.indicator for f in champion.manifest.features)
    later = _dataset(_with_nulls(agrawal(600, function=0, seed=7), "salary", every=3))
    challenger = MLPTrainer(fast_settings()).fit(
        TrainingJob(later, 2, tmp_path / "v2", start=_start(champion)))
    assert challenger.manifest.lineage.origin is not None
    assert challenger.manifest.lineage.origin.mode == "fine-tuned"
    assert challenger.manifest.features == champion.manifest.features


def test_training_is_seeded(tmp_path: Path) -> None:
    data = _dataset(agrawal(300, function=0))
    first = MLPTrainer(fast_settings(epochs=3)).fit(TrainingJob(data, 1, tmp_path / "a"))
    second = MLPTrainer(fast_settings(epochs=3)).fit(TrainingJob(data, 1, tmp_path / "b"))
    other = MLPTrainer(fast_settings(epochs=3, seed=1)).fit(TrainingJob(data, 1, tmp_path / "c"))
    for name, tensor in first.tensors.items():
        assert np.array_equal(tensor, second.tensors[name])
    assert any(not np.array_equal(t, other.tensors[n]) for n, t in first.tensors.items())


def test_early_stopping_keeps_the_best_epoch(tmp_path: Path) -> None:
    data = _dataset(agrawal(300, function=0))
    reports: list[EpochReport] = []
    MLPTrainer(fast_settings(epochs=200, patience=2)).fit(
        TrainingJob(data, 1, tmp_path / "v1", progress=reports.append))
    assert len(reports) < 200
    assert reports[-1].epoch - reports[-1].best_epoch == 2
    best = min(reports, key=lambda r: r.val_loss)
    assert best.epoch == reports[-1].best_epoch


def test_regression_on_friedman(tmp_path: Path) -> None:
    rows = [({f"x{k}": v for k, v in x.items()}, float(y))
            for x, y in synth.Friedman(seed=4).take(600)]
    data = _dataset(rows)
    assert data.task == "regression"
    artifact = MLPTrainer(fast_settings()).fit(TrainingJob(data, 1, tmp_path / "v1"))
    evaluation = score(artifact, data.holdout, torch.device("cpu")).evaluation
    labels = np.array(data.holdout.labels)
    mean_guess_mse = float(((labels - np.mean(data.train.labels)) ** 2).mean())
    assert evaluation.finite
    assert evaluation.prediction_spread > 0
    assert evaluation.metrics["mse"] < mean_guess_mse / 2


def test_a_nan_loss_raises_training_error(tmp_path: Path) -> None:
    data = _dataset(agrawal(300, function=0))
    trainer = MLPTrainer(fast_settings(learning_rate=1e30))
    with pytest.raises(TrainingError, match="loss is not finite at epoch"):
        trainer.fit(TrainingJob(data, 1, tmp_path / "v1"))
    assert not (tmp_path / "v1" / "manifest.json").exists()


def test_a_stop_request_ends_training(tmp_path: Path) -> None:
    data = _dataset(agrawal(300, function=0))
    with pytest.raises(TrainingError, match="stopped at epoch 1"):
        MLPTrainer(fast_settings()).fit(TrainingJob(data, 1, tmp_path / "v1",
                                                    should_stop=lambda: True))


def test_trainers_load_by_import_path() -> None:
    trainer = load_trainer("retrain.mlp:MLPTrainer", fast_settings())
    assert isinstance(trainer, Trainer)
    assert trainer.hyperparameters()["hidden"] == [64, 64]
    assert isinstance(load_trainer("tests.retrain.trainers:FailingTrainer", fast_settings()),
                      Trainer)
    with pytest.raises(ConfigError, match="module:attr"):
        load_trainer("retrain.mlp", fast_settings())
    with pytest.raises(ConfigError, match="cannot import"):
        load_trainer("retrain.nope:Trainer", fast_settings())
    with pytest.raises(ConfigError, match="did not build a trainer"):
        load_trainer("retrain.dataset:DatasetPlan", fast_settings())


def test_small_training_sets_get_smaller_batches() -> None:
    from retrain.mlp import batch_size

    assert batch_size(50_000, 256, 16) == 256
    assert batch_size(2_000, 256, 16) == 125
    assert batch_size(160, 256, 16) == 10
    assert batch_size(40, 256, 16) == 8


def _champion(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A champion trained on Agrawal concept 0."""
    return MLPTrainer(fast_settings()).fit(
        TrainingJob(_dataset(agrawal(600, function=0)), 1, tmp_path / "v1"))


def _start(artifact) -> Start:  # type: ignore[no-untyped-def]
    return Start(artifact, Origin(mode="fine-tuned", reason="test", parent_version=1,
                                  parent_sha256=artifact.sha256))


def _distance(a: dict, b: dict) -> float:  # type: ignore[type-arg]
    return float(sum(np.abs(a[k] - b[k]).sum() for k in a) / sum(np.abs(b[k]).sum() for k in b))


def test_fine_tuning_starts_from_the_champions_weights(tmp_path: Path) -> None:
    champion = _champion(tmp_path)
    # New data of the same concept, with other feature statistics than the champion saw.
    data = _dataset(agrawal(600, function=0, seed=7))
    frozen = MLPTrainer(fast_settings(fine_tune_learning_rate=1e-9, fine_tune_epochs=1,
                                      hidden=(16,)))
    challenger = frozen.fit(TrainingJob(data, 2, tmp_path / "v2", start=_start(champion)))

    for name, tensor in champion.tensors.items():
        np.testing.assert_allclose(challenger.tensors[name], tensor, atol=1e-6)
    # Same architecture and preprocessing as the champion, not refitted, nor from settings.
    assert challenger.manifest.architecture == champion.manifest.architecture
    assert challenger.manifest.features == champion.manifest.features
    assert Preprocessor.fit(data.train.features).features != champion.manifest.features
    assert challenger.manifest.lineage.origin == _start(champion).origin

    # Its first loss is the champion's loss on the same validation split.
    module = load_module(champion, torch.device("cpu"))
    x = torch.from_numpy(Preprocessor(champion.manifest.features).transform(
        data.validation.features))
    with torch.no_grad():
        champion_loss = float(torch.nn.functional.cross_entropy(
            module(x), torch.tensor(data.validation.labels)))
    assert challenger.manifest.lineage.training.start_val_loss == pytest.approx(
        champion_loss, rel=1e-5)


def test_a_few_fine_tuning_epochs_stay_close_to_the_champion(tmp_path: Path) -> None:
    champion = _champion(tmp_path)
    data = _dataset(agrawal(600, function=0, seed=7))
    settings = fast_settings(fine_tune_epochs=3, patience=10)
    tuned = MLPTrainer(settings).fit(TrainingJob(data, 2, tmp_path / "v2",
                                                 start=_start(champion)))
    fresh = MLPTrainer(settings.model_copy(update={"epochs": 3})).fit(
        TrainingJob(data, 2, tmp_path / "fresh"))
    assert tuned.manifest.lineage.training.epochs_run == 3
    assert tuned.manifest.lineage.training.learning_rate == settings.fine_tune_learning_rate
    moved = _distance(tuned.tensors, champion.tensors)
    assert 0 < moved < _distance(fresh.tensors, champion.tensors) / 4, moved
    assert tuned.manifest.metrics["accuracy"] >= champion.manifest.metrics["accuracy"] - 0.05


def test_fine_tuning_keeps_the_champions_target_scaling(tmp_path: Path) -> None:
    rows = [({f"x{k}": v for k, v in x.items()}, float(y))
            for x, y in synth.Friedman(seed=4).take(600)]
    champion = MLPTrainer(fast_settings()).fit(TrainingJob(_dataset(rows), 1, tmp_path / "v1"))
    shifted = [(x, y + 100.0) for x, y in rows]
    tuned = MLPTrainer(fast_settings()).fit(TrainingJob(_dataset(shifted), 2, tmp_path / "v2",
                                                        start=_start(champion)))
    assert (tuned.manifest.target_mean, tuned.manifest.target_std) == (
        champion.manifest.target_mean, champion.manifest.target_std)
    assert tuned.manifest.lineage.origin is not None
    assert tuned.manifest.lineage.origin.mode == "fine-tuned"


def test_a_start_whose_network_does_not_load_trains_from_scratch(tmp_path: Path) -> None:
    champion = _champion(tmp_path)
    foreign = dataclasses.replace(champion, manifest=champion.manifest.model_copy(
        update={"architecture": Architecture(name="elsewhere:Net")}))
    data = _dataset(agrawal(300, function=0, seed=7))
    artifact = MLPTrainer(fast_settings(epochs=2)).fit(
        TrainingJob(data, 2, tmp_path / "v2", start=_start(foreign)))
    origin = artifact.manifest.lineage.origin
    assert origin is not None
    assert origin.mode == "fresh"
    assert origin.parent_version == 1
    assert "its network does not load: unknown architecture 'elsewhere:Net'" in (
        origin.fallback or "")
    assert artifact.manifest.architecture.name == "mlp"
    assert artifact.manifest.lineage.training.start_val_loss is None


def test_a_nan_loss_while_fine_tuning_raises_training_error(tmp_path: Path) -> None:
    champion = _champion(tmp_path)
    data = _dataset(agrawal(300, function=0, seed=7))
    trainer = MLPTrainer(fast_settings(fine_tune_learning_rate=1e30))
    with pytest.raises(TrainingError, match="loss is not finite at epoch"):
        trainer.fit(TrainingJob(data, 2, tmp_path / "v2", start=_start(champion)))
    assert not (tmp_path / "v2" / "manifest.json").exists()
