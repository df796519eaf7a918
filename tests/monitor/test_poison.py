"""No message stops the monitor: hostile predictions, feedback and model updates are
dead-lettered, and every valid event around them is stored exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from streams.db import Database
from streams.settings import MonitorSettings
from streams.store import ExampleRow, FeedbackRow, PredictionRow
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment, on_each_broker_and_database
from tests.monitor.harness import running
from tests.streams.kafka_helpers import produce_raw, read_all
from tests.streams.poison import (
    dumps,
    feedback,
    feedback_cases,
    prediction,
    prediction_cases,
    random_payloads,
    update_cases,
)

QUIET = MonitorSettings(drift_kinds=(), drift_workers="thread")


def _interleave(bad: list[tuple[str, bytes | None]], good: list[bytes]) -> list[bytes | None]:
    out: list[bytes | None] = []
    for i, (_, payload) in enumerate(bad):
        out.append(payload)
        if i < len(good):
            out.append(good[i])
    return out + good[len(bad):]


@on_each_broker_and_database
def test_hostile_events_are_dead_lettered_and_valid_ones_stored_once(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], database: Database
) -> None:
    dep = deployment_factory(broker, partitions=1, monitor=QUIET, models=("churn",))
    bad_predictions, bad_feedback, bad_updates = (
        prediction_cases(), feedback_cases(), update_cases())
    valid = [f"v{i}" for i in range(40)]
    predictions = _interleave(bad_predictions, [dumps(prediction(rid)) for rid in valid])
    labels = _interleave(bad_feedback, [dumps(feedback(rid)) for rid in valid])
    updates: list[bytes | None] = [payload for _, payload in bad_updates]
    produce_raw(broker.bootstrap, dep.names(Topic.PREDICTIONS), predictions)
    produce_raw(broker.bootstrap, dep.names(Topic.FEEDBACK), labels)
    produce_raw(broker.bootstrap, dep.names(Topic.MODEL_UPDATES), updates)
    total = len(predictions) + len(labels) + len(updates)
    bad = len(bad_predictions) + len(bad_feedback) + len(bad_updates)

    with running(dep, database) as run:
        run.drain(lambda: run.loop.stats.consumed >= total, max_polls=600)
        assert run.loop.stats.consumed == total
        dead = read_all(broker.bootstrap, dep.names(Topic.DEAD_LETTER), expect=bad)
    assert sum(run.loop.stats.dead_lettered.values()) == bad
    assert len(dead) == bad
    sources = Counter(dict(m.headers)["dl-topic"].decode().rsplit(".", 1)[1] for m in dead)
    assert sources == {"predictions": len(bad_predictions), "feedback": len(bad_feedback),
                       "model-updates": len(bad_updates)}
    with database.session() as session:
        stored = Counter(session.execute(select(PredictionRow.request_id)).scalars())
        labelled = Counter(session.execute(select(FeedbackRow.request_id)).scalars())
        examples = Counter(session.execute(select(ExampleRow.request_id)).scalars())
    assert stored == Counter(valid)
    assert labelled == Counter(valid)
    assert examples == Counter(valid)


@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
@given(junk=st.lists(random_payloads(), min_size=30, max_size=60))
def test_random_junk_on_every_topic_never_stops_the_monitor(
    junk: list[bytes], tansu: BrokerInfo, deployment_factory: Callable[..., Deployment],
    database: Database,
) -> None:
    dep = deployment_factory(tansu, partitions=1, monitor=QUIET, models=("churn",))
    valid = [f"v{i}" for i in range(len(junk))]
    topics = [Topic.PREDICTIONS, Topic.FEEDBACK, Topic.MODEL_UPDATES]
    for topic in topics:
        good = {Topic.PREDICTIONS: [dumps(prediction(r)) for r in valid],
                Topic.FEEDBACK: [dumps(feedback(r)) for r in valid]}.get(topic, [])
        produce_raw(tansu.bootstrap, dep.names(topic),
                    _interleave([("junk", p) for p in junk], good))
    total = 3 * len(junk) + 2 * len(valid)
    with running(dep, database) as run:
        run.drain(lambda: run.loop.stats.consumed >= total, max_polls=600)
        dead = read_all(tansu.bootstrap, dep.names(Topic.DEAD_LETTER), expect=3 * len(junk))
    assert run.loop.stats.consumed == total
    assert len(dead) == 3 * len(junk)
    with database.session() as session:
        stored = Counter(session.execute(select(PredictionRow.request_id)).scalars())
        examples = Counter(session.execute(select(ExampleRow.request_id)).scalars())
    assert stored == Counter(valid)
    assert examples == Counter(valid)
