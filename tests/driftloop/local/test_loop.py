"""The settings every process of a local loop shares, and how they reach the children."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pydantic import SecretStr

from driftloop.local.loop import child_env, free_port, loop_settings
from streams.settings import KafkaSettings, MonitorSettings, Settings


def test_children_rebuild_the_very_same_settings(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, models=("churn",),
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1", sasl_mechanism="PLAIN",
                            sasl_username="u", sasl_password=SecretStr("secret")),
    )
    env = child_env(settings, {"PATH": "/usr/bin", "DRIFTLOOP_HOME": "/elsewhere",
                               "DRIFTLOOP_KAFKA__CLIENT_ID": "stale"})
    assert "DRIFTLOOP_KAFKA__CLIENT_ID" not in env, "the parent's own variables are dropped"
    code = ("import json; from streams.settings import Settings; s = Settings(); "
            "print(json.dumps({'home': str(s.home), 'models': list(s.models), "
            "'password': s.kafka.sasl_password.get_secret_value(), "
            "'dump': s.model_dump(mode='json', exclude={'kafka': {'sasl_password'}})}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                         capture_output=True, text=True, check=True)
    child = json.loads(out.stdout)
    assert child["home"] == str(tmp_path)
    assert child["models"] == ["churn"]
    assert child["password"] == "secret"
    assert child["dump"] == settings.model_dump(mode="json",
                                                exclude={"kafka": {"sasl_password"}})


def test_loop_settings_pace_seconds_to_the_app_unless_the_user_set_them(tmp_path: Path) -> None:
    paced = loop_settings(Settings(), home=tmp_path, bootstrap="127.0.0.1:9",
                          database_url="sqlite:///x.db", prefix="p", events_per_second=500)
    assert paced.monitor.cooldown_s == 3.0  # 1,500 events at 500 per second
    assert paced.kafka.bootstrap_servers == "127.0.0.1:9"
    assert paced.topics.prefix == "p"
    assert paced.database_url == "sqlite:///x.db"
    assert paced.artifacts == tmp_path / "artifacts"
    mine = Settings(monitor=MonitorSettings(cooldown_s=42.0))
    kept = loop_settings(mine, home=tmp_path, bootstrap="b:1", database_url="sqlite:///x.db",
                         prefix="p", events_per_second=500)
    assert kept.monitor.cooldown_s == 42.0
    assert kept.monitor.request_timeout_s == 3.0


def test_free_port_prefers_the_given_one_when_nothing_listens() -> None:
    port = free_port()
    assert free_port(port) == port
