"""Child processes that end with the process that started them, even when it is killed.

A process started in a session of its own, or a worker process whose parent is killed before
it can stop it, outlives its parent. On Linux the parent can ask the kernel to send the child
SIGTERM when the parent dies (``PR_SET_PDEATHSIG``), which also covers SIGKILL, where the
parent gets no chance to clean up. The signal follows the death of the *thread* that started
the child, so start such children from a thread that lives as long as the process (the main
thread, or the consuming thread of a stage). Elsewhere this does nothing.

Two ways in: :func:`die_with_parent` for ``subprocess.Popen`` (a broker, the Streamlit
server, the stages of a local stack), and :func:`end_with` for a Python worker started by
``multiprocessing`` (the monitor's Evidently worker), called first thing in the worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def _ask_for_sigterm() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """``preexec_fn`` for ``subprocess.Popen``: SIGTERM this child when its parent dies."""
    _ask_for_sigterm()


def end_with(parent_pid: int) -> None:
    """SIGTERM this process when ``parent_pid`` (its parent) dies; at once if it already did.

    For a child that runs Python code of ours after it started (a ``multiprocessing``
    initializer), where no ``preexec_fn`` reaches. The parent may have died between starting
    the child and this call, which the kernel would not signal: then the child ends now.
    """
    _ask_for_sigterm()
    if sys.platform.startswith("linux") and os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)
