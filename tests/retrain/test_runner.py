"""Whole runs on SQLite and PostgreSQL: decisions, and every way a run fails or is skipped."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import torch

from retrain.runner import Retrainer, Trigger
from streams.artifacts import load_artifact
from streams.db import Database
from streams.events import RetrainRequested
from streams.lineage import TriggerLineage
from streams.nn import load_module
from tests.retrain.helpers import MODEL, T0, agrawal, seed_store
from tests.retrain.trainers import GatedTrainer

Factory = Callable[..., Retrainer]


def test_examples_with_null_features_train_a_champion(
    database: Database, retrainer_factory: Factory
) -> None:
    rows = [({**x, "salary": None} if i % 4 == 0 else x, y)
            for i, (x, y) in enumerate(agrawal(600, function=2))]
    seed_store(database, rows)
    outcome = retrainer_factory().run(MODEL, Trigger("manual"))
    assert (outcome.status, outcome.decision, outcome.version) == ("succeeded", "promoted", 1)
    assert outcome.event is not None
    manifest = load_artifact(outcome.event.artifact_uri).manifest
    salary = next(f for f in manifest.features if f.name == "salary")
    assert salary.indicator
    assert salary.missing_share == pytest.approx(0.25, abs=0.05)


def test_first_run_promotes_and_records_everything(
    database: Database, retrainer_factory: Factory
) -> None:
    seed_store(database, agrawal(600, function=2))
    retrainer = retrainer_factory()
    outcome = retrainer.run(MODEL, Trigger("manual"))

    assert (outcome.status, outcome.decision, outcome.version) == ("succeeded", "promoted", 1)
    assert outcome.event is not None
    assert outcome.event.previous_version is None
    champion = retrainer.registry.champion(MODEL)
    assert champion is not None
    assert champion.version == 1
    artifact = load_artifact(outcome.event.artifact_uri, expected_sha256=outcome.event.sha256)
    load_module(artifact, torch.device("cpu"))
    data = champion.lineage.data
    assert data is not None
    assert data.holdout.count == 150
    assert data.train.to < data.holdout.from_
    assert champion.lineage.learnt_until < data.holdout.from_ <= champion.lineage.seen_until
    assert champion.lineage.trigger.kind == "manual"
    assert champion.lineage.code_version == "test"
    assert champion.parent_version is None
    assert champion.hyperparameters["learning_rate"] == 3e-3
    run = retrainer.runs.run(outcome.run_id)
    assert run.device == "cpu"
    assert run.finished_at is not None
    assert run.metrics["holdout"]["challenger"]["accuracy"] > 0.8
    assert "epoch 1/15" in run.log
    assert "promote: first model" in run.log
    assert [a.version for a in retrainer.registry.unpublished()] == [1]


def test_a_better_challenger_after_drift_is_promoted_and_a_worse_one_rejected(
    database: Database, retrainer_factory: Factory
) -> None:
    retrainer = retrainer_factory()
    after = seed_store(database, agrawal(800, function=0), prefix="a")
    assert retrainer.run(MODEL, Trigger("manual")).decision == "promoted"

    # The concept drifts: the newest 800 examples follow another Agrawal function.
    after = seed_store(database, agrawal(800, function=2, seed=2), start=after, prefix="b")
    better = retrainer.run(MODEL, Trigger("manual"))
    assert (better.decision, better.version) == ("promoted", 2)
    numbers = retrainer.registry.version(MODEL, 2).evaluation
    assert numbers["challenger"]["accuracy"] > numbers["champion"]["accuracy"] + 0.2

    # A batch of inverted labels, then clean ones: the challenger learns the wrong thing.
    after = seed_store(database, agrawal(600, function=2, seed=3, flip=True), start=after,
                       prefix="c")
    seed_store(database, agrawal(200, function=2, seed=4), start=after, prefix="d")
    worse = retrainer.run(MODEL, Trigger("manual"))
    assert (worse.decision, worse.version) == ("rejected", 3)
    rejected = retrainer.registry.version(MODEL, 3)
    assert rejected.status == "rejected"
    assert "does not beat the champion" in rejected.note
    assert rejected.evaluation["challenger"]["accuracy"] < rejected.evaluation["champion"][
        "accuracy"]
    assert retrainer.registry.champion(MODEL).version == 2  # type: ignore[union-attr]
    assert [a.version for a in retrainer.registry.audit(MODEL)] == [2, 1]


@pytest.mark.parametrize(("trainer", "error"), [
    ("FailingTrainer", "RuntimeError: trainer bug: index out of range"),
    ("OutOfMemoryTrainer", "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"),
])
def test_a_trainer_exception_fails_the_run_and_leaves_the_champion(
    database: Database, retrainer_factory: Factory, trainer: str, error: str
) -> None:
    seed_store(database, agrawal(400))
    good = retrainer_factory()
    good.run(MODEL, Trigger("manual"))
    broken = retrainer_factory(f"tests.retrain.trainers:{trainer}")
    outcome = broken.run(MODEL, Trigger("schedule"))
    assert (outcome.status, outcome.version) == ("failed", 2)
    run = broken.runs.run(outcome.run_id)
    assert run.error == error
    assert "Traceback" in run.log
    assert run.finished_at is not None
    assert broken.registry.version(MODEL, 2).status == "failed"
    assert broken.registry.champion(MODEL).version == 1  # type: ignore[union-attr]
    assert len(broken.registry.audit(MODEL)) == 1


def test_nan_losses_fail_the_run(database: Database, retrainer_factory: Factory) -> None:
    seed_store(database, agrawal(400))
    retrainer_factory().run(MODEL, Trigger("manual"))
    exploding = retrainer_factory(learning_rate=1e30)
    outcome = exploding.run(MODEL, Trigger("manual"))
    assert outcome.status == "failed"
    assert "TrainingError: loss is not finite" in (exploding.runs.run(outcome.run_id).error or "")
    assert exploding.registry.version(MODEL, 2).status == "failed"
    assert exploding.registry.champion(MODEL).version == 1  # type: ignore[union-attr]


def test_missing_data_fails_the_run_without_a_version(
    database: Database, retrainer_factory: Factory
) -> None:
    seed_store(database, agrawal(50))
    retrainer = retrainer_factory()
    outcome = retrainer.run(MODEL, Trigger("schedule"))
    assert outcome.status == "failed"
    assert outcome.version is None
    assert "50 usable labelled examples, at least 100" in outcome.reason
    assert retrainer.registry.versions(MODEL) == []
    assert retrainer.registry.champion(MODEL) is None


def test_two_triggers_at_once_run_once_and_skip_the_other(
    database: Database, retrainer_factory: Factory
) -> None:
    seed_store(database, agrawal(400))
    GatedTrainer.GATE.clear()
    GatedTrainer.ENTERED.clear()
    gated = retrainer_factory("tests.retrain.trainers:GatedTrainer")
    outcomes = []
    first = threading.Thread(target=lambda: outcomes.append(gated.run(MODEL, Trigger("schedule"))))
    first.start()
    try:
        assert GatedTrainer.ENTERED.wait(30)
        second = gated.run(MODEL, Trigger("request", "req-2"))
    finally:
        GatedTrainer.GATE.set()
        first.join(60)
    assert second.status == "skipped"
    assert "in progress" in second.reason
    assert outcomes[0].decision == "promoted"
    runs = gated.runs.runs(MODEL)
    assert [(r.trigger, r.status) for r in runs] == [("schedule", "succeeded"),
                                                    ("request", "skipped")]
    assert [v.version for v in gated.registry.versions(MODEL)] == [1]


def test_a_request_is_trained_at_most_once(database: Database, retrainer_factory: Factory) -> None:
    seed_store(database, agrawal(400))
    retrainer = retrainer_factory()
    request = RetrainRequested(event_id="req-1", model=MODEL, reasons=("drift",),
                               evidence={"windows": 2}, timestamp=T0)
    retrainer.runs.record_request(request)
    outcome = retrainer.run_request("req-1")
    assert outcome is not None
    assert outcome.decision == "promoted"
    assert retrainer.run_request("req-1") is None
    retrainer.runs.record_request(request)
    assert retrainer.run_request("req-1") is None
    stored = retrainer.runs.request("req-1")
    assert stored is not None
    assert (stored.status, stored.run_id) == ("done", outcome.run_id)
    assert len(retrainer.runs.runs(MODEL)) == 1
    trigger = retrainer.registry.version(MODEL, 1).lineage.trigger
    assert trigger == TriggerLineage(kind="request", request_id="req-1", reasons=("drift",),
                                     evidence={"windows": 2})
