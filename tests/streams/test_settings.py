from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.settings import Settings


def test_environment_fills_nested_sections(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS", "a:9092,b:9092")
    monkeypatch.setenv("DRIFTLOOP_TOPICS__PARTITIONS", "6")
    monkeypatch.setenv("DRIFTLOOP_MONITOR__WINDOW_SIZE", "250")
    settings = Settings()
    assert settings.kafka.client_config()["bootstrap_servers"] == ["a:9092", "b:9092"]
    assert settings.topics.partitions == 6
    assert settings.monitor.window_size == 250


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DRIFTLOOP_TOPICS__PREFIX=fromfile\n")
    assert Settings().topics.prefix == "fromfile"


def test_sasl_secrets_reach_kafka_python_but_are_never_printed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DRIFTLOOP_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("DRIFTLOOP_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("DRIFTLOOP_KAFKA__SASL_USERNAME", "svc")
    monkeypatch.setenv("DRIFTLOOP_KAFKA__SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("DRIFTLOOP_DATABASE__URL", "postgresql://u:dbsecret@h/db")
    settings = Settings()
    config = settings.kafka.client_config()
    assert config["sasl_plain_password"] == "hunter2"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert "hunter2" not in text
        assert "dbsecret" not in text
    assert settings.database_url == "postgresql://u:dbsecret@h/db"


def test_defaults_put_everything_under_home(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(home=tmp_path / "h")
    assert settings.database_url == f"sqlite:///{tmp_path / 'h' / 'driftloop.db'}"
    assert settings.artifacts == tmp_path / "h" / "artifacts"


def test_settings_are_frozen_and_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.log_level = "DEBUG"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="greater than 0"):
        Settings(topics={"partitions": 0})  # type: ignore[arg-type]


def test_reconnect_backoff_reaches_every_kafka_client(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    config = Settings().kafka.client_config()
    assert (config["reconnect_backoff_ms"], config["reconnect_backoff_max_ms"]) == (1000, 5000)
    monkeypatch.setenv("DRIFTLOOP_KAFKA__RECONNECT_BACKOFF_MS", "200")
    monkeypatch.setenv("DRIFTLOOP_KAFKA__RECONNECT_BACKOFF_MAX_MS", "2000")
    config = Settings().kafka.client_config()
    assert (config["reconnect_backoff_ms"], config["reconnect_backoff_max_ms"]) == (200, 2000)
    # A cap below the first wait would make kafka-python wait less than asked: it is raised.
    monkeypatch.setenv("DRIFTLOOP_KAFKA__RECONNECT_BACKOFF_MAX_MS", "100")
    assert Settings().kafka.client_config()["reconnect_backoff_max_ms"] == 200
