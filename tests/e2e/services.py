"""Private services that a fault test may kill: its own Apache Kafka and its own PostgreSQL.

The brokers and the PostgreSQL server that ``scripts/test`` starts are shared by every test
(and by other people's runs); a test that takes a service down starts one of its own, on a
free port in a folder of its own, and removes it afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from driftloop.local.brokers import broker_for
from driftloop.local.loop import free_port
from tests.processes import alive


class PrivateKafka:
    """A single-node Apache Kafka in ``workdir``; :meth:`kill` is a crash (SIGKILL)."""

    def __init__(self, workdir: Path) -> None:
        self._broker = broker_for("kafka", workdir, free_port())
        self.bootstrap = self._broker.start()

    def kill(self) -> None:
        pid = self._broker.status().pid
        assert pid is not None, "the private Kafka is not running"
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.05)

    def start(self) -> None:
        """Start it again on the same port and data (returns once it answers)."""
        assert self._broker.start() == self.bootstrap

    def remove(self) -> None:
        self._broker.stop()


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl) on a free port, trust authentication.

    :meth:`kill` stops it the way a crash does (``pg_ctl stop -m immediate``: no checkpoint,
    every connection cut).
    """

    def __init__(self, bindir: Path) -> None:
        self._bin = bindir
        # Outside pytest's folders: the server runs as ``postgres`` when we are root, and
        # pytest's temporary folders are private to their owner.
        self.root = Path(tempfile.mkdtemp(prefix="driftloop-test-pg-"))
        self.port = free_port()
        if os.getuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.root / "data"), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8")
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "server.log"),
                  "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "start")

    def kill(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        argv = [str(self._bin / tool), *args]
        if os.getuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, cwd=self.root)  # noqa: S603


@contextmanager
def private_kafka(workdir: Path) -> Iterator[PrivateKafka]:
    kafka = PrivateKafka(workdir)
    try:
        yield kafka
    finally:
        kafka.remove()


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    bindir = _postgres_bin()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL's server binaries are missing (scripts/postgres installs them)")
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    server = PrivatePostgres(bindir)
    try:
        yield server
    finally:
        server.remove()
