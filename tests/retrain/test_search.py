"""The challenger pool: an Optuna study per run in driftloop's own database, the best candidate
on validation to the gate, crashed candidates recorded and passed over."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import optuna
import pytest
import sqlalchemy as sa
from alembic import command

from driftloop.migrations import migrate_database, version_locations
from retrain.dataset import DatasetPlan, build_dataset
from retrain.runner import Retrainer, Trigger
from retrain.search import OptunaSearcher, Plan, study_name
from retrain.space import Candidate, as_params, settings_candidate, suggest
from streams.db import LEGACY_VERSION_TABLE, VERSION_TABLE, Database, migration_config
from streams.settings import RetrainSettings
from streams.statuses import VersionStatus
from tests.retrain.helpers import MODEL, agrawal, examples, fast_settings, seed_store

Factory = Callable[..., Retrainer]
FAIL, COMPLETE = optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE


def _study(url: str, run_id: int) -> optuna.Study:
    return optuna.load_study(study_name=study_name(MODEL, run_id), storage=url)


def test_a_trial_crash_is_recorded_and_the_run_goes_on_with_the_best_of_the_others(
    database: Database, retrainer_factory: Factory
) -> None:
    seed_store(database, agrawal(600, function=2))
    retrainer = retrainer_factory("tests.retrain.trainers:TrialCrashTrainer",
                                  searcher=OptunaSearcher(database.url), search={"trials": 3})
    outcome = retrainer.run(MODEL, Trigger("manual"))

    assert (outcome.status, outcome.decision, outcome.version) == ("succeeded", "promoted", 1)
    study = _study(database.url, outcome.run_id)
    states = [t.state for t in study.trials]
    assert states == [COMPLETE, FAIL, COMPLETE], "the crash is recorded; the third still ran"
    assert "index out of range" in study.trials[1].user_attrs["error"]
    best = study.user_attrs["best_trial"]
    assert best in (0, 2)
    assert study.user_attrs["best_value"] == max(study.trials[i].value for i in (0, 2))
    champion = retrainer.registry.champion(MODEL)
    assert champion is not None
    search = champion.lineage.search
    assert search is not None
    assert (search.study, search.trials, search.complete, search.failed) == (
        study.study_name, 3, 2, 1)
    assert search.best_params == study.user_attrs["best_params"]
    assert champion.hyperparameters["learning_rate"] == search.best_params["learning_rate"]
    assert champion.metrics["accuracy"] == study.user_attrs["best_value"]
    assert champion.artifact_uri is not None
    assert ".pool" not in champion.artifact_uri
    assert [p.name for p in (retrainer.artifacts / MODEL).iterdir()] == ["v1"], "pool removed"
    log = retrainer.runs.run(outcome.run_id).log
    assert "trial 1 failed: RuntimeError" in log
    assert f"best trial {best}" in log


def test_when_every_candidate_fails_the_run_fails_and_the_champion_stays(
    database: Database, retrainer_factory: Factory
) -> None:
    seed_store(database, agrawal(600, function=2))
    trainer = "tests.retrain.trainers:PoolFailingTrainer"
    assert retrainer_factory(trainer).run(MODEL, Trigger("manual")).version == 1  # no search
    retrainer = retrainer_factory(trainer, searcher=OptunaSearcher(database.url),
                                  search={"trials": 2})
    outcome = retrainer.run(MODEL, Trigger("manual"))

    assert outcome.status == "failed"
    assert "every candidate of study" in outcome.reason
    assert "loss is not finite" in outcome.reason
    assert [t.state for t in _study(database.url, outcome.run_id).trials] == [FAIL, FAIL]
    champion = retrainer.registry.champion(MODEL)
    assert champion is not None
    assert champion.version == 1
    assert retrainer.registry.version(MODEL, 2).status == VersionStatus.FAILED


class _NoSearch:
    def search(self, plan: Plan, objective: Any, should_stop: Any) -> Any:
        raise AssertionError(f"{plan.study} should not search")


@pytest.mark.parametrize(("kind", "trials"), [("manual", 1), ("refresh", 5)])
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_one_trial_or_a_refresh_trains_a_single_candidate(
    database: Database, retrainer_factory: Factory, kind: str, trials: int
) -> None:
    seed_store(database, agrawal(400, function=2))
    retrainer = retrainer_factory(searcher=_NoSearch(), search={"trials": trials},
                                  fine_tune="never")
    outcome = retrainer.run(MODEL, Trigger(kind))
    assert outcome.status == "succeeded"
    assert retrainer.registry.version(MODEL, 1).lineage.search is None


def test_optuna_studies_and_driftloop_migrations_share_one_database(database_url: str) -> None:
    db = Database(database_url)
    try:
        old = migration_config(version_locations(), version_table=LEGACY_VERSION_TABLE)
        with db.engine.begin() as conn:  # a database migrated by an older driftloop
            old.attributes["connection"] = conn
            command.upgrade(old, "heads")
        with db.engine.connect() as conn:
            heads = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()

        migrate_database(db)
        storage = optuna.storages.RDBStorage(database_url)  # creates and stamps its tables
        optuna.create_study(study_name="probe", storage=storage).optimize(
            lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
        storage.engine.dispose()
        migrate_database(db)  # and both again, each finding its own revisions
        again = optuna.storages.RDBStorage(database_url)
        assert len(optuna.load_study(study_name="probe", storage=again).trials) == 1
        again.engine.dispose()

        with db.engine.connect() as conn:
            optuna_rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
            ours = conn.execute(sa.text("SELECT version_num FROM driftloop_alembic_version")
                                ).all()
        assert [r[0] for r in optuna_rows] == [again._version_manager.get_head_version()]
        assert sorted(ours) == sorted(heads), "driftloop's heads moved to their own table"
        assert sa.inspect(db.engine).has_table(VERSION_TABLE)
    finally:
        db.dispose()


class _Fixed:
    """A trial that answers every suggestion with the given parameters."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        assert low <= self.params[name] <= high
        return float(self.params[name])

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int:
        assert low <= self.params[name] <= high
        return int(self.params[name])


def test_the_settings_candidate_is_a_point_of_the_space() -> None:
    settings = RetrainSettings()
    first = settings_candidate(settings)
    params = as_params(first, 600)
    assert params is not None
    assert suggest(_Fixed(params), 600) == first == Candidate(3e-3, (64, 64))
    assert as_params(Candidate(3e-3, (128, 64)), 600) is None, "uneven widths lie outside"


def test_a_window_cuts_the_training_split_only() -> None:
    dataset = build_dataset(MODEL, examples(agrawal(400)), DatasetPlan.from_settings(
        fast_settings()))
    cut = Candidate(3e-3, (32,), window=50).data(dataset)
    assert cut.train.examples == dataset.train.examples[-50:]
    assert (cut.validation, cut.holdout) == (dataset.validation, dataset.holdout)
    assert Candidate(3e-3, (32,)).data(dataset) is dataset


def test_a_study_storage_that_cannot_be_reached_is_a_store_error_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from streams.errors import StoreError

    caplog.set_level(logging.DEBUG)
    url = "postgresql://driftloop:s3cret-pa55@127.0.0.1:9/driftloop"  # nothing listens there
    plan = Plan(model=MODEL, run_id=1, metric="accuracy", trials=2, timeout_s=60, seed=0,
                train_rows=100, first=Candidate(3e-3, (64, 64)))
    with pytest.raises(StoreError) as raised:
        OptunaSearcher(url).search(plan, lambda c, n: 1.0, lambda: False)
    assert raised.value.transient, "an outage, not bad input"
    assert "s3cret-pa55" not in str(raised.value)
    assert "s3cret-pa55" not in caplog.text
