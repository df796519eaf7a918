"""``driftloop serve``: the Kafka-consuming model server (see :mod:`serving.process`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftloop.entry import console, fail, load_settings, settle_heap, stop_on_signals
from streams.errors import DriftloopError


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

    settings = load_settings()
    stop = stop_on_signals("finishing the current batch")
    console.print(f"serving [bold]{model}[/bold] from {settings.kafka.bootstrap_servers} "
                  f"(topics {settings.topics.prefix}.*)")
    settle_heap()
    try:
        stats = run_serving(settings, model=model, artifact=artifact, device=device, stop=stop)
    except DriftloopError as exc:
        raise fail(exc) from exc
    console.print(f"stopped after {stats.handled} requests "
                  f"({sum(stats.dead_lettered.values())} dead-lettered)")


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the ``driftloop`` command."""
    app.command("serve")(serve)

