"""No secret in any output at DEBUG: real driftloop processes against a SASL/PLAIN Kafka.

Apache Kafka (KRaft, from its jars) is started with an extra SASL_PLAINTEXT listener that
takes PLAIN. ``driftloop topics create``, an app sending through the SDK (the producer) and
``driftloop monitor`` (the consumer loop) run against it with ``DRIFTLOOP_LOG_LEVEL=DEBUG``,
and everything they print is searched for the password. kafka-python logs the SASL exchange
(``SaslAuthenticateRequest``, the raw send buffers) and the admin client's configuration at
DEBUG, so the same app logging without driftloop's setup is shown to leak it: the check is
not vacuous.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from driftloop.local.brokers import ApacheKafkaBroker
from streams.db import Database
from streams.errors import ConfigError
from streams.store import FeedbackRow, PredictionRow

pytestmark = pytest.mark.slow

USER = "svc"
PASSWORD = "Tr0ub4dor-sasl-9f2c41"  # noqa: S105 - the secret under test
EVENTS = 20
ROOT = Path(__file__).resolve().parents[2]

SEND = f"""
import logging, sys
from streams.client import Client
if sys.argv[1] == "driftloop":
    from driftloop.entry import load_settings
    settings = load_settings()
else:  # an app that logs kafka-python at DEBUG its own way
    from streams.settings import Settings
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    settings = Settings()
with Client(settings) as client:
    for i in range({EVENTS}):
        request_id = f"{{sys.argv[1]}}-{{i}}"
        client.log_prediction("churn", request_id, {{"x": float(i)}}, label="a",
                              probabilities={{"a": 0.9, "b": 0.1}}, model_version=1)
        client.log_feedback("churn", request_id, "a")
    client.flush()
print("sent")
"""


@pytest.mark.parametrize(("users", "port", "problem"), [
    ({USER: PASSWORD}, None, "its own port"),
    ({USER: 'pa"ss'}, 1, "without quotes"),
    ({"bad name": PASSWORD}, 1, "plain name"),
])
def test_a_sasl_listener_refuses_what_its_jaas_line_cannot_hold(tmp_path, users, port, problem):
    with pytest.raises(ConfigError, match=problem):
        ApacheKafkaBroker(tmp_path, 1, sasl_users=users, sasl_port=port)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def sasl_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafkaBroker]:
    if shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("Apache Kafka needs Java")
        pytest.skip("Apache Kafka needs Java")
    broker = ApacheKafkaBroker(tmp_path_factory.mktemp("sasl-kafka"), _free_port(),
                               sasl_users={USER: PASSWORD}, sasl_port=_free_port())
    broker.start(die_with_parent=True)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def sasl_env(sasl_kafka: ApacheKafkaBroker, tmp_path_factory: pytest.TempPathFactory
             ) -> dict[str, str]:
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env.update({
        "PYTHONPATH": str(ROOT),
        "DRIFTLOOP_HOME": str(home),
        "DRIFTLOOP_LOG_LEVEL": "DEBUG",
        "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": str(sasl_kafka.sasl_bootstrap),
        "DRIFTLOOP_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "DRIFTLOOP_KAFKA__SASL_MECHANISM": "PLAIN",
        "DRIFTLOOP_KAFKA__SASL_USERNAME": USER,
        "DRIFTLOOP_KAFKA__SASL_PASSWORD": PASSWORD,
        "DRIFTLOOP_TOPICS__PARTITIONS": "1",
        "DRIFTLOOP_MONITOR__DRIFT_WORKERS": "thread",
    })
    return env


def _run(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run to the end; the exit status and everything printed (stdout and stderr)."""
    done = subprocess.run(argv, env=env, cwd=env["DRIFTLOOP_HOME"], stdout=subprocess.PIPE,  # noqa: S603
                          stderr=subprocess.STDOUT, text=True, timeout=180, check=False)
    return done.returncode, done.stdout


def _assert_clean(output: str) -> None:
    """No form of the password anywhere, and proof that kafka-python talked at DEBUG."""
    for form in (PASSWORD, PASSWORD.encode().hex(), PASSWORD[4:-4]):
        assert form not in output
    assert '"level": "debug", "logger": "kafka.' in output


def _sdk(env: dict[str, str], how: str) -> tuple[int, str]:
    return _run([sys.executable, "-c", SEND, how], env)


def test_topics_create_at_debug_prints_no_secret(sasl_env: dict[str, str]) -> None:
    code, output = _run([sys.executable, "-m", "driftloop.cli", "topics", "create"], sasl_env)
    assert code == 0, output
    assert output.count("\tcreated") == 6
    _assert_clean(output)
    # kafka-python's admin client logged its configuration, password field and all.
    assert "'sasl_plain_password': '[redacted]'" in output


def test_topics_create_on_plaintext_holds_no_password_at_all(
    sasl_env: dict[str, str], sasl_kafka: ApacheKafkaBroker, tmp_path: Path,
) -> None:
    """SASL credentials configured for a PLAINTEXT listener never reach the client."""
    env = {**sasl_env, "DRIFTLOOP_HOME": str(tmp_path), "DRIFTLOOP_TOPICS__PREFIX": "plain",
           "DRIFTLOOP_KAFKA__SECURITY_PROTOCOL": "PLAINTEXT",
           "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{sasl_kafka.port}"}
    code, output = _run([sys.executable, "-m", "driftloop.cli", "topics", "create"], env)
    assert code == 0, output
    _assert_clean(output)
    assert "Starting KafkaAdminClient with configuration" in output
    assert "sasl_plain_password" not in output


def test_an_app_logging_kafka_python_at_debug_on_its_own_leaks_the_password(
    sasl_env: dict[str, str],
) -> None:
    """The control: without driftloop's logging setup the same sends print the password."""
    code, output = _sdk(sasl_env, "plain")
    assert code == 0, output
    assert PASSWORD in output
    assert "SaslAuthenticate" in output


def test_the_producer_and_the_consumer_loop_at_debug_print_no_secret(
    sasl_env: dict[str, str],
) -> None:
    code, output = _sdk(sasl_env, "driftloop")
    assert code == 0, output
    assert "sent" in output
    _assert_clean(output)
    assert "SaslAuthenticate" in output  # the exchange was logged, without its bytes
    assert "[redacted]" in output

    home = Path(sasl_env["DRIFTLOOP_HOME"])
    log = home / "monitor.out"
    with log.open("w") as out:
        monitor = subprocess.Popen([sys.executable, "-m", "driftloop.cli", "monitor"],  # noqa: S603
                                   env=sasl_env, cwd=home, stdout=out, stderr=subprocess.STDOUT)
    try:
        db = Database(f"sqlite:///{home / 'driftloop.db'}")
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and _stored(db) < 2 * EVENTS:
            assert monitor.poll() is None, log.read_text()
            time.sleep(1)
        assert _stored(db) == 2 * EVENTS, log.read_text()[-5000:]
    finally:
        monitor.send_signal(signal.SIGTERM)
        try:
            monitor.wait(timeout=60)
        except subprocess.TimeoutExpired:
            monitor.kill()
            monitor.wait()
    output = log.read_text()
    _assert_clean(output)
    assert "SaslAuthenticate" in output
    assert '"logger": "kafka.coordinator' in output  # the consumer group's own DEBUG lines


def _stored(db: Database) -> int:
    """Predictions and feedback the monitor stored from the driftloop-configured app."""
    try:
        with db.session() as session:
            return sum(
                int(session.execute(select(func.count()).select_from(row).where(
                    row.request_id.startswith("driftloop-"))).scalar_one())
                for row in (PredictionRow, FeedbackRow)
            )
    except Exception:  # the monitor has not created its tables yet
        return 0


@pytest.mark.parametrize("argv", [["serve", "--model", "churn"], ["retrain"]])
def test_serve_and_retrain_at_debug_print_no_secret(
    sasl_env: dict[str, str], tmp_path: Path, argv: list[str],
) -> None:
    env = {**sasl_env, "DRIFTLOOP_HOME": str(tmp_path)}
    code, output = _run([sys.executable, "-m", "driftloop.cli", "topics", "create"], env)
    assert code == 0, output
    log = tmp_path / "process.out"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "driftloop.cli", *argv],  # noqa: S603
                                   env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "SaslAuthenticate" not in log.read_text():
            assert process.poll() is None, log.read_text()[-5000:]
            time.sleep(0.5)
        time.sleep(5)  # connections, a group join (retrain), fetches
        assert process.poll() is None, log.read_text()[-5000:]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    output = log.read_text()
    _assert_clean(output)
    assert "SaslAuthenticate" in output
    if argv[0] == "retrain":  # serve joins its group only once it has a model
        assert '"logger": "kafka.coordinator' in output, "it joined its consumer group"
