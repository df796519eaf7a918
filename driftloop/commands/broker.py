"""``driftloop broker start|stop|status``: a local broker (see :mod:`driftloop.local.brokers`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from driftloop.entry import console, fail, load_settings
from streams.errors import DriftloopError

broker_app = typer.Typer(help="Start, stop and inspect a local Kafka-compatible broker.")


class BrokerKind(StrEnum):
    tansu = "tansu"
    kafka = "kafka"


@broker_app.command("start")
def broker_start(
    kind: Annotated[BrokerKind, typer.Option(help="tansu (embedded) or kafka (Apache)")] = (
        BrokerKind.tansu
    ),
    port: Annotated[int | None, typer.Option(help="Listener port.")] = None,
) -> None:
    """Start a local broker in the background and print its bootstrap address."""
    from driftloop.local.brokers import broker_for

    settings = load_settings()
    broker = broker_for(kind.value, settings.home / "brokers" / kind.value, port)
    with console.status(f"starting {kind.value} broker"):
        try:
            bootstrap = broker.start()
        except DriftloopError as exc:
            raise fail(exc) from exc
    status = broker.status()
    console.print(f"{kind.value} {status.version or ''} running at [bold]{bootstrap}[/bold]")
    print(bootstrap)


@broker_app.command("stop")
def broker_stop(
    kind: Annotated[BrokerKind, typer.Option()] = BrokerKind.tansu,
) -> None:
    """Stop a local broker started by ``driftloop broker start``."""
    from driftloop.local.brokers import broker_for

    settings = load_settings()
    broker_for(kind.value, settings.home / "brokers" / kind.value).stop()
    console.print(f"{kind.value} stopped")


@broker_app.command("status")
def broker_status(
    kind: Annotated[BrokerKind, typer.Option()] = BrokerKind.tansu,
) -> None:
    """Say whether a local broker is running, and where."""
    from driftloop.local.brokers import broker_for

    settings = load_settings()
    status = broker_for(kind.value, settings.home / "brokers" / kind.value).status()
    state = "running" if status.running else "stopped"
    print(f"{status.kind} {state} {status.bootstrap or ''} {status.version or ''}".rstrip())
    if not status.running:
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    """Add ``broker`` (``start``, ``stop``, ``status``) to the ``driftloop`` command."""
    app.add_typer(broker_app, name="broker")
