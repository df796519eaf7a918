"""A small, fully known history of two models, written the way the monitor stores it."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from streams.db import Database
from streams.events import ClassOutput, Feedback, Prediction, ValueOutput
from streams.lineage import Lineage
from streams.store import EventStore, LabelledExample

CHURN = "churn"
PRICE = "price"
CHURN_N = 40
LABELLED_N = 30
CORRECTED = "c004"


def churn_predicted(i: int) -> str:
    return "stay" if i % 3 else "leave"


def churn_app_label(i: int) -> str:
    return "stay" if i % 2 else "leave"


def churn_confidence(i: int) -> float:
    return 0.5 + (i % 10) / 20


@dataclass(frozen=True)
class Seeded:
    db: Database
    now: datetime
    predictions: list[Prediction]
    feedback: list[Feedback]

    def churn_label(self, i: int) -> str | None:
        """The label that wins for churn request i."""
        if f"c{i:03d}" == CORRECTED:
            return "stay"
        return churn_app_label(i) if i < LABELLED_N else None


def seed_streams(db: Database, now: datetime) -> Seeded:
    """40 churn predictions (v1 then v2), 30 app labels and one reviewer correction; 10
    price predictions (a regressor) all labelled. Prediction i is ``CHURN_N - i`` minutes old."""
    predictions: list[Prediction] = []
    feedback: list[Feedback] = []
    for i in range(CHURN_N):
        at = now - timedelta(minutes=CHURN_N - i)
        conf = churn_confidence(i)
        label = churn_predicted(i)
        other = "leave" if label == "stay" else "stay"
        predictions.append(
            Prediction(
                event_id=f"pc{i:03d}", request_id=f"c{i:03d}", model=CHURN,
                model_version=1 if i < 20 else 2, features={"tenure": float(i), "plan": "pro"},
                output=ClassOutput(label=label, probabilities={label: conf, other: 1 - conf}),
                latency_ms=1.5, timestamp=at,
            )
        )
        if i < LABELLED_N:
            feedback.append(
                Feedback(event_id=f"fc{i:03d}", request_id=f"c{i:03d}", model=CHURN,
                         label=churn_app_label(i), timestamp=at + timedelta(seconds=30))
            )
    # The reviewer's label is older than the app's and still wins.
    feedback.append(
        Feedback(event_id="rc004", request_id=CORRECTED, model=CHURN, label="stay",
                 source="reviewer", reviewer="bob", timestamp=now - timedelta(minutes=36))
    )
    for i in range(10):
        at = now - timedelta(minutes=10 - i)
        predictions.append(
            Prediction(
                event_id=f"pp{i:03d}", request_id=f"p{i:03d}", model=PRICE, model_version=1,
                features={"rooms": float(i)}, output=ValueOutput(value=100.0 + i),
                timestamp=at,
            )
        )
        feedback.append(
            Feedback(event_id=f"fp{i:03d}", request_id=f"p{i:03d}", model=PRICE,
                     label=100.0 + i + (2.0 if i % 2 else 0.0), timestamp=at)
        )
    store = EventStore(db, clock=lambda: now)
    store.add_predictions(predictions)
    store.add_feedback(feedback)
    by_request = {(p.model, p.request_id): p for p in predictions}
    store.upsert_examples(
        [LabelledExample.join(by_request[(f.model, f.request_id)], f) for f in feedback]
    )
    return Seeded(db, now, predictions, feedback)


class Clock:
    """A settable clock for the stores that take one."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _lineage(now: datetime, hours_ago: int, kind: str, reasons: tuple[str, ...]) -> Lineage:
    start, end = now - timedelta(hours=hours_ago + 24), now - timedelta(hours=hours_ago)
    return Lineage.of({
        "data": {
            "source": "labelled_examples",
            "train": {"count": 800, "from": start.isoformat(), "to": end.isoformat(),
                      "reviewer_labels": 3},
            "holdout": {"count": 200, "from": end.isoformat(), "to": end.isoformat()},
        },
        "trigger": {"kind": kind, "request_id": None, "reasons": list(reasons), "evidence": {}},
    })


def _evaluation(promote: bool, new: float, old: float | None, reason: str) -> dict:
    return {"promote": promote, "reason": reason, "metric": "accuracy", "margin": 0.0,
            "challenger": {"accuracy": new, "f1": new - 0.02},
            "champion": {"accuracy": old, "f1": old - 0.02} if old is not None else None,
            "problems": []}


@functools.cache
def _artifact_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="driftloop-seed-artifacts-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def _artifact(root: Path, version: int) -> tuple[str, str]:
    """A real artifact of churn ``version`` (the registry verifies it before crowning it)."""
    from tests.serving.artifacts import make_artifact

    artifact = make_artifact(root, version, model=CHURN)
    return artifact.uri, artifact.sha256


def seed_retraining(db: Database, now: datetime, *, artifacts: Path | None = None) -> None:
    """churn: v1 promoted 3 h ago, v2 promoted 2 h ago (the champion), v3 rejected, v4 a
    candidate with an artifact whose run is still running; a failed run; two retrain requests
    (one open) and windowed accuracy reported for v1 and v2 (12 windows). The artifacts are
    real, under ``artifacts`` (default: a folder of this test session)."""
    from retrain.registry import Registry
    from retrain.rollback import AutoRollback
    from retrain.runs import RunStore
    from streams.events import DriftReport, RetrainRequested
    from streams.settings import RetrainSettings

    clock = Clock(now)
    root = artifacts or _artifact_root()
    registry, runs = Registry(db, clock=clock), RunStore(db, clock=clock)
    registry.ensure_model(CHURN, "classification")
    plan = [  # version, hours ago, trigger, accuracy, outcome
        (1, 3, "manual", 0.80, "promote"),
        (2, 2, "request", 0.86, "promote"),
        (3, 1, "schedule", 0.84, "reject"),
    ]
    best: float | None = None
    for version, hours, kind, accuracy, outcome in plan:
        clock.at = now - timedelta(hours=hours)
        run = runs.start(CHURN, kind).run_id
        created = registry.create_version(
            CHURN, trainer="retrain.mlp:MLPTrainer", hyperparameters={"hidden": [64, 64]},
            code_version="test", run_id=run, parent_version=version - 1 or None,
            lineage=_lineage(now, hours, kind, ("data_drift",) if kind == "request" else ()),
        )
        assert created == version
        uri, sha256 = _artifact(root, version)
        registry.attach_artifact(
            CHURN, version, artifact_uri=uri, sha256=sha256,
            metrics={"accuracy": accuracy + 0.01, "loss": 0.4}, lineage=_lineage(
                now, hours, kind, ("data_drift",) if kind == "request" else ()),
        )
        clock.at += timedelta(minutes=5)
        if outcome == "promote":
            reason = "first model of its name" if best is None else "beats the champion"
            registry.promote(CHURN, version, actor="driftloop", reason=f"{kind}: {reason}",
                             evaluation=_evaluation(True, accuracy, best, reason))
            best = accuracy
        else:
            registry.reject(CHURN, version, note="does not beat the champion",
                            evaluation=_evaluation(False, accuracy, best,
                                                   "does not beat the champion"))
        runs.finish(run, status="succeeded", decision="promoted" if outcome == "promote"
                    else "rejected", version=version, device="cpu",
                    metrics={"validation": {"accuracy": accuracy + 0.01}},
                    log=f"run {run} of churn\ntraining churn v{version}\n")
    # The retrain process published those promotions.
    registry.mark_published([entry.id for entry in registry.unpublished()])
    clock.at = now - timedelta(minutes=30)
    failed = runs.start(CHURN, "schedule").run_id
    clock.at = now - timedelta(minutes=29)
    runs.finish(failed, status="failed", device="cpu", error="TrainingError: loss is NaN",
                log="run failed\n")
    clock.at = now - timedelta(minutes=10)
    waiting = runs.start(CHURN, "manual").run_id
    registry.create_version(CHURN, trainer="retrain.mlp:MLPTrainer", hyperparameters={},
                            code_version="test", run_id=waiting, parent_version=2,
                            lineage=_lineage(now, 0, "manual", ()))
    uri, sha256 = _artifact(root, 4)
    registry.attach_artifact(CHURN, 4, artifact_uri=uri,
                             sha256=sha256, metrics={"accuracy": 0.9}, lineage=_lineage(
                                 now, 0, "manual", ()))
    for i, status in enumerate(("done", "pending")):
        event = RetrainRequested(
            event_id=f"req{i}", model=CHURN, champion_version=2,
            reasons=("data_drift", "performance") if i else ("detector:adwin",),
            timestamp=now - timedelta(hours=2 - i),
        )
        runs.record_request(event)
        if status == "done":
            runs.claim_request(event.event_id)
            runs.finish_request(event.event_id, status="done", run_id=2)
    scores = AutoRollback(db, registry, RetrainSettings(), clock=clock)
    for w in range(12):
        end = now - timedelta(minutes=175 - 15 * w)
        version = 1 if end < now - timedelta(hours=2) else 2
        scores.record(DriftReport(
            event_id=f"w{w}", model=CHURN, model_version=version, window_id=f"win{w}",
            window_start=end - timedelta(minutes=15), window_end=end, rows=100,
            drifted_share=0.0, drift_detected=False,
            performance={"accuracy": 0.78 + 0.01 * w}, timestamp=end,
        ))


MONITOR_WINDOWS = 8
DRIFT_FROM = 5  # windows 5, 6 and 7 drift
QUALITY_FROM = 5  # the first window with its data quality measured


@functools.cache
def _evidently_window() -> tuple[list[dict], float, bool, str, str]:
    """One real Evidently result: tenure shifted, plan and prediction unchanged."""
    import random

    from monitor.evidently_drift import compare

    rng = random.Random(0)
    def rows(shift: float, n: int) -> list[dict]:
        return [{"tenure": rng.gauss(shift, 1.0), "plan": rng.choice(["pro", "basic"]),
                 "prediction": rng.choice(["stay", "leave"])} for _ in range(n)]
    result = compare(rows(0.0, 200), rows(1.5, 100), drift_share=0.3, full_snapshot=True)
    return ([c.model_dump() for c in result.columns], result.drifted_share,
            result.drift_detected, result.snapshot, result.full_snapshot or "")


#: The estimated accuracy of churn's newest served window (below its band's 84%).
ESTIMATE_NOW = 0.75


def _estimate(accuracy: float) -> dict[str, float]:
    return {"accuracy": accuracy, "accuracy_lower": 0.84, "accuracy_upper": 0.96,
            "f1": accuracy - 0.02, "f1_lower": 0.8, "f1_upper": 0.94}


def seed_monitor(db: Database, now: datetime) -> None:
    """churn: 8 served windows 10 minutes apart (the last three drifted, the last one with a
    real Evidently report, drift share threshold 0.3), a pending window, labelled performance
    (accuracy 0.90 falling by 0.02 a window, estimated alike, the pending window's estimate
    below its band), an ADWIN alarm, one open and one closed retrain
    request."""
    from monitor.tables import (
        AlarmRow,
        DriftReportRow,
        MonitorRetrainRequestRow,
        WindowPerformanceRow,
    )

    columns, share, detected, summary, full = _evidently_window()
    with db.session() as session:
        for w in range(MONITOR_WINDOWS):
            end = now - timedelta(minutes=10 * (MONITOR_WINDOWS - w))
            drifting = w >= DRIFT_FROM
            cells = [
                {"column": "tenure", "method": "K-S p_value", "threshold": 0.05,
                 "score": 0.001 if drifting else 0.4, "drifted": drifting},
                {"column": "plan", "method": "Z-test p_value", "threshold": 0.05,
                 "score": 0.7, "drifted": False},
                {"column": "prediction", "method": "Jensen-Shannon distance",
                 "threshold": 0.1, "score": 0.02, "drifted": False},
            ]
            last = w == MONITOR_WINDOWS - 1
            quality = [  # measured from the sixth window on; plan goes null in the last one
                {"column": "tenure", "missing": 0.0, "reference_missing": 0.0,
                 "out_of_range": 0.01, "unseen": None, "violated": False},
                {"column": "plan", "missing": 0.4 if last else 0.02, "reference_missing": 0.02,
                 "out_of_range": None, "unseen": 0.0, "violated": last},
            ] if w >= QUALITY_FROM else None
            session.add(DriftReportRow(
                event_id=f"dr{w}", window_id=f"churn-v2-served-{w}", model=CHURN,
                model_version=2, kind="served", trigger="count", first_id=w * 100 + 1,
                last_id=(w + 1) * 100, rows=100, window_start=end - timedelta(minutes=10),
                window_end=end, status="done",
                drifted_share=share if last else sum(c["drifted"] for c in cells) / 3,
                drift_detected=detected if last else drifting,
                columns=columns if last else cells, quality=quality, performance={},
                estimate=_estimate(0.9 - 0.02 * w), alarms=["adwin"] if w == 6 else [],
                reference={"rows": 1000},
                snapshot=summary if last else None, full_snapshot=full if last else None,
                error=None, created_at=end, completed_at=end,
            ))
            session.add(WindowPerformanceRow(
                window_id=f"churn-v2-labelled-{w}", model=CHURN, model_version=2,
                task="classification", rows=50, accuracy=0.9 - 0.02 * w, f1=0.88 - 0.02 * w,
                window_start=end - timedelta(minutes=10), window_end=end, created_at=end,
            ))
        session.add(DriftReportRow(
            event_id="drp", window_id="churn-v2-served-pending", model=CHURN, model_version=2,
            kind="served", trigger="time", first_id=801, last_id=830, rows=30,
            window_start=now - timedelta(minutes=5), window_end=now, status="pending",
            drifted_share=None, drift_detected=None, columns=[], performance={},
            estimate=_estimate(ESTIMATE_NOW), alarms=[],
            reference={}, snapshot=None, full_snapshot=None, error=None, created_at=now,
        ))
        session.add(AlarmRow(model=CHURN, detector="adwin", index=650, example_id=650,
                             model_version=2, window_id="churn-v2-served-6", error_rate=0.31,
                             created_at=now - timedelta(minutes=20)))
        for i, status in enumerate(("closed", "open")):
            session.add(MonitorRetrainRequestRow(
                event_id=f"mreq{i}", model=CHURN, champion_version=2,
                reasons=["data_drift"] if i else ["detector:adwin"], evidence={},
                status=status, requested_at=now - timedelta(minutes=60 - 50 * i),
                closed_at=now if status == "closed" else None,
                closed_reason="promoted" if status == "closed" else None,
            ))


def seed_schedules(db: Database, schedules: dict[str, float | str]) -> None:
    """Store retrain schedules the way the retrain process does (APScheduler's job table)."""
    from retrain.scheduler import RetrainScheduler

    scheduler = RetrainScheduler(db, workers=1)
    scheduler.start()
    try:
        scheduler.sync_schedules(schedules)
    finally:
        scheduler.shutdown(wait=False)
