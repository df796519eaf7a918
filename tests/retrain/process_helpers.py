"""Run the retrain process in a thread, talk to it over Kafka, wait for what it records."""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from retrain.process import run_retrain
from retrain.runs import RequestInfo, RunStore
from streams.codec import Decoder
from streams.events import Event, ModelUpdate
from streams.producer import Producer
from streams.settings import Settings
from streams.topics import Topic, TopicNames
from tests.streams.kafka_helpers import read_all


@contextmanager
def running(settings: Settings) -> Iterator[None]:
    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run_retrain(settings, stop=stop, on_ready=ready.set)
        except BaseException as exc:  # surfaced by the test below
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=target, name="retrain-process")
    thread.start()
    try:
        assert ready.wait(60), "the retrain process never became ready"
        assert not errors, errors
        yield
    finally:
        stop.set()
        thread.join(60)
        assert not thread.is_alive(), (
            "the retrain process did not stop; its threads:\n" + _stacks())
    assert not errors, errors


def _stacks() -> str:
    """Where every thread of this process stands, for a failure that hangs."""
    names = {t.ident: t.name for t in threading.enumerate()}
    return "\n".join(f"-- {names.get(ident, ident)}\n{''.join(traceback.format_stack(frame))}"
                     for ident, frame in sys._current_frames().items())


def send(settings: Settings, topic: Topic, events: Sequence[Event]) -> None:
    with Producer(settings.kafka) as producer:
        for event in events:
            producer.send(TopicNames(settings.topics.prefix)(topic), event,
                          key=getattr(event, "model", None))


def wait_for_request(runs: RunStore, event_id: str, *, timeout_s: float = 90) -> RequestInfo:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        request = runs.request(event_id)
        if request is not None and request.status not in ("pending", "running"):
            return request
        time.sleep(0.1)
    raise AssertionError(f"request {event_id} not finished: {runs.request(event_id)}")


def wait_until(condition: Callable[[], Any], *, timeout_s: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or condition}")


def model_updates(settings: Settings, *, expect: int, timeout_s: float = 30) -> list[Any]:
    """Every event on the model-updates topic, waiting up to ``timeout_s`` for ``expect``."""
    topic = TopicNames(settings.topics.prefix)(Topic.MODEL_UPDATES)
    decoder: Decoder[Any] = Decoder(ModelUpdate, max_bytes=settings.kafka.max_message_bytes)
    messages = read_all(settings.kafka.bootstrap_servers, topic, expect=expect, timeout_s=timeout_s)
    return [decoder.decode(m.value) for m in messages]
