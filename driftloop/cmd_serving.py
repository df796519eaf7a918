"""``driftloop serve``: the Kafka-consuming model server (see :mod:`serving.process`)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from driftloop import logs
from streams.errors import DriftloopError
from streams.settings import Settings

console = Console(stderr=True)


def _settings() -> Settings:
    try:
        settings = Settings()
    except ValueError as exc:
        console.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc
    logs.configure(settings.log_level)
    return settings


def serve(
    model: Annotated[str, typer.Option("--model", help="Name of the model to serve.")],
    artifact: Annotated[
        Path | None,
        typer.Option(help="Artifact folder to serve when the model-updates topic names no "
                          "champion (apps without a registry)."),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="torch device (default: cuda when present, else cpu).")
    ] = None,
) -> None:
    """Turn inference requests into predictions, hot-swapping promoted models."""
    from serving.process import run_serving

    settings = _settings()
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        console.print(f"received {signal.Signals(signum).name}, finishing the current batch")
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    console.print(f"serving [bold]{model}[/bold] from {settings.kafka.bootstrap_servers} "
                  f"(topics {settings.topics.prefix}.*)")
    try:
        stats = run_serving(settings, model=model, artifact=artifact, device=device, stop=stop)
    except DriftloopError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"stopped after {stats.handled} requests "
                  f"({sum(stats.dead_lettered.values())} dead-lettered)")


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the ``driftloop`` command."""
    app.command("serve")(serve)

