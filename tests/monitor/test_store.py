"""The monitor's database adapter on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from kafka import TopicPartition

from monitor.drift_worker import DriftJob, DriftWorker, ReferenceSpec
from monitor.policy import RetrainDecision
from monitor.store import Changes, MonitorStore, ReportOutcome
from monitor.tables import DONE, PENDING, SKIPPED
from monitor.windows import ClosedWindow
from streams.db import Database
from streams.errors import ProduceError
from streams.events import ColumnDrift, DriftReport, RetrainRequested
from streams.memory import MemoryBroker
from streams.outbox import publish_pending
from streams.producer import Producer
from streams.settings import KafkaSettings
from streams.store import EventStore, LabelledExample
from tests.monitor.events import T0, feedback, prediction


def clock() -> object:
    return T0


def window(wid: str = "m.labelled.v1.0", performance: dict | None = None) -> ClosedWindow:
    return ClosedWindow(wid, "m", 1, "labelled", 0, 1, 2, 2, T0, T0, "count",
                        performance or {}, None)


def test_the_archive_finds_stored_counterparts(database: Database) -> None:
    events = EventStore(database)
    events.add_predictions([prediction("a", value=1.5), prediction("b")])
    events.add_feedback([feedback("b", "leave"), feedback("b", "stay", at=20, source="reviewer"),
                         feedback("c")])
    store = MonitorStore(database, clock=clock)
    found = store.predictions([("churn", "a"), ("churn", "b"), ("churn", "zz"), ("x", "a")])
    assert found == {("churn", "a"): prediction("a", value=1.5),
                     ("churn", "b"): prediction("b")}
    stored = store.feedback([("churn", "b"), ("churn", "c"), ("churn", "a")])
    assert sorted(f.label for f in stored[("churn", "b")]) == ["leave", "stay"]
    assert [f.event_id for f in stored[("churn", "c")]] == [feedback("c").event_id]
    assert ("churn", "a") not in stored
    assert store.prediction_event_ids([("churn", "a")]) == {("churn", "a"): "p-churn-a"}


def test_cursors_read_rows_in_store_order(database: Database) -> None:
    events = EventStore(database)
    events.add_predictions([prediction(f"r{i}", label="a") for i in range(5)]
                           + [prediction("v", value=2.0)])
    store = MonitorStore(database, clock=clock)
    served = store.served_after(2, 10)
    assert [r.id for r in served] == [3, 4, 5, 6]
    examples = [LabelledExample.join(prediction(f"r{i}", label="a"), feedback(f"r{i}", "b"))
                for i in (3, 1)] + [LabelledExample.join(prediction("v", value=2.0),
                                                         feedback("v", 2.5))]
    events.upsert_examples(examples)
    labelled = store.labelled_after(0, 10)
    assert [(r.id, r.outcome.task, r.outcome.hit) for r in labelled] == [
        (1, "classification", False), (2, "classification", False), (3, "regression", False)]
    assert [r.id for r in store.labelled_after(0, 2, newest=True)] == [2, 3]
    assert [r.id for r in store.labelled_after(0, 10, model="churn", until_id=2)] == [1, 2]
    rows = store.window_rows("labelled", "churn", 1, 1, 2)
    assert rows == [{"x": 1.0, "plan": "pro", "prediction": "a", "label": "b"}] * 2
    assert len(store.first_rows("served", "churn", 4)) == 4
    between = store.examples_between("churn", T0 - timedelta(days=1), T0 + timedelta(days=1), 2)
    assert len(between) == 2


def test_a_replayed_commit_writes_nothing_twice(database: Database) -> None:
    store = MonitorStore(database, clock=clock)
    decision = RetrainDecision("retrain.m.1", "m", 2, ("detector:adwin",), {"windows": ["w"]},
                               T0)
    changes = Changes(
        state={"cursors": {"served": 3}},
        windows=[(window(performance={"accuracy": 0.5}), PENDING, ["adwin"], {"source": "first"}),
                 (window("m.served.v1.0"), SKIPPED, [], {})],
        requests=[decision],
    )
    store.commit(changes)
    store.commit(changes)
    assert store.load_state() == {"cursors": {"served": 3}}
    assert [(r.window_id, r.status) for r in store.reports()] == [
        ("m.labelled.v1.0", PENDING), ("m.served.v1.0", SKIPPED)]
    assert len(store.requests()) == 1
    assert [r.window_id for r in store.pending_windows()] == ["m.labelled.v1.0"]


def test_the_outbox_publishes_requests_and_finished_reports_once(database: Database) -> None:
    store = MonitorStore(database, clock=clock)
    decision = RetrainDecision("retrain.m.1", "m", None, ("performance",), {}, T0)
    store.commit(Changes(windows=[(window(performance={"accuracy": 0.5}), PENDING, [], {}),
                                  (window("m.served.v1.0"), SKIPPED, [], {})],
                         requests=[decision]))
    pending = store.pending()
    assert [type(o.event) for o in pending.outgoing] == [RetrainRequested]
    assert [(o.ref, o.key) for o in pending.outgoing] == [("retrain.m.1", "m")]
    assert pending.retired == ["drift.m.served.v1.0"]
    column = ColumnDrift(column="x", method="K-S p_value", score=0.01, threshold=0.05,
                         drifted=True)
    store.commit(Changes(reports=[ReportOutcome("m.labelled.v1.0", DONE, (column,), 1.0, True,
                                                "{}")]))
    pending = store.pending()
    report = pending.outgoing[-1].event
    assert isinstance(report, DriftReport)
    assert (report.event_id, report.columns, report.performance, report.drift_detected) == (
        "drift.m.labelled.v1.0", (column,), {"accuracy": 0.5}, True)
    store.mark_published([o.ref for o in pending.outgoing] + pending.retired)
    assert not store.pending()
    store.commit(Changes(closed_requests=[("retrain.m.1", "timeout")]))
    assert (store.requests()[0].status, store.requests()[0].closed_reason) == (
        "closed", "timeout")


def test_an_outage_leaves_the_outbox_pending_until_the_broker_acknowledges(
        database: Database) -> None:
    broker = MemoryBroker.named(f"outbox-{time.monotonic_ns()}")
    try:
        broker.create_topic("drift", 2)
        producer = Producer(KafkaSettings(bootstrap_servers=broker.address))
        store = MonitorStore(database, clock=clock)
        store.commit(Changes(requests=[
            RetrainDecision("retrain.m.1", "m", None, ("performance",), {}, T0)]))
        with broker.outage(), pytest.raises(ProduceError):
            publish_pending(store, producer, "drift")
        assert [o.ref for o in store.pending().outgoing] == ["retrain.m.1"], "still pending"
        assert publish_pending(store, producer, "drift") == 1
        assert publish_pending(store, producer, "drift") == 0, "published once"
        ends = [broker.end_offset(TopicPartition("drift", p)) for p in (0, 1)]
        assert sum(ends) == 1
        producer.close()
    finally:
        MemoryBroker.forget(broker.address.removeprefix("memory://"))


def test_the_drift_worker_process_reports_a_window(database: Database) -> None:
    events = EventStore(database)
    events.add_predictions([prediction(f"r{i}", features={"x": float(i % 7), "c": "ab"[i % 2]})
                            for i in range(80)])
    worker = DriftWorker(database.url, mode="process", max_in_flight=1)
    try:
        job = DriftJob("churn.served.v1.0", "served", "churn", 1, 41, 80, 40,
                       ReferenceSpec("first", "served", "churn", 40), 0.5, 30)
        assert worker.submit(job)
        assert not worker.submit(job), "the queue holds one job"
        outcome = None
        for _ in range(120):
            worker.wait(1.0)
            done = worker.completed()
            if done:
                outcome = done[0]
                break
        assert outcome is not None
        assert outcome.status == DONE, outcome
        assert {c.column for c in outcome.columns} == {"x", "c", "prediction"}
        assert outcome.snapshot
    finally:
        worker.close()
