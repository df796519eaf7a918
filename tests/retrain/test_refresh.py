"""The label-driven cadence: a refresh every N new labels, queued once, counted from the
database (a restart counts the same), never two of a model at once, and drift runs first."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from retrain import jobs
from retrain.mlp import MLPTrainer
from retrain.refresh import Cadence, Refreshes
from retrain.registry import Registry
from retrain.runner import Retrainer, Trigger
from retrain.runs import RunStore
from retrain.scheduler import RetrainScheduler
from retrain.trainer import load_trainer
from streams.db import Database
from streams.events import RetrainRequested
from streams.settings import RetrainSettings
from streams.store import EventStore
from tests.retrain.helpers import MODEL, agrawal, fast_settings, seed_store
from tests.retrain.trainers import GatedTrainer

EVERY = 200


# -- the policy ------------------------------------------------------------------------------


def test_a_refresh_is_due_every_n_new_labels() -> None:
    cadence = Cadence(EVERY)
    assert not cadence.due(0)
    assert not cadence.due(EVERY - 1)
    assert cadence.due(EVERY)
    assert cadence.due(5 * EVERY)


def test_zero_disables_the_cadence() -> None:
    assert not Cadence(0).due(1_000_000)


def test_no_refresh_without_a_champion_while_a_drift_waits_or_the_model_is_busy() -> None:
    cadence = Cadence(EVERY)
    assert not cadence.due(EVERY, champion=False)
    assert not cadence.due(EVERY, drift_waiting=True)
    assert not cadence.due(EVERY, busy=True)


def test_a_refresh_that_came_to_nothing_is_tried_again_n_labels_later() -> None:
    cadence = Cadence(EVERY)
    assert not cadence.due(EVERY + 10, tried_at=EVERY)
    assert cadence.due(2 * EVERY, tried_at=EVERY)


def test_the_cadence_is_on_by_default() -> None:
    assert RetrainSettings().refresh_every_labels == 2_000


# -- on the database -------------------------------------------------------------------------


def _retrainer(database: Database, tmp_path: Path, trainer: str = "retrain.mlp:MLPTrainer",
               defer: Callable[[str, str, float], object] | None = None) -> Retrainer:
    settings = fast_settings(trainer=trainer, refresh_every_labels=EVERY, drift_retry_s=0.2)
    return Retrainer(
        settings, artifacts=tmp_path / "artifacts", store=EventStore(database),
        registry=Registry(database), runs=RunStore(database),
        trainer=MLPTrainer(settings) if trainer == "retrain.mlp:MLPTrainer"
        else load_trainer(trainer, settings),
        trainer_name=trainer, version_of_code="test", defer=defer,
    )


def _champion(database: Database, retrainer: Retrainer) -> datetime:
    """v1 is champion on 400 examples; returns the time after them."""
    after = seed_store(database, agrawal(400), prefix="a")
    assert retrainer.run(MODEL, Trigger("manual")).decision == "promoted"
    return after


def _request(event_id: str) -> RetrainRequested:
    return RetrainRequested(event_id=event_id, model=MODEL, reasons=("detector:adwin",),
                            evidence={}, timestamp=datetime.now(UTC))


@pytest.fixture
def scheduler(database: Database) -> Iterator[RetrainScheduler]:
    scheduler = RetrainScheduler(database, workers=1)
    yield scheduler
    scheduler.shutdown(wait=True)
    jobs.unbind()


def test_after_n_labels_a_refresh_is_queued_once_and_a_restart_counts_the_same(
    database: Database, tmp_path: Path, scheduler: RetrainScheduler
) -> None:
    retrainer = _retrainer(database, tmp_path)
    after = _champion(database, retrainer)
    scheduler.start(paused=True)  # jobs are stored, none runs
    refreshes = Refreshes(EVERY, retrainer.registry, retrainer.runs, scheduler.add_refresh)
    assert refreshes.check() == [], "nothing new since the champion's data"
    after = seed_store(database, agrawal(EVERY - 1, seed=3), start=after, prefix="b")
    assert refreshes.check() == []
    after = seed_store(database, agrawal(1, seed=4), start=after, prefix="c")
    assert refreshes.check() == [MODEL]
    assert refreshes.check() == [], "queued once, not twice"
    assert [j["id"] for j in scheduler.jobs()] == [f"refresh:{MODEL}"]

    # A restart: a new process on the same database finds the refresh already queued.
    restarted = RetrainScheduler(database, workers=1)
    restarted.start(paused=True)
    try:
        again = Refreshes(EVERY, retrainer.registry, retrainer.runs, restarted.add_refresh)
        assert again.check() == []
        assert [j["id"] for j in restarted.jobs()] == [f"refresh:{MODEL}"]
        assert restarted.cancel_refresh(MODEL)  # run by hand below
        assert not restarted.cancel_refresh(MODEL)
    finally:
        restarted.shutdown(wait=True)

    outcome = again.run(lambda model: retrainer.run(model, Trigger("refresh")), MODEL)
    assert outcome is not None
    assert outcome.status == "succeeded"
    version = retrainer.registry.version(MODEL, outcome.version)  # type: ignore[arg-type]
    assert version.lineage.trigger.kind == "refresh"
    assert (version.lineage.origin.mode, version.lineage.origin.parent_version) == (
        "fine-tuned", 1)

    # The refresh saw the newest labels: the count starts again, also after a restart.
    queued: list[str] = []
    fresh = Refreshes(EVERY, retrainer.registry, retrainer.runs,
                      lambda model: queued.append(model) is None)
    assert fresh.new_labels(MODEL, fresh.base(MODEL)) == 0
    assert fresh.check() == []
    seed_store(database, agrawal(EVERY, seed=5), start=after, prefix="d")
    assert fresh.check() == [MODEL]
    assert queued == [MODEL]


def test_setting_zero_queues_no_refresh(database: Database, tmp_path: Path) -> None:
    retrainer = _retrainer(database, tmp_path)
    after = _champion(database, retrainer)
    seed_store(database, agrawal(3 * EVERY, seed=3), start=after, prefix="b")
    queued: list[str] = []
    off = Refreshes(0, retrainer.registry, retrainer.runs,
                    lambda model: queued.append(model) is None)
    assert off.check() == []
    assert off.run(lambda model: retrainer.run(model, Trigger("refresh")), MODEL) is None
    assert queued == []
    assert [r.trigger for r in retrainer.runs.runs(MODEL)] == ["manual"]


def test_refreshes_never_overlap(database: Database, tmp_path: Path) -> None:
    retrainer = _retrainer(database, tmp_path)
    after = _champion(database, retrainer)
    seed_store(database, agrawal(EVERY, seed=3), start=after, prefix="b")
    queued: list[str] = []
    follow_up_queued = {"yes": True}
    refreshes = Refreshes(EVERY, retrainer.registry, retrainer.runs,
                          lambda model: queued.append(model) is None,
                          lambda model: follow_up_queued["yes"])
    assert refreshes.check() == [], "a follow-up of the model is queued"
    follow_up_queued["yes"] = False

    held = retrainer.runs.start(MODEL, "refresh")  # a refresh in progress
    assert refreshes.check() == []
    assert refreshes.run(lambda model: retrainer.run(model, Trigger("refresh")), MODEL) is None
    retrainer.runs.finish(held.run_id, status="failed", error="test")
    assert [r.status for r in retrainer.runs.runs(MODEL)] == ["succeeded", "failed"], (
        "the second refresh recorded nothing")

    assert refreshes.check() == [MODEL]
    assert queued == [MODEL]


def test_a_drift_request_queued_after_a_refresh_runs_first(
    database: Database, tmp_path: Path, scheduler: RetrainScheduler
) -> None:
    deferred: list[str] = []

    def defer(event_id: str, model: str, delay: float) -> None:
        deferred.append(event_id)
        scheduler.add_request(event_id, model, delay_s=delay)

    retrainer = _retrainer(database, tmp_path, defer=defer)
    after = _champion(database, retrainer)
    seed_store(database, agrawal(EVERY, seed=3), start=after, prefix="b")
    refreshes = Refreshes(EVERY, retrainer.registry, retrainer.runs, scheduler.add_refresh)
    assert refreshes.check() == [MODEL]
    scheduler.start(paused=True)
    # Both wait (the scheduler is paused): the refresh first, then the drift request.
    retrainer.runs.record_request(_request("req-1"))
    assert scheduler.add_request("req-1", MODEL)
    assert refreshes.check() == [], "no refresh is queued while a drift request waits"

    jobs.bind(retrainer)
    scheduler.resume()  # one worker: the jobs run one after the other
    _wait(lambda: retrainer.runs.request("req-1").status == "done")  # type: ignore[union-attr]
    _wait(lambda: not scheduler.jobs())
    assert [r.trigger for r in retrainer.runs.runs(MODEL)] == ["manual", "request"], (
        "the refresh gave way to the drift run")
    assert deferred == []
    assert refreshes.check() == [], "the drift run saw the newest labels: no refresh due"


def test_a_drift_request_during_a_refresh_waits_for_it_instead_of_being_skipped(
    database: Database, tmp_path: Path
) -> None:
    deferred: list[tuple[str, float]] = []
    retrainer = _retrainer(database, tmp_path, "tests.retrain.trainers:GatedTrainer",
                           defer=lambda event_id, model, delay: deferred.append((event_id, delay)))
    GatedTrainer.GATE.set()
    after = _champion(database, retrainer)
    seed_store(database, agrawal(EVERY, seed=3), start=after, prefix="b")
    GatedTrainer.GATE.clear()
    GatedTrainer.ENTERED.clear()
    outcomes: list[Any] = []
    refresh = threading.Thread(target=lambda: outcomes.append(
        retrainer.run(MODEL, Trigger("refresh"))))
    refresh.start()
    try:
        assert GatedTrainer.ENTERED.wait(30)
        retrainer.runs.record_request(_request("req-1"))
        assert retrainer.run_request("req-1") is None
    finally:
        GatedTrainer.GATE.set()
        refresh.join(60)
    assert deferred == [("req-1", retrainer.settings.drift_retry_s)]
    assert retrainer.runs.request("req-1").status == "pending"  # type: ignore[union-attr]
    assert outcomes[0].status == "succeeded"
    outcome = retrainer.run_request("req-1")
    assert outcome is not None
    assert outcome.status == "succeeded"


def _wait(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)

