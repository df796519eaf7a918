"""SIGKILL a consuming process mid-batch; after a restart every event is stored exactly once."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from streams.codec import encode
from streams.db import Database
from streams.events import ClassOutput, Prediction
from streams.store import EventStore, PredictionRow
from streams.topics import Topic
from tests.conftest import Deployment, on_each_broker_and_database
from tests.streams.kafka_helpers import produce_raw

N = 300


def _predictions() -> list[bytes]:
    now = datetime.now(UTC)
    return [
        encode(Prediction(event_id=f"e{i}", request_id=f"r{i}", model="churn", model_version=1,
                          features={"x": float(i)}, output=ClassOutput(label="a"),
                          timestamp=now))
        for i in range(N)
    ]


def _consumer(dep: Deployment, url: str, marker: Path, *, stall: bool) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "tests.streams.crash_consumer", dep.broker.bootstrap,
            dep.names.prefix, url, str(marker)]
    return subprocess.Popen([*args, "--stall"] if stall else args, cwd=Path(__file__).parents[2])


@on_each_broker_and_database
def test_sigkill_mid_batch_loses_and_duplicates_nothing(
    deployment: Deployment, database: Database, tmp_path: Path
) -> None:
    produce_raw(deployment.broker.bootstrap, deployment.names(Topic.PREDICTIONS), _predictions(),
                key=None)
    marker = tmp_path / "stalled"
    victim = _consumer(deployment, database.url, marker, stall=True)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        assert victim.poll() is None, "the consumer died before it was killed"
        time.sleep(0.05)
    assert marker.exists(), "the consumer never reached the middle of a batch"
    victim.kill()
    victim.wait(10)
    store = EventStore(database)
    partial = store.count(PredictionRow)
    assert 0 < partial < N

    survivor = _consumer(deployment, database.url, marker, stall=False)
    assert survivor.wait(120) == 0

    stored = store.count(PredictionRow)
    handled = marker.with_suffix(".seen").read_text().split()
    assert stored == N
    assert len(set(handled)) == N
    assert len(handled) > N, "the killed batch was replayed after the restart"
