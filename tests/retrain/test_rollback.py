"""Automatic rollback from the monitor's windowed performance (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from retrain.registry import Registry
from retrain.rollback import ACTOR, AutoRollback
from streams.db import Database
from streams.errors import RegistryError
from streams.events import DriftReport
from tests.retrain.helpers import T0, attach_artifact, fast_settings, tamper


@pytest.fixture
def registry(database: Database) -> Registry:
    return Registry(database)


@pytest.fixture
def promote_new(registry: Registry, tmp_path: Path) -> Callable[[int], None]:
    """Promote ``count`` new versions of ``m`` in turn, each with a real artifact."""

    def promote(count: int) -> None:
        for _ in range(count):
            v = registry.create_version("m", trainer="t", hyperparameters={}, code_version="x")
            attach_artifact(registry, tmp_path / "artifacts", "m", v)
            registry.promote("m", v, actor="ci", reason="better on holdout")

    return promote


def _report(i: int, version: int, accuracy: float) -> DriftReport:
    start = T0 + timedelta(minutes=5 * i)
    return DriftReport(
        event_id=f"w{i}", model="m", model_version=version, window_id=f"win-{i}",
        window_start=start, window_end=start + timedelta(minutes=5), rows=500,
        drifted_share=0.0, drift_detected=False,
        performance={"accuracy": accuracy, "f1": accuracy}, timestamp=start,
    )


def test_a_new_champion_that_does_worse_in_production_is_rolled_back(
    database: Database, registry: Registry, promote_new: Callable[[int], None]
) -> None:
    watcher = AutoRollback(database, registry, fast_settings(rollback_margin=0.05,
                                                              rollback_windows=2))
    promote_new(1)
    assert watcher.observe(_report(0, 1, 0.90)) is None
    assert watcher.observe(_report(1, 1, 0.88)) is None
    promote_new(1)
    assert watcher.observe(_report(2, 2, 0.70)) is None, "one window is not enough"
    assert watcher.observe(_report(2, 2, 0.70)) is None, "a replay is not a second window"
    event = watcher.observe(_report(3, 2, 0.74))

    assert event is not None
    assert (event.version, event.from_version) == (1, 2)
    assert registry.champion("m").version == 1  # type: ignore[union-attr]
    assert registry.version("m", 2).status == "rejected"
    last = registry.audit("m", limit=1)[0]
    assert last.action == "rollback"
    assert last.actor == ACTOR
    assert "accuracy 0.7200 over 2 windows" in last.reason
    assert "0.8900" in last.reason
    # Later reports of the rolled-back version change nothing.
    assert watcher.observe(_report(4, 2, 0.10)) is None
    assert watcher.observe(_report(5, 1, 0.10)) is None
    assert registry.champion("m").version == 1  # type: ignore[union-attr]


def test_a_new_champion_within_the_margin_stays(
    database: Database, registry: Registry, promote_new: Callable[[int], None]
) -> None:
    watcher = AutoRollback(database, registry, fast_settings(rollback_margin=0.05,
                                                              rollback_windows=2))
    promote_new(1)
    watcher.observe(_report(0, 1, 0.90))
    promote_new(1)
    assert watcher.observe(_report(1, 2, 0.87)) is None
    assert watcher.observe(_report(2, 2, 0.86)) is None
    assert registry.champion("m").version == 2  # type: ignore[union-attr]


def test_no_rollback_without_a_previous_champion_or_after_a_manual_one(
    database: Database, registry: Registry, promote_new: Callable[[int], None]
) -> None:
    watcher = AutoRollback(database, registry, fast_settings(rollback_windows=1))
    promote_new(1)
    assert watcher.observe(_report(0, 1, 0.1)) is None
    promote_new(1)
    registry.rollback("m", actor="oncall", reason="by hand")
    assert watcher.observe(_report(1, 1, 0.0)) is None
    assert registry.champion("m").version == 1  # type: ignore[union-attr]


def test_a_rollback_to_a_tampered_artifact_is_refused_and_the_champion_stays(
    database: Database, registry: Registry, promote_new: Callable[[int], None]
) -> None:
    watcher = AutoRollback(database, registry, fast_settings(rollback_margin=0.05,
                                                              rollback_windows=1))
    promote_new(1)
    watcher.observe(_report(0, 1, 0.90))
    promote_new(1)
    tamper(registry.version("m", 1).artifact_uri)
    audit = registry.audit("m")
    with pytest.raises(RegistryError, match="m v1 cannot become the champion"):
        watcher.observe(_report(1, 2, 0.50))
    assert registry.champion("m").version == 2  # type: ignore[union-attr]
    assert [v.status for v in registry.versions("m")] == ["archived", "champion"]
    assert registry.audit("m") == audit
