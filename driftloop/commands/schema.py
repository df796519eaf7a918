"""``driftloop schema``: the JSON Schema of every event (see :mod:`streams.events`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from streams.events import ALL_EVENTS


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


def register(app: typer.Typer) -> None:
    """Add ``schema`` to the ``driftloop`` command."""
    app.command("schema")(schema)
