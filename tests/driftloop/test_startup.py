"""Starting a long-running process while a service is down: it waits, then runs; a service
that refuses the settings ends it at once with a clear message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from driftloop.local.brokers import broker_for
from driftloop.local.loop import free_port
from streams.settings import KafkaSettings, TopicSettings
from streams.topics import ensure_topics
from tests.conftest import BrokerInfo
from tests.e2e.services import private_postgres

READY = {
    "monitor": "monitor running",
    "retrain": "retrain process ready",
    "serve": "no champion to serve yet",
}


def start(argv: list[str], tmp_path: Path, **settings: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env.update({"DRIFTLOOP_HOME": str(tmp_path / "home"), "DRIFTLOOP_LOG_LEVEL": "INFO",
                "DRIFTLOOP_KAFKA__SESSION_TIMEOUT_MS": "3000", "PYTHONUNBUFFERED": "1"})
    env.update({f"DRIFTLOOP_{k.upper()}": v for k, v in settings.items()})
    return subprocess.Popen(  # noqa: S603 - a fixed command line
        [sys.executable, "-m", "driftloop.cli", *argv], env=env, cwd=tmp_path,
        stdout=(tmp_path / "out.log").open("w"), stderr=subprocess.STDOUT, text=True)


def wait_for_output(text: str, process: subprocess.Popen[str], tmp_path: Path,
                    timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in (tmp_path / "out.log").read_text():
            return
        assert process.poll() is None, (tmp_path / "out.log").read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"no {text!r}:\n{(tmp_path / 'out.log').read_text()[-3000:]}")


def stop(process: subprocess.Popen[str], tmp_path: Path) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert code == 0, (tmp_path / "out.log").read_text()[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["monitor", "retrain", "serve"])
def test_a_process_started_before_its_broker_waits_for_it(command: str, tmp_path: Path) -> None:
    port = free_port()
    prefix = f"s{uuid.uuid4().hex[:8]}"
    argv = ["serve", "--model", "churn"] if command == "serve" else [command]
    process = start(argv, tmp_path, kafka__bootstrap_servers=f"127.0.0.1:{port}",
                    kafka__bootstrap_timeout_ms="1500", topics__prefix=prefix)
    broker = broker_for("tansu", tmp_path / "tansu", port)
    try:
        wait_for_output("yet; retrying until it works", process, tmp_path, 90)
        time.sleep(3)
        assert process.poll() is None, "it exited while the broker was down"
        bootstrap = broker.start()
        ensure_topics(KafkaSettings(bootstrap_servers=bootstrap), TopicSettings(prefix=prefix))
        wait_for_output(READY[command], process, tmp_path, 90)
        stop(process, tmp_path)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        broker.stop()


@pytest.mark.slow
def test_the_monitor_started_before_its_database_waits_for_it(
    tmp_path: Path, tansu: BrokerInfo
) -> None:
    prefix = f"s{uuid.uuid4().hex[:8]}"
    ensure_topics(KafkaSettings(bootstrap_servers=tansu.bootstrap), TopicSettings(prefix=prefix))
    with private_postgres() as postgres:
        postgres.kill()
        process = start(["monitor"], tmp_path, database__url=postgres.url,
                        kafka__bootstrap_servers=tansu.bootstrap, topics__prefix=prefix)
        try:
            wait_for_output("cannot migrate the database yet", process, tmp_path, 90)
            time.sleep(3)
            assert process.poll() is None, "it exited while the database was down"
            postgres.start()
            wait_for_output(READY["monitor"], process, tmp_path, 90)
            stop(process, tmp_path)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_a_database_that_refuses_the_settings_ends_the_process_with_a_clear_message(
    tmp_path: Path,
) -> None:
    server = os.environ.get("DRIFTLOOP_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("PostgreSQL not configured (set DRIFTLOOP_TEST_POSTGRES_URL)")
    url = f"postgresql+psycopg://nosuchrole@{server.rpartition('@')[2]}"
    process = start(["monitor"], tmp_path, database__url=url,
                    kafka__bootstrap_servers=f"127.0.0.1:{free_port()}")
    try:
        code = process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = (tmp_path / "out.log").read_text()
    assert code == 1, output[-3000:]
    assert 'role "nosuchrole" does not exist' in output
    assert "retrying" not in output
