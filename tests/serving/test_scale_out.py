"""Done-when 2: two `driftloop serve` processes in one group, one SIGKILLed mid-stream.

Predictions are stored the way the rest of the loop stores them (a ConsumerLoop into
``EventStore``, idempotent on (model, request_id)); every request must end up with exactly
one stored prediction. Each server exposes /metrics, which the test reads to make sure both
were answering requests before one is killed.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from streams.client import Client
from streams.codec import Decoder
from streams.consumer import Batch, ConsumerLoop
from streams.db import Database
from streams.events import Prediction
from streams.producer import Producer
from streams.store import EventStore, PredictionRow
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment
from tests.serving.artifacts import MODEL, make_artifact, promoted, row

N = 1500
RATE = 150  # requests per second: the stream lasts ten seconds
ROOT = Path(__file__).parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(dep: Deployment, home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DRIFTLOOP_HOME": str(home),
        "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": dep.broker.bootstrap,
        "DRIFTLOOP_TOPICS__PREFIX": dep.names.prefix,
        "DRIFTLOOP_KAFKA__SESSION_TIMEOUT_MS": "6000",
        "DRIFTLOOP_KAFKA__POLL_TIMEOUT_MS": "100",
        "DRIFTLOOP_SERVING__MAX_BATCH": "25",
        "DRIFTLOOP_SERVING__METRICS_PORT": str(port),
        "DRIFTLOOP_LOG_LEVEL": "INFO",
    }
    command = [sys.executable, "-m", "driftloop.cli", "serve", "--model", MODEL,
               "--device", "cpu"]
    log = (home.parent / f"{home.name}.log").open("wb")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)


def _metrics(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            return str(resp.read().decode())
    except OSError:
        return ""


def _metric(text: str, name: str) -> float:
    found = re.search(rf'^{name}\{{model="churn"\}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def _served(port: int) -> float:
    """The server's driftloop_serving_predictions_total, 0 while it cannot be read."""
    return _metric(_metrics(port), "driftloop_serving_predictions_total")


def _wait_until_loaded(servers: list[subprocess.Popen[bytes]], ports: list[int]) -> None:
    """Until every server serves version 1: a loaded machine can take long to start one."""
    deadline = time.monotonic() + 120
    while not all(_metric(_metrics(p), "driftloop_serving_model_version") == 1 for p in ports):
        assert all(s.poll() is None for s in servers), "a server died while starting"
        assert time.monotonic() < deadline, "the servers did not load version 1 in 120 s"
        time.sleep(0.5)


def test_a_sigkilled_server_loses_no_prediction(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], tmp_path: Path
) -> None:
    dep = deployment_factory(broker, partitions=4)
    with Producer(dep.kafka) as publisher:
        publisher.send(dep.names(Topic.MODEL_UPDATES),
                       promoted(make_artifact(tmp_path / "artifacts", 1)), key=MODEL)

    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    from driftloop.migrations import migrate_database

    store = EventStore(migrate_database(db))
    topic = dep.names(Topic.PREDICTIONS)
    event_ids: dict[str, set[str]] = defaultdict(set)

    def keep(batch: Batch[Prediction]) -> None:
        for record in batch.records:
            event_ids[record.event.request_id].add(record.event.event_id)
        store.add_predictions([r.event for r in batch.records])

    storing: ConsumerLoop[Prediction] = ConsumerLoop(
        dep.kafka, topics=[topic], group_id=f"{dep.names.prefix}-store",
        decoders={topic: Decoder(Prediction, max_bytes=dep.kafka.max_message_bytes)},
        handler=keep, producer=Producer(dep.kafka), dead_letter_topic=dep.names(Topic.DEAD_LETTER),
    )
    storing.consumer.partitions_for_topic(topic)  # know the partitions before joining
    ports = [_free_port(), _free_port()]
    servers = [_serve(dep, tmp_path / f"home{i}", port) for i, port in enumerate(ports)]
    client = Client(dep.settings)
    try:
        _wait_until_loaded(servers, ports)
        start = time.monotonic()
        sent = 0
        killed_at: float | None = None
        victim, survivor = servers
        while sent < N or store.count(PredictionRow) < N:
            due = min(N, int((time.monotonic() - start) * RATE))
            while sent < due:
                client.request(MODEL, row(sent), request_id=f"r{sent}")
                sent += 1
            client.flush()
            storing.run_once()
            if killed_at is None and sent >= N // 3 and all(_served(p) > 0 for p in ports):
                victim.kill()
                killed_at = time.monotonic()
            assert survivor.poll() is None, "the surviving server died"
            assert time.monotonic() - start < 90, (
                f"only {store.count(PredictionRow)} of {N} predictions stored"
            )
            if killed_at is None:
                assert sent < N, "both servers never answered before the stream ended"
        assert killed_at is not None
        assert victim.wait(10) == -9
        text = _metrics(ports[1])
        assert _metric(text, "driftloop_serving_model_version") == 1
        assert _metric(text, "driftloop_serving_requests_total") >= N // 2, "took over"
        assert _metric(text, "driftloop_serving_batch_size_count") > 0
        assert _metric(text, "driftloop_serving_latency_seconds_count") > 0
        assert "driftloop_serving_consumer_lag{" in text
    finally:
        for server in servers:
            if server.poll() is None:
                server.kill()
                server.wait(10)
        client.close()
        storing.close()

    assert store.count(PredictionRow) == N
    assert all(store.prediction(MODEL, f"r{i}") is not None for i in range(0, N, 97))
    assert set(event_ids) == {f"r{i}" for i in range(N)}
    assert all(len(ids) == 1 for ids in event_ids.values()), "a replay changed an event id"
