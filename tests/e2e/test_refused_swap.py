"""Done when: a swap serving refuses leaves the registry, the monitor and serving agreeing.

The registry verifies an artifact before crowning it, but serving may still refuse it (here: a
model whose outputs are not finite fails serving's canary). Serving keeps v1 and publishes
``SwapFailed``; the retrain process marks v2 ``refused`` and restores v1 with a
``ModelRolledBack``; the monitor follows that event like any rollback, and its detectors never
stopped getting v1's errors.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from retrain.publisher import UpdatePublisher
from retrain.registry import Registry
from serving.process import ServingProcess
from streams.client import Client
from streams.db import Database
from streams.events import ModelPromoted, ModelRolledBack, SwapFailed
from streams.lineage import Lineage
from streams.producer import Producer
from streams.settings import MonitorSettings
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment, on_each_broker_and_database
from tests.monitor.harness import Running
from tests.monitor.harness import running as monitoring
from tests.retrain.helpers import FAST
from tests.retrain.process_helpers import model_updates, wait_until
from tests.retrain.process_helpers import running as retraining
from tests.serving.artifacts import MODEL, make_artifact, row
from tests.serving.harness import running as serving
from tests.serving.harness import wait_for


def _requests(dep: Deployment, ids: range) -> None:
    with Client(dep.settings) as client:
        for i in ids:
            client.request(MODEL, row(i), request_id=f"r{i}")


def _labels(dep: Deployment, ids: range) -> None:
    with Client(dep.settings) as client:
        for i in ids:
            client.log_feedback(MODEL, f"r{i}", "stay")


def _new_version(registry: Registry, root: Path, *, nan: bool = False) -> int:
    version = registry.create_version(MODEL, trainer="t", hyperparameters={}, code_version="x")
    artifact = make_artifact(root, version, nan=nan)
    registry.attach_artifact(MODEL, version, artifact_uri=artifact.uri, sha256=artifact.sha256,
                             metrics={}, lineage=Lineage())
    return version


def _fed(run: Running) -> int:
    state = run.monitor.models.get(MODEL)
    return state.detectors.n if state is not None else 0


@on_each_broker_and_database
def test_a_refused_swap_leaves_the_registry_the_monitor_and_serving_agreeing(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], database: Database,
    tmp_path: Path,
) -> None:
    dep = deployment_factory(
        broker, partitions=1, models=(MODEL,), database={"url": database.url}, retrain=FAST,
        monitor=MonitorSettings(drift_kinds=(), drift_workers="thread"),
    )
    registry = Registry(database)
    root = tmp_path / "artifacts"
    v1, v2 = _new_version(registry, root), _new_version(registry, root, nan=True)
    updates_producer = Producer(dep.kafka)
    publisher = UpdatePublisher(registry, updates_producer, dep.names(Topic.MODEL_UPDATES))
    registry.promote(MODEL, v1, actor="ci", reason="first")
    publisher.publish_pending()
    server = ServingProcess(dep.settings, model=MODEL, device="cpu", instance="refuser")

    with serving(server), retraining(dep.settings), monitoring(dep, database) as run:
        wait_for(lambda: server.holder.current is not None, what="serving v1")
        _requests(dep, range(100))
        _labels(dep, range(100))
        run.drain(lambda: _fed(run) >= 100)
        assert _fed(run) == 100

        # The registry accepts v2 (its artifact is intact); serving's canary refuses it.
        registry.promote(MODEL, v2, actor="ci", reason="better on holdout")
        publisher.publish_pending()
        wait_until(lambda: registry.version(MODEL, v2).status == "refused",
                   what="the registry to mark v2 refused")
        updates = model_updates(dep.settings, expect=4)
        assert [(type(u), u.version) for u in updates] == [
            (ModelPromoted, v1), (ModelPromoted, v2), (SwapFailed, v2), (ModelRolledBack, v1)]
        assert "non-finite" in updates[2].error
        assert (updates[3].from_version, updates[3].actor) == (v2, "serving:refuser")

        # Meanwhile v1 answered on, and its labelled predictions kept feeding the detectors.
        _requests(dep, range(100, 200))
        _labels(dep, range(100, 200))
        everything = 200 + 200 + len(updates)  # predictions, labels, model updates
        # Generous: on a loaded machine serving may have to rejoin its group before answering.
        run.drain(lambda: _fed(run) >= 200 and run.loop.stats.consumed >= everything,
                  max_polls=2_000, settle_s=1.0)
        assert _fed(run) == 200

        # One truth: the registry, serving and the monitor all name v1.
        monitored = run.monitor.models[MODEL]
        assert registry.champion(MODEL).version == v1  # type: ignore[union-attr]
        assert server.holder.current.version == v1  # type: ignore[union-attr]
        assert monitored.champion.version == v1  # type: ignore[union-attr]
        assert monitored.follows == v1
        assert [(a.action, a.version, a.from_version) for a in registry.audit(MODEL)] == [
            ("rollback", v1, v2), ("promote", v2, v1), ("promote", v1, None)]
    updates_producer.close()
