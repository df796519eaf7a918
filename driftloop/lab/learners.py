"""The methods the adaptation benchmark compares, as :class:`~driftloop.lab.prequential.Learner`s.

Two kinds:

- River's online learners (HoeffdingAdaptiveTree, ARF, logistic regression), which learn one
  delayed label at a time and change continuously;
- the project's own trainer (``settings.retrain.trainer``, the PyTorch MLP by default), fitted
  on the warm-up set and then either never again ("initial model") or every ``period`` events
  on the labels received so far ("periodic retraining", no drift trigger). Its datasets are
  built exactly as the retraining process builds them (:func:`retrain.dataset.build_dataset`
  with the same plan), so only the trigger differs from the real system.

Every method is described by a :class:`Method` whose ``build`` is a picklable callable, so
methods can run in worker processes.
"""

from __future__ import annotations

import functools
import logging
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from driftloop.lab.prequential import Features, Learner
from driftloop.lab.scenarios import Example
from retrain.dataset import DatasetPlan, build_dataset
from retrain.dataset import Example as TrainingExample
from retrain.trainer import Trainer, TrainingJob, load_trainer
from streams.artifacts import Artifact, Preprocessor
from streams.errors import TrainingError
from streams.settings import RetrainSettings

log = logging.getLogger(__name__)

#: Event ``i`` of a scenario is dated ``EPOCH + i`` seconds in the benchmark's datasets.
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Method:
    """One compared method: a short key, the name shown in tables and plots, and its builder."""

    key: str
    name: str
    build: Callable[[Path], Learner]


# -- River's online learners -------------------------------------------------------------------


class RiverLearner:
    """A River classifier learning each label as it arrives."""

    def __init__(self, model: Any) -> None:
        self._model = model

    @property
    def version(self) -> int | None:
        return None

    def warm_up(self, examples: Sequence[Example]) -> None:
        for example in examples:
            self._model.learn_one(dict(example.features), example.label)

    def predict(self, index: int, features: Features) -> Any:
        return self._model.predict_one(dict(features))

    def learn(self, index: int, features: Features, label: Any) -> None:
        self._model.learn_one(dict(features), label)


def hoeffding_adaptive_tree(seed: int, _workdir: Path) -> Learner:
    from river import tree

    return RiverLearner(tree.HoeffdingAdaptiveTreeClassifier(seed=seed))


def adaptive_random_forest(seed: int, _workdir: Path) -> Learner:
    from river import forest

    return RiverLearner(forest.ARFClassifier(seed=seed))


def logistic_regression(_workdir: Path) -> Learner:
    """Numbers standardised online, strings one-hot encoded, then logistic regression."""
    from river import compose, linear_model, preprocessing

    numeric = compose.SelectType(numbers.Number) | preprocessing.StandardScaler()
    categorical = compose.SelectType(str) | preprocessing.OneHotEncoder()
    return RiverLearner((numeric + categorical) | linear_model.LogisticRegression())


# -- the project's trainer ---------------------------------------------------------------------


class ArtifactPredictor:
    """Answers with a trained artifact, on the CPU, as serving would."""

    def __init__(self, artifact: Artifact) -> None:
        import torch

        from streams.nn import load_module

        self._torch = torch
        self._pre = Preprocessor(artifact.manifest.features)
        self._module = load_module(artifact, torch.device("cpu"))
        self._classes = artifact.manifest.classes
        self.version = artifact.manifest.version

    def predict(self, features: Mapping[str, Any]) -> Any:
        x = self._torch.from_numpy(self._pre.transform([features]))
        with self._torch.no_grad():
            scores = self._module(x)
        return self._classes[int(scores.argmax(dim=1)[0])]


class TrainerLearner:
    """The project's trainer, refitted every ``period`` events (never when ``period`` is None).

    A refit learns from the labels that have arrived by then, split by
    :func:`retrain.dataset.build_dataset`; the new model replaces the old one at once, with no
    champion/challenger comparison. A refit that fails (too few examples, a single class)
    keeps the current model.
    """

    def __init__(
        self,
        trainer: Trainer,
        plan: DatasetPlan,
        workdir: Path,
        *,
        period: int | None = None,
        model: str = "bench",
    ) -> None:
        if period is not None and period <= 0:
            raise ValueError("period must be positive")
        self._trainer = trainer
        self._plan = plan
        self._workdir = workdir
        self._period = period
        self._model = model
        self._labelled: list[TrainingExample] = []
        self._predictor: ArtifactPredictor | None = None
        self._next_fit: int | None = None
        self.fits: list[int] = []

    @property
    def version(self) -> int | None:
        return self._predictor.version if self._predictor is not None else None

    def warm_up(self, examples: Sequence[Example]) -> None:
        for example in examples:
            self._remember(example.index, example.features, example.label)
        start = examples[-1].index + 1 if examples else 0
        self._fit(start)
        if self._predictor is None:
            raise TrainingError("the initial model could not be trained on the warm-up set")
        if self._period is not None:
            self._next_fit = start + self._period

    def predict(self, index: int, features: Features) -> Any:
        if self._next_fit is not None and self._period is not None and index >= self._next_fit:
            self._fit(index)
            self._next_fit = index + self._period
        if self._predictor is None:
            raise TrainingError("predict called before warm_up")
        return self._predictor.predict(features)

    def learn(self, index: int, features: Features, label: Any) -> None:
        self._remember(index, features, label)

    def _remember(self, index: int, features: Features, label: Any) -> None:
        self._labelled.append(
            TrainingExample(f"{index:09d}", dict(features), label, EPOCH + timedelta(seconds=index))
        )

    def _fit(self, index: int) -> None:
        version = (self.version or 0) + 1
        try:
            dataset = build_dataset(self._model, self._labelled, self._plan)
            artifact = self._trainer.fit(
                TrainingJob(dataset, version, self._workdir / f"v{version}")
            )
        except TrainingError as exc:
            log.warning("refit at event %d failed, keeping the current model: %s", index, exc)
            return
        self._predictor = ArtifactPredictor(artifact)
        self.fits.append(index)
        log.info("fitted v%d at event %d on %d labels", version, index, len(self._labelled))


def project_trainer(
    settings: RetrainSettings, period: int | None, workdir: Path
) -> Learner:
    """The trainer named in ``settings.trainer``, as an initial or a periodic learner."""
    trainer = load_trainer(settings.trainer, settings)
    return TrainerLearner(trainer, DatasetPlan.from_settings(settings), workdir, period=period)


def default_methods(
    settings: RetrainSettings, *, seed: int, period: int
) -> list[Method]:
    """The baselines of ``driftloop bench adaptation``, in table order."""
    return [
        Method("initial", "initial model, never retrained",
               functools.partial(project_trainer, settings, None)),
        Method("periodic", f"periodic retraining (every {period:,} events)",
               functools.partial(project_trainer, settings, period)),
        Method("hat", "River HoeffdingAdaptiveTree",
               functools.partial(hoeffding_adaptive_tree, seed)),
        Method("arf", "River ARF", functools.partial(adaptive_random_forest, seed)),
        Method("logreg", "River logistic regression", logistic_regression),
    ]
