"""The methods the adaptation benchmark compares, as :class:`~driftloop.lab.prequential.Learner`s.

Two kinds:

- River's online learners, which learn one delayed label at a time and change continuously:
  HoeffdingAdaptiveTree, ARF and a linear model, each in the form the scenario's task needs.
  The linear model is logistic regression for two classes, one logistic regression per class
  (one-vs-rest) for more (River's ``LogisticRegression`` is binary: on ten classes it answers
  True or False), and linear regression for a quantity;
- the project's own trainer (``settings.retrain.trainer``, the PyTorch MLP by default), fitted
  on the warm-up set and then either never again ("initial model") or every ``period`` events
  on the labels received so far ("periodic retraining", no drift trigger). Its datasets are
  built exactly as the retraining process builds them (:func:`retrain.dataset.build_dataset`
  with the same plan), so only the trigger differs from the real system.

Every method is described by a :class:`Method` whose ``build`` is a picklable callable, so
methods can run in worker processes.

Every learner counts ``train_cpu_s``: the CPU seconds of this process (all its threads, so
PyTorch's too) spent learning after the warm-up, measured with :func:`time.process_time`
around River's ``learn_one`` calls and around the trainer's refits. The initial training on
the warm-up set is not counted, for any method.
"""

from __future__ import annotations

import functools
import logging
import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from driftloop.lab.prequential import Features, Learner
from driftloop.lab.scenarios import Example, Scenario
from retrain.dataset import DatasetPlan, build_dataset
from retrain.dataset import Example as TrainingExample
from retrain.trainer import Trainer, TrainingJob, load_trainer
from streams.artifacts import Artifact, Preprocessor
from streams.errors import TrainingError
from streams.scores import Task
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
    """A River classifier or regressor learning each label as it arrives."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.train_cpu_s = 0.0

    @property
    def version(self) -> int | None:
        return None

    def warm_up(self, examples: Sequence[Example]) -> None:
        for example in examples:
            self._model.learn_one(dict(example.features), example.label)

    def predict(self, index: int, features: Features) -> Any:
        return self._model.predict_one(dict(features))

    def learn(self, index: int, features: Features, label: Any) -> None:
        started = time.process_time()
        self._model.learn_one(dict(features), label)
        self.train_cpu_s += time.process_time() - started


def hoeffding_adaptive_tree(seed: int, task: Task, _workdir: Path) -> Learner:
    from river import tree

    if task == "regression":
        return RiverLearner(tree.HoeffdingAdaptiveTreeRegressor(seed=seed))
    return RiverLearner(tree.HoeffdingAdaptiveTreeClassifier(seed=seed))


def adaptive_random_forest(seed: int, task: Task, _workdir: Path) -> Learner:
    from river import forest

    if task == "regression":
        return RiverLearner(forest.ARFRegressor(seed=seed))
    return RiverLearner(forest.ARFClassifier(seed=seed))


def linear_model_for(task: Task, classes: int, _workdir: Path) -> Learner:
    """Numbers standardised online, strings one-hot encoded, then the linear model of the
    task: logistic regression (one-vs-rest beyond two classes) or linear regression."""
    from river import compose, linear_model, multiclass, preprocessing

    numeric = compose.SelectType(numbers.Number) | preprocessing.StandardScaler()
    categorical = compose.SelectType(str) | preprocessing.OneHotEncoder()
    model: Any
    if task == "regression":
        model = linear_model.LinearRegression()
    elif classes > 2:
        model = multiclass.OneVsRestClassifier(linear_model.LogisticRegression())
    else:
        model = linear_model.LogisticRegression()
    return RiverLearner((numeric + categorical) | model)


def linear_method(task: Task, classes: int) -> tuple[str, str]:
    """The key and the table name of the linear baseline for the task."""
    if task == "regression":
        return "linreg", "River linear regression"
    if classes > 2:
        return "logreg", "River logistic regression (one-vs-rest)"
    return "logreg", "River logistic regression"


# -- the project's trainer ---------------------------------------------------------------------


class ArtifactPredictor:
    """Answers with a trained artifact, on the CPU, as serving would."""

    def __init__(self, artifact: Artifact) -> None:
        import torch

        from streams.nn import load_module

        self._torch = torch
        self._pre = Preprocessor(artifact.manifest.features)
        self._module = load_module(artifact, torch.device("cpu"))
        self._manifest = artifact.manifest
        self.version = artifact.manifest.version

    def predict(self, features: Mapping[str, Any]) -> Any:
        """The chosen class, or for a regression model the value (the model's output scaled
        back to the target's units, as serving does)."""
        x = self._torch.from_numpy(self._pre.transform([features]))
        with self._torch.no_grad():
            scores = self._module(x)
        manifest = self._manifest
        if manifest.task == "regression":
            return float(scores.reshape(-1)[0]) * manifest.target_std + manifest.target_mean
        return manifest.classes[int(scores.argmax(dim=1)[0])]


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
        self.train_cpu_s = 0.0

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
            started = time.process_time()
            self._fit(index)
            self.train_cpu_s += time.process_time() - started
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
    settings: RetrainSettings, scenario: Scenario, *, seed: int | None = None,
    period: int = 2_000,
) -> list[Method]:
    """The baselines of ``driftloop bench adaptation`` for the scenario's task, in table
    order; River's learners are seeded with ``seed`` (the scenario's by default)."""
    seed = scenario.seed if seed is None else seed
    task = scenario.task
    key, name = linear_method(task, scenario.classes)
    return [
        Method("initial", "initial model, never retrained",
               functools.partial(project_trainer, settings, None)),
        Method("periodic", f"periodic retraining (every {period:,} events)",
               functools.partial(project_trainer, settings, period)),
        Method("hat", "River HoeffdingAdaptiveTree",
               functools.partial(hoeffding_adaptive_tree, seed, task)),
        Method("arf", "River ARF", functools.partial(adaptive_random_forest, seed, task)),
        Method(key, name, functools.partial(linear_model_for, task, scenario.classes)),
    ]
