"""The built-in trainer: a PyTorch tabular MLP for classification and regression.

Preprocessing (scaling of numbers, one-hot categories) is fitted on the training split only.
The network (:class:`streams.nn.MLP`) trains with Adam on mini-batches, seeded, on CUDA when
present (``settings.retrain.device`` overrides), and stops early when the validation loss has
not improved for ``patience`` epochs; the best epoch's weights are kept. A classifier is then
calibrated on the validation split (:mod:`retrain.calibrate`) and the calibration, with its
estimated-performance bands, goes into the manifest. A small training set
(a few hundred examples right after a drift) is cut into at least ``min_batches`` batches per
epoch, so that it still gets enough optimiser steps to learn. A non-finite loss
raises ``TrainingError``. Progress goes to ``job.progress`` when given, else to a rich
progress bar on stderr when the trainer was built with ``show_progress=True``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from retrain.calibrate import fit_calibration
from retrain.dataset import Dataset
from retrain.metrics import classification_metrics, regression_metrics
from retrain.trainer import EpochReport, Progress, TrainingJob
from streams.artifacts import Architecture, Artifact, Manifest, Preprocessor, write_artifact
from streams.calibration import Calibration
from streams.clock import Clock, utc_now
from streams.errors import ArtifactError, TrainingError
from streams.lineage import Origin, TrainingLineage
from streams.nn import build_module, load_module, pick_device, state_to_numpy
from streams.scores import label_key, label_keys
from streams.settings import RetrainSettings

log = logging.getLogger(__name__)

NAME = "retrain.mlp:MLPTrainer"
_EVAL_BATCH = 8192


class MLPTrainer:
    """Fits :class:`streams.nn.MLP` on a dataset; see the module docstring."""

    def __init__(
        self,
        settings: RetrainSettings,
        *,
        show_progress: bool = False,
        clock: Clock = utc_now,
    ) -> None:
        self._settings = settings
        self._device = pick_device(settings.device)
        self._show_progress = show_progress
        self._now = clock

    @property
    def device(self) -> str:
        return str(self._device)

    def warm_up(self) -> None:
        """Pay torch's one-off costs now, not in the first run after a drift: building the
        first optimiser imports ``torch._dynamo`` (over a second on a small machine)."""
        weight = torch.zeros(1, requires_grad=True)
        torch.optim.Adam([weight], lr=self._settings.learning_rate)

    def hyperparameters(self) -> dict[str, Any]:
        s = self._settings
        return {
            "architecture": "mlp",
            "hidden": list(s.hidden),
            "dropout": 0.0,
            "optimizer": "adam",
            "learning_rate": s.learning_rate,
            "weight_decay": 0.0,
            "batch_size": s.batch_size,
            "min_batches": s.min_batches,
            "epochs": s.epochs,
            "fine_tune": s.fine_tune,
            "fine_tune_learning_rate": s.fine_tune_learning_rate,
            "fine_tune_epochs": s.fine_tune_epochs,
            "patience": s.patience,
            "seed": s.seed,
        }

    def fit(self, job: TrainingJob) -> Artifact:
        data = job.dataset
        started = time.perf_counter()
        if self._device.type == "cpu" and self._settings.cpu_threads is not None:
            torch.set_num_threads(self._settings.cpu_threads)
        torch.manual_seed(self._settings.seed)
        knobs = _Knobs.of(self._settings, job.hyperparameters)
        module, origin = self._starting_module(job)
        fine_tuned = module is not None
        if module is not None and job.start is not None:
            encoding = _Encoding.of(job.start.artifact.manifest)
        else:
            encoding = _Encoding.fit(data, knobs.hidden, knobs.dropout)
            module = build_module(encoding.architecture, encoding.pre.width,
                                  encoding.out_width).to(self._device)
        pre, classes = encoding.pre, encoding.classes
        x_train = self._tensor(pre.transform(data.train.features))
        x_val = self._tensor(pre.transform(data.validation.features))
        if data.task == "classification":
            index = {label_key(c): i for i, c in enumerate(classes)}
            y_train = torch.tensor([index[k] for k in label_keys(data.train.labels)])
            y_val = torch.tensor([index[k] for k in label_keys(data.validation.labels)])
            loss_fn: nn.Module = nn.CrossEntropyLoss()
        else:
            y_train, y_val = (
                torch.tensor((np.asarray(split.labels, dtype=np.float64) - encoding.target_mean)
                             / encoding.target_std, dtype=torch.float32)
                for split in (data.train, data.validation)
            )
            loss_fn = nn.MSELoss()
        y_train, y_val = y_train.to(self._device), y_val.to(self._device)

        s = self._settings
        schedule = (_Schedule(s.fine_tune_learning_rate, s.fine_tune_epochs, from_start=True)
                    if fine_tuned else _Schedule(knobs.learning_rate, s.epochs, from_start=False,
                                                 weight_decay=knobs.weight_decay))
        best_state, epochs_run, best_epoch, start_loss = self._train(
            module, loss_fn, (x_train, y_train), (x_val, y_val), job, schedule
        )
        module.load_state_dict(best_state)
        module.eval()
        outputs = _forward(module, x_val)
        calibration: Calibration | None = None
        if data.task == "classification":
            predicted = [classes[i] for i in outputs.argmax(dim=1).tolist()]
            metrics = classification_metrics(data.validation.labels, predicted)
            calibration = fit_calibration(
                torch.softmax(outputs.double(), dim=1).cpu().numpy(), y_val.cpu().tolist(),
                [str(c) for c in classes], chunk_rows=s.estimate_chunk_rows,
                width=s.estimate_band_width, seed=s.seed)
        else:
            values = (outputs.squeeze(1).double() * encoding.target_std
                      + encoding.target_mean).tolist()
            metrics = regression_metrics(data.validation.labels, values)
        seconds = time.perf_counter() - started
        training = TrainingLineage(
            device=self.device, learning_rate=schedule.learning_rate, epochs_run=epochs_run,
            best_epoch=best_epoch, seconds=round(seconds, 3), rows=len(data.train),
            start_val_loss=start_loss,
        )
        lineage = job.lineage.model_copy(update={"training": training, "origin": origin})
        manifest = Manifest(
            model=data.model,
            version=job.version,
            task=data.task,
            architecture=encoding.architecture,
            features=pre.features,
            classes=classes,
            target_mean=encoding.target_mean,
            target_std=encoding.target_std,
            metrics=metrics,
            calibration=calibration,
            trainer=NAME,
            created_at=self._now(),
            lineage=lineage,
        )
        log.info("trained %s v%d in %.2fs on %s (%s)", data.model, job.version, seconds,
                 self.device, "fine-tuned" if fine_tuned else "from scratch")
        return write_artifact(job.path, manifest, state_to_numpy(module))

    def _starting_module(self, job: TrainingJob) -> tuple[nn.Module | None, Origin | None]:
        """The network of ``job.start`` on this device, with the origin to record; no network
        (train from scratch) when there is no start or its weights do not load."""
        if job.start is None:
            return None, job.lineage.origin
        try:
            module = load_module(job.start.artifact, self._device)
        except ArtifactError as exc:
            log.warning("fine-tuning falls back to training from scratch",
                        extra={"model": job.dataset.model, "error": str(exc)})
            return None, job.start.origin.fell_back(f"its network does not load: {exc}")
        return module, job.start.origin

    def _tensor(self, matrix: np.ndarray[Any, Any]) -> torch.Tensor:
        return torch.from_numpy(matrix).to(self._device)

    def _train(
        self,
        module: nn.Module,
        loss_fn: nn.Module,
        train: tuple[torch.Tensor, torch.Tensor],
        validation: tuple[torch.Tensor, torch.Tensor],
        job: TrainingJob,
        schedule: _Schedule,
    ) -> tuple[dict[str, torch.Tensor], int, int, float | None]:
        """Train; return the best epoch's weights, the epochs run, the best epoch, and the
        validation loss of the starting weights when they count as epoch 0."""
        s = self._settings
        (x_train, y_train), (x_val, y_val) = train, validation
        optimizer = torch.optim.Adam(module.parameters(), lr=schedule.learning_rate,
                                     weight_decay=schedule.weight_decay)
        shuffle = torch.Generator().manual_seed(s.seed)
        best_loss, best_epoch = math.inf, 0
        best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        start_loss: float | None = None
        if schedule.from_start:
            module.eval()
            with torch.no_grad():
                start_loss = float(loss_fn(_squeeze(_forward(module, x_val)), y_val))
            if math.isfinite(start_loss):
                best_loss = start_loss
        rows = x_train.shape[0]
        batch = batch_size(rows, s.batch_size, s.min_batches)
        epoch = 0
        with self._progress(job, schedule.epochs) as report:
            for epoch in range(1, schedule.epochs + 1):
                if job.should_stop():
                    raise TrainingError(f"stopped at epoch {epoch} before training finished")
                module.train()
                order = torch.randperm(rows, generator=shuffle).to(self._device)
                total = torch.zeros((), device=self._device)
                for start in range(0, rows, batch):
                    idx = order[start : start + batch]
                    optimizer.zero_grad(set_to_none=True)
                    loss = loss_fn(_squeeze(module(x_train[idx])), y_train[idx])
                    loss.backward()
                    optimizer.step()
                    total += loss.detach() * idx.shape[0]
                train_loss = float(total) / rows
                module.eval()
                with torch.no_grad():
                    val_loss = float(loss_fn(_squeeze(_forward(module, x_val)), y_val))
                if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                    raise TrainingError(
                        f"loss is not finite at epoch {epoch} (train {train_loss}, "
                        f"validation {val_loss})"
                    )
                if val_loss < best_loss - 1e-7:
                    best_loss, best_epoch = val_loss, epoch
                    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                report(EpochReport(epoch, schedule.epochs, train_loss, val_loss, best_epoch))
                if epoch - best_epoch >= s.patience:
                    break
        return best_state, epoch, best_epoch, start_loss

    @contextlib.contextmanager
    def _progress(self, job: TrainingJob, epochs: int) -> Iterator[Progress]:
        if job.progress is not None:
            yield job.progress
            return
        if not self._show_progress:
            yield lambda _report: None
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.completed}/{task.total} epochs"), TextColumn("{task.fields[loss]}"),
            TimeElapsedColumn(), console=Console(stderr=True), transient=True,
        )
        with bar:
            task = bar.add_task(f"{job.dataset.model} v{job.version} on {self.device}",
                                total=epochs, loss="")

            def show(r: EpochReport) -> None:
                bar.update(task, completed=r.epoch,
                           loss=f"train {r.train_loss:.4f} val {r.val_loss:.4f}")

            yield show


@dataclass(frozen=True)
class _Schedule:
    """How one fit trains: from scratch, or from its starting weights (epoch 0)."""

    learning_rate: float
    epochs: int
    from_start: bool
    weight_decay: float = 0.0


@dataclass(frozen=True)
class _Knobs:
    """What a fit from scratch trains with: the settings, or a search candidate's overrides
    (``job.hyperparameters``; fine-tuning keeps the start's network and its own rate)."""

    learning_rate: float
    hidden: tuple[int, ...]
    dropout: float
    weight_decay: float

    @classmethod
    def of(cls, settings: RetrainSettings, overrides: Mapping[str, Any]) -> _Knobs:
        return cls(
            learning_rate=float(overrides.get("learning_rate", settings.learning_rate)),
            hidden=tuple(int(w) for w in overrides.get("hidden", settings.hidden)),
            dropout=float(overrides.get("dropout", 0.0)),
            weight_decay=float(overrides.get("weight_decay", 0.0)),
        )


@dataclass(frozen=True)
class _Encoding:
    """How features and labels become tensors, and the network they feed."""

    pre: Preprocessor
    classes: tuple[Any, ...]
    target_mean: float
    target_std: float
    architecture: Architecture

    @property
    def out_width(self) -> int:
        return len(self.classes) if self.classes else 1

    @classmethod
    def fit(cls, data: Dataset, hidden: Sequence[int], dropout: float = 0.0) -> _Encoding:
        """Fitted on the training split (classes from training and validation)."""
        classes: tuple[Any, ...] = ()
        target_mean, target_std = 0.0, 1.0
        if data.task == "classification":
            classes = _classes(data.train.labels + data.validation.labels)
        else:
            raw = np.asarray(data.train.labels, dtype=np.float64)
            target_mean, target_std = float(raw.mean()), float(raw.std()) or 1.0
        return cls(Preprocessor.fit(data.train.features), classes, target_mean, target_std,
                   Architecture(name="mlp", params={"hidden": list(hidden), "dropout": dropout}))

    @classmethod
    def of(cls, manifest: Manifest) -> _Encoding:
        """An artifact's own: fine-tuning keeps them."""
        return cls(Preprocessor(manifest.features), manifest.classes, manifest.target_mean,
                   manifest.target_std, manifest.architecture)


def batch_size(rows: int, largest: int, min_batches: int, smallest: int = 8) -> int:
    """``largest``, or less so that an epoch of ``rows`` has at least ``min_batches`` batches
    (never below ``smallest``)."""
    return max(1, min(largest, max(smallest, math.ceil(rows / min_batches))))


def _squeeze(outputs: torch.Tensor) -> torch.Tensor:
    """Regression heads have one column; the loss wants a vector."""
    return outputs.squeeze(1) if outputs.shape[1] == 1 else outputs


def _forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        parts = [module(x[i : i + _EVAL_BATCH]) for i in range(0, x.shape[0], _EVAL_BATCH)]
    return torch.cat(parts) if parts else torch.zeros((0, 1), device=x.device)


def _classes(labels: Sequence[Any]) -> tuple[Any, ...]:
    """Distinct labels in a stable order (by their JSON spelling)."""
    seen: dict[str, Any] = {}
    for key, value in zip(label_keys(labels), labels, strict=True):
        seen.setdefault(key, value)
    return tuple(seen[k] for k in sorted(seen))

