"""The real system's training CPU: the retrain process's CPU time, read from ``/proc``."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from driftloop.local.bench import process_cpu_seconds


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_a_process_cpu_time_is_read_from_proc() -> None:
    started = time.process_time()
    while time.process_time() - started < 0.3:
        sum(range(10_000))
    measured = process_cpu_seconds(os.getpid())
    assert measured is not None
    # The clock ticks are 10 ms; this process's own count agrees.
    assert measured == pytest.approx(time.process_time(), abs=0.05)


def test_an_unreadable_process_is_not_measured(tmp_path: Path) -> None:
    assert process_cpu_seconds(123, proc=tmp_path) is None
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "stat").write_text("7 (odd) name) S 1 2")
    assert process_cpu_seconds(7, proc=tmp_path) is None
    (tmp_path / "7" / "stat").write_text(
        "7 (a) b) S 1 7 7 0 -1 4194304 131 0 0 0 250 50 0 0 20 0 1 0 204111")
    assert process_cpu_seconds(7, proc=tmp_path) == pytest.approx(300 / os.sysconf("SC_CLK_TCK"))
