"""What every ``driftloop`` subcommand does first: settings, logging, signals, errors."""

from __future__ import annotations

import gc
import signal
import threading
from types import FrameType

import typer
from rich.console import Console

from driftloop import logs
from streams.errors import DriftloopError
from streams.settings import Settings

console = Console(stderr=True)


def load_settings() -> Settings:
    """Build the settings once for this process; bad ones end it with exit code 2."""
    try:
        settings = Settings()
    except ValueError as exc:
        console.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc
    logs.configure(settings.log_level, secrets=settings.secret_values())
    return settings


def stop_on_signals(what: str = "finishing the current batch") -> threading.Event:
    """An event set by SIGTERM or SIGINT, so a loop can finish its work and return."""
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        console.print(f"received {signal.Signals(signum).name}, {what}")
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    return stop


YOUNG_GENERATION = 10_000


def settle_heap() -> None:
    """Keep what the process built at startup out of every later garbage collection.

    A consumer keeps each batch of decoded events alive while it works on it, so the
    collector runs often, and a full collection walks every object of the process: the
    hundreds of thousands that importing torch, pandas and pydantic leave behind. Freezing
    them once the process is wired (``gc.freeze``) made a consumer loop ~1.5x faster in
    benchmarks/bench_streams.py; later garbage is still collected as usual. The youngest
    generation is also made big enough for a batch (a 500-event batch allocates a few
    thousand objects; Python's default of 700 collects several times per batch).
    """
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION, middle, oldest)


def fail(exc: DriftloopError) -> typer.Exit:
    """Report a driftloop error in one line (no traceback) and give exit code 1."""
    console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
    return typer.Exit(1)
