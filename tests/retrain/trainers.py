"""Trainers plugged in by import path (``settings.retrain.trainer``) to exercise failures."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

import torch

from retrain.mlp import MLPTrainer
from retrain.trainer import TrainingJob
from streams.artifacts import Artifact
from streams.errors import TrainingError
from streams.settings import RetrainSettings


class FailingTrainer:
    """A trainer with a bug."""

    def __init__(self, settings: RetrainSettings) -> None:
        self.settings = settings

    @property
    def device(self) -> str:
        return "cpu"

    def hyperparameters(self) -> dict[str, Any]:
        return {}

    def fit(self, job: TrainingJob) -> Artifact:
        raise RuntimeError("trainer bug: index out of range")


class OutOfMemoryTrainer(FailingTrainer):
    """A fit that runs out of GPU memory."""

    def fit(self, job: TrainingJob) -> Artifact:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


class GatedTrainer(MLPTrainer):
    """Holds every fit until ``GATE`` opens; ``ENTERED`` says one is waiting."""

    GATE = threading.Event()
    ENTERED = threading.Event()

    def fit(self, job: TrainingJob) -> Artifact:
        GatedTrainer.ENTERED.set()
        if not GatedTrainer.GATE.wait(60):
            raise TimeoutError("gate never opened")
        return super().fit(job)


class TracingTrainer(MLPTrainer):
    """The MLP, but a request's evidence can ask it to log each fit to a file and to stall.

    ``evidence = {"trace": path}`` appends the request id to ``path`` when a fit starts;
    ``"stall": marker`` then touches ``marker`` and sleeps (so a test can SIGKILL mid-run).
    """

    def fit(self, job: TrainingJob) -> Artifact:
        trigger = job.lineage.trigger
        evidence = trigger.evidence if trigger is not None else {}
        if "trace" in evidence:
            with Path(str(evidence["trace"])).open("a") as f:
                f.write(f"{trigger.request_id if trigger is not None else None}\n")
        if "stall" in evidence:
            Path(str(evidence["stall"])).touch()
            time.sleep(600)
        return super().fit(job)


class StartIgnoringTrainer(MLPTrainer):
    """The MLP, as a trainer written before fine-tuning: it never looks at ``job.start``."""

    def fit(self, job: TrainingJob) -> Artifact:
        return super().fit(dataclasses.replace(job, start=None))


class TrialCrashTrainer(MLPTrainer):
    """The MLP, but the second candidate of a search crashes (a bug that one shape hits)."""

    def fit(self, job: TrainingJob) -> Artifact:
        if job.path.name == "trial-1":
            raise RuntimeError("trainer bug: index out of range in candidate 1")
        return super().fit(job)


class PoolFailingTrainer(MLPTrainer):
    """The MLP on a single candidate; every candidate of a search diverges."""

    def fit(self, job: TrainingJob) -> Artifact:
        if job.path.name.startswith("trial-"):
            raise TrainingError("loss is not finite at epoch 1 (train nan, validation nan)")
        return super().fit(job)
