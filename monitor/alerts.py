"""``driftloop alerts``: tell someone what the loop saw and did, by rules, through Apprise.

One consumer group (``<prefix>-<alerts.group_id>``) reads the drift, model-updates and
dead-letter topics. Each event becomes zero or more *happenings*, each of one alert event kind:

* ``drift``: a window Evidently found drifted, or a retrain request for a drift reason
  (a detector, data drift, windowed performance);
* ``data_quality``: a window with a feature whose nulls, out-of-range numbers or unseen
  categories broke the margin, or a request for that reason;
* ``promotion``, ``rollback``, ``swap_refused``: ``ModelPromoted``, ``ModelRolledBack`` and
  ``SwapFailed``;
* ``dead_letter_spike``: ``alerts.dead_letters_per_minute`` dead letters within a minute
  (model ``*``: a dead letter may not name one).

A happening is told once per matching rule (its event, and its model or ``*``): not again
for the same model within the rule's ``cooldown_s``, and not the same text within its
``dedup_s``. Events older than ``alerts.max_age_s`` are not told, so a first start that reads
the topics' history does not replay it as news. Every alert carries the model, the reason
and a link to the dashboard page that shows it.

Delivery runs on its own thread behind a bounded queue, so an unreachable endpoint never
holds up the consumer: each alert is tried ``alerts.attempts`` times with capped exponential
backoff, and sent, failed, dropped (queue full) and suppressed alerts are counted
(``driftloop_alerts_total``). Offsets are committed once an alert is queued: an alert queued
when the process dies is lost, an event is never told twice. With no ``alerts.urls`` alerts
are logged only.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from streams.backoff import Backoff, Stopped, on_stop, retry
from streams.clock import Clock, utc_now
from streams.codec import Decoder
from streams.consumer import Batch, ConsumerLoop, LoopStats
from streams.events import (
    DriftEvent,
    DriftReport,
    ModelPromoted,
    ModelRolledBack,
    ModelUpdate,
    RetrainRequested,
    SwapFailed,
)
from streams.metrics import serve_metrics
from streams.producer import Producer
from streams.settings import AlertRule, AlertSettings, Settings
from streams.topics import Topic, TopicNames

log = logging.getLogger(__name__)

ALERTS = Counter("driftloop_alerts_total", "Alerts by rule event and outcome "
                 "(sent, failed, dropped, suppressed, logged).", ["event", "outcome"])

#: Dashboard page (its URL path) that shows each kind of happening.
PAGES = {"drift": "drift", "data_quality": "drift", "estimated_drop": "drift",
         "promotion": "models", "rollback": "models", "swap_refused": "models",
         "dead_letter_spike": ""}
QUALITY = "data_quality"
#: The policy's reason for an estimated score below its band (:mod:`monitor.estimate`).
ESTIMATED = "estimated_performance"
#: Told texts kept for deduplication before the expired ones are dropped.
MAX_REMEMBERED = 1_000
WINDOW_S = 60.0


@dataclass(frozen=True)
class Happening:
    """Something worth telling: its alert event kind, its model and what happened."""

    event: str
    model: str
    reason: str


def happenings(event: Any) -> list[Happening]:
    """What one drift or model-updates event has to tell."""
    if isinstance(event, DriftReport):
        found = []
        if event.drift_detected:
            found.append(Happening("drift", event.model, (
                f"window {event.window_id}: {event.drifted_share:.0%} of columns drifted")))
        violated = [q.column for q in event.quality if q.violated]
        if violated:
            found.append(Happening(QUALITY, event.model, (
                f"window {event.window_id}: data quality broken in {', '.join(violated)}")))
        return found
    if isinstance(event, RetrainRequested):
        drift = [r for r in event.reasons if r not in (QUALITY, ESTIMATED)]
        found = [Happening("drift", event.model,
                           f"retraining requested: {', '.join(drift)}")] if drift else []
        if QUALITY in event.reasons:
            found.append(Happening(QUALITY, event.model, "retraining requested: data_quality"))
        if ESTIMATED in event.reasons:
            found.append(Happening("estimated_drop", event.model, "retraining requested: "
                                   "estimated performance fell below its band, before labels"))
        return found
    if isinstance(event, ModelPromoted):
        why = f" ({event.reason})" if event.reason else ""
        return [Happening("promotion", event.model,
                          f"v{event.version} promoted by {event.actor}{why}")]
    if isinstance(event, ModelRolledBack):
        why = f" ({event.reason})" if event.reason else ""
        return [Happening("rollback", event.model, f"rolled back from v{event.from_version} "
                          f"to v{event.version} by {event.actor}{why}")]
    if isinstance(event, SwapFailed):
        return [Happening("swap_refused", event.model,
                          f"serving {event.instance} refused v{event.version}: {event.error}")]
    return []


@dataclass(frozen=True)
class Alert:
    rule: AlertRule
    happening: Happening
    link: str

    @property
    def title(self) -> str:
        return f"driftloop {self.rule.severity}: {self.happening.event} on {self.happening.model}"

    @property
    def body(self) -> str:
        return f"{self.happening.model}: {self.happening.reason}\n{self.link}"


class Rules:
    """Which rules a happening fires, given what was told lately (pure: the clock is passed)."""

    def __init__(self, settings: AlertSettings) -> None:
        self._rules = settings.rules
        self._base = settings.dashboard_url.rstrip("/")
        self._last: dict[tuple[int, str], float] = {}
        self._said: dict[tuple[int, str, str], float] = {}

    def link(self, happening: Happening) -> str:
        return f"{self._base}/{PAGES.get(happening.event, '')}"

    def fire(self, happening: Happening, now: float) -> list[Alert]:
        if len(self._said) > MAX_REMEMBERED:
            self._forget(now)
        alerts = []
        for i, rule in enumerate(self._rules):
            if rule.event != happening.event or rule.model not in ("*", happening.model):
                continue
            last = self._last.get((i, happening.model))
            said = self._said.get((i, happening.model, happening.reason))
            if (last is not None and now - last < rule.cooldown_s) or (
                    said is not None and now - said < rule.dedup_s):
                ALERTS.labels(event=rule.event, outcome="suppressed").inc()
                continue
            self._last[(i, happening.model)] = now
            self._said[(i, happening.model, happening.reason)] = now
            alerts.append(Alert(rule, happening, self.link(happening)))
        return alerts

    def _forget(self, now: float) -> None:
        """Drop what no rule's cooldown or dedup window still covers (texts name windows, so
        without this the dedup memory would grow with every window)."""
        keep = max((max(r.cooldown_s, r.dedup_s) for r in self._rules), default=0.0)
        self._last = {k: t for k, t in self._last.items() if now - t < keep}
        self._said = {k: t for k, t in self._said.items() if now - t < keep}

    @property
    def remembered(self) -> int:
        return len(self._said)


class DeadLetterRate:
    """Dead letters over the last minute; a spike each time the count reaches the limit."""

    def __init__(self, per_minute: int) -> None:
        self._limit = per_minute
        self._seen: deque[float] = deque()

    def add(self, at: Iterable[float], now: float) -> Happening | None:
        self._seen.extend(at)
        while self._seen and now - self._seen[0] > WINDOW_S:
            self._seen.popleft()
        if len(self._seen) < self._limit:
            return None
        count = len(self._seen)
        self._seen.clear()
        return Happening("dead_letter_spike", "*",
                         f"{count} dead letters within {WINDOW_S:.0f} s")


Send = Callable[[Alert], bool]


def apprise_sender(urls: Iterable[str]) -> Send:
    """Deliver through Apprise to every URL; True when all took it."""
    import apprise  # type: ignore[import-untyped, unused-ignore]

    kinds = {"info": apprise.NotifyType.INFO, "warning": apprise.NotifyType.WARNING,
             "critical": apprise.NotifyType.FAILURE}
    targets = apprise.Apprise()
    for url in urls:
        if not targets.add(url):
            raise ValueError("alerts.urls holds a URL Apprise does not know")

    def send(alert: Alert) -> bool:
        return bool(targets.notify(body=alert.body, title=alert.title,
                                   notify_type=kinds[alert.rule.severity]))

    return send


class Notifier:
    """Delivers alerts on its own thread, retrying each with backoff; never blocks the caller."""

    def __init__(self, send: Send | None, settings: AlertSettings) -> None:
        self._send = send
        self._settings = settings
        self._queue: queue.Queue[Alert] = queue.Queue(maxsize=settings.queue)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="alerts-notifier")
        self._thread.start()

    def submit(self, alert: Alert) -> None:
        log.warning("alert", extra={"event": alert.happening.event, "model":
                                    alert.happening.model, "reason": alert.happening.reason,
                                    "severity": alert.rule.severity, "link": alert.link})
        if self._send is None:
            ALERTS.labels(event=alert.rule.event, outcome="logged").inc()
            return
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            ALERTS.labels(event=alert.rule.event, outcome="dropped").inc()

    @property
    def waiting(self) -> int:
        """Alerts queued and not yet taken up for delivery."""
        return self._queue.qsize()

    def idle(self) -> bool:
        """Nothing waits or is being delivered."""
        return self._queue.unfinished_tasks == 0

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                alert = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                if self._send is not None:
                    self._deliver(alert, self._send)
            finally:
                self._queue.task_done()

    def _deliver(self, alert: Alert, send: Send) -> None:
        backoff = Backoff(1.0, self._settings.retry_max_s)
        for attempt in range(1, self._settings.attempts + 1):
            try:
                sent = send(alert)
            except Exception as exc:  # noqa: BLE001 - a notifier bug must not stop delivery
                log.warning("alert delivery raised", extra={"error": f"{type(exc).__name__}"})
                sent = False
            if sent:
                ALERTS.labels(event=alert.rule.event, outcome="sent").inc()
                return
            if attempt < self._settings.attempts and self._stop.wait(backoff.failed()):
                break
        ALERTS.labels(event=alert.rule.event, outcome="failed").inc()
        log.warning("alert not delivered", extra={
            "event": alert.happening.event, "model": alert.happening.model,
            "attempts": self._settings.attempts})


class _DeadLetters(Decoder[Any]):
    """Every dead letter decodes (to its size): the alerts only count them."""

    def decode(self, payload: bytes | None) -> Any:
        return len(payload or b"")


class AlertHandler:
    """The consumer loop's handler: events to happenings, happenings to rules, to delivery."""

    def __init__(self, settings: Settings, notifier: Notifier, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Clock = utc_now) -> None:
        self._settings = settings.alerts
        self.rules = Rules(settings.alerts)
        self._dead = DeadLetterRate(settings.alerts.dead_letters_per_minute)
        self._dead_letter_topic = TopicNames(settings.topics.prefix)(Topic.DEAD_LETTER)
        self._notifier = notifier
        self._clock = clock
        self._wall = wall

    def __call__(self, batch: Batch[Any]) -> None:
        now, wall = self._clock(), self._wall()
        oldest = wall.timestamp() - self._settings.max_age_s
        dead: list[float] = []
        for record in batch.records:
            if record.topic == self._dead_letter_topic:
                if record.timestamp_ms / 1000.0 >= oldest:
                    dead.append(now)
                continue
            if record.event.timestamp.timestamp() < oldest:
                continue
            for happening in happenings(record.event):
                self._tell(happening, now)
        if dead:
            spike = self._dead.add(dead, now)
            if spike is not None:
                self._tell(spike, now)

    def _tell(self, happening: Happening, now: float) -> None:
        for alert in self.rules.fire(happening, now):
            self._notifier.submit(alert)


def build_loop(settings: Settings, handler: AlertHandler, producer: Producer
               ) -> ConsumerLoop[Any]:
    names = TopicNames(settings.topics.prefix)
    max_bytes = settings.kafka.max_message_bytes
    decoders: dict[str, Decoder[Any]] = {
        names(Topic.DRIFT): Decoder(DriftEvent, max_bytes=max_bytes),
        names(Topic.MODEL_UPDATES): Decoder(ModelUpdate, max_bytes=max_bytes),
        names(Topic.DEAD_LETTER): _DeadLetters(bytes, max_bytes=max_bytes),
    }
    return ConsumerLoop(
        settings.kafka, topics=list(decoders), group_id=f"{settings.topics.prefix}-"
        f"{settings.alerts.group_id}", decoders=decoders, handler=handler, producer=producer,
        dead_letter_topic=names(Topic.DEAD_LETTER),
    )


def run_alerts(settings: Settings, *, stop: threading.Event | None = None) -> LoopStats:
    """Run ``driftloop alerts`` until ``stop`` is set."""
    stop = stop or threading.Event()
    urls = [u.get_secret_value() for u in settings.alerts.urls]
    notifier = Notifier(apprise_sender(urls) if urls else None, settings.alerts)
    serve_metrics(settings.alerts.metrics_port)
    try:
        producer = retry("connect to Kafka", lambda: Producer(
            settings.kafka, client_id=f"{settings.kafka.client_id}-alerts"),
            component="alerts-start", stop=stop)
    except Stopped:
        notifier.close()
        return LoopStats()
    try:
        handler = AlertHandler(settings, notifier)
        loop = retry("join the alerts' consumer group", lambda: build_loop(
            settings, handler, producer), component="alerts-start", stop=stop)
        on_stop(stop, loop.stop, name="alerts-stop")
        log.info("alerts running", extra={"rules": len(settings.alerts.rules),
                                          "targets": len(urls)})
        return loop.run()
    except Stopped:
        return LoopStats()
    finally:
        notifier.close()
        producer.close()
