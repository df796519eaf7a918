"""A run's challenger pool: an Optuna study over :mod:`retrain.space`, kept in driftloop's database.

:class:`Searcher` is what the runner calls; :class:`OptunaSearcher` is the one adapter, on
Optuna's ``RDBStorage`` at driftloop's own SQLAlchemy URL (or in memory, for tests). One study
per run, named ``<model>/run-<id>``, with the model, run and metric as its user attributes and,
once done, the winner's validation score and hyperparameters: the Jobs page reads these
(:mod:`dashboard.job_queries`).

Each trial trains one candidate through the objective the runner passes (it fits and returns the
candidate's validation score). The first trial is the candidate of the settings; the others
come from the TPE sampler (seeded with ``retrain.seed``). A trial that raises, or returns a
score that is not finite, is recorded as ``FAIL`` with its error and the study goes on; the
outcome carries the best of the others, or none when every trial failed (the runner then fails
the run, and the champion stays as it was). No new trial starts after ``timeout_s``, nor once
``should_stop`` says the process is stopping.

Optuna's tables live next to driftloop's and record their own Alembic revision in
``alembic_version``; driftloop keeps its own in ``driftloop_alembic_version``
(:mod:`streams.db`). Optuna creates and stamps its tables on first use. Its log goes through
driftloop's (propagated, at WARNING: the per-trial lines stay out), and the URL, which may
hold a password, is never logged.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from retrain.space import Candidate, as_params, suggest
from streams.db import SQLITE_TIMEOUT_S, driver_url, store_error
from streams.lineage import SearchLineage
from streams.scores import higher_is_better

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

Objective = Callable[[Candidate, int], float]
"""Fit a candidate (the trial's number names its artifact); return its validation score."""

#: Longest error text kept with a failed trial.
ERROR_CHARS = 500


def study_name(model: str, run_id: int) -> str:
    return f"{model}/run-{run_id}"


@dataclass(frozen=True)
class Plan:
    """What one search is asked to do."""

    model: str
    run_id: int
    metric: str
    trials: int
    timeout_s: float
    seed: int
    train_rows: int
    first: Candidate
    """Tried first: the candidate of the settings."""

    @property
    def study(self) -> str:
        return study_name(self.model, self.run_id)


@dataclass(frozen=True)
class Outcome:
    """How a search went; ``best`` is None when no trial completed."""

    study: str
    metric: str
    complete: int
    failed: int
    pruned: int
    best_trial: int | None = None
    best_value: float | None = None
    best: Candidate | None = None
    errors: tuple[str, ...] = ()

    @property
    def trials(self) -> int:
        return self.complete + self.failed + self.pruned

    def describe(self) -> str:
        counts = (f"study {self.study}: {self.trials} trials ({self.complete} complete, "
                  f"{self.failed} failed, {self.pruned} pruned)")
        if self.best is None:
            return counts + ", none completed"
        return (f"{counts}; best trial {self.best_trial}: validation {self.metric} "
                f"{self.best_value:.4g} with {self.best.hyperparameters()}")

    def lineage(self) -> SearchLineage:
        return SearchLineage(
            study=self.study, metric=self.metric, trials=self.trials, complete=self.complete,
            failed=self.failed, pruned=self.pruned, best_trial=self.best_trial,
            best_value=self.best_value,
            best_params=self.best.hyperparameters() if self.best is not None else {},
        )


class Searcher(Protocol):
    def search(self, plan: Plan, objective: Objective,
               should_stop: Callable[[], bool]) -> Outcome: ...


class OptunaSearcher:
    """Optuna studies in driftloop's database (``url``), or in memory when ``url`` is None."""

    def __init__(self, url: str | None) -> None:
        self._url = url
        self._lock = threading.Lock()  # two runs must not create Optuna's tables at once

    def search(self, plan: Plan, objective: Objective,
               should_stop: Callable[[], bool]) -> Outcome:
        import optuna

        quiet_optuna()
        try:
            with self._lock:
                storage = self._storage()
            try:
                return self._optimize(optuna, storage, plan, objective, should_stop)
            finally:
                if isinstance(storage, optuna.storages.RDBStorage):
                    storage.remove_session()
                    storage.engine.dispose()
        except SQLAlchemyError as exc:
            raise store_error(exc, "study storage") from exc

    def _storage(self) -> optuna.storages.BaseStorage:
        import optuna

        if self._url is None:
            return optuna.storages.InMemoryStorage()
        kwargs: dict[str, Any] = ({"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
                                  if self._url.startswith("sqlite")
                                  else {"pool_pre_ping": True})
        return optuna.storages.RDBStorage(driver_url(self._url), engine_kwargs=kwargs)

    def _optimize(self, optuna: Any, storage: optuna.storages.BaseStorage, plan: Plan,
                  objective: Objective, should_stop: Callable[[], bool]) -> Outcome:
        study = optuna.create_study(
            study_name=plan.study, storage=storage, load_if_exists=True,
            direction="maximize" if higher_is_better(plan.metric) else "minimize",
            sampler=optuna.samplers.TPESampler(seed=plan.seed),
        )
        study.set_user_attr("model", plan.model)
        study.set_user_attr("run_id", plan.run_id)
        study.set_user_attr("metric", plan.metric)
        first = as_params(plan.first, plan.train_rows)
        if first is not None:
            study.enqueue_trial(first)
        tried: dict[int, Candidate] = {}
        errors: list[str] = []

        def run_trial(trial: optuna.Trial) -> float:
            candidate = (plan.first if trial.number == 0 and first is None
                         else suggest(trial, plan.train_rows))
            tried[trial.number] = candidate
            trial.set_user_attr("hyperparameters", candidate.hyperparameters())
            try:
                value = objective(candidate, trial.number)
                if not math.isfinite(value):
                    raise ValueError(f"validation {plan.metric} is {value}")
            except Exception as exc:  # recorded as FAIL; the study goes on
                error = f"trial {trial.number}: {type(exc).__name__}: {exc}"[:ERROR_CHARS]
                errors.append(error)
                trial.set_user_attr("error", error)
                raise
            return value

        def stop_when_asked(study: optuna.Study, _trial: optuna.trial.FrozenTrial) -> None:
            if should_stop():
                study.stop()

        study.optimize(run_trial, n_trials=plan.trials, timeout=plan.timeout_s,
                       catch=(Exception,), callbacks=[stop_when_asked])
        return _outcome(optuna, study, plan, tried, errors)


def _outcome(optuna: Any, study: optuna.Study, plan: Plan, tried: dict[int, Candidate],
             errors: list[str]) -> Outcome:
    state = optuna.trial.TrialState
    trials = [t for t in study.get_trials(deepcopy=False) if t.number in tried]
    complete = [t for t in trials if t.state == state.COMPLETE]
    scored = [(t.value, t.number) for t in complete if t.value is not None]
    counts = {"complete": len(complete),
              "failed": sum(t.state == state.FAIL for t in trials),
              "pruned": sum(t.state == state.PRUNED for t in trials)}
    if not scored:
        return Outcome(plan.study, plan.metric, **counts, errors=tuple(errors))
    sign = 1.0 if higher_is_better(plan.metric) else -1.0
    value, number = max(scored, key=lambda vn: (sign * vn[0], -vn[1]))  # ties: the first
    candidate = tried[number]
    study.set_user_attr("best_trial", number)
    study.set_user_attr("best_value", value)
    study.set_user_attr("best_params", candidate.hyperparameters())
    return Outcome(plan.study, plan.metric, **counts, best_trial=number, best_value=value,
                   best=candidate, errors=tuple(errors))


def quiet_optuna() -> None:
    """Optuna's records through driftloop's handlers, warnings and worse only."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
