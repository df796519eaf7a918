"""Reuse of earlier models, on SQLite and PostgreSQL: when a concept comes back, a drift request
promotes the archived version that knows it again, before (and instead of) any training."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from retrain.decision import Evaluation
from retrain.registry import VersionInfo
from retrain.reuse import Paired, candidates, pick
from retrain.runner import Retrainer, RunOutcome, Trigger
from streams.db import Database
from streams.events import RetrainRequested, SwapFailed
from streams.store import EventStore
from tests.retrain.helpers import MODEL, T0, agrawal, seed_store

Factory = Callable[..., Retrainer]
A, B = 0, 2  # two Agrawal concepts that disagree on about a third of the rows


def _champion_of(database: Database, retrainer: Retrainer, concept: int, *, prefix: str,
                 start: datetime) -> datetime:
    """800 labelled examples of ``concept``, then a manual run that must promote."""
    after = seed_store(database, agrawal(800, function=concept, seed=len(prefix) + concept),
                       start=start, prefix=prefix)
    assert retrainer.run(MODEL, Trigger("manual")).decision == "promoted"
    return after


def _drift_request(database: Database, retrainer: Retrainer, concept: int, *,
                   start: datetime) -> RunOutcome:
    """400 labelled examples of ``concept`` arrive and a detector fires on the 80th."""
    seed_store(database, agrawal(400, function=concept, seed=9), start=start, prefix="new")
    example = EventStore(database).example(MODEL, "new80")
    assert example is not None
    retrainer.runs.record_request(RetrainRequested(
        event_id="req-1", model=MODEL, reasons=("detector:adwin",),
        evidence={"detectors": [{"detector": "adwin", "index": 0, "example_id": example.id}]},
        timestamp=datetime.now(UTC)))
    outcome = retrainer.run_request("req-1")
    assert outcome is not None
    assert outcome.status == "succeeded", outcome.reason
    return outcome


def _statuses(retrainer: Retrainer) -> dict[int, str]:
    return {v.version: v.status for v in retrainer.registry.versions(MODEL)}


def test_a_returning_concept_brings_back_the_version_that_knew_it_without_training(
    database: Database, retrainer_factory: Factory
) -> None:
    retrainer = retrainer_factory()
    after = _champion_of(database, retrainer, A, prefix="a", start=T0)
    after = _champion_of(database, retrainer, B, prefix="bb", start=after)
    assert _statuses(retrainer) == {1: "archived", 2: "champion"}

    outcome = _drift_request(database, retrainer, A, start=after)

    assert (outcome.decision, outcome.version) == ("reused", 1)
    assert _statuses(retrainer) == {1: "champion", 2: "archived"}, "nothing was trained"
    assert outcome.event is not None
    assert (outcome.event.version, outcome.event.previous_version) == (1, 2)
    audit = retrainer.registry.audit(MODEL)[0]
    assert (audit.action, audit.version, audit.from_version) == ("promote", 1, 2)
    assert audit.reason.startswith("request: reused v1: beats the champion: accuracy")
    # The outbox holds the ModelPromoted for the publisher.
    assert [e.event["version"] for e in retrainer.registry.unpublished()][-1] == 1
    run = retrainer.runs.runs(MODEL)[-1]
    assert (run.decision, run.version) == ("reused", 1)
    assert "reused v1: beats the champion" in run.log
    wins = re.search(r"reused v1: .*better on (\d+) rows, worse on (\d+) "
                     r"\(sign test p ([\d.e-]+)\)", run.log)
    assert wins is not None, run.log
    assert int(wins.group(1)) > int(wins.group(2))
    assert float(wins.group(3)) <= 0.05
    numbers = run.metrics["holdout"]
    assert numbers["challenger"]["accuracy"] > numbers["champion"]["accuracy"] + 0.1
    # Judged on the newest quarter of the 400 examples since the drift (dated within a few),
    # as a challenger would be, not of the 800 newest.
    judged = re.search(r"reuse: on the holdout of (\d+)", run.log)
    assert judged is not None, run.log
    assert 90 <= int(judged.group(1)) <= 105


def test_no_archived_version_comes_back_when_the_champion_is_better(
    database: Database, retrainer_factory: Factory
) -> None:
    retrainer = retrainer_factory()
    after = _champion_of(database, retrainer, A, prefix="a", start=T0)
    after = _champion_of(database, retrainer, B, prefix="bb", start=after)

    outcome = _drift_request(database, retrainer, B, start=after)

    assert outcome.decision in {"promoted", "rejected"}
    assert outcome.version == 3, "training went on"
    assert _statuses(retrainer)[1] == "archived"
    assert not any("reused" in e.reason for e in retrainer.registry.audit(MODEL))
    log = retrainer.runs.runs(MODEL)[-1].log
    assert "reuse: archived v1:" in log
    assert "no archived version beats the champion; training" in log


def test_a_version_serving_refused_is_never_reused(
    database: Database, retrainer_factory: Factory
) -> None:
    retrainer = retrainer_factory()
    after = _champion_of(database, retrainer, B, prefix="bb", start=T0)
    after = _champion_of(database, retrainer, A, prefix="a", start=after)
    rolled = retrainer.registry.refused(SwapFailed(
        event_id="sf-1", model=MODEL, version=2, instance="serve-1", error="canary failed",
        timestamp=datetime.now(UTC)))
    assert rolled is not None
    assert _statuses(retrainer) == {1: "champion", 2: "refused"}

    outcome = _drift_request(database, retrainer, A, start=after)

    assert (outcome.decision, outcome.version) == ("promoted", 3)
    assert _statuses(retrainer) == {1: "archived", 2: "refused", 3: "champion"}
    assert "reuse" not in retrainer.runs.runs(MODEL)[-1].log


def test_reuse_candidates_zero_turns_reuse_off(
    database: Database, retrainer_factory: Factory
) -> None:
    retrainer = retrainer_factory(reuse_candidates=0)
    after = _champion_of(database, retrainer, A, prefix="a", start=T0)
    after = _champion_of(database, retrainer, B, prefix="bb", start=after)

    outcome = _drift_request(database, retrainer, A, start=after)

    assert (outcome.decision, outcome.version) == ("promoted", 3)
    assert _statuses(retrainer) == {1: "archived", 2: "archived", 3: "champion"}


def _version(version: int, status: str) -> VersionInfo:
    return VersionInfo(MODEL, version, status, f"file:///v{version}", "0" * 64, {}, {}, {}, {},
                       "t", "test", None, None, "", T0, None)


def test_candidates_are_the_newest_archived_versions_only() -> None:
    versions = [_version(1, "archived"), _version(2, "refused"), _version(3, "rejected"),
                _version(4, "archived"), _version(5, "failed"), _version(6, "archived"),
                _version(7, "champion")]
    assert [v.version for v in candidates(versions, 2)] == [6, 4]
    assert [v.version for v in candidates(versions, 3)] == [6, 4, 1]
    assert candidates(versions, 0) == []


def test_the_version_that_beats_the_champion_by_most_is_picked() -> None:
    def accuracy(value: float) -> Evaluation:
        return Evaluation({"accuracy": value}, rows=100, predicted_classes=2, true_classes=2)

    champion = accuracy(0.70)
    clear = Paired(wins=25, losses=5)
    scored = [(4, accuracy(0.80), Paired(15, 5)), (3, accuracy(0.90), clear),
              (1, accuracy(0.90), clear)]
    found = pick(scored, champion, task="classification", metric="accuracy", margin=0.0,
                 confidence=0.95)
    assert found is not None
    assert found.version == 3, "the best; of two equal ones the newer"
    assert found.reason().startswith("reused v3: beats the champion: accuracy 0.9000")
    assert found.reason().endswith("better on 25 rows, worse on 5 (sign test p 0.000162)")
    assert pick(scored, champion, task="classification", metric="accuracy", margin=0.25,
                confidence=0.95) is None
    collapsed = Evaluation({"accuracy": 0.95}, rows=100, predicted_classes=1, true_classes=2)
    assert pick([(5, collapsed, clear)], champion, task="classification", metric="accuracy",
                margin=0.0, confidence=0.95) is None


def test_a_better_score_on_a_few_lucky_rows_brings_nothing_back() -> None:
    """16 rows just after a drift: the archived version is right on 4 where the champion is
    wrong and wrong on 1 where it is right (accuracy +3/16), which chance does 19% of the time."""
    champion = Evaluation({"accuracy": 0.50}, rows=16, predicted_classes=2, true_classes=2)
    archived = Evaluation({"accuracy": 0.6875}, rows=16, predicted_classes=2, true_classes=2)
    lucky = Paired(wins=4, losses=1)
    assert lucky.p_value == 6 / 32
    assert pick([(1, archived, lucky)], champion, task="classification", metric="accuracy",
                margin=0.0, confidence=0.95) is None
    found = pick([(1, archived, lucky)], champion, task="classification", metric="accuracy",
                 margin=0.0, confidence=0.0)
    assert found is not None, "confidence 0 turns the test off"
    decisive = Paired(wins=6, losses=0)
    assert pick([(1, archived, decisive)], champion, task="classification", metric="accuracy",
                margin=0.0, confidence=0.95) is not None, "six of six discordant rows: p 1/64"


def test_paired_counts_the_rows_where_exactly_one_model_is_right() -> None:
    truth = ["a", "b", "a", "b", "a", 1]
    mine = ["a", "b", "b", "a", "a", True]
    theirs = ["b", "b", "a", "b", "b", 1]
    # rows 0, 4: only mine right; rows 2, 3, 5: only theirs (True is not the class 1)
    assert Paired.of("classification", truth, mine, theirs) == Paired(wins=2, losses=3)


def test_paired_regression_counts_the_rows_where_one_model_is_closer() -> None:
    truth = [0.0, 0.0, 0.0, 10.0]
    mine = [0.1, -0.5, 2.0, 9.0]
    theirs = [1.0, 0.5, 1.0, 11.0]
    assert Paired.of("regression", truth, mine, theirs) == Paired(wins=1, losses=1)


def test_the_sign_test_is_exact_and_one_sided() -> None:
    assert Paired(0, 0).p_value == 1.0
    assert Paired(5, 0).p_value == 1 / 32
    assert Paired(0, 5).p_value == 1.0
    assert Paired(3, 3).p_value == 42 / 64
    assert Paired(5, 0).significant(0.95)
    assert not Paired(4, 0).significant(0.95)
