"""The store's contract, run on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from driftloop.migrations import migrate_database
from streams.db import Database
from streams.events import ClassOutput, Feedback, Prediction, ValueOutput
from streams.store import EventStore, ExampleRow, FeedbackRow, LabelledExample, PredictionRow

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _prediction(i: int, *, model: str = "churn", event_id: str | None = None) -> Prediction:
    return Prediction(
        event_id=event_id or f"p{i}", request_id=f"r{i}", model=model, model_version=1,
        features={"x": float(i), "plan": "pro"},
        output=ClassOutput(label="yes", probabilities={"yes": 0.6, "no": 0.4}),
        latency_ms=2.0, timestamp=T0 + timedelta(seconds=i),
    )


def _feedback(i: int, label: str, *, event_id: str, source: str = "app",
              at: datetime = T0) -> Feedback:
    return Feedback(
        event_id=event_id, request_id=f"r{i}", model="churn", label=label, source=source,  # type: ignore[arg-type]
        reviewer="ann" if source == "reviewer" else None, timestamp=at,
    )


def test_migrations_are_idempotent(database: Database) -> None:
    migrate_database(database)
    assert EventStore(database).count(PredictionRow) == 0


def test_replayed_predictions_make_no_second_row(database: Database) -> None:
    store = EventStore(database)
    batch = [_prediction(i) for i in range(700)]
    assert store.add_predictions(batch) == 700
    assert store.add_predictions(batch) == 0
    assert store.add_predictions([_prediction(3, event_id="other-id")]) == 0
    assert store.count(PredictionRow) == 700


def test_prediction_fields_survive_storage(database: Database) -> None:
    store = EventStore(database)
    regression = Prediction(
        event_id="v", request_id="rv", model="price", model_version=4, features={"a": 1},
        output=ValueOutput(value=3.25), latency_ms=0.5, timestamp=T0,
    )
    store.add_predictions([_prediction(1), regression])
    row = store.prediction("churn", "r1")
    assert row is not None
    assert (row.predicted, row.confidence, row.timestamp) == ("yes", 0.6, T0 + timedelta(seconds=1))
    value_row = store.prediction("price", "rv")
    assert value_row is not None
    assert (value_row.predicted, value_row.confidence, value_row.model_version) == (3.25, None, 4)


def test_feedback_keeps_every_correction_once(database: Database) -> None:
    store = EventStore(database)
    events = [_feedback(1, "no", event_id="f1"), _feedback(1, "yes", event_id="f2")]
    assert store.add_feedback(events) == 2
    assert store.add_feedback(events) == 0
    assert store.count(FeedbackRow) == 2


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_winning_label_does_not_depend_on_arrival_order(
    database: Database, order: tuple[int, ...]
) -> None:
    store = EventStore(database)
    p = _prediction(1)
    labels = [
        _feedback(1, "a", event_id="f1", at=T0),
        _feedback(1, "b", event_id="f2", at=T0 + timedelta(minutes=5)),
        _feedback(1, "c", event_id="f3", source="reviewer", at=T0 - timedelta(minutes=5)),
        _feedback(1, "d", event_id="f4", at=T0 + timedelta(minutes=9)),
    ]
    for i in order:
        store.upsert_examples([LabelledExample.join(p, labels[i])])
    row = store.example("churn", "r1")
    assert row is not None
    assert (row.label, row.label_source) == ("c", "reviewer")
    assert store.count(ExampleRow) == 1


def test_one_batch_may_hold_the_same_example_twice(database: Database) -> None:
    store = EventStore(database)
    p = _prediction(2)
    first = LabelledExample.join(p, _feedback(2, "no", event_id="a", at=T0))
    later = LabelledExample.join(p, _feedback(2, "yes", event_id="b", at=T0 + timedelta(1)))
    store.upsert_examples([later, first])
    row = store.example("churn", "r2")
    assert row is not None
    assert row.label == "yes"


def test_examples_come_oldest_first_and_limit_keeps_the_newest(database: Database) -> None:
    store = EventStore(database)
    for i in (5, 1, 3, 2, 4):
        example = LabelledExample.join(_prediction(i), _feedback(i, "x", event_id=f"f{i}"))
        store.upsert_examples([example])
    assert [r.request_id for r in store.examples("churn")] == ["r1", "r2", "r3", "r4", "r5"]
    assert [r.request_id for r in store.examples("churn", limit=2)] == ["r4", "r5"]
    since = T0 + timedelta(seconds=3)
    assert [r.request_id for r in store.examples("churn", since=since)] == ["r3", "r4", "r5"]
    assert store.examples("other") == []
