"""Done when: kill -9 of any long-running process leaves no child of it behind.

Each process runs as ``driftloop <command>`` (as a user starts it) in a session of its own,
doing enough to have started its children: the monitor its Evidently worker (and with it
multiprocessing's resource tracker), the dashboard its Streamlit server. Its descendants are
noted, it is killed with SIGKILL, and every one of them must be gone soon after (an orphan is
re-parented, so it is looked for by pid, not among the dead process's children).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from driftloop.local.loop import free_port
from streams.codec import encode
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment
from tests.monitor.events import prediction
from tests.processes import alive, command_line, descendants
from tests.streams.kafka_helpers import produce_raw


@contextmanager
def started(argv: list[str], env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``driftloop ARGV`` in a session of its own; its whole group killed on the way out."""
    log = (cwd / "process.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - a fixed command line
        [sys.executable, "-m", "driftloop.cli", *argv], env=env, cwd=cwd,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.close()


def wait_for(condition: Callable[[], object], timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout_s}s; log:\n{log.read_text()[-3000:]}")


def environment(dep: Deployment, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env.update({
        "DRIFTLOOP_HOME": str(tmp_path / "home"),
        "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": dep.broker.bootstrap,
        "DRIFTLOOP_KAFKA__SESSION_TIMEOUT_MS": "3000",
        "DRIFTLOOP_TOPICS__PREFIX": dep.settings.topics.prefix,
        "DRIFTLOOP_MONITOR__WINDOW_SIZE": "40",
        "DRIFTLOOP_MONITOR__REFERENCE_SIZE": "40",
        "DRIFTLOOP_MONITOR__MIN_WINDOW_ROWS": "30",
        "DRIFTLOOP_MONITOR__DRIFT_KINDS": '["served"]',
        "DRIFTLOOP_DASHBOARD__PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
    })
    return env


def is_drift_worker(pid: int) -> bool:
    return "spawn_main" in command_line(pid) and "resource_tracker" not in command_line(pid)


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("command", ["monitor", "dashboard", "serve", "retrain"])
def test_kill_9_leaves_no_child_behind(
    command: str, tansu: BrokerInfo, deployment_factory: Callable[..., Deployment],
    tmp_path: Path,
) -> None:
    dep = deployment_factory(tansu, partitions=1)
    env = environment(dep, tmp_path)
    log = tmp_path / "process.log"
    argv = {"serve": ["serve", "--model", "churn"]}.get(command, [command])
    with started(argv, env, tmp_path) as process:
        if command == "monitor":
            produce_raw(tansu.bootstrap, dep.names(Topic.PREDICTIONS), [
                encode(prediction(f"r{i}", features={"x": float(i % 9)})) for i in range(80)])
            wait_for(lambda: any(is_drift_worker(p) for p in descendants(process.pid)), 120,
                     "the monitor started no Evidently worker", log)
            wait_for(lambda: any("resource_tracker" in command_line(p)
                                 for p in descendants(process.pid)), 30,
                     "no resource tracker", log)
        elif command == "dashboard":
            wait_for(lambda: any("streamlit" in command_line(p)
                                 for p in descendants(process.pid)), 120,
                     "the dashboard started no Streamlit server", log)
        else:
            # serve waits for a champion, retrain for drift events: both are up and idle
            # once their consumers run; whatever they started by then must die with them.
            wait_for(lambda: "running" in log.read_text() or "serving" in log.read_text(),
                     120, f"{command} did not start", log)
            time.sleep(2)
        children = descendants(process.pid)
        assert alive(process.pid), log.read_text()[-3000:]
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(alive(p) for p in children):
            time.sleep(0.2)
        left = {p: command_line(p) for p in children if alive(p)}
        assert left == {}, f"orphans of driftloop {command}: {left}"
