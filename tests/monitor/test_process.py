"""The monitor process on a real broker and database: bad input, restarts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from prometheus_client import REGISTRY
from sqlalchemy import select

from monitor.detectors import DetectorConfig, ErrorDetectors
from monitor.tables import DONE
from streams.client import Client
from streams.codec import encode
from streams.db import Database
from streams.settings import MonitorSettings
from streams.store import ExampleRow, FeedbackRow, PredictionRow
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment, on_each_broker_and_database
from tests.monitor.events import T0, feedback, prediction
from tests.monitor.harness import drift_events, running
from tests.monitor.test_drift_loop import CHANGE, agrawal_traffic
from tests.streams.kafka_helpers import produce_raw, read_all

QUIET = MonitorSettings(drift_kinds=(), drift_workers="thread")


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@on_each_broker_and_database
def test_bad_input_is_counted_dead_lettered_and_never_stops_the_monitor(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], database: Database
) -> None:
    dep = deployment_factory(broker, partitions=1, monitor=QUIET)
    bootstrap = dep.broker.bootstrap
    predictions = [prediction(f"p{i}") for i in range(5)] + [prediction("v", value=1.0)]
    conflict = prediction("p3", event_id="another")
    produce_raw(bootstrap, dep.names(Topic.PREDICTIONS),
                [encode(p) for p in [*predictions, predictions[4], conflict]] + [b"{junk"])
    matches = sample("driftloop_monitor_join_matches_total", model="churn")
    rejected = sample("driftloop_monitor_events_total", kind="feedback", outcome="rejected")
    with running(dep, database) as run:
        run.drain(lambda: run.loop.stats.consumed >= 9)
        labels = [feedback("p0"), feedback("p1", "leave"), feedback("p1", "leave"),
                  feedback("p1", "stay", at=20, source="reviewer"),
                  feedback("p2", 3.5), feedback("v", "text"), feedback("ghost"),
                  feedback("early", "leave")]
        produce_raw(bootstrap, dep.names(Topic.FEEDBACK), [encode(f) for f in labels])
        run.drain(lambda: run.loop.stats.consumed >= 17)
        produce_raw(bootstrap, dep.names(Topic.PREDICTIONS), [encode(prediction("early"))])
        run.drain(lambda: run.loop.stats.consumed >= 18)

        assert run.loop.stats.dead_lettered == {"label_type": 2, "conflict": 1, "decode": 1}
        dead = read_all(bootstrap, dep.names(Topic.DEAD_LETTER), expect=4)
        assert sorted(dict(m.headers)["dl-reason"].decode() for m in dead) == [
            "conflict", "decode", "label_type", "label_type"]
        with database.session() as session:
            examples = {r.request_id: (r.label, r.label_source)
                        for r in session.execute(select(ExampleRow)).scalars()}
            stored_predictions = session.execute(select(PredictionRow.event_id)).scalars().all()
            stored_feedback = session.execute(select(FeedbackRow.request_id)).scalars().all()
        assert examples == {"p0": ("stay", "app"), "p1": ("stay", "reviewer"),
                            "early": ("leave", "app")}
        assert "another" not in stored_predictions
        assert len(stored_predictions) == 7
        assert sorted(stored_feedback) == ["early", "ghost", "p0", "p1", "p1"]
        stats = run.monitor.intake.join.stats
        assert (stats.invalid_labels["churn"], stats.duplicates["churn"]) == (2, 2)
        assert stats.conflicts["churn"] == 0, "the conflicting prediction never got that far"
        assert run.monitor.intake.join.pending_feedback == 1, "the ghost's feedback waits"
        assert sample("driftloop_monitor_join_matches_total", model="churn") - matches == 4
        assert sample("driftloop_monitor_events_total", kind="feedback",
                      outcome="rejected") - rejected == 2


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> object:
        return self.now


def test_an_idle_monitor_closes_windows_by_time_and_publishes_their_reports(
    tansu: BrokerInfo, deployment_factory: Callable[..., Deployment], database: Database
) -> None:
    settings = MonitorSettings(drift_workers="thread", drift_kinds=("served",), window_size=500,
                               window_seconds=60, reference_size=40, min_window_rows=30,
                               join_ttl_s=100)
    dep = deployment_factory(tansu, partitions=1, monitor=settings)
    produce_raw(tansu.bootstrap, dep.names(Topic.PREDICTIONS),
                [encode(prediction(f"r{i}", features={"x": float(i % 5), "plan": "pro"}))
                 for i in range(75)])
    clock = Clock()
    with running(dep, database, clock=clock) as run:
        run.drain(lambda: run.loop.stats.consumed >= 75)
        assert run.monitor.store.reports() == []
        clock.now += timedelta(seconds=61)
        run.finish_reports()
        [report] = run.monitor.store.reports()
        assert (report.window_id, report.trigger, report.rows, report.status) == (
            "churn.served.v1.0", "time", 35, DONE)
        assert {c["column"] for c in report.columns} == {"x", "plan", "prediction"}
        assert run.monitor.intake.join.pending_predictions == 75
        clock.now += timedelta(seconds=100)
        run.monitor.on_idle()
        assert run.monitor.intake.join.stats.expired_predictions["churn"] == 75
        [event] = drift_events(dep, expect=1)
        assert event.event_id == report.event_id
        assert event.rows == 35


def detector_alarms(rows: list[tuple[dict[str, float], int, int]]) -> list[tuple[str, int]]:
    """What the detectors say on this traffic when nothing ever stops."""
    m = MonitorSettings()
    detectors = ErrorDetectors(DetectorConfig(m.adwin_delta, m.page_hinkley_delta,
                                              m.page_hinkley_threshold))
    fired = []
    for i, (_, predicted, label) in enumerate(rows):
        fired += [(a.detector, a.index)
                  for a in detectors.update(float(predicted != label), i + 1).alarms]
    return fired


@on_each_broker_and_database
def test_a_restart_forgets_neither_pending_predictions_nor_detector_state(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], database: Database
) -> None:
    dep = deployment_factory(broker, partitions=1, monitor=QUIET)
    rows = agrawal_traffic()
    expected = detector_alarms(rows)
    stop_at = CHANGE + 20  # after the change, before ADWIN fires
    assert expected[0] == ("adwin", CHANGE + 39)
    with Client(dep.settings) as client:
        for i, (x, predicted, _) in enumerate(rows):
            client.log_prediction("agrawal", f"r{i:05d}", x, label=predicted, model_version=1)
        for i, (_, _, label) in enumerate(rows[:stop_at]):
            client.log_feedback("agrawal", f"r{i:05d}", label)
        client.log_feedback("other", "late", 1)  # another model: agrawal's stream stays exact
        client.flush()
    with running(dep, database) as first:
        first.drain(lambda: first.loop.stats.consumed >= len(rows) + stop_at + 1)
        assert first.monitor.store.alarms() == []
        assert first.monitor.intake.join.pending_predictions == len(rows) - stop_at

    with Client(dep.settings) as client:
        for i, (_, _, label) in enumerate(rows[stop_at:], start=stop_at):
            client.log_feedback("agrawal", f"r{i:05d}", label)
        client.log_prediction("other", "late", {"age": 1.0}, label=0, model_version=1)
        client.flush()
    with running(dep, database) as second:
        second.drain(lambda: second.loop.stats.consumed >= len(rows) - stop_at + 1)
        stats = second.monitor.intake.join.stats
        assert stats.recovered["agrawal"] == len(rows) - stop_at, "predictions from the store"
        assert stats.labelled["other"] == 1, "the late prediction met its stored feedback"
        alarms = [(a.detector, a.index) for a in second.monitor.store.alarms()]
        assert alarms == expected[:len(alarms)]
        assert len(alarms) >= 2
        assert len(second.monitor.store.requests("agrawal")) == 1


def test_run_monitor_runs_until_stopped(
    tansu: BrokerInfo, deployment_factory: Callable[..., Deployment], database: Database
) -> None:
    import threading
    import time

    from monitor.process import run_monitor
    from monitor.store import MonitorStore

    settings = MonitorSettings(window_size=40, reference_size=40, min_window_rows=30,
                               drift_kinds=("served",))  # the default: a worker process
    dep = deployment_factory(tansu, partitions=1, monitor=settings)
    produce_raw(tansu.bootstrap, dep.names(Topic.PREDICTIONS),
                [encode(prediction(f"r{i}", features={"x": float(i % 9)})) for i in range(80)])
    stop = threading.Event()
    thread = threading.Thread(target=run_monitor, args=(dep.settings,),
                              kwargs={"db": database, "stop": stop}, daemon=True)
    thread.start()
    store = MonitorStore(database, clock=lambda: T0)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(r.status == DONE for r in store.reports()):
        time.sleep(0.2)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the loop stops once asked"
    [report] = store.reports()
    assert (report.window_id, report.status, report.rows) == ("churn.served.v1.0", DONE, 40)
