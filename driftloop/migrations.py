"""Database migrations of every stage (the local stack itself is :mod:`driftloop.local.loop`)."""

from __future__ import annotations

import importlib
import threading
from pathlib import Path

from streams.backoff import retry
from streams.db import Database, refuses_access
from streams.errors import StoreError
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


def migrate_when_reachable(settings: Settings, stop: threading.Event | None = None) -> Database:
    """:func:`migrate`, waiting for a database that is down, not for one that refuses us.

    A server that answers but refuses the settings (wrong password, unknown role or database)
    raises a StoreError that is not transient, so the process ends with that message. A stop
    request while waiting raises :class:`streams.backoff.Stopped`.
    """

    def attempt() -> Database:
        try:
            return migrate(settings)
        except StoreError as exc:
            if refuses_access(exc):
                raise StoreError(str(exc), transient=False) from exc
            raise

    return retry("migrate the database", attempt, component="migrate", stop=stop)
