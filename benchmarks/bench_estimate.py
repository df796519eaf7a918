"""How many events before the labelled-performance reason the estimated-performance reason fires.

For each lab scenario named, the built-in trainer fits a champion on the warm-up examples (so
its manifest holds the calibration and bands fitted on its validation split), serving's own
code scores the rest of the stream, and the monitor's pure cores judge it: served windows are
calibrated and estimated (:mod:`monitor.estimate`), labelled windows get the labels the
scenario gives (``feedback_rate`` of them, ``label_delay`` events late), and every closed
window is fed to :class:`monitor.policy.RetrainPolicy` with the monitor's default settings.
A reason "fires" at the event (predictions served since the warm-up) whose window made the
policy hold it; the policy is then started afresh, so every firing is counted. No Kafka, no
database: the same rules the monitor runs, on the same stream the lab's system run sends.

    .venv/bin/python benchmarks/bench_estimate.py covariate abrupt
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import torch

from driftloop.lab.scenarios import Scenario, get_scenario
from monitor.champion import from_manifest
from monitor.estimate import calibrate, window_estimate
from monitor.performance import Outcome
from monitor.policy import (
    ChampionChanged,
    PolicyConfig,
    RetrainPolicy,
    Signal,
    WindowEstimate,
    WindowScore,
)
from monitor.windows import WindowConfig, WindowRow, Windows
from retrain.dataset import DatasetPlan, Example, build_dataset
from retrain.mlp import MLPTrainer
from retrain.trainer import TrainingJob
from serving.model import load_model
from streams.settings import MonitorSettings, RetrainSettings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MODEL = "lab"
REASONS = {"estimated_performance": "estimated", "performance": "labelled"}


@dataclass
class Firings:
    """The events at which each reason fired."""

    events: dict[str, list[int]] = field(default_factory=dict)


def _policy(config: PolicyConfig, champion: ChampionChanged) -> RetrainPolicy:
    return RetrainPolicy(config, lambda: T0).update(champion)


def measure(scenario: Scenario, workdir: Path) -> tuple[Firings, dict[str, float], float]:
    started = time.perf_counter()
    retrain = RetrainSettings(cpu_threads=1, device="cpu")
    warmup = scenario.warmup_examples()
    examples = [Example(f"w{e.index}", dict(e.features), e.label,
                        T0 + timedelta(seconds=e.index)) for e in warmup]
    data = build_dataset(MODEL, examples, DatasetPlan.from_settings(retrain))
    artifact = MLPTrainer(retrain).fit(TrainingJob(data, 1, workdir))
    profile = from_manifest(artifact.manifest, 1)
    calibration = profile.calibration
    if calibration is None:
        raise SystemExit(f"{scenario.name}: the trainer wrote no calibration")
    served_model = load_model(artifact.uri, device=torch.device("cpu"))

    monitor = MonitorSettings()
    # Never make a request: a reason stays pending, so the first window to raise it is seen.
    config = dataclasses.replace(PolicyConfig.from_settings(monitor), min_fresh_labels=10**9)
    champion = ChampionChanged(MODEL, 1, profile.metric, profile.score)
    policy = _policy(config, champion)
    windows = WindowConfig(size=monitor.window_size, reference_rows=0)
    served, labelled = Windows("served", windows), Windows("labelled", windows)
    stream = list(scenario.stream())
    outputs = []
    for start in range(0, len(stream), 4096):
        chunk = stream[start:start + 4096]
        scores = served_model.scores(served_model.encode([dict(e.features) for e in chunk]))
        outputs += [o.model_dump(mode="json") if o is not None else None
                    for o in served_model.outputs(scores)]
    calibrated = calibrate(calibration, outputs)
    due: dict[int, list[int]] = {}
    for i, e in enumerate(stream):
        if e.feedback:
            due.setdefault(i + scenario.label_delay, []).append(i)
    firings = Firings()

    def signal(s: Signal, event: int) -> None:
        nonlocal policy
        policy.update(s)
        pending = policy.pending_reasons(MODEL)
        for reason in pending:
            firings.events.setdefault(reason, []).append(event)
        if pending:
            policy = _policy(config, champion)

    now = T0
    for i in range(len(stream)):
        at = T0 + timedelta(seconds=scenario.warmup + i)
        served.update(WindowRow(i, MODEL, 1, at, calibrated=calibrated[i]), now)
        for w in served.drain():
            estimate = window_estimate(calibration, 1, w)
            if estimate is not None:
                signal(WindowEstimate(MODEL, w.window_id, 1, estimate.metrics, estimate.lower,
                                      w.rows), i + 1)
        for j in due.pop(i, []):
            out = outputs[j]
            if out is None:
                continue
            labelled.update(WindowRow(j, MODEL, 1, at, Outcome(
                "classification", out["label"], stream[j].label)), now)
        for w in labelled.drain():
            signal(WindowScore(MODEL, w.window_id, 1, w.performance, w.rows), i + 1)
    bands = {"accuracy_mean": calibration.bands["accuracy"].mean,
             "accuracy_std": calibration.bands["accuracy"].std,
             "chunk_rows": float(calibration.bands["accuracy"].chunk_rows),
             "validation_accuracy": profile.score or 0.0}
    return firings, bands, time.perf_counter() - started


def main(names: list[str]) -> None:
    for name in names or ["covariate", "abrupt"]:
        scenario = get_scenario(name)
        with tempfile.TemporaryDirectory() as workdir:
            firings, bands, seconds = measure(scenario, Path(workdir) / "v1")
        drift = scenario.drifts[0].start - scenario.warmup
        print(f"{name}: first drift at stream event {drift}; band {bands['accuracy_mean']:.3f} "
              f"± 3 x {bands['accuracy_std']:.4f} (chunks of {bands['chunk_rows']:.0f}; "
              f"validation accuracy {bands['validation_accuracy']:.3f}); {seconds:.0f} s")
        first = {}
        for reason, label in REASONS.items():
            events = firings.events.get(reason, [])
            # Event ``e`` closed a window whose last row is stream row e - 1: a window that
            # closes at the drift row itself holds only rows from before it.
            before = [e for e in events if e <= drift]
            after = [e for e in events if e > drift]
            first[label] = after[0] if after else None
            late = "-" if first[label] is None else first[label] - drift
            print(f"  {label:9s} fired {len(before)} time(s) before the drift, first after it "
                  f"at event {first[label]} ({late} after the drift); "
                  f"all: {events[:12]}{' ...' if len(events) > 12 else ''}")
        if first["estimated"] is not None and first["labelled"] is not None:
            print(f"  lead: the estimate fired {first['labelled'] - first['estimated']} events "
                  "before the labelled reason")


if __name__ == "__main__":
    main(sys.argv[1:])
