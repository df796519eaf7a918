"""Runs after a drift, on SQLite and PostgreSQL: the drift is dated in the champion's errors,
the challenger learns and is judged on what came after it, a run waits for enough labels of
the new concept, and follow-up runs come as they accumulate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from retrain.followups import FollowUps
from retrain.runner import Retrainer, Trigger
from streams.db import Database
from streams.events import RetrainRequested
from streams.store import EventStore
from tests.retrain.helpers import MODEL, agrawal, seed_store

Factory = Callable[..., Retrainer]


def _drifted(database: Database, retrainer: Retrainer, *, after_drift: int) -> datetime:
    """v1 learns concept 0; then 400 more of it, and ``after_drift`` of concept 2. Returns the
    time of the first example of the new concept."""
    after = seed_store(database, agrawal(800, function=0), prefix="a")
    assert retrainer.run(MODEL, Trigger("manual")).decision == "promoted"
    after = seed_store(database, agrawal(400, function=0, seed=5), start=after, prefix="b")
    seed_store(database, agrawal(after_drift, function=2, seed=6), start=after, prefix="c")
    return after


def _request(database: Database, event_id: str, alarm_at: str) -> RetrainRequested:
    example = EventStore(database).example(MODEL, alarm_at)
    assert example is not None
    return RetrainRequested(
        event_id=event_id, model=MODEL, reasons=("detector:adwin",),
        evidence={"detectors": [{"detector": "adwin", "index": 0, "example_id": example.id}]},
        timestamp=datetime.now(UTC))


def test_a_drift_request_trains_and_judges_on_the_examples_since_the_drift(
    database: Database, retrainer_factory: Factory
) -> None:
    retrainer = retrainer_factory()
    drift = _drifted(database, retrainer, after_drift=400)
    retrainer.runs.record_request(_request(database, "req-1", alarm_at="c80"))
    outcome = retrainer.run_request("req-1")
    assert outcome is not None
    assert (outcome.decision, outcome.version) == ("promoted", 2)

    data = retrainer.registry.version(MODEL, 2).lineage.data
    concept = data.concept
    since = concept.since
    assert abs((since - drift).total_seconds()) <= 20, (since, drift)
    assert concept.used is True
    assert concept.found_by.source == "change_point"
    assert data.from_ >= since
    assert data.holdout.from_ >= since
    numbers = retrainer.registry.version(MODEL, 2).evaluation
    assert numbers["challenger"]["accuracy"] > numbers["champion"]["accuracy"] + 0.2
    # The champion's knowledge is wrong after an abrupt drift: v2 starts from scratch.
    origin = retrainer.registry.version(MODEL, 2).lineage.origin
    assert (origin.mode, origin.reason) == (
        "fresh", "an abrupt drift was dated: the champion's knowledge is wrong")

    # The concept is inherited: a scheduled run keeps to the data since the drift, and
    # fine-tunes the champion that learnt it.
    scheduled = retrainer.run(MODEL, Trigger("schedule"))
    assert scheduled.version is not None
    later = retrainer.registry.version(MODEL, scheduled.version).lineage
    assert later.concept_since == since
    assert later.concept.found_by.source == "lineage"
    assert (later.origin.mode, later.origin.parent_version) == ("fine-tuned", 2)


def test_a_drift_request_waits_for_enough_labels_of_the_new_concept(
    database: Database, retrainer_factory: Factory
) -> None:
    deferred: list[tuple[str, str, float]] = []
    retrainer = retrainer_factory(drift_retry_s=3.0)
    retrainer._defer = lambda *args: deferred.append(args)
    drift = _drifted(database, retrainer, after_drift=60)
    retrainer.runs.record_request(_request(database, "req-1", alarm_at="c40"))

    assert retrainer.run_request("req-1") is None
    assert deferred == [("req-1", MODEL, 3.0)]
    assert retrainer.runs.request("req-1").status == "pending"  # type: ignore[union-attr]
    assert len(retrainer.runs.runs(MODEL)) == 1, "nothing trained while waiting"

    seed_store(database, agrawal(200, function=2, seed=7), start=drift + timedelta(seconds=60),
               prefix="d")
    outcome = retrainer.run_request("req-1")
    assert outcome is not None
    assert outcome.decision == "promoted"
    concept = retrainer.registry.version(MODEL, 2).lineage.concept
    assert concept.used is True
    assert abs(concept.examples - 260) <= 20  # the drift is dated to within a few examples
    assert retrainer.runs.request("req-1").status == "done"  # type: ignore[union-attr]


def test_follow_up_runs_come_as_the_new_concept_grows(
    database: Database, retrainer_factory: Factory
) -> None:
    retrainer = retrainer_factory(followup_growth=2.0)
    drift = _drifted(database, retrainer, after_drift=150)
    retrainer.runs.record_request(_request(database, "req-1", alarm_at="c60"))
    assert retrainer.run_request("req-1").decision == "promoted"  # type: ignore[union-attr]
    learnt = retrainer.registry.champion(MODEL).lineage.concept.examples  # type: ignore[union-attr]

    queued: list[str] = []
    followups = FollowUps(retrainer.settings, retrainer.registry, retrainer.runs,
                          lambda model: queued.append(model) is None)
    assert followups.check() == []
    seed_store(database, agrawal(2 * learnt, function=2, seed=8),
               start=drift + timedelta(seconds=150), prefix="e")
    assert followups.check() == [MODEL]
    assert followups.check() == [], "queued once per growth step"
    followup = retrainer.run(MODEL, Trigger("follow-up"))
    assert followup.status == "succeeded"
    origin = retrainer.registry.version(MODEL, followup.version).lineage.origin  # type: ignore[arg-type]
    assert (origin.mode, origin.parent_version) == ("fine-tuned", 2)


def test_a_drift_run_that_loses_still_dates_the_concept_for_the_next_runs(
    database: Database, retrainer_factory: Factory
) -> None:
    good = retrainer_factory()
    drift = _drifted(database, good, after_drift=300)
    broken = retrainer_factory("tests.retrain.trainers:FailingTrainer")
    broken.runs.record_request(_request(database, "req-1", alarm_at="c80"))
    assert broken.run_request("req-1").status == "failed"  # type: ignore[union-attr]
    offered = broken.registry.version(MODEL, 2).lineage.concept.available
    assert abs(offered - 300) <= 20

    queued: list[str] = []
    followups = FollowUps(good.settings, good.registry, good.runs,
                          lambda model: queued.append(model) is None)
    assert followups.check() == [], "not before the new concept has grown"
    seed_store(database, agrawal(offered, function=2, seed=9),
               start=drift + timedelta(seconds=300), prefix="f")
    assert followups.check() == [MODEL]
    outcome = good.run(MODEL, Trigger("follow-up"))
    assert outcome.decision == "promoted"
    concept = good.registry.version(MODEL, 3).lineage.concept
    assert concept.since == broken.registry.version(MODEL, 2).lineage.concept_since
    assert concept.found_by.source == "lineage"
    # The champion (v1) learnt the old concept only: the follow-up does not fine-tune it.
    origin = good.registry.version(MODEL, 3).lineage.origin
    assert (origin.mode, origin.reason) == (
        "fresh", "the champion learnt before the current concept began")
