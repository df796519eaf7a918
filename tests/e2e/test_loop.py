"""Done when: the whole loop, as separate processes on a real broker and database, adapts to an
abrupt drift: drift detected, a challenger trained and promoted, serving switched to it with no
request lost, and accuracy after the swap above the level just before it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from sqlalchemy import func, select

from driftloop.lab.adaptation import accuracy
from driftloop.lab.prequential import Record
from driftloop.lab.scenarios import get_scenario
from driftloop.lab.system_run import load_system_run
from driftloop.local.demo import Demo, DemoOptions, DemoResult
from driftloop.local.loop import LocalLoop
from retrain.runs import RunStore
from streams.events import ModelPromoted, RetrainRequested
from streams.settings import KafkaSettings, Settings
from streams.store import PredictionRow
from tests.conftest import BrokerInfo

#: 8,000 events: warm-up 800, drifts at 3,200 (Agrawal 6 -> 0) and 5,600; labels 133 events late.
SCENARIO = get_scenario("abrupt").resized(8_000)
SPEED = 2.0  # 200 requests per second


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_loop_detects_an_abrupt_drift_and_recovers(tansu: BrokerInfo, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, kafka=KafkaSettings(bootstrap_servers=tansu.bootstrap))
    seen: dict[str, Any] = {}

    def inspect(loop: LocalLoop, result: DemoResult) -> None:
        seen["run"] = load_system_run(loop.db, SCENARIO, model=result.model,
                                      prefix=result.prefix)
        seen["runs"] = RunStore(loop.db).runs(result.model)
        stmt = (select(PredictionRow.request_id, func.count())
                .where(PredictionRow.model == result.model)
                .group_by(PredictionRow.request_id))
        with loop.db.session() as session:
            seen["per_request"] = dict(session.execute(stmt).all())

    options = DemoOptions(scenario="abrupt", broker="external", speed=SPEED, dashboard=False,
                          workdir=tmp_path / "loop", exit_when_done=True)
    demo = Demo(settings, options, console=Console(stderr=True, width=150),
                after_stream=inspect, scenario=SCENARIO)
    result = demo.run()
    assert result.code == 0, [e.describe() + "\n" + e.log_tail for e in result.crashed]

    first = SCENARIO.drifts[0]
    second = SCENARIO.drifts[1].start
    # Drift detected: the monitor asked for retraining after the first drift, for a reason.
    requests = [e for e in result.events if isinstance(e, RetrainRequested)]
    assert requests, "no retrain request"
    run = seen["run"]
    times = [t for t, _ in run.sent]
    assert any(r.timestamp >= times[0] for r in requests)

    # A challenger trained on that request and promoted, and serving switched to it.
    promoted = [e for e in result.events if isinstance(e, ModelPromoted) and e.version > 1]
    assert promoted, "no challenger was promoted"
    drift_runs = [r for r in seen["runs"] if r.trigger == "request" and r.decision == "promoted"]
    assert drift_runs, [(r.trigger, r.status, r.decision, r.error) for r in seen["runs"]]
    records = [Record(i, p, y, v) for i, p, y, v in run.predictions]
    # The first drift run's model (a refresh may have promoted a version before the drift).
    post_drift = min(r.version for r in drift_runs)
    swap = next(r.index for r in records
                if r.index >= first.start and r.model_version >= post_drift)
    assert swap < second, "the first post-drift model came after the second drift"

    # No request lost: every request of the stream has exactly one stored prediction.
    assert run.unanswered(SCENARIO) == []
    ids = [rid for rid in seen["per_request"] if rid.startswith(result.prefix)]
    assert len(ids) == SCENARIO.length  # the warm-up's and the stream's
    assert Counter(seen["per_request"].values()) == Counter({1: len(seen["per_request"])})

    # Accuracy after the swap beats the level just before it (after the drift).
    before = accuracy(records, first.start, swap)
    after = accuracy(records, swap, second)
    assert before is not None
    assert after is not None
    assert after > before + 0.15, (before, after)
    assert after > 0.75, after
