"""``driftloop topics create``: driftloop's Kafka topics (see :mod:`streams.topics`)."""

from __future__ import annotations

from typing import Annotated

import typer

from driftloop.entry import fail, load_settings
from streams.errors import DriftloopError

topics_app = typer.Typer(help="Manage driftloop's Kafka topics.")


@topics_app.command("create")
def topics_create(
    partitions: Annotated[int | None, typer.Option(help="Partitions per topic.")] = None,
) -> None:
    """Create driftloop's topics that do not exist yet (safe to repeat)."""
    from streams.topics import TopicNames, ensure_topics

    settings = load_settings()
    try:
        created = ensure_topics(settings.kafka, settings.topics, partitions=partitions)
    except DriftloopError as exc:
        raise fail(exc) from exc
    for name in TopicNames(settings.topics.prefix).all():
        print(f"{name}\t{'created' if name in created else 'exists'}")


def register(app: typer.Typer) -> None:
    """Add ``topics`` (``create``) to the ``driftloop`` command."""
    app.add_typer(topics_app, name="topics")
