"""Child processes that end with the process that started them, even when it is killed.

A process started in a session of its own outlives its parent. On Linux the parent can ask
the kernel to send the child SIGTERM when the parent dies (``PR_SET_PDEATHSIG``), which also
covers SIGKILL, where the parent gets no chance to clean up. The signal follows the death of
the *thread* that started the child, so start such children from a thread that lives as long
as the process (the main thread). Elsewhere this does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """``preexec_fn`` for ``subprocess.Popen``: SIGTERM this child when its parent dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
