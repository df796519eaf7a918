"""Wiring of a whole local stack: database migrations, broker, topics."""

from __future__ import annotations

import importlib
from pathlib import Path

from rich.console import Console

from streams.db import Database
from streams.settings import Settings

#: Stages that own tables; each keeps an Alembic branch in <package>/migrations/versions.
STAGES_WITH_TABLES = ("monitor", "retrain", "serving", "dashboard")


def version_locations() -> list[Path]:
    """The Alembic version folders of every stage beyond ``streams`` that has one."""
    found = []
    for name in STAGES_WITH_TABLES:
        package = importlib.import_module(name)
        folder = Path(package.__file__ or "").parent / "migrations" / "versions"
        if folder.is_dir():
            found.append(folder)
    return found


def migrate_database(db: Database) -> Database:
    db.migrate(version_locations())
    return db


def migrate(settings: Settings) -> Database:
    return migrate_database(Database(settings.database_url, echo=settings.database.echo))


def demo_foundation(settings: Settings, broker_kind: str, console: Console) -> None:
    """The foundation's demo: a broker, the topics and the database, ready for the stages."""
    from driftloop.brokers import broker_for
    from streams.client import Client
    from streams.topics import TopicNames, ensure_topics

    broker = broker_for(broker_kind, settings.home / "brokers" / broker_kind)
    with console.status(f"starting the {broker_kind} broker"):
        bootstrap = broker.start()
    console.print(f"[green]broker[/green] {broker_kind} at {bootstrap}")
    settings = settings.model_copy(
        update={"kafka": settings.kafka.model_copy(update={"bootstrap_servers": bootstrap})}
    )
    created = ensure_topics(settings.kafka, settings.topics)
    console.print(f"[green]topics[/green] {len(TopicNames(settings.topics.prefix).all())} ready "
                  f"({len(created)} created)")
    migrate(settings)
    console.print(f"[green]database[/green] {settings.database_url}")
    with Client(settings) as client:
        rid = client.request("demo", {"x": 1.0})
        client.flush()
    console.print(f"[green]sent[/green] a first inference request ({rid})")
    console.print(
        "The serving, monitoring, retraining and dashboard stages are not wired in yet; "
        f"the broker keeps running (stop it with `driftloop broker stop --kind {broker_kind}`)."
    )
