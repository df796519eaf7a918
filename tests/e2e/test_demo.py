"""``driftloop demo`` as a user runs it: a subprocess that shows the key moments and stops
cleanly on Ctrl-C, leaving no child process and no broker behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.processes import alive as _alive


def _processes_in(folder: Path) -> list[int]:
    """Processes whose working directory is ``folder`` or below (the demo's children are)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if (cwd == folder or folder in cwd.parents) and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


class Output:
    """The demo's combined output, read by a thread, waited on by pattern."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                found = re.search(pattern, self.text)
                if found:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {pattern!r} in:\n{self.text}")
                self._changed.wait(min(left, 1.0))

    def close(self) -> None:
        self._thread.join(10)


@contextmanager
def _demo(tmp_path: Path, workdir: Path, *, length: int,
          speed: float) -> Iterator[tuple[subprocess.Popen[str], Output]]:
    """``driftloop demo`` without a dashboard, as a user would start it, output captured;
    killed on the way out if a test left it running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env["DRIFTLOOP_HOME"] = str(tmp_path / "home")
    env["COLUMNS"] = "200"
    process = subprocess.Popen(
        [sys.executable, "-m", "driftloop.cli", "demo", "--length", str(length), "--speed",
         str(speed), "--no-dashboard", "--workdir", str(workdir)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = Output(process)
    try:
        yield process, output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        output.close()


def _started(output: Output, workdir: Path) -> tuple[list[int], int]:
    """Wait until the demo started its stages; their pids (serving, monitor, retrain) and the
    broker's, all checked alive."""
    started = output.wait_for(r"started serving \(pid (\d+)\), monitor \(pid (\d+)\), "
                              r"retrain \(pid (\d+)\)", 120)
    children = [int(pid) for pid in started.groups()]
    broker = json.loads((workdir / "brokers" / "tansu" / "state.json").read_text())["pid"]
    assert all(_alive(pid) for pid in [*children, broker])
    return children, int(broker)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_shows_the_key_moments_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    workdir = (tmp_path / "demo").resolve()
    with _demo(tmp_path, workdir, length=8000, speed=2) as (process, output):
        children, broker = _started(output, workdir)
        output.wait_for(r"the stream is over", 150)
        process.send_signal(signal.SIGINT)
        code = process.wait(60)

    text = output.text
    assert code == 0, text
    assert "first model trained" in text
    assert "drift detected" in text, text
    assert re.search(r"promoted v[2-9]", text), text
    assert "accuracy recovered" in text, text
    assert "all 7,200 requests answered and stored" in text, text
    assert "stopped cleanly" in text, text
    assert not [pid for pid in [*children, broker] if _alive(pid)]
    assert _processes_in(workdir) == []
    assert not (workdir / "brokers" / "tansu" / "state.json").exists()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_stage_that_dies_ends_the_demo_with_an_error(tmp_path: Path) -> None:
    workdir = (tmp_path / "demo").resolve()
    with _demo(tmp_path, workdir, length=20000, speed=1) as (process, output):
        (serving, monitor, retrain), broker = _started(output, workdir)
        output.wait_for(r"streaming the scenario", 120)
        os.kill(monitor, signal.SIGKILL)
        code = process.wait(60)
    text = output.text
    assert code == 1, text
    assert "monitor was killed by SIGKILL unexpectedly" in text, text
    assert str(workdir / "logs" / "monitor.log") in text
    assert not [pid for pid in (serving, retrain, broker) if _alive(pid)]
    assert _processes_in(workdir) == []


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_killed_demo_takes_its_broker_and_stages_along(tmp_path: Path) -> None:
    workdir = (tmp_path / "demo").resolve()
    with _demo(tmp_path, workdir, length=20000, speed=1) as (process, output):
        children, broker = _started(output, workdir)
        process.kill()  # SIGKILL: the demo cannot stop anything itself
        process.wait(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(p) for p in [*children, broker]):
            time.sleep(0.2)
    assert not [pid for pid in [*children, broker] if _alive(pid)], output.text
    assert _processes_in(workdir) == []
