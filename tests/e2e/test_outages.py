"""Done when: serve, monitor and retrain ride out an outage of the broker or the database by
themselves. Each test runs the loop as separate processes (as ``driftloop demo`` does) under a
simulated app's traffic, takes a private service down for 20 s with nothing restarted by hand,
and then asks: are all three processes alive, and is every event stored exactly once? For the
broker (Apache Kafka, killed with SIGKILL) also: does serving answer within 10 s of the broker
being back? For PostgreSQL (stopped as in a crash) the outage comes once under load and once
while the loop idles.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from driftloop.lab.scenarios import get_scenario
from driftloop.lab.simulator import SimulationProgress, Simulator, default_prefix, request_id
from driftloop.local.loop import LocalLoop, LoopOptions
from streams.client import Client
from streams.db import Database
from streams.settings import KafkaSettings, Settings
from streams.store import FeedbackRow, PredictionRow
from tests.conftest import BrokerInfo
from tests.e2e.services import private_kafka, private_postgres

#: 3,600 requests after a warm-up of 400, at 60 a second: a minute of traffic.
SCENARIO = get_scenario("abrupt").resized(4_000, warmup=400)
SPEED = 0.6
MODEL = "outage"
PREFIX = default_prefix(SCENARIO)
OUTAGE_S = 20.0


@contextmanager
def loop_on(tmp_path: Path, bootstrap: str, database_url: str) -> Iterator[LocalLoop]:
    """The loop's processes on ``bootstrap`` and ``database_url``, model v1 trained."""
    settings = Settings(home=tmp_path / "home", kafka=KafkaSettings(bootstrap_servers=bootstrap))
    options = LoopOptions(workdir=tmp_path / "loop", broker="external",
                          database_url=database_url, dashboard=False, model=MODEL,
                          topic_prefix=f"o{uuid.uuid4().hex[:8]}")
    with LocalLoop(settings, options,
                   events_per_second=SCENARIO.events_per_second * SPEED) as loop:
        loop.reset()
        loop.start_broker()
        loop.prepare()
        loop.warm_up(SCENARIO)
        loop.train_first_model()
        loop.start_stages()
        yield loop


class App:
    """The simulated app, streaming the scenario from a thread of its own."""

    def __init__(self, loop: LocalLoop) -> None:
        assert loop.settings is not None
        self.client = Client(loop.settings)
        self._simulator = Simulator(SCENARIO, self.client, model=MODEL, speed=SPEED)
        self.progress: SimulationProgress | None = None
        self._thread = threading.Thread(target=self._run, name="app", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.progress = self._simulator.run()

    def finish(self, timeout_s: float = 180) -> SimulationProgress:
        self._thread.join(timeout_s)
        assert self.progress is not None, "the app did not finish streaming"
        self.client.close()
        return self.progress


def wait_until(condition: Callable[[], object], timeout_s: float, what: str,
               loop: LocalLoop) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1.0)
    raise AssertionError(f"{what} within {timeout_s:.0f}s\n{logs(loop)}")


def logs(loop: LocalLoop) -> str:
    return "\n".join(f"--- {path.name}\n" + "\n".join(path.read_text().splitlines()[-25:])
                     for path in sorted(loop.log_dir.glob("*.log")))


def predictions_per_request(db: Database) -> Counter[str]:
    stmt = (select(PredictionRow.request_id, func.count()).where(PredictionRow.model == MODEL)
            .group_by(PredictionRow.request_id))
    try:
        with db.session() as session:
            return Counter(dict(session.execute(stmt).all()))  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - the database may be down right now
        return Counter()


def feedback_count(db: Database) -> int:
    stmt = select(func.count()).select_from(FeedbackRow).where(FeedbackRow.model == MODEL)
    with db.session() as session:
        return int(session.execute(stmt).scalar_one())


def first_answer_after(db: Database, moment: datetime) -> datetime | None:
    stmt = select(func.min(PredictionRow.timestamp)).where(
        PredictionRow.model == MODEL, PredictionRow.timestamp >= moment)
    with db.session() as session:
        found = session.execute(stmt).scalar_one()
    if found is not None and found.tzinfo is None:
        found = found.replace(tzinfo=UTC)
    return found


def stream_ids(sent: int) -> set[str]:
    """The request ids of the first ``sent`` requests of the stream."""
    return {request_id(PREFIX, SCENARIO.warmup + k) for k in range(sent)}


def assert_alive(loop: LocalLoop) -> None:
    dead = loop.dead()
    assert dead == [], "\n".join(f"{e.describe()}\n{e.log_tail}" for e in dead)


def assert_stored_once(loop: LocalLoop, progress: SimulationProgress) -> None:
    """Every request answered and stored exactly once; every label stored."""
    wanted = stream_ids(progress.sent)
    warm_up = SCENARIO.warmup

    def complete() -> bool:
        counts = predictions_per_request(loop.db)
        return wanted <= counts.keys() and feedback_count(loop.db) >= warm_up + progress.feedback

    wait_until(complete, 180, "not every event was stored", loop)
    counts = predictions_per_request(loop.db)
    assert len(counts) == warm_up + progress.sent
    assert set(counts.values()) == {1}, [rid for rid, n in counts.items() if n > 1][:10]
    assert feedback_count(loop.db) == warm_up + progress.feedback


def wait_for_traffic(loop: LocalLoop, app: App) -> None:
    """Until serving has answered a few hundred requests of the stream."""
    first = stream_ids(600)
    wait_until(lambda: len(first & predictions_per_request(loop.db).keys()) >= 300, 120,
               "serving answered too little", loop)
    assert app.progress is None, "the stream ended before the outage"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_kafka_outage_under_load_is_ridden_out(tmp_path: Path) -> None:
    with private_kafka(tmp_path / "kafka") as kafka, \
            loop_on(tmp_path, kafka.bootstrap, f"sqlite:///{tmp_path / 'loop.db'}") as loop:
        app = App(loop)
        wait_for_traffic(loop, app)
        kafka.kill()
        time.sleep(OUTAGE_S)
        assert_alive(loop)
        kafka.start()
        back = datetime.now(UTC)

        wait_until(lambda: first_answer_after(loop.db, back), 60,
                   "serving answered nothing after the broker came back", loop)
        first = first_answer_after(loop.db, back)
        assert first is not None
        assert first - back <= timedelta(seconds=10), (
            f"first answer {(first - back).total_seconds():.1f}s after the broker was back")
        progress = app.finish()
        assert not progress.stopped
        assert_stored_once(loop, progress)
        assert_alive(loop)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_postgresql_outage_under_load_and_while_idle_is_ridden_out(
    tansu: BrokerInfo, tmp_path: Path
) -> None:
    with private_postgres() as postgres, loop_on(tmp_path, tansu.bootstrap, postgres.url) as loop:
        app = App(loop)
        wait_for_traffic(loop, app)
        postgres.kill()
        time.sleep(OUTAGE_S)
        assert_alive(loop)
        postgres.start()
        progress = app.finish()
        assert_stored_once(loop, progress)
        assert_alive(loop)

        postgres.kill()  # now while idle: nothing comes in, the processes only wait
        time.sleep(OUTAGE_S)
        assert_alive(loop)
        postgres.start()
        assert loop.settings is not None
        examples = list(SCENARIO.examples())[:50]
        with Client(loop.settings) as client:
            for k, example in enumerate(examples):
                client.request(MODEL, example.features, request_id=f"after-{k}")
                client.log_feedback(MODEL, f"after-{k}", example.label)
            client.flush()
        wanted = {f"after-{k}" for k in range(len(examples))}
        wait_until(lambda: wanted <= predictions_per_request(loop.db).keys(), 120,
                   "requests after the idle outage were not answered and stored", loop)
        counts = predictions_per_request(loop.db)
        assert len(counts) == SCENARIO.warmup + progress.sent + len(examples)
        assert set(counts.values()) == {1}
        wait_until(lambda: feedback_count(loop.db) == SCENARIO.warmup + progress.feedback
                   + len(examples), 60, "labels after the idle outage were not stored", loop)
        assert_alive(loop)
