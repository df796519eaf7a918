"""``driftloop db migrate``: every stage's tables (see :mod:`driftloop.migrations`)."""

from __future__ import annotations

import typer

from driftloop.entry import console, fail, load_settings
from streams.errors import DriftloopError

db_app = typer.Typer(help="Manage driftloop's database.")


@db_app.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the database schema (safe to repeat)."""
    from driftloop.migrations import migrate

    settings = load_settings()
    try:
        migrate(settings)
    except DriftloopError as exc:
        raise fail(exc) from exc
    console.print("database is up to date")


def register(app: typer.Typer) -> None:
    """Add ``db`` (``migrate``) to the ``driftloop`` command."""
    app.add_typer(db_app, name="db")
