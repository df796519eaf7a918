"""The whole loop on one machine: a broker, a database and every stage as its own process.

:class:`LocalLoop` is what ``driftloop demo`` and the real-system run of ``driftloop bench
adaptation`` share. In order:

1. :meth:`LocalLoop.start_broker` starts the embedded Tansu broker or a local Apache Kafka in
   the working folder (or uses the configured cluster for ``external``);
2. :meth:`LocalLoop.prepare` creates the topics and migrates the database;
3. :meth:`LocalLoop.warm_up` stores the scenario's warm-up set as labelled examples and
   :meth:`LocalLoop.train_first_model` runs ``driftloop retrain --once`` on it (version 1);
4. :meth:`LocalLoop.start_stages` starts ``driftloop serve``, ``monitor``, ``retrain`` and
   (optionally) ``dashboard`` as separate OS processes, sharing the settings through
   ``DRIFTLOOP_*`` variables, each logging to ``<workdir>/logs/<stage>.log``;
5. :meth:`LocalLoop.close` stops the children (SIGTERM, then SIGKILL) and the broker it
   started.

:func:`loop_settings` adapts thresholds that are counted in seconds (the monitor's cooldown
and request timeout, its time-based windows) to the pace of the simulated app, unless the user
set them: a compressed scenario must not wait ten real minutes between two retrainings.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr

from dashboard.process import settings_env
from driftloop.lab.scenarios import Scenario
from driftloop.lab.simulator import store_warmup
from driftloop.local.supervisor import Child, ChildError, Exit, Supervisor, python_command
from driftloop.migrations import migrate
from streams.clock import Clock, utc_now
from streams.db import Database
from streams.errors import BrokerError, ConfigError
from streams.settings import Settings
from streams.store import EventStore
from streams.topics import ensure_topics

log = logging.getLogger(__name__)

BrokerChoice = Literal["tansu", "kafka", "external"]
ENV_PREFIX = "DRIFTLOOP_"
STAGES = ("serving", "monitor", "retrain", "dashboard")
#: The folder holding the packages (streams, monitor, ...) this process runs.
SOURCE_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LoopOptions:
    """How to run the loop locally."""

    workdir: Path
    broker: BrokerChoice = "tansu"
    database_url: str | None = None
    dashboard: bool = True
    model: str = "demo"
    topic_prefix: str = "driftloop"
    reset: bool = True
    """Remove the previous run's SQLite file, artifacts and logs from ``workdir`` first."""


def child_env(settings: Settings, inherited: Mapping[str, str]) -> dict[str, str]:
    """The environment of every child: ``inherited`` without ``DRIFTLOOP_*``, plus ours."""
    env = {k: v for k, v in inherited.items() if not k.startswith(ENV_PREFIX)}
    env.update(settings_env(settings))
    env["PYTHONUNBUFFERED"] = "1"
    # Children import the same packages as this process, wherever they are started from.
    root = str(SOURCE_ROOT)
    env["PYTHONPATH"] = f"{root}{os.pathsep}{env['PYTHONPATH']}" if env.get("PYTHONPATH") \
        else root
    return env


def _unset(section: BaseModel, updates: dict[str, Any]) -> dict[str, Any]:
    """``updates`` without the fields the user set explicitly (environment, .env, code)."""
    return {k: v for k, v in updates.items() if k not in section.model_fields_set}


def loop_settings(
    settings: Settings,
    *,
    home: Path,
    bootstrap: str,
    database_url: str,
    prefix: str,
    events_per_second: float,
    dashboard_port: int | None = None,
) -> Settings:
    """The settings every process of a local loop shares, paced for ``events_per_second``."""

    def seconds(events: float) -> float:
        return round(max(1.0, events / events_per_second), 3)

    kafka = settings.kafka.model_copy(update={"bootstrap_servers": bootstrap, **_unset(
        settings.kafka, {"session_timeout_ms": 6_000, "bootstrap_timeout_ms": 60_000})})
    monitor = settings.monitor.model_copy(update=_unset(settings.monitor, {
        # Thresholds in seconds, restated in events of the simulated app.
        "cooldown_s": seconds(1_500),
        # A request whose challenger lost stays open until this; then drift may ask again.
        "request_timeout_s": seconds(1_500),
        "window_seconds": seconds(2_000),
        "lag_interval_s": 5.0,
    }))
    retrain = settings.retrain.model_copy(update=_unset(settings.retrain, {
        "workers": 1, "drift_retry_s": round(max(0.5, 100 / events_per_second), 3)}))
    dashboard = settings.dashboard
    if dashboard_port is not None:
        dashboard = dashboard.model_copy(update={"port": dashboard_port})
    return settings.model_copy(update={
        "home": home,
        "artifact_dir": home / "artifacts",
        "database": settings.database.model_copy(update={"url": SecretStr(database_url)}),
        "kafka": kafka,
        "topics": settings.topics.model_copy(update={"prefix": prefix}),
        "monitor": monitor,
        "retrain": retrain,
        "dashboard": dashboard,
        "log_level": "INFO" if "log_level" not in settings.model_fields_set
        else settings.log_level,
    })


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    """``preferred`` when nothing listens on it, else a port the system picks."""
    if preferred is not None:
        with socket.socket() as probe:
            probe.settimeout(0.3)
            if probe.connect_ex((host, preferred)) != 0:
                return preferred
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LocalLoop:
    """A broker, a database and the stage processes; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        options: LoopOptions,
        *,
        events_per_second: float,
        environ: Mapping[str, str] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.base = settings
        self.options = options
        self.workdir = options.workdir.resolve()
        self.events_per_second = events_per_second
        self._environ = dict(os.environ if environ is None else environ)
        self.stop = stop or threading.Event()
        self.broker: Any = None
        self.bootstrap: str | None = None
        self.settings: Settings | None = None
        self.supervisor: Supervisor | None = None
        self.database: Database | None = None
        self.dashboard_url: str | None = None

    # -- set-up -----------------------------------------------------------------------------

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    @property
    def database_url(self) -> str:
        if self.options.database_url is not None:
            return self.options.database_url
        return f"sqlite:///{self.workdir / 'driftloop.db'}"

    def reset(self) -> None:
        """Forget the previous run kept in the working folder (never a remote database)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.options.reset:
            return
        if self.options.database_url is None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                (self.workdir / f"driftloop.db{suffix}").unlink(missing_ok=True)
        for folder in ("artifacts", "logs"):
            shutil.rmtree(self.workdir / folder, ignore_errors=True)

    def start_broker(self) -> str:
        """Start the chosen broker (``external``: the configured cluster); its address.

        A broker started here ends with this process, so call it from the main thread.
        """
        kind = self.options.broker
        if kind == "external":
            self.bootstrap = self.base.kafka.bootstrap_servers
            return self.bootstrap
        from driftloop.local.brokers import DEFAULT_PORTS, broker_for

        workdir = self.workdir / "brokers" / kind
        port = free_port(DEFAULT_PORTS[kind])
        broker = broker_for(kind, workdir, port)
        self.broker = broker
        # A killed loop takes its broker along instead of leaving it on the port.
        self.bootstrap = broker.start(die_with_parent=True)
        return self.bootstrap

    def prepare(self) -> Settings:
        """Settings of the loop; topics created, database migrated."""
        if self.bootstrap is None:
            raise ConfigError("start the broker first")
        port = None
        if self.options.dashboard:
            port = free_port(self.base.dashboard.port, self.base.dashboard.address
                             if self.base.dashboard.address != "0.0.0.0" else "127.0.0.1")  # noqa: S104
        settings = loop_settings(
            self.base, home=self.workdir, bootstrap=self.bootstrap,
            database_url=self.database_url, prefix=self.options.topic_prefix,
            events_per_second=self.events_per_second, dashboard_port=port,
        )
        ensure_topics(settings.kafka, settings.topics)
        self.database = migrate(settings)
        self.settings = settings
        self.supervisor = Supervisor(self.log_dir, child_env(settings, self._environ),
                                     cwd=self.workdir)
        if self.options.dashboard:
            host = settings.dashboard.address
            host = "127.0.0.1" if host == "0.0.0.0" else host  # noqa: S104
            self.dashboard_url = f"http://{host}:{settings.dashboard.port}"
        return settings

    def warm_up(self, scenario: Scenario, *, prefix: str | None = None,
                clock: Clock = utc_now) -> int:
        """Store the scenario's warm-up set as labelled examples of the loop's model."""
        return store_warmup(EventStore(self._db()), scenario, model=self.options.model,
                            prefix=prefix, clock=clock)

    def train_first_model(self, timeout_s: float = 600.0) -> None:
        """``driftloop retrain --once MODEL``; raises ChildError if it fails."""
        supervisor = self._supervisor()
        child = supervisor.start("retrain-once", python_command(
            "retrain", "--once", self.options.model), expected_exit=True)
        code = self._wait(child, timeout_s)
        if code != 0:
            raise ChildError(f"training the first model failed (exit {code}):\n"
                             f"{child.log_tail()}")

    def start_stages(self) -> list[Child]:
        supervisor = self._supervisor()
        model = self.options.model
        children = [
            supervisor.start("serving", python_command("serve", "--model", model)),
            supervisor.start("monitor", python_command("monitor")),
            supervisor.start("retrain", python_command("retrain")),
        ]
        if self.options.dashboard:
            children.append(supervisor.start("dashboard", python_command("dashboard")))
        return children

    # -- while running -----------------------------------------------------------------------

    def db_has_prediction(self, model: str, request_id: str) -> bool:
        """Whether the monitor stored serving's answer to ``request_id``."""
        return EventStore(self._db()).prediction(model, request_id) is not None

    def dead(self) -> list[Exit]:
        """Stage processes that ended on their own since the last call."""
        return self.supervisor.dead() if self.supervisor is not None else []

    def close(self) -> list[Exit]:
        """Stop every child, then the broker this loop started; safe to repeat."""
        exits: list[Exit] = []
        if self.supervisor is not None:
            exits = self.supervisor.stop_all()
        if self.database is not None:
            self.database.dispose()
            self.database = None
        if self.broker is not None:
            try:
                self.broker.stop()
            except BrokerError as exc:
                log.warning("could not stop the broker: %s", exc)
            self.broker = None
        return exits

    def __enter__(self) -> LocalLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -----------------------------------------------------------------------------

    def _db(self) -> Database:
        if self.database is None:
            raise ConfigError("prepare the loop first")
        return self.database

    def _supervisor(self) -> Supervisor:
        if self.supervisor is None:
            raise ConfigError("prepare the loop first")
        return self.supervisor

    def _wait(self, child: Child, timeout_s: float) -> int:
        waited = 0.0
        while waited < timeout_s:
            if self.stop.is_set():
                raise ChildError(f"stopped while {child.name} was running")
            try:
                return self._supervisor().wait(child, 0.5)
            except ChildError:
                waited += 0.5
        raise ChildError(f"{child.name} did not finish within {timeout_s:.0f}s")

    @property
    def db(self) -> Database:
        return self._db()
