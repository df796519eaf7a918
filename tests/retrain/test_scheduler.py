"""APScheduler with the job store in driftloop's database: schedules survive a new scheduler."""

from __future__ import annotations

import pytest

from retrain.scheduler import RetrainScheduler, schedule_specs, trigger_for
from streams.db import Database
from streams.errors import ConfigError
from streams.settings import RetrainSettings, Settings


def test_schedules_come_from_the_global_setting_and_per_model_overrides() -> None:
    settings = Settings(models=("a", "b"), retrain=RetrainSettings(
        schedule_interval_s=3600, schedules={"b": "0 3 * * *", "c": 60}))
    assert schedule_specs(settings) == {"a": 3600, "b": "0 3 * * *", "c": 60}
    cron = Settings(models=("a",), retrain=RetrainSettings(schedule_interval_s=10,
                                                           schedule_cron="*/5 * * * *"))
    assert schedule_specs(cron) == {"a": "*/5 * * * *"}
    assert schedule_specs(Settings(models=("a",))) == {}
    everyone = Settings(retrain=RetrainSettings(schedule_interval_s=60))
    assert schedule_specs(everyone, ["x", "y"]) == {"x": 60, "y": 60}
    assert schedule_specs(everyone.model_copy(update={"models": ("a",)}), ["x"]) == {"a": 60}


def test_triggers() -> None:
    assert str(trigger_for(90)) == "interval[0:01:30]"
    assert str(trigger_for("90")) == "interval[0:01:30]"
    assert str(trigger_for("0 3 * * *")).startswith("cron[")
    with pytest.raises(ConfigError, match="bad retrain schedule"):
        trigger_for("every tuesday")
    with pytest.raises(ConfigError, match="positive"):
        trigger_for(0)


def test_stored_schedules_survive_a_restart_and_keep_their_next_run(database: Database) -> None:
    first = RetrainScheduler(database)
    first.start()
    first.sync_schedules({"a": 3600, "b": "0 3 * * *"})
    before = {j["id"]: j for j in first.jobs()}
    first.shutdown()

    # A new process: same schedules, unchanged next run times.
    second = RetrainScheduler(database)
    second.start()
    try:
        second.sync_schedules({"a": 3600, "b": "0 3 * * *"})
        after = {j["id"]: j for j in second.jobs()}
        assert set(after) == {"schedule:a", "schedule:b"}
        assert after["schedule:a"]["next_run_time"] == before["schedule:a"]["next_run_time"]
        assert after["schedule:b"]["next_run_time"] == before["schedule:b"]["next_run_time"]

        # A changed schedule is replaced; a dropped one is removed.
        second.sync_schedules({"a": 60})
        jobs = {j["id"]: j for j in second.jobs() if j["id"].startswith("schedule:")}
        assert list(jobs) == ["schedule:a"]
        assert jobs["schedule:a"]["trigger"] == "interval[0:01:00]"
    finally:
        second.shutdown()
