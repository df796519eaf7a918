"""Done when: SIGKILL the scheduler process (``driftloop retrain``) and start it again; the
schedules are still there and no job runs twice for the same request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from retrain.registry import Registry
from retrain.runs import INTERRUPTED, RunStore
from retrain.tables import SchedulerJobRow
from streams.db import Database
from streams.events import RetrainRequested
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment, on_each_broker_and_database
from tests.retrain.helpers import FAST, MODEL, T0, agrawal, seed_store
from tests.retrain.process_helpers import send, wait_for_request, wait_until

ROOT = Path(__file__).parents[2]


def _env(dep: Deployment, url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env.update({
        "PYTHONPATH": str(ROOT),
        "DRIFTLOOP_HOME": str(home),
        "DRIFTLOOP_LOG_LEVEL": "INFO",
        "DRIFTLOOP_MODELS": f'["{MODEL}"]',
        "DRIFTLOOP_DATABASE__URL": url,
        "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": dep.broker.bootstrap,
        "DRIFTLOOP_KAFKA__POLL_TIMEOUT_MS": "100",
        "DRIFTLOOP_KAFKA__SESSION_TIMEOUT_MS": "6000",
        "DRIFTLOOP_TOPICS__PREFIX": dep.names.prefix,
        "DRIFTLOOP_RETRAIN__TRAINER": "tests.retrain.trainers:TracingTrainer",
        "DRIFTLOOP_RETRAIN__SCHEDULE_INTERVAL_S": "3600",
        **{f"DRIFTLOOP_RETRAIN__{k.upper()}": str(v) for k, v in FAST.items()},
    })
    return env


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "driftloop.cli", "retrain"],
                                   cwd=log.parent, env=env, stdout=sink, stderr=sink)
    wait_until(lambda: process.poll() is not None or b"retrain running" in log.read_bytes(),
               timeout_s=90, what="the retrain process to start")
    assert process.poll() is None, log.read_text()[-3000:]
    return process


def _schedule(db: Database) -> float | None:
    with db.session() as session:
        return session.execute(select(SchedulerJobRow.next_run_time)
                               .where(SchedulerJobRow.id == f"schedule:{MODEL}")).scalar()


def _request(event_id: str, trace: Path, **evidence: str) -> RetrainRequested:
    return RetrainRequested(event_id=event_id, model=MODEL, reasons=("drift",),
                            evidence={"trace": str(trace), **evidence}, timestamp=T0)


# Two subprocess starts and a group rebalance make this the slowest test of its kind.
@on_each_broker_and_database
def test_sigkill_and_restart_keep_schedules_and_run_no_request_twice(
    broker: BrokerInfo, database: Database, deployment_factory, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    dep: Deployment = deployment_factory(broker)
    seed_store(database, agrawal(400, function=0))
    env = _env(dep, database.url, tmp_path / "home")
    trace, stalled = tmp_path / "fits.txt", tmp_path / "stalled"
    runs = RunStore(database)

    first = _start(env, tmp_path / "first.log")
    try:
        send(dep.settings, Topic.DRIFT, [_request("req-1", trace)])
        assert wait_for_request(runs, "req-1").status == "done"
        scheduled = _schedule(database)
        assert scheduled is not None
        send(dep.settings, Topic.DRIFT, [_request("req-2", trace, stall=str(stalled))])
        wait_until(stalled.exists, timeout_s=60, what="req-2 to start training")
    finally:
        first.kill()  # SIGKILL: no clean-up of any kind
        first.wait(30)
    assert runs.request("req-2").status == "running"  # type: ignore[union-attr]

    second = _start(env, log := tmp_path / "second.log")
    try:
        # A replay of req-1 and a new request.
        send(dep.settings, Topic.DRIFT, [_request("req-1", trace), _request("req-3", trace)])
        assert wait_for_request(runs, "req-3").status == "done"
        assert _schedule(database) == scheduled, "the schedule and its next run survived"
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, log.read_text()[-3000:]

    assert trace.read_text().split() == ["req-1", "req-2", "req-3"]
    by_request = {}
    for run in runs.runs(MODEL):
        by_request.setdefault(run.request_id, []).append(run)
    assert {k: len(v) for k, v in by_request.items()} == {"req-1": 1, "req-2": 1, "req-3": 1}
    [killed] = by_request["req-2"]
    assert (killed.status, killed.error) == ("failed", INTERRUPTED)
    assert runs.request("req-1").status == "done"  # type: ignore[union-attr]
    assert runs.request("req-2").status == "failed"  # type: ignore[union-attr]
    statuses = {v.version: v.status for v in Registry(database).versions(MODEL)}
    assert statuses[1] == "champion"
    assert statuses[2] == "failed"
