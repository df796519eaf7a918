"""Child processes of a local stack: start them, notice when one dies, stop them all.

Each child runs in a session (and process group) of its own, with its output in a log file,
so the terminal stays readable and a Ctrl-C in the terminal reaches only the supervising
process, which then stops the children in order: SIGTERM to each child's group, and SIGKILL
to the groups still alive after ``stop_timeout_s``. Grandchildren (Evidently's worker process,
the Streamlit server) share their parent's group, so they go with it. On Linux a child also
gets SIGTERM when the supervising process dies without stopping it (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from streams.errors import DriftloopError
from streams.lifetime import die_with_parent

log = logging.getLogger(__name__)

class ChildError(DriftloopError):
    """A child process could not start, or it ended while it should have kept running."""


@dataclass
class Child:
    """One supervised process."""

    name: str
    argv: tuple[str, ...]
    log_path: Path
    process: subprocess.Popen[bytes]
    started_at: float
    expected_exit: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no output)"
        return "\n".join(text[-lines:]) or "(no output)"


@dataclass(frozen=True)
class Exit:
    """A child that ended: its name, exit status and the end of its log."""

    name: str
    returncode: int
    expected: bool
    log_tail: str

    def describe(self) -> str:
        if self.returncode < 0:
            how = f"was killed by {signal.Signals(-self.returncode).name}"
        else:
            how = f"exited with status {self.returncode}"
        return f"{self.name} {how}"


@dataclass
class Supervisor:
    """Starts children with a shared environment; see the module docstring."""

    log_dir: Path
    env: Mapping[str, str]
    cwd: Path | None = None
    stop_timeout_s: float = 15.0
    clock: Callable[[], float] = time.monotonic
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], *, expected_exit: bool = False,
              env: Mapping[str, str] | None = None) -> Child:
        """Start ``argv`` as child ``name``; ``expected_exit`` for one that ends by itself."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / f"{name}.log"
        with path.open("ab") as out:
            try:
                process = subprocess.Popen(  # noqa: S603 - argv is built by the caller, not input
                    list(argv), cwd=self.cwd, env={**self.env, **(env or {})},
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True, preexec_fn=die_with_parent,  # noqa: PLW1509
                )
            except OSError as exc:
                raise ChildError(f"could not start {name}: {exc}") from exc
        child = Child(name, tuple(argv), path, process, self.clock(), expected_exit)
        self.children.append(child)
        log.info("started %s", name, extra={"pid": process.pid, "argv": list(argv)})
        return child

    def wait(self, child: Child, timeout_s: float | None = None) -> int:
        """Wait for a child that ends by itself; its exit status."""
        try:
            return child.process.wait(timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise ChildError(f"{child.name} did not finish within {timeout_s:.0f}s") from exc

    def dead(self) -> list[Exit]:
        """Children that should be running but ended, each reported once; whatever they
        left running in their group (a worker process) is killed."""
        ended = []
        for child in list(self.children):
            code = child.returncode
            if code is None or child.expected_exit:
                continue
            _signal_group(child.pid, signal.SIGKILL)
            ended.append(Exit(child.name, code, False, child.log_tail()))
            self.children.remove(child)
        return ended

    def alive(self) -> list[Child]:
        return [c for c in self.children if c.alive()]

    def stop_all(self) -> list[Exit]:
        """SIGTERM every child (newest first), SIGKILL what is left after the timeout."""
        running = [c for c in reversed(self.children) if c.alive()]
        for child in running:
            _signal_group(child.pid, signal.SIGTERM)
        deadline = self.clock() + self.stop_timeout_s
        for child in running:
            left = max(0.0, deadline - self.clock())
            try:
                child.process.wait(left)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", child.name,
                            self.stop_timeout_s)
                _signal_group(child.pid, signal.SIGKILL)
                child.process.wait()
        # Grandchildren may outlive a parent that ended on SIGTERM: clear the groups too.
        for child in self.children:
            _signal_group(child.pid, signal.SIGKILL)
        exits = [Exit(c.name, c.returncode if c.returncode is not None else 0,
                      True, "") for c in self.children]
        self.children = []
        return exits


def _signal_group(pid: int, signum: signal.Signals) -> None:
    # Each child leads its own session, so its process group carries its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def python_command(*args: str) -> list[str]:
    """``python -m driftloop.cli ARGS`` with this interpreter."""
    return [sys.executable, "-m", "driftloop.cli", *args]


def wait_for(condition: Callable[[], bool], *, timeout_s: float, interval_s: float = 0.2,
             stop: Callable[[], bool] = lambda: False) -> bool:
    """Poll ``condition`` until it holds (True), ``stop`` says so or time runs out (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        if stop():
            return False
        time.sleep(interval_s)
    return condition()
