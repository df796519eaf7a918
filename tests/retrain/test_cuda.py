"""The built-in trainer on CUDA: what it writes serves the same on the GPU, on the CPU, and in a
process that has no GPU at all. Skipped where torch sees no CUDA device."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from river.datasets import synth

from retrain.dataset import Dataset, DatasetPlan, build_dataset
from retrain.mlp import MLPTrainer
from retrain.scoring import score
from retrain.start import Start
from retrain.trainer import TrainingJob
from serving.model import load_model
from streams.lineage import Origin
from tests.retrain.helpers import agrawal, examples, fast_settings

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")
CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[2]


def _dataset(task: str) -> Dataset:
    rows: list[tuple[dict[str, Any], Any]]
    if task == "classification":
        rows = agrawal(800, function=2)
    else:
        rows = [({f"x{k}": v for k, v in x.items()}, float(y))
                for x, y in synth.Friedman(seed=4).take(600)]
    data = build_dataset("agrawal", examples(rows), DatasetPlan.from_settings(fast_settings()))
    assert data.task == task
    return data


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_model_trained_on_cuda_serves_the_same_on_cuda_and_on_the_cpu(
    tmp_path: Path, task: str
) -> None:
    data = _dataset(task)
    trainer = MLPTrainer(fast_settings(device="cuda"))
    artifact = trainer.fit(TrainingJob(data, 1, tmp_path / "v1"))
    assert trainer.device == "cuda"
    assert artifact.manifest.lineage.training.device == "cuda"

    on_gpu = load_model(artifact.uri, device=CUDA, expected_sha256=artifact.sha256)
    on_cpu = load_model(artifact.uri, device=CPU, expected_sha256=artifact.sha256)
    assert {p.device.type for p in on_gpu.module.parameters()} == {"cuda"}
    assert {p.device.type for p in on_cpu.module.parameters()} == {"cpu"}
    x = on_cpu.encode(data.holdout.features)
    gpu, cpu = on_gpu.scores(x), on_cpu.scores(x)
    assert np.isfinite(gpu).all()
    np.testing.assert_allclose(gpu, cpu, rtol=1e-5, atol=1e-5 * artifact.manifest.target_std)

    truth = np.array(data.holdout.labels)
    if task == "classification":
        assert gpu.shape == (len(data.holdout), 2)
        labels = np.array([o.label for o in on_gpu.outputs(gpu)])  # type: ignore[union-attr]
        assert labels.tolist() == [o.label for o in on_cpu.outputs(cpu)]  # type: ignore[union-attr]
        majority = max(truth.mean(), 1 - truth.mean())
        assert (labels == truth).mean() > majority + 0.2, "the CUDA-trained model did not learn"
    else:
        mean_guess = float(((truth - np.mean(data.train.labels)) ** 2).mean())
        mse = float(((gpu - truth) ** 2).mean())
        assert mse < mean_guess / 2, "the CUDA-trained model did not learn"


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_champion_and_challenger_score_the_same_on_cuda_and_on_the_cpu(
    tmp_path: Path, task: str
) -> None:
    data = _dataset(task)
    artifact = MLPTrainer(fast_settings(device="cuda")).fit(TrainingJob(data, 1, tmp_path / "v1"))
    gpu, cpu = score(artifact, data.holdout, CUDA), score(artifact, data.holdout, CPU)
    assert gpu.evaluation.finite
    assert gpu.evaluation.metrics.keys() == cpu.evaluation.metrics.keys()
    for name, value in gpu.evaluation.metrics.items():
        assert value == pytest.approx(cpu.evaluation.metrics[name], rel=1e-5, abs=1e-6), name
    if task == "classification":
        assert gpu.predictions == cpu.predictions
    else:
        np.testing.assert_allclose(gpu.predictions, cpu.predictions, rtol=1e-5,
                                   atol=1e-5 * artifact.manifest.target_std)


def test_an_artifact_trained_on_cuda_loads_in_a_process_without_a_gpu(tmp_path: Path) -> None:
    data = _dataset("classification")
    artifact = MLPTrainer(fast_settings(device="cuda")).fit(TrainingJob(data, 1, tmp_path / "v1"))
    on_cpu = load_model(artifact.uri, device=CPU, expected_sha256=artifact.sha256)
    x = on_cpu.encode(data.holdout.features)
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import numpy as np, torch
        from serving.model import load_model
        from streams.nn import pick_device
        assert not torch.cuda.is_available()
        model = load_model({artifact.uri!r}, device=pick_device(),
                           expected_sha256={artifact.sha256!r})
        assert model.device.type == "cpu", model.device
        np.save({str(tmp_path / "scores.npy")!r},
                model.scores(np.load({str(tmp_path / "x.npy")!r})))
    """)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "scores.npy"), on_cpu.scores(x),
                               rtol=1e-6, atol=1e-7)


def test_fine_tuning_on_cuda_starts_from_a_champion_trained_on_the_cpu(tmp_path: Path) -> None:
    data = _dataset("classification")
    champion = MLPTrainer(fast_settings(device="cpu")).fit(TrainingJob(data, 1, tmp_path / "v1"))
    origin = Origin(mode="fine-tuned", reason="test", parent_version=1)
    trainer = MLPTrainer(fast_settings(device="cuda", fine_tune_learning_rate=1e-9,
                                       fine_tune_epochs=1))
    tuned = trainer.fit(TrainingJob(data, 2, tmp_path / "v2", start=Start(champion, origin)))
    assert tuned.manifest.lineage.training.device == "cuda"
    assert tuned.manifest.lineage.origin == origin
    for name, tensor in champion.tensors.items():
        np.testing.assert_allclose(tuned.tensors[name], tensor, atol=1e-6)
