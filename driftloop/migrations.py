"""Database migrations of every stage (the local stack itself is :mod:`driftloop.local.loop`)."""

from __future__ import annotations

import importlib
from pathlib import Path

from streams.db import Database
from streams.settings import Settings

#: Stages that own tables; each keeps an Alembic branch in <package>/migrations/versions.
STAGES_WITH_TABLES = ("monitor", "retrain", "serving", "dashboard")


def version_locations() -> list[Path]:
    """The Alembic version folders of every stage beyond ``streams`` that has one."""
    found = []
    for name in STAGES_WITH_TABLES:
        package = importlib.import_module(name)
        # __path__, not __file__: a stale editable install may present a namespace package.
        for root in package.__path__:
            folder = Path(root) / "migrations" / "versions"
            if folder.is_dir():
                found.append(folder)
                break
    return found


def migrate_database(db: Database) -> Database:
    db.migrate(version_locations())
    return db


def migrate(settings: Settings) -> Database:
    return migrate_database(Database(settings.database_url, echo=settings.database.echo))
