"""On the in-memory broker and a real database: the served windows of a calibrated champion
carry estimated performance with its band, and a drop below the band asks for retraining
before a single label arrived; an artifact from before calibration gives no estimate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from streams.artifacts import Architecture, Artifact, FeatureSpec, Manifest, write_artifact
from streams.calibration import Band, Calibration, Curve
from streams.codec import encode
from streams.db import Database
from streams.events import ClassOutput, ModelPromoted, Prediction
from streams.producer import Producer
from streams.settings import MonitorSettings
from streams.topics import Topic
from tests.conftest import BrokerInfo, Deployment, on_memory
from tests.monitor.events import T0
from tests.monitor.harness import Running, running
from tests.streams.kafka_helpers import produce_raw

pytestmark = on_memory

MODEL = "churn"
WINDOW = 200
# One window below the band is enough here: the streak the policy asks for is its own test
# (tests/monitor/test_policy.py); this one follows a window from serving to the request.
SETTINGS = MonitorSettings(window_size=WINDOW, reference_size=WINDOW, drift_kinds=(),
                           drift_workers="thread", min_fresh_labels=0, estimate_windows=1)
# Calibrated = served (identity curves); on reference chunks of 200 rows the expected
# accuracy was 0.9 ± 0.01.
CALIBRATION = Calibration(
    classes=("leave", "stay"), curves=(Curve(x=(0.0, 1.0), y=(0.0, 1.0)),) * 2, rows=1000,
    bands={"accuracy": Band(mean=0.9, std=0.01, chunk_rows=WINDOW, chunks=200),
           "f1": Band(mean=0.9, std=0.02, chunk_rows=WINDOW, chunks=200)},
)


def _artifact(path: Path, calibration: Calibration | None) -> Artifact:
    manifest = Manifest(
        model=MODEL, version=1, task="classification",
        architecture=Architecture(name="mlp", params={"hidden": []}),
        features=(FeatureSpec(name="x", kind="numeric"),), classes=("leave", "stay"),
        metrics={"accuracy": 0.9}, calibration=calibration,
    )
    return write_artifact(path, manifest, {"net.0.weight": np.zeros((2, 1), np.float32)})


def _promote(dep: Deployment, run: Running, artifact: Artifact) -> None:
    with Producer(dep.kafka) as producer:
        producer.send(dep.names(Topic.MODEL_UPDATES), ModelPromoted(
            event_id="promote-1", model=MODEL, version=1, artifact_uri=artifact.uri,
            sha256=artifact.sha256, timestamp=T0), key=MODEL)
    run.drain(lambda: run.monitor.models.get(MODEL) is not None
              and run.monitor.models[MODEL].champion is not None)


def _serve(dep: Deployment, run: Running, first: int, confidence: float, count: int) -> None:
    """Half served as "stay", half as "leave", each with probability ``confidence``."""
    def output(i: int) -> ClassOutput:
        stay = confidence if i % 2 else 1 - confidence
        return ClassOutput(label="stay" if i % 2 else "leave",
                           probabilities={"leave": 1 - stay, "stay": stay})

    produce_raw(dep.broker.bootstrap, dep.names(Topic.PREDICTIONS), [encode(Prediction(
        event_id=f"p{i}", request_id=f"r{i:05d}", model=MODEL, model_version=1,
        features={"x": 1.0}, output=output(i), timestamp=T0 + timedelta(seconds=i)))
        for i in range(first, first + count)])
    run.drain(lambda: run.loop.stats.consumed >= first + count + 1)


def test_a_confidence_drop_is_estimated_and_asks_for_retraining_before_any_label(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], database: Database,
    tmp_path: Path,
) -> None:
    dep = deployment_factory(broker, partitions=1, monitor=SETTINGS)
    with running(dep, database) as run:
        _promote(dep, run, _artifact(tmp_path / "v1", CALIBRATION))
        _serve(dep, run, 0, 0.9, WINDOW)  # the reference window (no lineage)
        _serve(dep, run, WINDOW, 0.9, WINDOW)
        assert run.monitor.policy.pending_reasons(MODEL) == ()
        _serve(dep, run, 2 * WINDOW, 0.6, WINDOW)

        stored = [r for r in run.monitor.store.reports(MODEL) if r.kind == "served"]
        assert len(stored) == 2
        steady, dropped = (r.estimate for r in stored)
        assert steady is not None
        assert dropped is not None
        assert steady["accuracy"] == pytest.approx(0.9)
        assert steady["accuracy_lower"] == pytest.approx(0.87)
        assert steady["accuracy_upper"] == pytest.approx(0.93)
        assert steady["f1"] == pytest.approx(0.9)
        assert dropped["accuracy"] == pytest.approx(0.6)
        assert dropped["f1"] == pytest.approx(0.6)
        (request,) = run.monitor.store.requests(MODEL)
        assert request.reasons == ["estimated_performance"]
        assert request.evidence["estimated_performance"]["window_id"] == stored[1].window_id
        assert request.evidence["fresh_labels"] == 0


def test_a_champion_without_calibration_gives_no_estimate(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], database: Database,
    tmp_path: Path,
) -> None:
    dep = deployment_factory(broker, partitions=1, monitor=SETTINGS)
    with running(dep, database) as run:
        _promote(dep, run, _artifact(tmp_path / "v1", None))
        _serve(dep, run, 0, 0.9, 2 * WINDOW)
        _serve(dep, run, 2 * WINDOW, 0.6, WINDOW)
        stored = [r for r in run.monitor.store.reports(MODEL) if r.kind == "served"]
        assert len(stored) == 2
        assert [r.estimate for r in stored] == [None, None]
        assert run.monitor.store.requests(MODEL) == []


def test_the_champion_is_stored_once_under_its_own_key_and_comes_back_on_restart(
    broker: BrokerInfo, deployment_factory: Callable[..., Deployment], database: Database,
    tmp_path: Path,
) -> None:
    dep = deployment_factory(broker, partitions=1, monitor=SETTINGS)
    with running(dep, database) as run:
        _promote(dep, run, _artifact(tmp_path / "v1", CALIBRATION))
        stored = run.monitor.store.load_state()
        assert stored[f"champion.{MODEL}"]["calibration"]["classes"] == ["leave", "stay"]
        assert "champion" not in stored[f"model.{MODEL}"], (
            "the calibration curves are not written again with every batch's model state")
        written = _updated_at(database, f"champion.{MODEL}")
        _serve(dep, run, 0, 0.9, WINDOW)
        assert _updated_at(database, f"champion.{MODEL}") == written, "unchanged champion"
        assert _updated_at(database, f"model.{MODEL}") > written
    with running(dep, database) as again:
        champion = again.monitor.models[MODEL].champion
        assert champion is not None
        assert champion.calibration == CALIBRATION


def _updated_at(database: Database, key: str) -> object:
    from sqlalchemy import select

    from monitor.tables import StateRow

    with database.session() as session:
        return session.execute(select(StateRow.updated_at).where(StateRow.key == key)).scalar_one()
