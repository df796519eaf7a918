"""The trainer interface, and loading a trainer by import path.

A trainer turns a :class:`~retrain.dataset.Dataset` into a model artifact in the format of
:mod:`streams.artifacts` (what serving loads). The built-in one is
:class:`retrain.mlp.MLPTrainer`; any other is named in ``settings.retrain.trainer`` as
``"package.module:Factory"``, where ``Factory(settings.retrain)`` returns an object with the
members of :class:`Trainer`. A trainer writes its artifact under ``job.path`` (with
:func:`streams.artifacts.write_artifact`), reports progress through ``job.progress`` when given,
checks ``job.should_stop()`` between epochs, and raises :class:`~streams.errors.TrainingError`
when training cannot succeed (NaN loss, no usable data).

Candidates. A run with a search (:mod:`retrain.search`) fits several candidates, each with
``job.hyperparameters``: overrides of the trainer's own settings, by the names of
:meth:`retrain.space.Candidate.hyperparameters` (``learning_rate``, ``hidden``, ``dropout``,
``weight_decay``; the runner has already cut the training split to ``window``). A trainer
applies those it knows when it trains from scratch and reports the candidate's validation
scores in its manifest's ``metrics``: those rank the candidates.

Lineage. A trainer writes ``job.lineage`` (a :class:`~streams.lineage.Lineage`) into its
manifest, adding its own notes with ``model_copy(update=...)``: under ``training`` what the fit
did, and any key of its own. Its ``origin`` says how the weights begin
(:class:`~streams.lineage.Origin`); without a start that is already right.

Starting point. When ``job.start`` is set, the run chose to fine-tune (see
:mod:`retrain.start`): the trainer begins from ``job.start.artifact`` with its architecture,
its weights and its fitted preprocessing, classes or target scaling (it does not refit them),
at its fine-tuning learning rate and epochs, and records ``job.start.origin`` as the
lineage's ``origin``. The runner builds the start with :func:`retrain.start.start_from`, which has
checked that the artifact fits the data (task, feature schema, classes).
A trainer that cannot start from it (another kind of model) trains from scratch and records
``job.start.origin.fell_back(why)``; one that ignores ``job.start`` altogether
leaves ``job.lineage``'s origin, which says that it trained from scratch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from retrain.dataset import Dataset
from retrain.start import Start
from streams.artifacts import Artifact
from streams.errors import ConfigError
from streams.lineage import Lineage
from streams.settings import RetrainSettings


@dataclass(frozen=True)
class EpochReport:
    """Where training stands after one epoch."""

    epoch: int
    epochs: int
    train_loss: float
    val_loss: float
    best_epoch: int


Progress = Callable[[EpochReport], None]


def _never() -> bool:
    return False


@dataclass(frozen=True)
class TrainingJob:
    """One fit: the data, which version it becomes, where to write it, what it came from, and
    the artifact it starts from (``None``: from scratch)."""

    dataset: Dataset
    version: int
    path: Path
    lineage: Lineage = field(default_factory=Lineage)
    progress: Progress | None = None
    should_stop: Callable[[], bool] = _never
    start: Start | None = None
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    """A search candidate's overrides of the trainer's settings (empty: its own)."""


@runtime_checkable
class Trainer(Protocol):
    """Fits a model on a dataset and returns its verified artifact."""

    @property
    def device(self) -> str:
        """Where it trains ('cpu', 'cuda', ...), recorded with each run."""
        ...

    def hyperparameters(self) -> dict[str, Any]:
        """The settings that shaped the model, recorded with each version."""
        ...

    def fit(self, job: TrainingJob) -> Artifact: ...


def load_trainer(path: str, settings: RetrainSettings) -> Trainer:
    """Import ``module:attr`` and call it with the retrain settings; refuse non-trainers."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"trainer must be 'module:attr', got {path!r}")
    try:
        factory: Any = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import trainer {path!r}: {exc}") from exc
    trainer = factory(settings)
    if not isinstance(trainer, Trainer):
        raise ConfigError(f"{path!r} did not build a trainer (needs device, hyperparameters, fit)")
    return trainer
