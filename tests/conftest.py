"""Fixture factories shared by every test: real brokers, real databases, fresh topics.

Brokers: set DRIFTLOOP_TEST_BROKERS="tansu=HOST:PORT,kafka=HOST:PORT" to use running ones
(``scripts/test`` does); otherwise each kind is started once per session in a temporary
folder. The ``broker`` fixture runs a test on Tansu and Apache Kafka; a module parametrizes it
to run on the in-memory broker too (``ALL_BROKERS``, a contract) or only there (``MEMORY``,
a handler test that needs nothing a real broker shows), with the marks ``on_every_broker``
and ``on_memory`` (a module may set either as its ``pytestmark``).
 PostgreSQL: DRIFTLOOP_TEST_POSTGRES_URL names a server where each test gets a
database of its own; without it PostgreSQL cases are skipped, except under CI, where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from streams.db import Database
from streams.settings import KafkaSettings, Settings, TopicSettings
from streams.topics import TopicNames, ensure_topics

BROKER_KINDS = ("tansu", "kafka")
#: Every implementation of the transport: the contract suites run on all of them.
ALL_BROKERS = ("memory", *BROKER_KINDS)
#: Only the in-memory broker, for tests of what a handler does with what it reads.
MEMORY = ("memory",)
on_every_broker = pytest.mark.parametrize("broker", ALL_BROKERS, indirect=True)
on_memory = pytest.mark.parametrize("broker", MEMORY, indirect=True)
DATABASE_KINDS = ("sqlite", "postgresql")
#: For a slow test that needs a real broker and a database: each broker and each database
#: once (pairwise) rather than all four combinations.
on_each_broker_and_database = pytest.mark.parametrize(
    ("broker", "database_url"), [("tansu", "postgresql"), ("kafka", "sqlite")], indirect=True)


@dataclass(frozen=True)
class BrokerInfo:
    kind: str
    bootstrap: str
    version: str


def _env_brokers() -> dict[str, str]:
    raw = os.environ.get("DRIFTLOOP_TEST_BROKERS", "")
    pairs = (item.split("=", 1) for item in raw.split(",") if "=" in item)
    return {kind.strip(): addr.strip() for kind, addr in pairs}


class _Brokers:
    """Starts each broker kind at most once per session."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._env = _env_brokers()
        self._running: dict[str, BrokerInfo] = {}
        self._owned: list[object] = []

    def get(self, kind: str) -> BrokerInfo:
        if kind in self._running:
            return self._running[kind]
        if kind == "memory":
            info = BrokerInfo(kind, f"memory://tests-{uuid.uuid4().hex[:8]}", "in-memory")
        elif kind in self._env:
            version = os.environ.get(f"DRIFTLOOP_TEST_{kind.upper()}_VERSION", "")
            info = BrokerInfo(kind, self._env[kind], version)
        else:
            from driftloop.local.brokers import broker_for

            broker = broker_for(kind, self._workdir / kind, _free_port())
            bootstrap = broker.start()
            self._owned.append(broker)
            info = BrokerInfo(kind, bootstrap, broker.status().version or "")
        self._running[kind] = info
        return info

    def stop_all(self) -> None:
        for broker in self._owned:
            broker.stop()  # type: ignore[attr-defined]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def _brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Brokers]:
    brokers = _Brokers(tmp_path_factory.mktemp("brokers"))
    yield brokers
    brokers.stop_all()


@pytest.fixture(params=BROKER_KINDS)
def broker(request: pytest.FixtureRequest, _brokers: _Brokers) -> BrokerInfo:
    """Each Kafka contract test runs once on Tansu and once on Apache Kafka."""
    return _brokers.get(request.param)


@pytest.fixture
def tansu(_brokers: _Brokers) -> BrokerInfo:
    return _brokers.get("tansu")


@pytest.fixture
def memory_broker(_brokers: _Brokers) -> BrokerInfo:
    """The in-memory broker, for a test of what the code does with what it reads."""
    return _brokers.get("memory")


@pytest.fixture
def apache_kafka(_brokers: _Brokers) -> BrokerInfo:
    """For what only Apache Kafka shows (its size limits, its errors)."""
    return _brokers.get("kafka")


@dataclass(frozen=True)
class Deployment:
    """Settings pointing at one broker and a fresh set of topics."""

    settings: Settings
    names: TopicNames
    broker: BrokerInfo

    @property
    def kafka(self) -> KafkaSettings:
        return self.settings.kafka


@pytest.fixture
def deployment_factory(tmp_path: Path) -> Callable[..., Deployment]:
    def make(broker: BrokerInfo, *, partitions: int = 3, **overrides: object) -> Deployment:
        prefix = f"t{uuid.uuid4().hex[:10]}"
        # Tansu answers a new group's first JoinGroup after half the session timeout: keep it
        # short so tests do not wait (the local Kafka allows sessions down to 1 s).
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap, poll_timeout_ms=100,
                              session_timeout_ms=3000)
        topics = TopicSettings(prefix=prefix, partitions=partitions)
        settings = Settings(home=tmp_path / "home", kafka=kafka, topics=topics, **overrides)  # type: ignore[arg-type]
        ensure_topics(kafka, topics)
        return Deployment(settings, TopicNames(prefix), broker)

    return make


@pytest.fixture
def deployment(broker: BrokerInfo, deployment_factory: Callable[..., Deployment]) -> Deployment:
    return deployment_factory(broker)


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'driftloop.db'}"
        return
    server = os.environ.get("DRIFTLOOP_TEST_POSTGRES_URL")
    if not server:
        if os.environ.get("CI"):
            pytest.fail("DRIFTLOOP_TEST_POSTGRES_URL must be set under CI")
        pytest.skip("PostgreSQL not configured (set DRIFTLOOP_TEST_POSTGRES_URL)")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _db = server.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A fresh database migrated to the newest revision of every stage's tables."""
    from driftloop.migrations import migrate_database

    db = migrate_database(Database(database_url))
    yield db
    db.dispose()


def pytest_report_header(config: pytest.Config) -> list[str]:
    brokers = _env_brokers()
    lines = [f"broker {kind}: {addr}" for kind, addr in sorted(brokers.items())]
    version = os.environ.get("DRIFTLOOP_TEST_KAFKA_VERSION")
    if version:
        lines.append(f"apache kafka version: {version}")
    if os.environ.get("DRIFTLOOP_TEST_POSTGRES_URL"):
        lines.append("postgresql: configured")
    return lines
