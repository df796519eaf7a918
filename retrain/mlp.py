"""The built-in trainer: a PyTorch tabular MLP for classification and regression.

Preprocessing (scaling of numbers, one-hot categories) is fitted on the training split only.
The network (:class:`streams.nn.MLP`) trains with Adam on mini-batches, seeded, on CUDA when
present (``settings.retrain.device`` overrides), and stops early when the validation loss has
not improved for ``patience`` epochs; the best epoch's weights are kept. A small training set
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
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch
from torch import nn

from retrain.metrics import classification_metrics, label_key, label_keys, regression_metrics
from retrain.trainer import EpochReport, Progress, TrainingJob
from streams.artifacts import Architecture, Artifact, Manifest, Preprocessor, write_artifact
from streams.errors import TrainingError
from streams.nn import MLP, pick_device, state_to_numpy
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
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._settings = settings
        self._device = pick_device(settings.device)
        self._show_progress = show_progress
        self._now = clock or (lambda: datetime.now(UTC))

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
            "batch_size": s.batch_size,
            "min_batches": s.min_batches,
            "epochs": s.epochs,
            "patience": s.patience,
            "seed": s.seed,
        }

    def fit(self, job: TrainingJob) -> Artifact:
        data = job.dataset
        started = time.perf_counter()
        if self._device.type == "cpu" and self._settings.cpu_threads is not None:
            torch.set_num_threads(self._settings.cpu_threads)
        torch.manual_seed(self._settings.seed)
        pre = Preprocessor.fit(data.train.features)
        x_train = self._tensor(pre.transform(data.train.features))
        x_val = self._tensor(pre.transform(data.validation.features))
        classes: tuple[Any, ...] = ()
        target_mean, target_std = 0.0, 1.0
        if data.task == "classification":
            classes = _classes(data.train.labels + data.validation.labels)
            index = {label_key(c): i for i, c in enumerate(classes)}
            y_train = torch.tensor([index[k] for k in label_keys(data.train.labels)])
            y_val = torch.tensor([index[k] for k in label_keys(data.validation.labels)])
            loss_fn: nn.Module = nn.CrossEntropyLoss()
        else:
            raw = np.asarray(data.train.labels, dtype=np.float64)
            target_mean, target_std = float(raw.mean()), float(raw.std()) or 1.0
            y_train = torch.tensor((raw - target_mean) / target_std, dtype=torch.float32)
            y_val = torch.tensor(
                (np.asarray(data.validation.labels, dtype=np.float64) - target_mean) / target_std,
                dtype=torch.float32,
            )
            loss_fn = nn.MSELoss()
        y_train, y_val = y_train.to(self._device), y_val.to(self._device)

        out_width = len(classes) if data.task == "classification" else 1
        module = MLP(pre.width, out_width, hidden=tuple(self._settings.hidden)).to(self._device)
        best_state, epochs_run, best_epoch = self._train(
            module, loss_fn, x_train, y_train, x_val, y_val, job
        )
        module.load_state_dict(best_state)
        module.eval()
        outputs = _forward(module, x_val)
        if data.task == "classification":
            predicted = [classes[i] for i in outputs.argmax(dim=1).tolist()]
            metrics = classification_metrics(data.validation.labels, predicted)
        else:
            values = (outputs.squeeze(1).double() * target_std + target_mean).tolist()
            metrics = regression_metrics(data.validation.labels, values)
        seconds = time.perf_counter() - started
        manifest = Manifest(
            model=data.model,
            version=job.version,
            task=data.task,
            architecture=Architecture(name="mlp", params={"hidden": list(self._settings.hidden),
                                                          "dropout": 0.0}),
            features=pre.features,
            classes=classes,
            target_mean=target_mean,
            target_std=target_std,
            metrics=metrics,
            trainer=NAME,
            created_at=self._now(),
            lineage={
                **job.lineage,
                "training": {
                    "device": self.device,
                    "epochs_run": epochs_run,
                    "best_epoch": best_epoch,
                    "seconds": round(seconds, 3),
                    "rows": len(data.train),
                },
            },
        )
        log.info("trained %s v%d in %.2fs on %s", data.model, job.version, seconds, self.device)
        return write_artifact(job.path, manifest, state_to_numpy(module))

    def _tensor(self, matrix: np.ndarray[Any, Any]) -> torch.Tensor:
        return torch.from_numpy(matrix).to(self._device)

    def _train(
        self,
        module: nn.Module,
        loss_fn: nn.Module,
        x_train: torch.Tensor,
        y_train: torch.Tensor,
        x_val: torch.Tensor,
        y_val: torch.Tensor,
        job: TrainingJob,
    ) -> tuple[dict[str, torch.Tensor], int, int]:
        s = self._settings
        optimizer = torch.optim.Adam(module.parameters(), lr=s.learning_rate)
        shuffle = torch.Generator().manual_seed(s.seed)
        best_loss, best_epoch = math.inf, 0
        best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        rows = x_train.shape[0]
        batch = batch_size(rows, s.batch_size, s.min_batches)
        epoch = 0
        with self._progress(job) as report:
            for epoch in range(1, s.epochs + 1):
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
                report(EpochReport(epoch, s.epochs, train_loss, val_loss, best_epoch))
                if epoch - best_epoch >= s.patience:
                    break
        return best_state, epoch, best_epoch

    @contextlib.contextmanager
    def _progress(self, job: TrainingJob) -> Iterator[Progress]:
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
                                total=self._settings.epochs, loss="")

            def show(r: EpochReport) -> None:
                bar.update(task, completed=r.epoch,
                           loss=f"train {r.train_loss:.4f} val {r.val_loss:.4f}")

            yield show


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

