"""Child processes: logs in files, a death noticed once, SIGTERM then SIGKILL, groups."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from driftloop.local.supervisor import Supervisor, wait_for
from tests.processes import alive as _alive


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_child_that_dies_is_reported_once_with_its_log(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "logs", dict(os.environ), stop_timeout_s=5)
    supervisor.start("crasher", _py("import sys; print('boom', flush=True); sys.exit(3)"))
    supervisor.start("sleeper", _py("import time; time.sleep(60)"))
    dead: list = []
    assert wait_for(lambda: bool(dead.extend(supervisor.dead()) or dead), timeout_s=20)
    assert [(d.name, d.returncode) for d in dead] == [("crasher", 3)]
    assert "boom" in dead[0].log_tail
    assert dead[0].describe() == "crasher exited with status 3"
    assert supervisor.dead() == []
    assert (tmp_path / "logs" / "crasher.log").read_text().strip() == "boom"
    supervisor.stop_all()


def test_stop_all_terminates_then_kills_and_takes_grandchildren_along(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "logs", dict(os.environ), stop_timeout_s=2)
    polite = supervisor.start("polite", _py("import time; time.sleep(60)"))
    stubborn = supervisor.start("stubborn", _py(
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"))
    supervisor.start("parent", _py(
        "import subprocess, sys, time; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(child.pid, flush=True); time.sleep(60)"))
    log = tmp_path / "logs" / "parent.log"
    assert wait_for(lambda: log.exists() and log.read_text().strip().isdigit(), timeout_s=20)
    assert wait_for(lambda: "ready" in (tmp_path / "logs" / "stubborn.log").read_text(),
                    timeout_s=20)
    grandchild = int(log.read_text().strip())
    started = time.monotonic()
    supervisor.stop_all()
    assert time.monotonic() - started < 10
    assert polite.returncode == -15
    assert stubborn.returncode == -9, "SIGKILL after the timeout"
    assert not _alive(grandchild)
    assert supervisor.alive() == []
