"""A retrain job that a database outage cuts short is set back and queued again once the
database answers, instead of leaving its request claimed and its model's run lock held."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from retrain import jobs
from retrain.registry import Registry
from retrain.runs import OUTAGE, RunStore
from streams.db import Database
from streams.errors import StoreError
from streams.events import RetrainRequested
from tests.retrain.helpers import T0

MODEL = "churn"


class Scheduler:
    """Records what would be queued."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.followups: list[str] = []

    def add_request(self, event_id: str, model: str) -> bool:
        self.requests.append((event_id, model))
        return True

    def add_followup(self, model: str) -> bool:
        self.followups.append(model)
        return True


class CutShort:
    """A retrainer whose jobs get as far as a run, then lose the database."""

    def __init__(self, runs: RunStore, error: StoreError) -> None:
        self.runs = runs
        self.error = error

    def run_request(self, event_id: str) -> None:
        request = self.runs.claim_request(event_id)
        assert request is not None
        self.runs.start(request.model, "request", event_id)
        raise self.error

    def run(self, model: str, trigger: Any) -> None:
        self.runs.start(model, trigger.kind)
        raise self.error


@pytest.fixture
def runs(database: Database) -> Iterator[RunStore]:
    yield RunStore(database)
    jobs.unbind()
    jobs._interrupted.clear()


def test_a_request_cut_short_by_an_outage_runs_again(runs: RunStore, database: Database) -> None:
    runs.record_request(RetrainRequested(event_id="r1", model=MODEL, reasons=("drift",),
                                         evidence={}, timestamp=T0))
    jobs.bind(CutShort(runs, StoreError("connection refused", transient=True)))  # type: ignore[arg-type]
    jobs.run_request("r1")  # APScheduler would log the error and drop the job
    assert runs.request("r1").status == "running"  # type: ignore[union-attr]
    assert runs.running(MODEL) is not None, "the run lock is held"

    scheduler = Scheduler()
    assert jobs.resume(runs, Registry(database), scheduler) == 1  # type: ignore[arg-type]
    assert runs.request("r1").status == "pending"  # type: ignore[union-attr]
    assert runs.running(MODEL) is None
    assert [r.error for r in runs.runs(MODEL)] == [OUTAGE]
    assert scheduler.requests == [("r1", MODEL)]
    assert jobs.resume(runs, Registry(database), scheduler) == 0, "set back once"
    assert runs.start(MODEL, "request").skipped is None, "the model can train again"


def test_a_follow_up_cut_short_is_queued_again_and_a_schedule_waits_for_its_next_turn(
    runs: RunStore, database: Database
) -> None:
    jobs.bind(CutShort(runs, StoreError("connection refused", transient=True)))  # type: ignore[arg-type]
    jobs.run_followup(MODEL)
    jobs.run_schedule("other")
    scheduler = Scheduler()
    assert jobs.resume(runs, Registry(database), scheduler) == 2  # type: ignore[arg-type]
    assert scheduler.followups == [MODEL]
    assert scheduler.requests == []
    assert runs.running(MODEL) is None
    assert runs.running("other") is None


def test_an_error_no_wait_mends_still_fails_the_job(runs: RunStore) -> None:
    jobs.bind(CutShort(runs, StoreError("value out of range", transient=False)))  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        jobs.run_followup(MODEL)
    assert jobs._interrupted == set()
