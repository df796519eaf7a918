"""The simulated production app: order, delay, pacing and stop; real brokers; warm-up rows."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from driftloop.lab.scenarios import Scenario, get_scenario
from driftloop.lab.simulator import (
    Simulator,
    index_of,
    request_id,
    send_warmup,
    store_warmup,
    warmup_events,
)
from retrain.dataset import DatasetPlan, build_dataset
from retrain.runner import examples_of
from streams.client import Client
from streams.codec import Decoder
from streams.db import Database
from streams.events import Feedback, InferenceRequest, Prediction
from streams.store import EventStore, ExampleRow, FeedbackRow, PredictionRow
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment
from tests.streams.kafka_helpers import read_all


class RecordingClient:
    """An in-memory AppClient: every call in order, with the fake clock's time."""

    def __init__(self, clock: Callable[[], float] = lambda: 0.0,
                 on_request: Callable[[int], None] | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._clock = clock
        self._on_request = on_request

    def request(self, model: str, features: Mapping[str, Any], *,
                request_id: str | None = None) -> str:
        assert request_id is not None
        self.calls.append(("request", request_id, self._clock(), dict(features)))
        if self._on_request is not None:
            self._on_request(sum(c[0] == "request" for c in self.calls))
        return request_id

    def log_prediction(self, model: str, request_id: str, features: Mapping[str, Any], *,
                       label: Any = None, model_version: int = 0) -> str:
        self.calls.append(("prediction", request_id, label, model_version))
        return request_id

    def log_feedback(self, model: str, request_id: str, label: Any, *,
                     source: str = "app") -> str:
        self.calls.append(("feedback", request_id, label, source))
        return request_id

    def flush(self, timeout_s: float | None = None) -> int:
        self.calls.append(("flush",))
        return 0


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def tiny(delay: int = 7, rate: float = 0.5, length: int = 300) -> Scenario:
    return get_scenario("recurring").resized(length, warmup=50, label_delay=delay).with_feedback(
        feedback_rate=rate)


@pytest.mark.parametrize("delay", [0, 7])
def test_feedback_follows_its_request_by_exactly_the_label_delay(delay: int) -> None:
    scenario = tiny(delay)
    client = RecordingClient()
    stats = Simulator(scenario, client, model="m", speed=math.inf).run()
    prefix = "recurring-13-"
    order = [(c[0], index_of(c[1], prefix)) for c in client.calls if c[0] != "flush"]
    requests = [i for kind, i in order if kind == "request"]
    assert requests == list(range(50, 300))
    examples = {e.index: e for e in scenario.stream()}
    flagged = sorted(i for i, e in examples.items() if e.feedback)
    fed = [i for kind, i in order if kind == "feedback"]
    assert fed == flagged
    for position, (kind, i) in enumerate(order):
        if kind != "feedback" or i + delay >= 300:
            continue
        # The last request before this feedback is exactly i + delay.
        last_request = max(j for k, j in order[:position] if k == "request")
        assert last_request == i + delay
    labels = {index_of(c[1], prefix): c[2] for c in client.calls if c[0] == "feedback"}
    assert all(labels[i] == examples[i].label for i in fed)
    assert all(c[3] == "app" for c in client.calls if c[0] == "feedback")
    assert client.calls[-1] == ("flush",)
    assert (stats.sent, stats.feedback, stats.done, stats.stopped) == (250, len(flagged),
                                                                       True, False)


def test_requests_are_paced_at_the_scenario_rate_times_speed() -> None:
    scenario = tiny()  # 100 events per second
    time = FakeTime()
    client = RecordingClient(clock=time.clock)
    Simulator(scenario, client, model="m", speed=4.0, clock=time.clock, sleep=time.sleep).run()
    sent_at = [c[2] for c in client.calls if c[0] == "request"]
    assert sent_at == pytest.approx([k / 400 for k in range(250)])
    assert time.now == pytest.approx(249 / 400)


def test_setting_stop_ends_the_run_without_owed_labels() -> None:
    stop = threading.Event()

    def after(n: int) -> None:
        if n == 20:
            stop.set()

    client = RecordingClient(on_request=after)
    stats = Simulator(tiny(delay=50), client, model="m", speed=1e6, stop=stop).run()
    assert stats.sent == 20
    assert stats.stopped
    assert not stats.done
    assert not [c for c in client.calls if c[0] == "feedback"]
    assert client.calls[-1] == ("flush",)


def test_request_ids_map_back_to_events() -> None:
    assert request_id("abrupt-7-", 1234) == "abrupt-7-00001234"
    assert index_of("abrupt-7-00001234", "abrupt-7-") == 1234
    assert index_of("other-00001234", "abrupt-7-") is None
    assert index_of("abrupt-7-x", "abrupt-7-") is None


def test_send_warmup_logs_version_0_predictions_and_true_labels() -> None:
    scenario = tiny()
    client = RecordingClient()
    assert send_warmup(client, scenario, model="m") == 50
    predictions = [c for c in client.calls if c[0] == "prediction"]
    feedback = [c for c in client.calls if c[0] == "feedback"]
    assert [index_of(c[1], "recurring-13-") for c in predictions] == list(range(50))
    assert {c[3] for c in predictions} == {0}
    assert len({c[2] for c in predictions}) == 1  # one placeholder answer for all
    assert [c[2] for c in feedback] == [e.label for e in scenario.warmup_examples()]


def test_simulator_streams_through_a_real_broker(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment]
) -> None:
    deployment = deployment_factory(broker)
    scenario = tiny(delay=10, length=200)
    with Client(deployment.settings) as client:
        stats = Simulator(scenario, client, model="m", speed=math.inf, prefix="run1-").run()
    assert stats.sent == 150

    limit = deployment.settings.kafka.max_message_bytes
    raw = read_all(broker.bootstrap, deployment.names(Topic.REQUESTS), expect=150)
    requests = [Decoder(InferenceRequest, max_bytes=limit).decode(m.value) for m in raw]
    by_index = {index_of(r.request_id, "run1-"): r for r in requests}
    examples = {e.index: e for e in scenario.stream()}
    assert sorted(by_index) == sorted(examples)
    assert all(by_index[i].features == dict(examples[i].features) for i in examples)

    flagged = sorted(i for i, e in examples.items() if e.feedback)
    raw = read_all(broker.bootstrap, deployment.names(Topic.FEEDBACK), expect=len(flagged))
    feedback = [Decoder(Feedback, max_bytes=limit).decode(m.value) for m in raw]
    assert sorted(index_of(f.request_id, "run1-") for f in feedback) == flagged
    assert all(f.label == examples[index_of(f.request_id, "run1-")].label for f in feedback)


def test_store_warmup_writes_trainable_examples_once(database: Database) -> None:
    scenario = tiny()
    store = EventStore(database)
    now = datetime(2024, 6, 1, 12, tzinfo=UTC)
    assert store_warmup(store, scenario, model="m", clock=lambda: now) == 50
    store_warmup(store, scenario, model="m", clock=lambda: now)
    assert store.count(ExampleRow, "m") == 50
    assert store.count(PredictionRow, "m") == 50
    assert store.count(FeedbackRow, "m") == 50
    rows = store.examples("m")
    assert [index_of(r.request_id, "recurring-13-") for r in rows] == list(range(50))
    assert [r.label for r in rows] == [e.label for e in scenario.warmup_examples()]
    assert {r.model_version for r in rows} == {0}
    assert rows[-1].prediction_timestamp <= now
    dataset = build_dataset("m", examples_of(rows), DatasetPlan(min_examples=50))
    assert len(dataset.train) + len(dataset.validation) + len(dataset.holdout) == 50


def test_warmup_events_are_dated_in_order() -> None:
    pairs = warmup_events(tiny(), model="m", end=datetime(2024, 6, 1, tzinfo=UTC))
    assert all(isinstance(p, Prediction) and isinstance(f, Feedback) for p, f in pairs)
    assert all(p.timestamp <= f.timestamp for p, f in pairs)
    assert pairs[0][0].timestamp < pairs[-1][0].timestamp


def test_the_real_systems_stored_predictions_map_back_to_events(database: Database) -> None:
    from datetime import timedelta

    from driftloop.lab.adaptation import evaluate_system, index_at
    from driftloop.lab.system_run import load_system_run
    from streams.events import ClassOutput

    scenario = tiny()
    truth = {e.index: e for e in scenario.stream()}
    t0 = datetime(2024, 6, 1, tzinfo=UTC)
    stored = []
    for i in range(50, 300):
        if i == 123:
            continue  # a request the system never answered
        version = 1 if i < 200 else 2
        stored.append(Prediction(
            event_id=f"e{i}", request_id=request_id("recurring-13-", i), model="m",
            model_version=version, features=dict(truth[i].features),
            output=ClassOutput(label=truth[i].label if i % 2 else 1 - truth[i].label),
            timestamp=t0 + timedelta(seconds=i)))
    other = stored[0].model_copy(update={"event_id": "x", "request_id": "elsewhere-00000060"})
    EventStore(database).add_predictions([*stored, other])

    run = load_system_run(database, scenario, model="m")
    assert [p[0] for p in run.predictions] == [i for i in range(50, 300) if i != 123]
    assert run.unanswered(scenario) == [123]
    assert all(p[2] == truth[p[0]].label for p in run.predictions)
    assert all(p[3] == (1 if p[0] < 200 else 2) for p in run.predictions)
    assert index_at(run.sent, t0 + timedelta(seconds=150.5)) == 150
    result = evaluate_system(run.predictions, scenario, window=50)
    assert result.accuracy == pytest.approx(sum(i % 2 for i in range(50, 300) if i != 123) / 249)
