"""The detectors follow the version serving actually ran, whatever the registry names.

A promotion that serving refused (``SwapFailed``) never makes a prediction: the version still
serving must keep feeding detection, or drift goes unnoticed until someone looks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from streams.codec import encode
from streams.db import Database
from streams.events import Event, ModelPromoted, ModelRolledBack
from streams.producer import Producer
from streams.settings import MonitorSettings
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment, on_memory
from tests.monitor.events import T0, feedback, prediction
from tests.monitor.harness import Running, running
from tests.streams.kafka_helpers import produce_raw

# The monitor's handling of what it reads; tests/monitor/test_process.py runs it on the
# real brokers.
pytestmark = on_memory

QUIET = MonitorSettings(drift_kinds=(), drift_workers="thread")
SHA = "0" * 64
MODEL = "churn"


def _promoted(version: int, previous: int | None, at: float) -> ModelPromoted:
    return ModelPromoted(event_id=f"promote-{version}", model=MODEL, version=version,
                         previous_version=previous, artifact_uri=f"file:///nowhere/v{version}",
                         sha256=SHA, timestamp=T0 + timedelta(seconds=at))


def _rolled_back(version: int, from_version: int, at: float) -> ModelRolledBack:
    return ModelRolledBack(event_id=f"back-{version}", model=MODEL, version=version,
                           from_version=from_version, artifact_uri=f"file:///nowhere/v{version}",
                           sha256=SHA, timestamp=T0 + timedelta(seconds=at))


class Traffic:
    """Sends model updates, predictions and their labels, and waits for the monitor to read them."""

    def __init__(self, dep: Deployment, run: Running) -> None:
        self.dep, self.run = dep, run
        self.sent = 0

    def update(self, event: Event) -> None:
        with Producer(self.dep.kafka) as producer:
            producer.send(self.dep.names(Topic.MODEL_UPDATES), event, key=MODEL)
        self._wait(1)

    def served(self, first: int, count: int, *, version: int, right: bool) -> None:
        """Requests ``first`` .. ``first + count - 1``, made by ``version`` at second ``i``."""
        ids = [f"r{i:05d}" for i in range(first, first + count)]
        produce_raw(self.dep.broker.bootstrap, self.dep.names(Topic.PREDICTIONS), [
            encode(prediction(rid, at=first + n, version=version)) for n, rid in enumerate(ids)])
        self._wait(count)
        self.labels(first, count, right=right)

    def labels(self, first: int, count: int, *, right: bool) -> None:
        produce_raw(self.dep.broker.bootstrap, self.dep.names(Topic.FEEDBACK), [
            encode(feedback(f"r{i:05d}", "stay" if right else "leave", at=i + 5.0))
            for i in range(first, first + count)])
        self._wait(count)

    def _wait(self, count: int) -> None:
        self.sent += count
        self.run.drain(lambda: self.run.loop.stats.consumed >= self.sent)
        assert self.run.loop.stats.consumed >= self.sent

    @property
    def fed(self) -> int:
        """How many errors the model's detectors have seen."""
        return self.run.monitor.models[MODEL].detectors.n


def test_a_refused_promotion_leaves_detection_on_the_version_still_serving(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], database: Database
) -> None:
    dep = deployment_factory(broker, partitions=1, monitor=QUIET)
    with running(dep, database) as run:
        traffic = Traffic(dep, run)
        traffic.update(_promoted(1, None, at=0))
        traffic.served(0, 200, version=1, right=True)
        assert traffic.fed == 200

        # v2 is promoted but serving refuses it: v1 keeps answering, and starts to be wrong.
        traffic.update(_promoted(2, 1, at=200))
        traffic.served(200, 200, version=1, right=False)

        assert traffic.fed == 400, "v1's labelled predictions still feed the detectors"
        alarms = run.monitor.store.alarms(MODEL)
        assert alarms, "the drift in v1's errors is detected"
        assert {a.model_version for a in alarms} == {1}
        assert run.monitor.models[MODEL].follows == 1

        # The registry converges (ModelRolledBack to v1): detection goes on uninterrupted (the
        # errors stay as they were, so no detector restarts on its own either).
        reset_after = run.monitor.models[MODEL].detectors.state()["reset_after"]
        traffic.update(_rolled_back(1, 2, at=400))
        traffic.served(400, 50, version=1, right=False)
        assert traffic.fed == 450
        assert run.monitor.models[MODEL].champion.version == 1  # type: ignore[union-attr]
        assert run.monitor.models[MODEL].detectors.state()["reset_after"] == reset_after


def test_a_promotion_restarts_the_detectors_on_the_new_versions_errors(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], database: Database
) -> None:
    dep = deployment_factory(broker, partitions=1, monitor=QUIET)
    with running(dep, database) as run:
        traffic = Traffic(dep, run)
        traffic.update(_promoted(1, None, at=0))
        traffic.served(0, 100, version=1, right=True)
        # v1's last predictions, labelled only after v3 served its first.
        produce_raw(dep.broker.bootstrap, dep.names(Topic.PREDICTIONS), [
            encode(prediction(f"r{i:05d}", at=i, version=1)) for i in range(100, 130)])
        traffic._wait(30)
        assert traffic.fed == 100

        traffic.update(_promoted(3, 1, at=130))
        traffic.served(130, 40, version=3, right=True)
        state = run.monitor.models[MODEL]
        assert state.follows == 3
        assert traffic.fed == 140
        assert min(state.detectors.state()["reset_after"].values()) > 0, "restarted for v3"

        traffic.labels(100, 30, right=False)
        assert traffic.fed == 140, "late labels of the version v3 replaced are left out"
        # A prediction of v1 read late (a serving process still swapping) does not switch back.
        produce_raw(dep.broker.bootstrap, dep.names(Topic.PREDICTIONS),
                    [encode(prediction("late", at=129.5, version=1))])
        traffic._wait(1)
        assert run.monitor.models[MODEL].follows == 3


def test_a_restart_remembers_which_version_the_detectors_follow(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], database: Database
) -> None:
    dep = deployment_factory(broker, partitions=1, monitor=QUIET)
    with running(dep, database) as run:
        traffic = Traffic(dep, run)
        traffic.update(_promoted(1, None, at=0))
        traffic.served(0, 60, version=1, right=True)
        traffic.update(_promoted(2, 1, at=60))  # refused: no v2 prediction follows
        traffic.served(60, 40, version=1, right=False)
        before = run.monitor.models[MODEL]
        assert (before.follows, before.detectors.n) == (1, 100)
    with running(dep, database) as again:
        after = again.monitor.models[MODEL]
        assert after.follows == 1
        assert after.champion.version == 2  # type: ignore[union-attr]
        assert after.detectors.n == 100


def test_without_a_champion_every_version_feeds_the_detectors(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], database: Database
) -> None:
    """An app that serves itself, A/B testing two versions, with no registry behind it."""
    dep = deployment_factory(broker, partitions=1, monitor=QUIET)
    with running(dep, database) as run:
        traffic = Traffic(dep, run)
        for first in range(0, 120, 20):
            traffic.served(first, 20, version=7 if first % 40 else 8, right=True)
        assert traffic.fed == 120
        assert run.monitor.models[MODEL].follows is None
