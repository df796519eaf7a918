"""How late each drift signal notices a slow drift, and whether it fires on a stationary stream.

    .venv/bin/python benchmarks/bench_slow_drift.py [--seeds 3,4,5] [--change 0.6,0.3]

A model frozen on River's hyperplane (10 features, 3 drifting weights, 5% label noise, the
generator of the lab's ``incremental`` scenario) sees 5,000 labelled events of its own concept,
then the drifting weights move by ``change`` each over 20,000 events, then 5,000 more at rest;
every event is labelled. Its "validation error" is its error over the first 5,000. For each
seed the first alarm of each signal is printed, in labelled events after the drift began:

* ``adwin``, ``page_hinkley``: River's detectors on the 0/1 errors (``monitor.detectors``);
* ``performance``: the policy's single-window rule, a window of 500 whose accuracy is
  ``monitor.performance_margin`` (0.05) below the validation accuracy;
* ``trend``: the slow-drift detector on the windowed errors (``monitor.trend``, defaults).

The same seeds with ``change`` 0 (100,000 events) count each signal's false alarms.
"""

from __future__ import annotations

import argparse

from driftloop.lab.frozen import frozen_hyperplane
from monitor.detectors import DetectorConfig, ErrorDetectors
from monitor.trend import TrendConfig, TrendDetector
from streams.settings import MonitorSettings

WINDOW = 500
BEFORE = 5_000
WIDTH = 20_000
AFTER = 5_000


def errors(seed: int, change: float, before: int, width: int, after: int) -> list[float]:
    """0/1 errors of the model that learnt the hyperplane's first concept exactly."""
    return [float(predicted != label)
            for predicted, label in frozen_hyperplane(seed, change, before, width, after)]


def alarms(errs: list[float], reference: float) -> dict[str, list[int]]:
    """Each signal's alarms, as the number of the labelled event they fired on."""
    settings = MonitorSettings()
    found: dict[str, list[int]] = {"adwin": [], "page_hinkley": [], "performance": [],
                                   "trend": []}
    river = ErrorDetectors(DetectorConfig.from_settings(settings))
    for i, error in enumerate(errs, start=1):
        for alarm in river.update(error, i).alarms:
            found[alarm.detector].append(i)
    trend = TrendDetector(TrendConfig.from_settings(settings), reference)
    for end in range(WINDOW, len(errs) + 1, WINDOW):
        window = sum(errs[end - WINDOW:end]) / WINDOW
        if window > reference + settings.performance_margin:
            found["performance"].append(end)
        if trend.update(window, str(end)).drift_detected:
            found["trend"].append(end)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="3,4,5")
    parser.add_argument("--change", default="0.6,0.3")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    for change in [float(c) for c in args.change.split(",")]:
        print(f"hyperplane, drifting weights +{change} each over {WIDTH:,} events "
              f"(after {BEFORE:,}); first alarm, labelled events after the drift began")
        for seed in seeds:
            errs = errors(seed, change, BEFORE, WIDTH, AFTER)
            reference = sum(errs[:BEFORE]) / BEFORE
            found = alarms(errs, reference)
            first = {name: next((i - BEFORE for i in hits if i > BEFORE), None)
                     for name, hits in found.items()}
            early = sum(1 for hits in found.values() for i in hits if i <= BEFORE)
            print(f"  seed {seed}: validation error {reference:.3f}, "
                  + ", ".join(f"{name} {'-' if at is None else f'{at:,}'}"
                              for name, at in first.items())
                  + f" (alarms before the drift: {early})")
    print("stationary (no drift), 100,000 events: alarms")
    for seed in seeds:
        errs = errors(seed, 0.0, 100_000, 1, 0)[:100_000]
        found = alarms(errs, sum(errs) / len(errs))
        print(f"  seed {seed}: " + ", ".join(f"{name} {len(hits)}"
                                            for name, hits in found.items()))


if __name__ == "__main__":
    main()
