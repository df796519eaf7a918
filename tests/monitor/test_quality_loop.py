"""On the in-memory broker and a real database: a feature that starts arriving null is stored
as null, reported per window, and asks for retraining with the window as evidence."""

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
from streams.store import EventStore
from tests.conftest import BrokerInfo, Deployment, on_memory
from tests.monitor.harness import drift_events, running

# The monitor's handling of what it reads; tests/monitor/test_process.py runs it on the
# real brokers.
pytestmark = on_memory

BREAK = 600  # events before an upstream fault nulls most salaries
AFTER = 300


def traffic(seed: int = 3) -> list[tuple[dict[str, object], int]]:
    rng = random.Random(seed)
    rows = []
    for i, (x, y) in enumerate(itertools.islice(synth.Agrawal(seed=seed), BREAK + AFTER)):
        features: dict[str, object] = dict(x)
        if i >= BREAK and rng.random() < 0.6:
            features["salary"] = None
        rows.append((features, int(y)))
    return rows


def test_a_feature_going_null_is_stored_reported_and_asks_for_retraining(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], database: Database
) -> None:
    settings = MonitorSettings(window_size=300, reference_size=300, drift_workers="thread",
                               drift_kinds=("served",))
    dep = deployment_factory(broker, partitions=1, monitor=settings)
    rows = traffic()
    with Client(dep.settings) as client:
        for i, (x, y) in enumerate(rows):
            client.log_prediction("agrawal", f"r{i:05d}", x, label=y, model_version=1)
            client.log_feedback("agrawal", f"r{i:05d}", y)
        client.flush()

    with running(dep, database) as run:
        store = run.monitor.store
        run.drain(lambda: bool(store.requests()) and run.loop.stats.consumed >= 2 * len(rows))
        run.finish_reports()

        nulled = next(i for i, (x, _) in enumerate(rows) if x["salary"] is None)
        stored = EventStore(database).prediction("agrawal", f"r{nulled:05d}")
        assert stored is not None
        assert stored.features["salary"] is None

        reports = [r for r in store.reports("agrawal") if r.status == DONE]
        assert len(reports) == 2, "the windows after the reference's own"
        by_column = [{q["column"]: q for q in r.quality} for r in reports]
        assert set(by_column[0]) == set(rows[0][0])
        assert not any(q["violated"] for q in by_column[0].values()), "before the fault"
        salary = by_column[1]["salary"]
        assert salary["violated"]
        assert 0.5 < salary["missing"] < 0.7
        assert salary["reference_missing"] == 0.0
        assert [c for c, q in by_column[1].items() if q["violated"]] == ["salary"]

        (request,) = store.requests("agrawal")
        assert request.reasons == ["data_quality"]
        assert request.evidence["data_quality"] == {
            "window_id": reports[1].window_id, "kind": "served", "columns": ["salary"]}

        events = drift_events(dep, expect=len(reports) + 1)
        published = {e.window_id: e for e in events if isinstance(e, DriftReport)}
        assert [q.column for q in published[reports[1].window_id].quality if q.violated] == [
            "salary"]
        assert [e.reasons for e in events if isinstance(e, RetrainRequested)] == [
            ("data_quality",)]
