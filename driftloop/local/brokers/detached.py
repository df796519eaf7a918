"""What both local brokers share: a process started in a session of its own, found again
through ``state.json`` in its work folder (pid, port, version and an argument that names it),
and the small process and socket helpers around it."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from streams import lifetime
from streams.errors import BrokerError

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_PORTS = {"tansu": 19092, "kafka": 29092}


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


class DetachedBroker:
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


def run_tool(argv: list[str], what: str, *, cwd: Path | None = None, timeout_s: float) -> None:
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
def file_lock(path: Path) -> Iterator[None]:
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


def free_port() -> int:
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
