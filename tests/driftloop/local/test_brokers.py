"""The local brokers: start detached, answer Kafka clients, stop, and start again."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from driftloop.local.brokers import (
    ApacheKafkaBroker,
    BrokerStatus,
    LocalBroker,
    TansuBroker,
    broker_for,
    new_cluster_id,
)
from streams.errors import BrokerError, ConfigError

logger = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _roundtrip(bootstrap: str) -> str:
    """Create a topic, produce one message with a header, read it back in a group, commit."""
    topic = f"t{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(topic, key=b"k", value=b"hello", headers=[("v", b"1")]).get(timeout=30)
    producer.close()
    # A short session: Tansu answers a new group's first join after half of it.
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"g-{topic}", auto_offset_reset="earliest",
        enable_auto_commit=False, session_timeout_ms=2000, heartbeat_interval_ms=500,
    )
    received: list[Any] = []
    deadline = time.monotonic() + 30
    while not received and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            received.extend(batch)
    consumer.commit()
    consumer.close()
    assert [(m.key, m.value, m.headers) for m in received] == [(b"k", b"hello", [("v", b"1")])]
    return topic


@pytest.fixture
def launch() -> Iterator[Callable[[LocalBroker], str]]:
    """Start a broker and make sure it is stopped after the test, whatever happens."""
    started: list[LocalBroker] = []

    def start(broker: LocalBroker) -> str:
        started.append(broker)
        return broker.start()

    yield start
    for broker in started:
        broker.stop()


def _assert_stopped(broker: LocalBroker, port: int) -> None:
    assert not _port_open(port)
    status = broker.status()
    assert (status.running, status.bootstrap, status.pid) == (False, None, None)


def test_tansu_serves_kafka_clients_until_stopped(
    tmp_path: Path, launch: Callable[[LocalBroker], str]
) -> None:
    port = _free_port()
    broker = broker_for("tansu", tmp_path / "tansu", port)

    bootstrap = launch(broker)

    assert bootstrap == f"127.0.0.1:{port}"
    status = broker.status()
    assert status.running
    assert status.bootstrap == bootstrap
    assert status.version is not None
    assert status.version.startswith("0.6")
    assert broker.start() == bootstrap  # idempotent: same process, not a second one
    assert broker.status().pid == status.pid
    _roundtrip(bootstrap)

    broker.stop()

    _assert_stopped(broker, port)
    assert broker.status() == BrokerStatus("tansu", False, None, None, status.version)
    broker.stop()  # stopping twice is harmless


def test_broker_outlives_the_command_that_started_it(tmp_path: Path) -> None:
    port, workdir = _free_port(), tmp_path / "tansu"

    def command(action: str) -> subprocess.CompletedProcess[str]:
        # Output is a pipe: the command returns only if the broker does not hold it open.
        return subprocess.run(
            [sys.executable, "-m", "driftloop.cli", "broker", action, "--kind", "tansu",
             "--workdir", str(workdir), "--port", str(port)],
            cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
        )

    started = command("start")
    try:
        assert (started.returncode, started.stdout.strip()) == (0, f"127.0.0.1:{port}")
        status = TansuBroker(workdir, port).status()
        assert status.running
        assert command("status").stdout.split() == [
            "tansu", "running", f"127.0.0.1:{port}", status.version]
        _roundtrip(f"127.0.0.1:{port}")
    finally:
        assert command("stop").returncode == 0

    _assert_stopped(TansuBroker(workdir, port), port)
    stopped = command("status")
    assert (stopped.returncode, stopped.stdout.split()[:2]) == (3, ["tansu", "stopped"])


def test_start_refuses_a_port_taken_by_another_process(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = TansuBroker(tmp_path / "tansu", port)

        with pytest.raises(BrokerError, match="already in use"):
            broker.start()

        assert not broker.status().running
        assert not (tmp_path / "tansu" / "state.json").exists()


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown broker kind"):
        broker_for("redpanda", tmp_path)


@pytest.fixture
def counting_maven(tmp_path: Path) -> tuple[Path, Path]:
    """A ``mvn`` that records each call, then runs the real one."""
    real = shutil.which("mvn")
    if real is None or shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("Apache Kafka needs java and mvn under CI (scripts/bootstrap)")
        pytest.skip("java or mvn not installed (scripts/kafka installs them)")
    calls = tmp_path / "mvn-calls"
    wrapper = tmp_path / "mvn"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper, calls


def test_apache_kafka_starts_serves_and_restarts_from_cached_jars(
    tmp_path: Path, launch: Callable[[LocalBroker], str], counting_maven: tuple[Path, Path]
) -> None:
    maven, calls = counting_maven
    port, workdir, cache = _free_port(), tmp_path / "kafka", tmp_path / "cache"

    def kafka() -> ApacheKafkaBroker:
        return ApacheKafkaBroker(workdir, port, cache_dir=cache, maven=str(maven))

    began = time.monotonic()
    bootstrap = launch(kafka())
    first_start = time.monotonic() - began
    status = kafka().status()
    assert (status.running, status.bootstrap, status.version) == (True, bootstrap, kafka().version)
    topic = _roundtrip(bootstrap)
    kafka().stop()
    _assert_stopped(kafka(), port)
    assert len(calls.read_text().splitlines()) == 1

    began = time.monotonic()
    assert launch(kafka()) == bootstrap
    second_start = time.monotonic() - began

    assert len(calls.read_text().splitlines()) == 1  # jars came from the cache
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    assert topic in admin.list_topics()  # data survived the restart
    admin.close()
    kafka().stop()
    _assert_stopped(kafka(), port)
    logger.info("apache kafka %s: first start %.1fs (with maven), second %.1fs",
                status.version, first_start, second_start)


def test_cluster_ids_never_start_like_an_option() -> None:
    # 0xf8 makes the first base64 character '-', which Kafka's storage tool took for an option.
    draws = iter([b"\xf8" + bytes(15), b"\x00" * 16])
    cluster_id = new_cluster_id(lambda: next(draws))
    assert cluster_id == "A" * 22
    assert all(not new_cluster_id().startswith("-") for _ in range(2000))
