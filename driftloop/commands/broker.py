"""``driftloop broker start|stop|status``: a local broker (see :mod:`driftloop.local.brokers`).

``scripts/kafka`` and ``scripts/test`` run it too, with ``--workdir`` and ``--port``; it prints
the bootstrap address (``start``) or one status line on stdout, everything else on stderr."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from driftloop.entry import console, fail, load_settings
from streams.errors import DriftloopError

if TYPE_CHECKING:
    from driftloop.local.brokers import LocalBroker

broker_app = typer.Typer(help="Start, stop and inspect a local Kafka-compatible broker.")


class BrokerKind(StrEnum):
    tansu = "tansu"
    kafka = "kafka"


Workdir = Annotated[Path | None, typer.Option(
    help="The broker's work folder (state file, logs, Kafka's data); default: "
    "<home>/brokers/<kind>.")]

# stop and status take --port so that one command line serves all three actions.
KnownPort = Annotated[int | None, typer.Option(
    help="Accepted for symmetry with start; the state file knows the port.")]


def _broker(kind: BrokerKind, workdir: Path | None, port: int | None = None) -> LocalBroker:
    from driftloop.local.brokers import broker_for

    settings = load_settings()
    return broker_for(kind.value, workdir or settings.home / "brokers" / kind.value, port)


@broker_app.command("start")
def broker_start(
    kind: Annotated[BrokerKind, typer.Option(help="tansu (embedded) or kafka (Apache)")] = (
        BrokerKind.tansu
    ),
    port: Annotated[int | None, typer.Option(help="Listener port.")] = None,
    workdir: Workdir = None,
) -> None:
    """Start a local broker in the background and print its bootstrap address."""
    broker = _broker(kind, workdir, port)
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
    workdir: Workdir = None,
    port: KnownPort = None,
) -> None:
    """Stop a local broker started by ``driftloop broker start``."""
    try:
        _broker(kind, workdir, port).stop()
    except DriftloopError as exc:
        raise fail(exc) from exc
    console.print(f"{kind.value} stopped")


@broker_app.command("status")
def broker_status(
    kind: Annotated[BrokerKind, typer.Option()] = BrokerKind.tansu,
    workdir: Workdir = None,
    port: KnownPort = None,
) -> None:
    """Say whether a local broker is running, and where."""
    status = _broker(kind, workdir, port).status()
    state = "running" if status.running else "stopped"
    print(f"{status.kind} {state} {status.bootstrap or ''} {status.version or ''}".rstrip())
    if not status.running:
        raise typer.Exit(3)


def register(app: typer.Typer) -> None:
    """Add ``broker`` (``start``, ``stop``, ``status``) to the ``driftloop`` command."""
    app.add_typer(broker_app, name="broker")
