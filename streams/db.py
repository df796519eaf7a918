"""The database: engine construction for SQLite and PostgreSQL, and Alembic migrations.

Each stage that owns tables keeps its own Alembic branch (``streams`` here; later stages
add theirs) and declares its tables on :data:`metadata`-like objects of its own. The
composition root passes every stage's version folder to :func:`migrate`.

Alembic records driftloop's revisions in :data:`VERSION_TABLE`, not in its default
``alembic_version``: Optuna's study storage (:mod:`retrain.search`) keeps its own Alembic
revision there, in the same database, and two projects in one version table break each other
(mlflow#3374). A database migrated before the move has driftloop's rows in
``alembic_version``; the next :meth:`Database.migrate` moves them over, in the migration's own
transaction, and drops the old table once nothing else is left in it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    create_engine,
    event,
    inspect,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import (
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from streams.errors import StoreAccessError, StoreError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
#: Where Alembic records driftloop's revisions (see the module docstring).
VERSION_TABLE = "driftloop_alembic_version"
#: Alembic's default, where databases migrated before the move kept them.
LEGACY_VERSION_TABLE = "alembic_version"


# What a database says when it cannot be reached, is restarting or is busy: the same statement
# may pass later. Everything else (a value out of range, a broken constraint) it would refuse
# again, so it is not worth a retry.
_TRANSIENT = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)


def store_error(exc: Exception, what: str = "database error") -> StoreError:
    """``exc`` from the database or its driver as a StoreError that says if it is transient.

    A server that answers but refuses our settings (:func:`refuses_access`) is a
    StoreAccessError, which a process does not wait out.
    """
    message = f"{what}: {exc.__class__.__name__}: {exc}"
    if isinstance(exc, OperationalError) and refuses_access(exc):
        return StoreAccessError(message)
    return StoreError(message, transient=isinstance(exc, _TRANSIENT))


class Base(DeclarativeBase):
    """Declarative base of every driftloop table."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def driver_url(url: str) -> str:
    """``url`` with the driver driftloop uses spelt out (psycopg 3 for PostgreSQL)."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


#: How long a SQLite connection waits for another writer before it gives up.
SQLITE_TIMEOUT_S = 30


def make_engine(url: str, *, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"timeout": SQLITE_TIMEOUT_S})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(driver_url(url), echo=echo, pool_pre_ping=True)


class Database:
    """An engine, a session factory and the migrations that shape the schema."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def insert(self, table: Any) -> Any:
        """This database's INSERT for ``table`` (a Table or a mapped class): the dialect's own,
        which knows ``ON CONFLICT``; SQLite and PostgreSQL spell the rest of it alike."""
        return (postgresql if self.dialect == "postgresql" else sqlite).insert(table)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success; database errors become StoreError."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as exc:
            _rollback(session)
            raise store_error(exc) from exc
        except OverflowError as exc:  # sqlite3 refusing a number or date it cannot hold
            _rollback(session)
            raise store_error(exc, "the database refused a value") from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()

    def migrate(self, extra_version_locations: Sequence[Path] = ()) -> None:
        """Bring the schema to the newest revision of every branch (idempotent), after moving
        the revisions of a database migrated before :data:`VERSION_TABLE` there."""
        config = migration_config(extra_version_locations)
        try:
            with self.engine.begin() as connection:
                moved = adopt_legacy_versions(connection, config)
                if moved:
                    log.info("alembic revisions moved to their own table",
                             extra={"table": VERSION_TABLE, "revisions": moved})
                config.attributes["connection"] = connection
                command.upgrade(config, "heads")
        except SQLAlchemyError as exc:
            raise store_error(exc, "migration failed") from exc


def migration_config(extra_version_locations: Sequence[Path] = (), *,
                     version_table: str = VERSION_TABLE) -> Config:
    """The Alembic configuration of every branch; ``version_table`` is where the revisions
    are recorded (another only to build a database the way an older driftloop did)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    locations = [MIGRATIONS / "versions", *extra_version_locations]
    config.set_main_option("version_locations", " ".join(str(p) for p in locations))
    config.set_main_option("path_separator", "space")
    config.attributes["version_table"] = version_table
    return config


def adopt_legacy_versions(connection: Connection, config: Config) -> list[str]:
    """Move driftloop's revisions from ``alembic_version`` to :data:`VERSION_TABLE`; the rows
    of anything else there (Optuna's) stay. Drops the old table when that leaves it empty.
    Returns the revisions moved (none: nothing to do)."""
    if not inspect(connection).has_table(LEGACY_VERSION_TABLE):
        return []
    ours = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    legacy = _version_table(LEGACY_VERSION_TABLE)
    found = [str(r) for r in connection.execute(legacy.select()).scalars()]
    moved = [revision for revision in found if revision in ours]
    if not moved:
        return []
    table = _version_table(VERSION_TABLE)
    table.create(connection, checkfirst=True)
    present = set(connection.execute(table.select()).scalars())
    rows = [{"version_num": r} for r in moved if r not in present]
    if rows:
        connection.execute(table.insert(), rows)
    connection.execute(legacy.delete().where(legacy.c.version_num.in_(moved)))
    if len(moved) == len(found):
        legacy.drop(connection)
    return moved


def _version_table(name: str) -> Table:
    """An Alembic version table, declared as Alembic creates it."""
    return Table(name, MetaData(), Column("version_num", String(32), nullable=False),
                 PrimaryKeyConstraint("version_num", name=f"{name}_pkc"))


def _rollback(session: Session) -> None:
    """Roll back, when the connection still allows it (it may be the one that broke)."""
    try:
        session.rollback()
    except SQLAlchemyError as exc:
        log.debug("rollback failed", extra={"error": str(exc)})


#: What PostgreSQL answers when it is up but will not have us; no wait changes these.
_REFUSALS = ("password authentication failed", "no pg_hba.conf entry", "does not exist",
             "permission denied", "authentication failed")


def refuses_access(exc: BaseException) -> bool:
    """Whether a database error says the server runs but refuses these settings (a wrong
    password, an unknown role or database): bad configuration, not an outage.

    The driver reports both as the same OperationalError, so the server's own words decide.
    """
    text = str(exc.__cause__ or exc)
    return "FATAL" in text and any(refusal in text for refusal in _REFUSALS)
