"""End to end on a real broker and database: an abrupt concept change asks for retraining."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable

from river.datasets import synth

from monitor.tables import DONE
from streams.client import Client
from streams.db import Database
from streams.events import DriftReport, RetrainRequested
from streams.settings import MonitorSettings
from tests.conftest import BrokerInfo, Deployment, on_each_broker_and_database
from tests.monitor.harness import drift_events, running

CHANGE = 600  # labelled events before Agrawal switches its classification function
AFTER = 300
NOISE = 0.05


def rule(x: dict[str, float]) -> int:
    """The fixed model: Agrawal's function 0, learnt perfectly before the change."""
    return int(x["age"] < 40 or x["age"] >= 60)


def agrawal_traffic(seed: int = 7) -> list[tuple[dict[str, float], int, int]]:
    """(features, prediction, true label): function 0 then, abruptly, function 2."""
    noise = random.Random(seed)
    before = synth.Agrawal(classification_function=0, seed=seed)
    after = synth.Agrawal(classification_function=2, seed=seed + 1)
    rows = []
    for x, y in itertools.chain(itertools.islice(before, CHANGE), itertools.islice(after, AFTER)):
        label = 1 - y if noise.random() < NOISE else y
        rows.append((dict(x), rule(x), label))
    return rows


@on_each_broker_and_database
def test_an_abrupt_drift_leads_to_a_retrain_request_naming_it(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], database: Database
) -> None:
    monitor_settings = MonitorSettings(window_size=300, reference_size=150,
                                       drift_workers="thread", drift_kinds=("labelled",))
    dep = deployment_factory(broker, partitions=1, monitor=monitor_settings)
    rows = agrawal_traffic()
    with Client(dep.settings) as client:
        for i, (x, predicted, label) in enumerate(rows):
            rid = f"r{i:05d}"
            client.log_prediction("agrawal", rid, x, label=predicted, model_version=1)
            client.log_feedback("agrawal", rid, label)
        client.flush()

    with running(dep, database) as run:
        store = run.monitor.store
        run.drain(lambda: bool(store.requests()) and run.loop.stats.consumed >= 2 * len(rows))
        run.finish_reports()
        requests = store.requests("agrawal")
        assert len(requests) == 1, "one request: the policy keeps one open per model"
        request = requests[0]
        assert request.reasons[0].startswith("detector:")
        first = request.evidence["detectors"][0]
        assert CHANGE <= first["index"] < CHANGE + 300, first
        assert request.evidence["windows"], "the evidence names the window the alarm fell in"
        assert request.evidence["fresh_labels"] >= dep.settings.monitor.min_fresh_labels

        alarms = store.alarms("agrawal")
        assert alarms
        assert all(a.index >= CHANGE for a in alarms), "no alarm before the change"
        reports = store.reports("agrawal")
        labelled = [r for r in reports if r.kind == "labelled" and r.status == DONE]
        assert labelled
        assert all(r.snapshot for r in labelled)
        before = [r for r in labelled if r.last_id <= CHANGE]
        assert before
        assert all(r.performance["accuracy"] > 0.9 for r in before)
        hit = [r for r in labelled if set(r.alarms) & {"adwin", "page_hinkley"}]
        assert hit, "the window in which the detectors fired says so"
        assert request.evidence["windows"][0] == hit[0].window_id
        assert hit[0].performance["accuracy"] < 0.9
        # Labelled windows are compared on every feature, the prediction and the label.
        assert all({c["column"] for c in r.columns} == {*rows[0][0], "prediction", "label"}
                   for r in labelled)

        events = drift_events(dep, expect=len(labelled) + 1)
        published = [e for e in events if isinstance(e, RetrainRequested)]
        assert [e.event_id for e in published] == [request.event_id]
        assert published[0].evidence == request.evidence
        assert {e.window_id for e in events if isinstance(e, DriftReport)} >= {
            r.window_id for r in labelled}
