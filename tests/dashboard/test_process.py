from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr

from dashboard.process import child_env, settings_env, streamlit_command
from streams.settings import (
    DashboardSettings,
    DatabaseSettings,
    KafkaSettings,
    RetrainSettings,
    Settings,
    TopicSettings,
)


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        models=("churn", "fraud"),
        kafka=KafkaSettings(bootstrap_servers="k1:9092,k2:9092", security_protocol="SASL_SSL",
                            sasl_mechanism="PLAIN", sasl_username="u",
                            sasl_password=SecretStr("p@ss")),
        topics=TopicSettings(prefix="prod"),
        database=DatabaseSettings(url=SecretStr("postgresql+psycopg://u:secret@db/x")),
        retrain=RetrainSettings(schedules={"churn": 3600, "fraud": "0 3 * * *"}),
        dashboard=DashboardSettings(port=9999, refresh_s=2.5, open_viewing=False,
                                    users={"alice": SecretStr("pbkdf2_sha256$1000$a$b")},
                                    oidc_allowed=("a@example.com",)),
    )


def test_the_child_rebuilds_exactly_the_same_settings(tmp_path, monkeypatch):
    settings = _settings(tmp_path)
    for key in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no .env here
    for key, value in settings_env(settings).items():
        monkeypatch.setenv(key, value)
    rebuilt = Settings()
    assert rebuilt == settings
    assert rebuilt.database_url == "postgresql+psycopg://u:secret@db/x"
    assert rebuilt.dashboard.users["alice"].get_secret_value() == "pbkdf2_sha256$1000$a$b"


def test_the_parents_own_driftloop_variables_cannot_override(tmp_path):
    settings = _settings(tmp_path)
    env = child_env(settings, {"PATH": "/bin", "DRIFTLOOP_DASHBOARD__PORT": "1",
                               "DRIFTLOOP_TEST_BROKERS": "x", "PYTHONPATH": "/extra"})
    assert env["PATH"] == "/bin"
    assert "DRIFTLOOP_DASHBOARD__PORT" not in env
    assert "DRIFTLOOP_TEST_BROKERS" not in env
    assert env["PYTHONPATH"].endswith(":/extra")
    assert '"port": 9999' in env["DRIFTLOOP_DASHBOARD"]


def test_streamlit_runs_headless_on_the_configured_port(tmp_path):
    command = streamlit_command(_settings(tmp_path))
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert command[4].endswith("dashboard/app.py")
    assert "--server.headless=true" in command
    assert "--server.port=9999" in command
    assert "--server.address=127.0.0.1" in command
    assert "--browser.gatherUsageStats=false" in command
