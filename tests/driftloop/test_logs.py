"""Log lines as an operator reads them: JSON, and never a secret, whatever logged it."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from driftloop import logs
from streams.settings import DashboardSettings, DatabaseSettings, KafkaSettings, Settings

SECRET = "pa'ss\\w0rd\"é"  # quotes, a backslash and a non-ASCII letter: every escaping differs


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The root logger at DEBUG, redacting SECRET, written to a string."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    logs.configure("DEBUG", secrets=[SECRET])
    out = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    yield out
    root.handlers[:], root.level = saved


def _lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_secret_is_redacted_from_messages_arguments_and_extra_fields(captured) -> None:
    log = logging.getLogger("kafka.admin.client")  # a third-party logger, not ours
    config = {"sasl_plain_username": "svc", "sasl_plain_password": SECRET}
    log.debug("Starting KafkaAdminClient with configuration: %s", config)
    log.info("password %s", SECRET, extra={"config": config, "raw": SECRET.encode()})
    log.warning(f"in the message itself: {SECRET}")
    text = captured.getvalue()
    assert len(_lines(captured)) == 3
    assert SECRET not in text
    assert "pa'ss" not in text
    assert "w0rd" not in text
    first, second, third = _lines(captured)
    assert first["msg"] == ("Starting KafkaAdminClient with configuration: "
                            "{'sasl_plain_username': 'svc', 'sasl_plain_password': '[redacted]'}")
    assert second["msg"] == "password [redacted]"
    assert second["config"] == {"sasl_plain_username": "svc", "sasl_plain_password": "[redacted]"}
    assert second["raw"] == "b'[redacted]'"
    assert third["msg"] == "in the message itself: [redacted]"


@pytest.mark.parametrize("quote_char", ["'", '"'])
def test_a_secret_inside_a_logged_bytes_buffer_is_redacted(captured, quote_char) -> None:
    # What kafka-python logs at DEBUG: '%s Send: %r' of the raw buffer carrying SASL/PLAIN's
    # b'\x00user\x00password' (a buffer holding a quote makes repr pick the other one).
    buffer = b"\x00\x00\x00\x24" + quote_char.encode() + b"\x00svc\x00" + SECRET.encode()
    logging.getLogger("kafka.protocol.parser").debug("%s Send: %r", "<conn>", buffer)
    (line,) = _lines(captured)
    assert SECRET.encode().hex() not in line["msg"]
    assert "w0rd" not in line["msg"]
    assert line["msg"].endswith("\\x00svc\\x00[redacted]'") or line["msg"].endswith(
        '\\x00svc\\x00[redacted]"')


def test_a_traceback_that_carries_a_secret_is_redacted(captured) -> None:
    try:
        raise ValueError(f"could not connect as svc:{SECRET}@db")
    except ValueError:
        logging.getLogger("sqlalchemy.pool").exception("connection failed")
    (line,) = _lines(captured)
    assert "ValueError: could not connect as svc:[redacted]@db" in line["exc"]
    assert "w0rd" not in json.dumps(line)


def test_nothing_is_changed_without_secrets(captured) -> None:
    logs.configure("DEBUG")
    out = io.StringIO()
    logging.getLogger().handlers[0].setStream(out)  # type: ignore[attr-defined]
    logging.getLogger("x").info("value %s", "[not a secret]", extra={"n": 3})
    (line,) = _lines(out)
    assert (line["msg"], line["n"]) == ("value [not a secret]", 3)


def test_logging_to_a_file_keeps_the_redaction(captured, tmp_path: Path) -> None:
    logs.to_file(tmp_path / "demo.log", "DEBUG")
    logging.getLogger("kafka.net.connection").debug("Request 7: auth_bytes=%r",
                                                    b"\x00svc\x00" + SECRET.encode())
    text = (tmp_path / "demo.log").read_text()
    assert json.loads(text)["msg"] == "Request 7: auth_bytes=b'\\x00svc\\x00[redacted]'"
    assert "w0rd" not in text


def test_settings_list_every_secret_they_hold() -> None:
    settings = Settings(
        kafka=KafkaSettings(security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
                            sasl_username="svc", sasl_password=SecretStr("kafka-pw"),
                            ssl_password=SecretStr("key-pw")),
        database=DatabaseSettings(url=SecretStr("postgresql+psycopg://u:db%40pw@h/db")),
        dashboard=DashboardSettings(users={"alice": SecretStr("pbkdf2_sha256$1000$s$h")}),
    )
    assert set(settings.secret_values()) == {
        "kafka-pw", "key-pw", "postgresql+psycopg://u:db%40pw@h/db", "db%40pw", "db@pw",
        "pbkdf2_sha256$1000$s$h"}


def test_credentials_reach_kafka_python_only_where_the_protocol_sends_them() -> None:
    plain = KafkaSettings(sasl_mechanism="PLAIN", sasl_username="svc",
                          sasl_password=SecretStr("kafka-pw"), ssl_password=SecretStr("key-pw"))
    assert not {"sasl_plain_password", "sasl_mechanism", "ssl_password"} & set(
        plain.client_config())
    sasl = plain.model_copy(update={"security_protocol": "SASL_PLAINTEXT"})
    assert sasl.client_config()["sasl_plain_password"] == "kafka-pw"
    assert "ssl_password" not in sasl.client_config()


def test_the_dashboards_streamlit_process_logs_the_same_way(tmp_path: Path) -> None:
    """The Streamlit process builds its settings in dashboard.session and sets logging up
    there: JSON lines at DRIFTLOOP_LOG_LEVEL, secrets redacted, kafka-python included."""
    script = (
        "import logging\n"
        "from dashboard import session\n"
        "session._settings()\n"
        "logging.getLogger('kafka.net.connection').debug('auth_bytes=%r', b'\\x00svc\\x00' + "
        "b'kafka-pw-42')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env.update({"PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                "DRIFTLOOP_HOME": str(tmp_path), "DRIFTLOOP_LOG_LEVEL": "DEBUG",
                "DRIFTLOOP_KAFKA__SASL_PASSWORD": "kafka-pw-42"})
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,  # noqa: S603
                          capture_output=True, text=True, timeout=120, check=True)
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert [line["msg"] for line in lines if line["logger"] == "kafka.net.connection"] == [
        "auth_bytes=b'\\x00svc\\x00[redacted]'"]
    assert "kafka-pw-42" not in done.stderr + done.stdout
