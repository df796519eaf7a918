"""The ``driftloop`` command: one subcommand per process, each builds settings and wires."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from driftloop import logs
from streams.errors import DriftloopError
from streams.events import ALL_EVENTS
from streams.settings import Settings

app = typer.Typer(
    help="driftloop keeps production ML models accurate over Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
broker_app = typer.Typer(help="Start, stop and inspect a local Kafka-compatible broker.")
topics_app = typer.Typer(help="Manage driftloop's Kafka topics.")
db_app = typer.Typer(help="Manage driftloop's database.")
app.add_typer(broker_app, name="broker")
app.add_typer(topics_app, name="topics")
app.add_typer(db_app, name="db")

console = Console(stderr=True)


class BrokerKind(StrEnum):
    tansu = "tansu"
    kafka = "kafka"


def _settings() -> Settings:
    try:
        settings = Settings()
    except ValueError as exc:
        console.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc
    logs.configure(settings.log_level)
    return settings


def _fail(exc: DriftloopError) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(1)


@app.command()
def schema(
    out: Annotated[Path, typer.Option(help="Folder to write the JSON Schema files into.")] = Path(
        "schemas"
    ),
) -> None:
    """Write the JSON Schema of every event, so apps in any language can produce them."""
    out.mkdir(parents=True, exist_ok=True)
    for event in ALL_EVENTS:
        kind = event.model_fields["type"].default
        path = out / f"{kind}.schema.json"
        document = event.model_json_schema()
        document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        path.write_text(json.dumps(document, indent=2) + "\n")
        print(path)


@broker_app.command("start")
def broker_start(
    kind: Annotated[BrokerKind, typer.Option(help="tansu (embedded) or kafka (Apache)")] = (
        BrokerKind.tansu
    ),
    port: Annotated[int | None, typer.Option(help="Listener port.")] = None,
) -> None:
    """Start a local broker in the background and print its bootstrap address."""
    from driftloop.brokers import broker_for

    settings = _settings()
    broker = broker_for(kind.value, settings.home / "brokers" / kind.value, port)
    with console.status(f"starting {kind.value} broker"):
        try:
            bootstrap = broker.start()
        except DriftloopError as exc:
            raise _fail(exc) from exc
    status = broker.status()
    console.print(f"{kind.value} {status.version or ''} running at [bold]{bootstrap}[/bold]")
    print(bootstrap)


@broker_app.command("stop")
def broker_stop(
    kind: Annotated[BrokerKind, typer.Option()] = BrokerKind.tansu,
) -> None:
    """Stop a local broker started by ``driftloop broker start``."""
    from driftloop.brokers import broker_for

    settings = _settings()
    broker_for(kind.value, settings.home / "brokers" / kind.value).stop()
    console.print(f"{kind.value} stopped")


@broker_app.command("status")
def broker_status(
    kind: Annotated[BrokerKind, typer.Option()] = BrokerKind.tansu,
) -> None:
    """Say whether a local broker is running, and where."""
    from driftloop.brokers import broker_for

    settings = _settings()
    status = broker_for(kind.value, settings.home / "brokers" / kind.value).status()
    state = "running" if status.running else "stopped"
    print(f"{status.kind} {state} {status.bootstrap or ''} {status.version or ''}".rstrip())
    if not status.running:
        raise typer.Exit(3)


@topics_app.command("create")
def topics_create(
    partitions: Annotated[int | None, typer.Option(help="Partitions per topic.")] = None,
) -> None:
    """Create driftloop's topics that do not exist yet (safe to repeat)."""
    from streams.topics import TopicNames, ensure_topics

    settings = _settings()
    try:
        created = ensure_topics(settings.kafka, settings.topics, partitions=partitions)
    except DriftloopError as exc:
        raise _fail(exc) from exc
    for name in TopicNames(settings.topics.prefix).all():
        print(f"{name}\t{'created' if name in created else 'exists'}")


@db_app.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the database schema (safe to repeat)."""
    from driftloop.stack import migrate

    settings = _settings()
    try:
        migrate(settings)
    except DriftloopError as exc:
        raise _fail(exc) from exc
    console.print("database is up to date")


def _register_stages() -> None:
    """Add the subcommands of each stage (serving, monitor, retrain, dashboard)."""
    import importlib

    for name in ("cmd_serving", "cmd_monitor", "cmd_retrain", "cmd_dashboard", "cmd_scenarios",
                 "cmd_bench", "cmd_demo"):
        try:
            module = importlib.import_module(f"driftloop.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"driftloop.{name}":
                continue
            raise
        module.register(app)


_register_stages()

if __name__ == "__main__":
    app()
