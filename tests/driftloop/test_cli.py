"""The command line as a new user tries it: help, schema, topics, database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from streams.events import ALL_EVENTS, ClassOutput, Feedback, Prediction
from tests.conftest import BrokerInfo

DRIFTLOOP = [sys.executable, "-m", "driftloop.cli"]


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DRIFTLOOP, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, cwd=cwd, check=False)


def test_help_lists_the_commands() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for command in ("schema", "broker", "topics", "db", "alerts", "demo"):
        assert command in result.stdout


def test_schema_writes_a_json_schema_per_event_that_validates_real_events(
    tmp_path: Path,
) -> None:
    result = _run("schema", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in tmp_path.glob("*.schema.json"))
    assert files == sorted([f"{e.model_fields['type'].default}.schema.json" for e in ALL_EVENTS]
                           + ["topic-drift.schema.json", "topic-model-updates.schema.json"])
    now = datetime.now(UTC)
    prediction = Prediction(event_id="e", request_id="r", model="m", model_version=1,
                            features={"a": 1.5, "b": "x"},
                            output=ClassOutput(label=1, probabilities={"1": 0.9, "0": 0.1}),
                            timestamp=now)
    schema = json.loads((tmp_path / "prediction.schema.json").read_text())
    jsonschema.validate(json.loads(prediction.model_dump_json()), schema)
    feedback_schema = json.loads((tmp_path / "feedback.schema.json").read_text())
    feedback = Feedback(event_id="f", request_id="r", model="m", label="yes", timestamp=now)
    jsonschema.validate(json.loads(feedback.model_dump_json()), feedback_schema)
    bad = json.loads(prediction.model_dump_json())
    bad["model_version"] = "one"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_topics_create_is_idempotent(tansu: BrokerInfo) -> None:
    env = {"DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": tansu.bootstrap,
           "DRIFTLOOP_TOPICS__PREFIX": f"cli{os.getpid()}"}
    first = _run("topics", "create", env=env)
    second = _run("topics", "create", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("\tcreated") == 6
    assert second.stdout.count("\texists") == 6


def test_db_migrate_creates_the_schema(tmp_path: Path) -> None:
    env = {"DRIFTLOOP_HOME": str(tmp_path / "home")}
    result = _run("db", "migrate", env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "home" / "driftloop.db").exists()


def test_unreachable_broker_gives_a_clear_error() -> None:
    env = {"DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1",
           "DRIFTLOOP_KAFKA__BOOTSTRAP_TIMEOUT_MS": "2000"}
    result = _run("topics", "create", env=env)
    assert result.returncode == 1
    assert "cannot reach Kafka" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_settings_are_reported_not_raised() -> None:
    result = _run("db", "migrate", env={"DRIFTLOOP_DATABASE__URL": "mysql://x"})
    assert result.returncode == 2
    assert "SQLite or PostgreSQL" in result.stderr
