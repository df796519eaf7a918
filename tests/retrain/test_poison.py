"""No message stops the retrain process: hostile drift events and model updates are
dead-lettered, and a valid request behind them is still run."""

from __future__ import annotations

from collections import Counter

from retrain.runs import RunStore
from streams.db import Database
from streams.events import RetrainRequested
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment, on_each_broker_and_database
from tests.retrain.helpers import FAST, MODEL, T0, agrawal, seed_store
from tests.retrain.process_helpers import running, send, wait_for_request
from tests.streams.kafka_helpers import produce_raw, read_all
from tests.streams.poison import TS, common, dumps, update_cases


def _drift_cases() -> list[tuple[str, bytes | None]]:
    request = {"type": "retrain_requested", "schema_version": 1, "event_id": "q-bad",
               "model": MODEL, "reasons": ["drift"], "timestamp": TS}
    return [
        *common(request),
        ("no reasons", dumps({**request, "reasons": []})),
        ("champion_version 2^63", dumps({**request, "champion_version": 2**63})),
        ("evidence nested 1,000 deep", dumps(request).replace(
            b'"reasons"', b'"evidence": {"a": ' + b"[" * 1_000 + b"]" * 1_000 + b'}, "reasons"')),
        ("report rows 10^30", dumps({"type": "drift_report", "event_id": "d", "model": MODEL,
                                     "window_id": "w", "window_start": TS, "window_end": TS,
                                     "rows": 10**30, "drifted_share": 0.1,
                                     "drift_detected": False, "timestamp": TS})),
    ]


@on_each_broker_and_database
def test_hostile_drift_events_and_updates_never_stop_retraining(
    broker: BrokerInfo, database: Database, deployment_factory,  # type: ignore[no-untyped-def]
) -> None:
    dep: Deployment = deployment_factory(broker, partitions=1, models=(MODEL,),
                                         database={"url": database.url}, retrain=FAST)
    seed_store(database, agrawal(800, function=0), prefix="a")
    drift_cases, update_bad = _drift_cases(), update_cases()
    produce_raw(broker.bootstrap, dep.names(Topic.DRIFT), [p for _, p in drift_cases])
    produce_raw(broker.bootstrap, dep.names(Topic.MODEL_UPDATES), [p for _, p in update_bad])
    runs = RunStore(database)
    with running(dep.settings):
        send(dep.settings, Topic.DRIFT, [RetrainRequested(
            event_id="req-after-poison", model=MODEL, reasons=("drift",), timestamp=T0)])
        assert wait_for_request(runs, "req-after-poison").status == "done"
        dead = read_all(broker.bootstrap, dep.names(Topic.DEAD_LETTER),
                        expect=len(drift_cases) + len(update_bad))
    topics = Counter(dict(m.headers)["dl-topic"].decode().rsplit(".", 1)[1] for m in dead)
    assert topics == {"drift": len(drift_cases), "model-updates": len(update_bad)}
