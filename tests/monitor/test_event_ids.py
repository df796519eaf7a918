"""A reused event id is a conflict, dead-lettered with its reason; it is never dropped silently."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from streams.codec import encode
from streams.db import Database
from streams.settings import MonitorSettings
from streams.store import ExampleRow, FeedbackRow, PredictionRow
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment, on_memory
from tests.monitor.events import feedback, prediction
from tests.monitor.harness import running
from tests.streams.kafka_helpers import produce_raw, read_all

# The monitor's handling of what it reads; tests/monitor/test_process.py runs it on the
# real brokers.
pytestmark = on_memory

QUIET = MonitorSettings(drift_kinds=(), drift_workers="thread")


def test_reused_event_ids_are_conflicts_and_make_no_labelled_example(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], database: Database
) -> None:
    dep = deployment_factory(broker, partitions=1, monitor=QUIET)
    bootstrap = broker.bootstrap
    first = [prediction("p0", event_id="e0"), prediction("p1", event_id="e1")]
    produce_raw(bootstrap, dep.names(Topic.PREDICTIONS), [encode(p) for p in first])
    produce_raw(bootstrap, dep.names(Topic.FEEDBACK), [encode(feedback("p0", event_id="fa"))])
    with running(dep, database) as run:
        run.drain(lambda: run.loop.stats.consumed >= 3)
        # A prediction for another request under a stored event id, and one reusing an id
        # earlier in the same batch; then feedback for them, feedback reusing a stored
        # feedback's id with another label, and a plain replay of stored feedback.
        produce_raw(bootstrap, dep.names(Topic.PREDICTIONS), [
            encode(prediction("p2", event_id="e0")),
            encode(prediction("p3", event_id="e3")), encode(prediction("p4", event_id="e3")),
        ])
        produce_raw(bootstrap, dep.names(Topic.FEEDBACK), [
            encode(feedback("p2", event_id="fb")), encode(feedback("p4", event_id="fc")),
            encode(feedback("p1", "leave", event_id="fa")),
            encode(feedback("p0", event_id="fa")),
        ])
        run.drain(lambda: run.loop.stats.consumed >= 10)

        assert run.loop.stats.dead_lettered == {"conflict": 3}
        dead = read_all(bootstrap, dep.names(Topic.DEAD_LETTER), expect=3)
        errors = sorted(dict(m.headers)["dl-error"].decode() for m in dead)
        assert errors[0].startswith("event id 'e0' is already the prediction for request 'p0'")
        assert errors[1].startswith("event id 'e3' is already the prediction for request 'p3'")
        assert errors[2].startswith("event id 'fa' is already feedback")
        with database.session() as session:
            predictions = dict(session.execute(
                select(PredictionRow.request_id, PredictionRow.event_id)).all())
            stored_feedback = sorted(session.execute(
                select(FeedbackRow.event_id, FeedbackRow.request_id)).all())
            examples = sorted(session.execute(select(ExampleRow.request_id)).scalars())
        assert predictions == {"p0": "e0", "p1": "e1", "p3": "e3"}
        assert stored_feedback == [("fa", "p0"), ("fb", "p2"), ("fc", "p4")]
        assert examples == ["p0"], "feedback without its prediction makes no example"
