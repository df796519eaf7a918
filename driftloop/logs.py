"""Logging of the ``driftloop`` commands: JSON lines on stderr with secrets redacted (see
:mod:`streams.logs`), or in a file for commands whose terminal shows the key moments."""

from __future__ import annotations

import logging
from pathlib import Path

from streams.logs import REDACTED, JsonFormatter, Redactor, configure

__all__ = ["REDACTED", "JsonFormatter", "Redactor", "configure", "to_file"]


def to_file(path: Path, level: str) -> None:
    """Log to a file instead, for commands whose terminal is for the key moments (the demo).

    The new handler keeps the filters (the :class:`Redactor`) of the handlers it replaces.
    """
    root = logging.getLogger()
    filters = [f for old in root.handlers for f in old.filters]
    root.setLevel(level.upper())
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(JsonFormatter())
    for found in filters:
        handler.addFilter(found)
    root.handlers[:] = [handler]
