"""Done-when 1: ten promotions and a rollback under a steady stream lose and duplicate nothing."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from serving.process import ServingProcess
from streams.client import Client
from streams.producer import Producer
from streams.settings import ServingSettings
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment
from tests.serving.artifacts import MODEL, make_artifact, promoted, rolled_back, row
from tests.serving.harness import predictions, quick_join, running, wait_for

RATE = 250  # requests per second
ROLLBACK_TO = 9


class SteadyRequests:
    """Sends requests at a fixed rate from a thread until stopped."""

    def __init__(self, dep: Deployment, rate: int) -> None:
        self._client = Client(dep.settings)
        self._rate = rate
        self._stop = threading.Event()
        self.sent: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - start) * self._rate)
            while len(self.sent) < due:
                i = len(self.sent)
                self.sent.append(self._client.request(MODEL, row(i), request_id=f"r{i}"))
            self._client.flush()
            time.sleep(0.01)
        self._client.close()

    def __enter__(self) -> SteadyRequests:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_ten_promotions_and_a_rollback_under_load_lose_and_duplicate_nothing(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], tmp_path: Path
) -> None:
    dep = deployment_factory(broker, serving=ServingSettings(max_batch=64))
    artifacts = {v: make_artifact(tmp_path / "artifacts", v) for v in range(1, 12)}
    updates = dep.names(Topic.MODEL_UPDATES)
    publisher = Producer(dep.kafka)
    publisher.send(updates, promoted(artifacts[1]), key=MODEL)
    publisher.flush()

    process = ServingProcess(quick_join(dep), model=MODEL, device="cpu", instance="hot-swap")
    with running(process):
        with SteadyRequests(dep, RATE) as stream:
            wait_for(lambda: process.stats.handled > 50, what="the first predictions")
            for version in range(2, 12):
                time.sleep(0.3)  # let the current version answer a few batches
                publisher.send(updates, promoted(artifacts[version], previous=version - 1),
                               key=MODEL)
                publisher.flush()
                wait_for(lambda v=version: process.holder.current.version == v,  # type: ignore[union-attr]
                         what=f"the swap to v{version}")
            time.sleep(0.3)
            publisher.send(updates, rolled_back(artifacts[ROLLBACK_TO], from_version=11),
                           key=MODEL)
            publisher.flush()
            wait_for(lambda: process.holder.current.version == ROLLBACK_TO,  # type: ignore[union-attr]
                     what="the rollback")
            time.sleep(0.5)
        sent = stream.sent
        wait_for(lambda: process.stats.handled >= len(sent), what="every request answered")
    publisher.close()
    out = predictions(dep.broker.bootstrap, dep.names(Topic.PREDICTIONS), expect=len(sent))

    counts = Counter(p.request_id for _, _, p in out)
    assert set(counts) == set(sent), "a request was lost"
    assert max(counts.values()) == 1, "a request was answered twice"

    by_partition: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for partition, offset, p in out:
        by_partition[partition].append((offset, p.model_version))
    drops = 0
    for partition, items in by_partition.items():
        versions = [v for _, v in sorted(items)]
        falls = [i for i in range(1, len(versions)) if versions[i] < versions[i - 1]]
        assert len(falls) <= 1, f"partition {partition} went backwards twice: {versions}"
        if falls:
            drops += 1
            assert set(versions[falls[0]:]) == {ROLLBACK_TO}, "a drop other than the rollback"
    assert drops == len(by_partition), "every partition saw the rollback"
    assert {p.model_version for _, _, p in out} == set(range(1, 12)), "every version served"
