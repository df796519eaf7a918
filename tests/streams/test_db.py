"""Database errors say what to do about them: wait out an outage, stop on refused settings,
dead-letter what the database refuses as data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import text

from streams.db import Database
from streams.errors import StoreAccessError, StoreError


def test_a_database_that_refuses_our_settings_is_an_access_error() -> None:
    server = os.environ.get("DRIFTLOOP_TEST_POSTGRES_URL")
    if not server:
        if os.environ.get("CI"):
            pytest.fail("DRIFTLOOP_TEST_POSTGRES_URL must be set under CI")
        pytest.skip("PostgreSQL not configured (set DRIFTLOOP_TEST_POSTGRES_URL)")
    db = Database(server.rsplit("/", 1)[0] + "/no_such_database_here")
    with pytest.raises(StoreAccessError) as refused, db.session() as session:
        session.execute(text("SELECT 1"))
    assert not refused.value.transient
    assert "does not exist" in str(refused.value)
    db.dispose()


def test_an_unreachable_database_is_transient() -> None:
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/nothing?connect_timeout=2")
    with pytest.raises(StoreError) as down, db.session() as session:
        session.execute(text("SELECT 1"))
    assert down.value.transient
    assert not isinstance(down.value, StoreAccessError)
    db.dispose()


def test_a_value_the_database_cannot_hold_is_not_transient(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path}/values.db")
    with db.session() as session:
        session.execute(text("CREATE TABLE t (v INTEGER)"))
    with pytest.raises(StoreError) as refused, db.session() as session:
        session.execute(text("INSERT INTO t VALUES (:v)"), {"v": 2**70})
    assert not refused.value.transient
    db.dispose()


def test_insert_skips_or_updates_a_conflicting_row_on_either_database(database: Database) -> None:
    table = sa.Table("insert_probe", sa.MetaData(), sa.Column("key", sa.String, primary_key=True),
                     sa.Column("value", sa.Integer))
    table.create(database.engine)
    with database.session() as session:
        first = session.execute(database.insert(table).values(key="a", value=1)
                                .on_conflict_do_nothing().returning(table.c.key)).all()
        again = session.execute(database.insert(table).values(key="a", value=2)
                                .on_conflict_do_nothing().returning(table.c.key)).all()
        upsert = database.insert(table).values(key="a", value=3)
        session.execute(upsert.on_conflict_do_update(index_elements=[table.c.key],
                                                     set_={"value": upsert.excluded.value}))
    with database.session() as session:
        stored = session.execute(sa.select(table.c.key, table.c.value)).all()
    assert (len(first), len(again)) == (1, 0), "the second insert of the same key is skipped"
    assert [tuple(row) for row in stored] == [("a", 3)]



def _table(name: str) -> sa.Table:
    return sa.Table(name, sa.MetaData(), sa.Column("version_num", sa.String(32)))


def _versions(db: Database, name: str) -> list[str]:
    with db.engine.connect() as conn:
        return sorted(conn.execute(sa.select(_table(name).c.version_num)).scalars())


def test_a_database_migrated_into_alembic_version_moves_to_its_own_table(
    database_url: str,
) -> None:
    from alembic import command

    from streams.db import LEGACY_VERSION_TABLE, VERSION_TABLE, migration_config

    db = Database(database_url)
    legacy = _table(LEGACY_VERSION_TABLE)
    try:
        old = migration_config(version_table=LEGACY_VERSION_TABLE)  # as driftloop used to
        with db.engine.begin() as conn:
            old.attributes["connection"] = conn
            command.upgrade(old, "heads")
        revisions = _versions(db, LEGACY_VERSION_TABLE)
        assert revisions, "the old layout recorded driftloop's revisions in alembic_version"
        with db.engine.begin() as conn:  # another project's row there is not ours to move
            conn.execute(legacy.insert().values(version_num="v3.2.0.a"))

        db.migrate()
        db.migrate()  # and again: nothing left to move

        assert _versions(db, VERSION_TABLE) == revisions
        assert _versions(db, LEGACY_VERSION_TABLE) == ["v3.2.0.a"]
        with db.engine.begin() as conn:  # ours in both tables, nothing else in the old one
            conn.execute(legacy.delete())
            conn.execute(legacy.insert(), [{"version_num": r} for r in revisions])
        db.migrate()
        assert _versions(db, VERSION_TABLE) == revisions
        assert not sa.inspect(db.engine).has_table(LEGACY_VERSION_TABLE), "emptied: dropped"
    finally:
        db.dispose()
