"""``driftloop schema``: the JSON Schema of every event (see :mod:`streams.events`).

One file per event (``<type>.schema.json``), and one per topic that mixes kinds of events
(``topic-drift.schema.json``, ``topic-model-updates.schema.json``): there each event must
name its ``type``, which a topic of one kind lets a producer leave out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from streams.events import (
    ALL_EVENTS,
    DriftReport,
    Event,
    ModelPromoted,
    ModelRolledBack,
    RetrainRequested,
    SwapFailed,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"

#: The topics that carry more than one kind of event, and those kinds.
MIXED_TOPICS: dict[str, tuple[type[Event], ...]] = {
    "drift": (DriftReport, RetrainRequested),
    "model-updates": (ModelPromoted, ModelRolledBack, SwapFailed),
}


def event_schema(event: type[Event]) -> dict[str, Any]:
    document = event.model_json_schema()
    document["$schema"] = DIALECT
    return document


def topic_schema(kinds: tuple[type[Event], ...]) -> dict[str, Any]:
    """One of ``kinds``, each with its ``type`` required."""
    defs: dict[str, Any] = {}
    options = []
    for kind in kinds:
        member = kind.model_json_schema()
        defs.update(member.pop("$defs", {}))
        member["required"] = sorted({*member.get("required", ()), "type"})
        options.append(member)
    document: dict[str, Any] = {"$schema": DIALECT, "oneOf": options}
    if defs:
        document["$defs"] = defs
    return document


def write_schemas(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    documents = {f"{e.model_fields['type'].default}.schema.json": event_schema(e)
                 for e in ALL_EVENTS}
    documents.update({f"topic-{name}.schema.json": topic_schema(kinds)
                      for name, kinds in MIXED_TOPICS.items()})
    paths = []
    for name, document in documents.items():
        path = out / name
        path.write_text(json.dumps(document, indent=2) + "\n")
        paths.append(path)
    return paths


def schema(
    out: Annotated[Path, typer.Option(help="Folder to write the JSON Schema files into.")] = Path(
        "schemas"
    ),
) -> None:
    """Write the JSON Schema of every event, so apps in any language can produce them."""
    for path in write_schemas(out):
        print(path)


def register(app: typer.Typer) -> None:
    """Add ``schema`` to the ``driftloop`` command."""
    app.command("schema")(schema)
