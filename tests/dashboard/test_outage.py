"""The dashboard while its database is down: every page says so, and shows its data again
once the database is back, without a reload of the server."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from driftloop.migrations import migrate
from streams.settings import DatabaseSettings, Settings
from tests.dashboard.apptest import PAGES, open_page, start, texts
from tests.e2e.services import private_postgres

DOWN = "The database cannot be reached right now"


@pytest.mark.slow
def test_every_page_rides_out_a_database_outage(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    with private_postgres() as postgres:
        settings = Settings(home=tmp_path,
                            database=DatabaseSettings(url=SecretStr(postgres.url)))
        migrate(settings).dispose()
        postgres.kill()
        at = start(monkeypatch, settings)
        for page in PAGES:
            open_page(at, page)
            assert DOWN in texts(at), page
        postgres.start()
        for page in PAGES:
            open_page(at, page)
            assert DOWN not in texts(at), page
