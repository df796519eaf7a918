"""The built-in trainer on River's Agrawal stream: it learns, it is seeded, it fails loudly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from river.datasets import synth

from retrain.dataset import DatasetPlan, build_dataset
from retrain.mlp import MLPTrainer
from retrain.scoring import score
from retrain.trainer import EpochReport, Trainer, TrainingJob, load_trainer
from streams.artifacts import Preprocessor, load_artifact
from streams.errors import ConfigError, TrainingError
from streams.nn import load_module
from tests.retrain.helpers import agrawal, examples, fast_settings


def _dataset(rows: list, **overrides: object):  # type: ignore[no-untyped-def]
    return build_dataset("agrawal", examples(rows),
                         DatasetPlan.from_settings(fast_settings(**overrides)))


def test_learns_agrawal_and_writes_an_artifact_serving_loads(tmp_path: Path) -> None:
    data = _dataset(agrawal(800, function=2))
    reports: list[EpochReport] = []
    trainer = MLPTrainer(fast_settings())
    artifact = trainer.fit(TrainingJob(data, 3, tmp_path / "v3", {"trigger": {"kind": "test"}},
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
    assert loaded.manifest.lineage["trigger"] == {"kind": "test"}
    assert loaded.manifest.lineage["training"]["device"] == trainer.device == "cpu"
    assert [r.epoch for r in reports] == list(range(1, len(reports) + 1))
    assert reports[-1].best_epoch <= reports[-1].epoch


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
