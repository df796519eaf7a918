"""Done when: on a real broker and database, a RetrainRequested leads to a trained challenger, a
recorded decision and (when better) a ModelPromoted whose artifact serving's loader accepts; a
worse challenger is rejected and nothing is published; a worse champion in production is
rolled back."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import torch

from retrain.registry import Registry
from retrain.runs import RunStore
from streams.artifacts import Preprocessor, load_artifact
from streams.db import Database
from streams.events import DriftReport, ModelPromoted, ModelRolledBack, RetrainRequested
from streams.nn import load_module
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment, on_each_broker_and_database
from tests.retrain.helpers import FAST, MODEL, T0, agrawal, seed_store
from tests.retrain.process_helpers import (
    model_updates,
    running,
    send,
    wait_for_request,
    wait_until,
)
from tests.streams.kafka_helpers import produce_raw, read_all


def _request(event_id: str) -> RetrainRequested:
    return RetrainRequested(event_id=event_id, model=MODEL, reasons=("drift",),
                            evidence={"drifted_windows": 2}, timestamp=T0)


def _report(i: int, version: int, accuracy: float) -> DriftReport:
    start = T0 + timedelta(minutes=5 * i)
    return DriftReport(event_id=f"report-{i}", model=MODEL, model_version=version,
                       window_id=f"w{i}", window_start=start,
                       window_end=start + timedelta(minutes=5), rows=500, drifted_share=0.0,
                       drift_detected=False, performance={"accuracy": accuracy},
                       timestamp=start)


@on_each_broker_and_database
def test_requests_train_decide_publish_and_roll_back(
    broker: BrokerInfo, database: Database, deployment_factory, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    dep: Deployment = deployment_factory(
        broker, models=(MODEL,), database={"url": database.url},
        retrain={**FAST, "rollback_windows": 2, "rollback_margin": 0.05},
    )
    settings = dep.settings
    runs, registry = RunStore(database), Registry(database)
    after = seed_store(database, agrawal(800, function=0), prefix="a")
    produce_raw(dep.broker.bootstrap, dep.names(Topic.DRIFT), [b"not json"])

    with running(settings):
        # 1. The first model of its name is promoted and published.
        send(settings, Topic.DRIFT, [_request("req-1")])
        first = wait_for_request(runs, "req-1")
        assert first.status == "done"
        [promoted] = model_updates(settings, expect=1)
        assert isinstance(promoted, ModelPromoted)
        assert (promoted.version, promoted.previous_version) == (1, None)
        artifact = load_artifact(promoted.artifact_uri, expected_sha256=promoted.sha256)
        module = load_module(artifact, torch.device("cpu"))
        rows = [x for x, _ in agrawal(50, seed=9)]
        out = module(torch.from_numpy(Preprocessor(artifact.manifest.features).transform(rows)))
        assert out.shape == (50, 2)
        assert bool(torch.isfinite(out).all())

        # 2. The concept drifts; a challenger trained on the new data wins on the new holdout.
        after = seed_store(database, agrawal(800, function=2, seed=2), start=after, prefix="b")
        send(settings, Topic.DRIFT, [_request("req-2")])
        assert wait_for_request(runs, "req-2").status == "done"
        updates = model_updates(settings, expect=2)
        assert [(u.version, u.previous_version) for u in updates] == [(1, None), (2, 1)]
        second = registry.version(MODEL, 2)
        assert second.status == "champion"
        assert second.lineage.trigger.request_id == "req-2"

        # 3. Corrupted labels: the challenger is worse on the clean holdout; nothing published.
        after = seed_store(database, agrawal(600, function=2, seed=3, flip=True), start=after,
                           prefix="c")
        seed_store(database, agrawal(200, function=2, seed=4), start=after, prefix="d")
        send(settings, Topic.DRIFT, [_request("req-3")])
        third = wait_for_request(runs, "req-3")
        run = runs.run(third.run_id)  # type: ignore[arg-type]
        assert (run.status, run.decision, run.version) == ("succeeded", "rejected", 3)
        numbers = run.metrics["holdout"]
        assert numbers["challenger"]["accuracy"] < numbers["champion"]["accuracy"]
        assert registry.version(MODEL, 3).status == "rejected"
        # The decision is recorded after any publication, so a short look suffices.
        assert len(model_updates(settings, expect=3, timeout_s=1)) == 2
        assert registry.champion(MODEL).version == 2  # type: ignore[union-attr]

        # 4. The monitor reports v2 doing worse in production than v1 did: roll back.
        send(settings, Topic.DRIFT, [_report(0, 1, 0.93), _report(1, 1, 0.91),
                                     _report(2, 2, 0.70), _report(3, 2, 0.72)])
        updates = wait_until(lambda: [u for u in model_updates(settings, expect=3, timeout_s=2)
                                      if isinstance(u, ModelRolledBack)], what="a rollback")
        assert [(u.version, u.from_version) for u in updates] == [(1, 2)]
        assert registry.champion(MODEL).version == 1  # type: ignore[union-attr]

    assert [r.request_id for r in runs.runs(MODEL)] == ["req-1", "req-2", "req-3"]
    assert all(a.published_at is not None for a in registry.audit(MODEL))
    dead = read_all(dep.broker.bootstrap, dep.names(Topic.DEAD_LETTER), expect=1)
    assert [m.value for m in dead] == [b"not json"]
    assert np.isfinite(run.metrics["validation"]["accuracy"])
