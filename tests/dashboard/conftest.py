from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from streams.db import Database
from tests.conftest import DATABASE_KINDS
from tests.dashboard.seed import Seeded, seed_streams

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def seeded(database: Database) -> Seeded:
    """The database with the known history of tests/dashboard/seed.py, as of NOW."""
    return seed_streams(database, NOW)


@pytest.fixture
def live_now() -> datetime:
    """Half a minute ahead of the wall clock, so the app's own clock (a little later than
    the seeding) still counts the same predictions as recent."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)


@pytest.fixture(scope="module", params=DATABASE_KINDS)
def shared_seeded(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """Like ``seeded``, but one database per module and kind, for tests that only read."""
    from driftloop.migrations import migrate_database

    server = os.environ.get("DRIFTLOOP_TEST_POSTGRES_URL")
    admin = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('shared') / 'driftloop.db'}"
    elif not server:
        if os.environ.get("CI"):
            pytest.fail("DRIFTLOOP_TEST_POSTGRES_URL must be set under CI")
        pytest.skip("PostgreSQL not configured (set DRIFTLOOP_TEST_POSTGRES_URL)")
    else:
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = f"{server.rpartition('/')[0]}/{name}"
    db = migrate_database(Database(url))
    try:
        yield seed_streams(db, NOW)
    finally:
        db.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" '
                                  "WITH (FORCE)"))
            admin.dispose()
