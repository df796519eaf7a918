"""``driftloop alerts``: rules, cooldowns and delivery, against a real broker and a local
webhook receiver started by the test (Apprise's ``json://``)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from monitor.alerts import (
    ALERTS,
    Alert,
    DeadLetterRate,
    Happening,
    Notifier,
    Rules,
    happenings,
    run_alerts,
)
from streams.events import (
    ColumnQuality,
    DriftReport,
    ModelPromoted,
    ModelRolledBack,
    RetrainRequested,
    SwapFailed,
)
from streams.producer import Producer
from streams.settings import AlertRule, AlertSettings, Settings
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment

NOW = datetime.now(UTC)
SHA = "a" * 64


def _report(i: int, *, drifted: bool = True, null_column: str | None = None,
            at: datetime = NOW) -> DriftReport:
    quality = () if null_column is None else (ColumnQuality(
        column=null_column, missing=0.6, reference_missing=0.0, violated=True),)
    return DriftReport(event_id=f"dr{i}", model="churn", model_version=1, window_id=f"w{i}",
                       window_start=at - timedelta(minutes=5), window_end=at, rows=300,
                       drifted_share=0.8 if drifted else 0.1, drift_detected=drifted,
                       quality=quality, timestamp=at)


def _promoted(version: int, at: datetime = NOW) -> ModelPromoted:
    return ModelPromoted(event_id=f"p{version}", model="churn", version=version,
                         artifact_uri=f"file:///a/{version}", sha256=SHA, actor="retrain",
                         reason="better on holdout", timestamp=at)


def test_events_become_the_happenings_rules_are_written_against() -> None:
    assert [(h.event, h.reason) for h in happenings(_report(1, null_column="salary"))] == [
        ("drift", "window w1: 80% of columns drifted"),
        ("data_quality", "window w1: data quality broken in salary")]
    assert happenings(_report(2, drifted=False)) == []
    request = RetrainRequested(event_id="r1", model="churn", reasons=(
        "detector:adwin", "data_quality"), timestamp=NOW)
    assert [h.event for h in happenings(request)] == ["drift", "data_quality"]
    early = RetrainRequested(event_id="r2", model="churn", reasons=("estimated_performance",),
                             timestamp=NOW)
    assert [h.event for h in happenings(early)] == ["estimated_drop"]
    assert happenings(_promoted(3)) == [
        Happening("promotion", "churn", "v3 promoted by retrain (better on holdout)")]
    back = ModelRolledBack(event_id="b", model="churn", version=2, from_version=3,
                           artifact_uri="file:///a/2", sha256=SHA, timestamp=NOW)
    assert happenings(back)[0].reason == "rolled back from v3 to v2 by driftloop"
    refused = SwapFailed(event_id="s", model="churn", version=3, instance="srv-1",
                         error="canary: non-finite outputs", timestamp=NOW)
    assert happenings(refused)[0] == Happening(
        "swap_refused", "churn", "serving srv-1 refused v3: canary: non-finite outputs")


def test_a_rule_tells_once_per_cooldown_and_a_repeat_once_per_dedup_window() -> None:
    rules = Rules(AlertSettings(dashboard_url="http://dash:8501/", rules=(
        AlertRule(event="drift", cooldown_s=600, dedup_s=3600),
        AlertRule(event="drift", model="fraud", severity="critical"),
    )))
    first = Happening("drift", "churn", "window w1 drifted")
    other = Happening("drift", "churn", "window w2 drifted")
    (alert,) = rules.fire(first, now=0.0)
    assert alert.link == "http://dash:8501/drift"
    assert alert.title == "driftloop warning: drift on churn"
    assert alert.body == "churn: window w1 drifted\nhttp://dash:8501/drift"
    assert rules.fire(other, now=599.0) == [], "within the cooldown"
    assert rules.fire(first, now=700.0) == [], "the same text within the dedup window"
    assert len(rules.fire(other, now=700.0)) == 1
    assert len(rules.fire(Happening("drift", "fraud", "x"), now=0.0)) == 2  # '*' and 'fraud'
    assert rules.fire(Happening("rollback", "churn", "x"), now=0.0) == []


def test_what_no_window_covers_any_more_is_forgotten() -> None:
    from monitor.alerts import MAX_REMEMBERED

    rules = Rules(AlertSettings(rules=(AlertRule(event="drift", cooldown_s=0, dedup_s=60),)))
    for i in range(3 * MAX_REMEMBERED):  # one new text a second, as window ids make them
        assert len(rules.fire(Happening("drift", "churn", f"window w{i}"), now=float(i)))
        assert rules.remembered <= MAX_REMEMBERED + 1
    assert rules.fire(Happening("drift", "churn", f"window w{3 * MAX_REMEMBERED - 1}"),
                      now=3.0 * MAX_REMEMBERED) == [], "a recent text is still remembered"


def test_dead_letters_spike_when_a_minute_holds_the_limit() -> None:
    rate = DeadLetterRate(per_minute=5)
    assert rate.add([0.0, 1.0, 2.0], now=2.0) is None
    assert rate.add([70.0], now=70.0) is None, "the first three are over a minute old"
    spike = rate.add([71.0, 72.0, 73.0, 74.0], now=74.0)
    assert spike == Happening("dead_letter_spike", "*", "5 dead letters within 60 s")
    assert rate.add([75.0], now=75.0) is None, "a spike starts the count afresh"


def test_rules_naming_unknown_events_or_models_are_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="unknown alert event 'drfit'"):
        AlertRule(event="drfit")
    with pytest.raises(ValidationError, match=r"alert rules name unknown models \['fraud'\]"):
        Settings(models=("churn",), alerts=AlertSettings(rules=(
            AlertRule(event="drift", model="fraud"),)))
    Settings(models=(), alerts=AlertSettings(rules=(AlertRule(event="drift", model="x"),)))


def test_the_tokens_of_alert_urls_are_secrets_for_the_log_filter() -> None:
    settings = Settings(alerts=AlertSettings(urls=(
        SecretStr("slack://T0AAAAAAA/B0BBBBBBB/abcdefghijklmnop"),
        SecretStr("json://user:hunter2hunter2@hooks.example.com/path?token=s3cr3tvalue"))))
    secrets = settings.secret_values()
    for token in ("T0AAAAAAA", "B0BBBBBBB", "abcdefghijklmnop", "hunter2hunter2",
                  "s3cr3tvalue"):
        assert token in secrets


# -- delivery -------------------------------------------------------------------------------


class Receiver:
    """A webhook endpoint on a free local port; keeps every JSON body it is sent."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        received = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    try:
        yield receiver
    finally:
        receiver.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(until: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not until():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _count(event: str, outcome: str) -> float:
    return ALERTS.labels(event=event, outcome=outcome)._value.get()  # type: ignore[attr-defined]


def test_an_unreachable_webhook_is_retried_counted_and_never_blocks() -> None:
    from monitor.alerts import apprise_sender

    settings = AlertSettings(attempts=3, retry_max_s=0.2, queue=2)
    notifier = Notifier(apprise_sender([f"json://127.0.0.1:{_closed_port()}/hook"]), settings)
    failed, dropped = _count("rollback", "failed"), _count("rollback", "dropped")
    alert = Alert(AlertRule(event="rollback"), Happening("rollback", "churn", "x"), "link")
    try:
        notifier.submit(alert)
        _wait(lambda: notifier.waiting == 0, "the first alert to be taken up")
        for _ in range(4):  # returns at once: two queued behind the first, two dropped
            notifier.submit(alert)
        assert notifier.waiting == 2
        assert not notifier.idle()
        _wait(notifier.idle, "the three deliveries to give up")
    finally:
        notifier.close()
    assert _count("rollback", "failed") - failed == 3
    assert _count("rollback", "dropped") - dropped == 2


def test_drift_leads_to_one_webhook_call_per_rule_within_its_cooldown(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment]
) -> None:
    with receiving() as receiver:
        alerts = AlertSettings(urls=(SecretStr(receiver.url),), dashboard_url="http://dash",
                               dead_letters_per_minute=3, rules=(
            AlertRule(event="drift"), AlertRule(event="data_quality", severity="critical"),
            AlertRule(event="promotion", severity="info", cooldown_s=0),
            AlertRule(event="dead_letter_spike"),
        ))
        dep = deployment_factory(broker, partitions=1, alerts=alerts)
        stale = NOW - timedelta(hours=3)
        with Producer(dep.kafka) as producer:
            drift, updates = dep.names(Topic.DRIFT), dep.names(Topic.MODEL_UPDATES)
            producer.send(drift, _report(0, at=stale), key="churn")  # history: not news
            for i in range(1, 4):  # three drifted windows, the last with a null feature
                producer.send(drift, _report(i, null_column="salary" if i == 3 else None),
                              key="churn")
            producer.send(drift, RetrainRequested(
                event_id="r1", model="churn", reasons=("detector:adwin",), timestamp=NOW),
                key="churn")
            producer.send(updates, _promoted(2), key="churn")
            producer.send(updates, _promoted(3), key="churn")
            for i in range(3):
                producer.send_raw(dep.names(Topic.DEAD_LETTER), b"junk %d" % i)
            producer.flush()

        stop = threading.Event()
        runner = threading.Thread(target=run_alerts, args=(dep.settings,),
                                  kwargs={"stop": stop}, daemon=True)
        runner.start()
        try:
            _wait(lambda: len(receiver.calls) >= 5, "five webhook calls")
            time.sleep(2.0)  # nothing more comes
        finally:
            stop.set()
            runner.join(30)
        assert not runner.is_alive()

    by_title = sorted((c["title"], c["message"], c["type"]) for c in receiver.calls)
    assert by_title == [
        ("driftloop critical: data_quality on churn",
         "churn: window w3: data quality broken in salary\nhttp://dash/drift", "failure"),
        ("driftloop info: promotion on churn",
         "churn: v2 promoted by retrain (better on holdout)\nhttp://dash/models", "info"),
        ("driftloop info: promotion on churn",
         "churn: v3 promoted by retrain (better on holdout)\nhttp://dash/models", "info"),
        ("driftloop warning: dead_letter_spike on *",
         "*: 3 dead letters within 60 s\nhttp://dash/", "warning"),
        ("driftloop warning: drift on churn",
         "churn: window w1: 80% of columns drifted\nhttp://dash/drift", "warning"),
    ]


def test_the_shipped_prometheus_rules_name_metrics_and_labels_that_exist() -> None:
    import re
    from pathlib import Path

    import yaml
    from prometheus_client import REGISTRY

    import monitor.metrics  # noqa: F401 - each registers its metrics on import
    import serving.metrics  # noqa: F401
    import streams.metrics  # noqa: F401

    collectors = REGISTRY._names_to_collectors  # type: ignore[attr-defined]
    doc = yaml.safe_load((Path(__file__).parents[2] / "monitor" / "prometheus-rules.yml")
                         .read_text())
    rules = doc["groups"][0]["rules"]
    assert len(rules) >= 8
    for rule in rules:
        names = re.findall(r"\bdriftloop_[a-z_]+", rule["expr"])
        assert names, rule["alert"]
        for name in names:
            assert name in collectors, f"{rule['alert']}: no metric {name}"
            labels = set(collectors[name]._labelnames)
            used = {label.strip() for group in re.findall(r"by \(([^)]*)\)", rule["expr"])
                    for label in group.split(",")}
            used |= set(re.findall(r"(\w+)=\"", rule["expr"]))
            assert used <= labels, f"{rule['alert']}: {name} has no labels {used - labels}"
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
