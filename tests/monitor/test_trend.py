"""The slow-drift detector: exact alarms on seeded slow drifts, silence on stationary ones."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from driftloop.lab.frozen import frozen_hyperplane
from monitor.performance import Outcome
from monitor.policy import ChampionChanged, LabelsArrived, PolicyConfig, RetrainPolicy, WindowScore
from monitor.trend import TrendConfig, TrendDetector, mann_kendall_z, theil_sen
from monitor.windows import WindowConfig, WindowRow, Windows
from tests.monitor.events import T0

WINDOW = 500


def ramp(seed: int, start: float, end: float, before: int, width: int,
         after: int = 0) -> list[float]:
    """0/1 errors whose rate is ``start`` for ``before`` labels, then rises linearly to
    ``end`` over ``width`` labels and stays there for ``after``."""
    rng = random.Random(seed)
    errors = []
    for i in range(before + width + after):
        rate = start + (end - start) * min(1.0, max(0, i - before) / width)
        errors.append(1.0 if rng.random() < rate else 0.0)
    return errors


def windowed(errors: list[float], size: int = WINDOW) -> list[float]:
    return [sum(errors[i:i + size]) / size for i in range(0, len(errors) - size + 1, size)]


def fired(windows: list[float], reference: float,
          detector: TrendDetector | None = None) -> list[int]:
    detector = detector or TrendDetector(TrendConfig(), reference)
    return [i for i, error in enumerate(windows)
            if detector.update(error, f"w{i}").drift_detected]


def test_the_statistics_on_small_known_cases() -> None:
    assert mann_kendall_z([1, 2, 3, 4, 5]) == pytest.approx(9 / (300 / 18) ** 0.5)
    assert mann_kendall_z([5, 4, 3, 2, 1]) == pytest.approx(-9 / (300 / 18) ** 0.5)
    assert mann_kendall_z([2, 2, 2, 2]) == 0.0
    assert theil_sen([0.1, 0.2, 0.3, 0.4]) == pytest.approx((0.1, 0.4))
    assert theil_sen([0.1, 0.1, 0.9, 0.1, 0.1]) == pytest.approx((0.0, 0.1)), "robust to one"


@pytest.mark.parametrize(("seed", "expected"), [(1, [27, 48]), (2, [27, 46]), (3, [26, 50])])
def test_an_error_rising_over_20k_labels_is_caught_at_exact_windows(
    seed: int, expected: list[int]
) -> None:
    # 5,000 labels at 0.1, then 0.1 -> 0.2 over 20,000: windows 10 to 49 are the rise.
    errors = ramp(seed, 0.1, 0.2, before=5_000, width=20_000, after=5_000)
    assert fired(windowed(errors), reference=0.1) == expected
    # Window 27 ends 9,000 labels into the rise, the error then about 0.145.


def test_it_fires_once_then_needs_fresh_evidence() -> None:
    detector = TrendDetector(TrendConfig(), 0.1)
    windows = windowed(ramp(1, 0.1, 0.2, before=5_000, width=20_000))
    first = fired(windows[:28], 0.1, detector)
    assert first == [27]
    assert detector.errors == (), "the windows that fired it are forgotten"
    later = fired(windows[28:], 0.1, detector)
    assert [i + 28 for i in later] == [48], "ten windows at least, and the rise goes on"


def test_a_rise_that_stays_under_the_margin_is_no_alarm() -> None:
    # The champion validated at 0.3: a rise from 0.26 to 0.3 is back to what it promised.
    windows = windowed(ramp(4, 0.26, 0.3, before=5_000, width=20_000, after=5_000))
    assert fired(windows, reference=0.3) == []
    assert fired(windows, reference=0.2) != [], "the same windows against a better champion"


def test_an_improving_error_is_no_alarm() -> None:
    windows = windowed(ramp(5, 0.3, 0.1, before=5_000, width=20_000, after=5_000))
    assert fired(windows, reference=0.05) == []


def test_a_relative_margin_for_regression_errors() -> None:
    rng = random.Random(6)
    mse = [1.0 + 0.01 * i + rng.gauss(0, 0.05) for i in range(30)]
    assert fired(mse, reference=1.0, detector=TrendDetector(
        TrendConfig(), 1.0, relative=True)) == [21]
    assert fired(mse, reference=1.5, detector=TrendDetector(
        TrendConfig(), 1.5, relative=True)) == [], "never above 1.5 * 1.02"


def test_state_round_trips() -> None:
    windows = windowed(ramp(1, 0.1, 0.2, before=5_000, width=20_000))
    config = TrendConfig()
    whole = fired(windows, 0.1)
    detector = TrendDetector(config, 0.1)
    before = fired(windows[:20], 0.1, detector)
    restored = TrendDetector.restore(config, 0.1, detector.state())
    after = [i + 20 for i in fired(windows[20:], 0.1, restored)]
    assert before + after == whole


# -- through the policy ------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def feed(policy: RetrainPolicy, clock: Clock, windows: list[float], version: int = 1,
         start: int = 0) -> list[tuple[int, tuple[str, ...]]]:
    """Each window as the monitor sends it (labels, then its score); (window, reasons)."""
    requests = []
    for i, error in enumerate(windows, start=start):
        clock.now += timedelta(seconds=60)
        policy.update(LabelsArrived("m", WINDOW))
        decision = policy.update(WindowScore("m", f"w{i}", version, {"accuracy": 1 - error},
                                             WINDOW)).requested
        if decision is not None:
            requests.append((i, decision.reasons))
    return requests


def test_the_policy_asks_once_and_resets_on_a_new_champion() -> None:
    clock = Clock()
    # A performance margin no window reaches: only the trend can ask.
    p = RetrainPolicy(PolicyConfig(performance_margin=0.5, cooldown_s=600), clock)
    p.update(ChampionChanged("m", 1, "accuracy", 0.9))
    windows = windowed(ramp(1, 0.1, 0.2, before=5_000, width=20_000, after=5_000))
    assert feed(p, clock, windows[:30]) == [(27, ("gradual_drift",))]
    assert p.pending_reasons("m") == ()
    evidence = p.open_request("m")
    assert evidence is not None
    # A new champion, trained on the drifted data and validated at 0.15: its detector starts
    # over, so windows of the old one and a few of its own are not enough.
    p.update(ChampionChanged("m", 2, "accuracy", 0.85))
    assert p.state()["m"]["trend"] == {}
    assert feed(p, clock, windows[30:38], version=1, start=30) == [], "the old version's"
    assert feed(p, clock, windows[38:47], version=2, start=38) == [], "under min_windows"


@pytest.mark.parametrize("rate", [0.02, 0.2, 0.5])
def test_the_policy_never_names_gradual_drift_on_100k_stationary_labels(rate: float) -> None:
    # The stream of test_detectors' 100k test, windowed, against an exact champion and one
    # whose validation error is 0.05 too optimistic (so only the trend test holds it back).
    rng = random.Random(11)
    windows = windowed([1.0 if rng.random() < rate else 0.0 for _ in range(100_000)])
    for validated in (rate, max(0.0, rate - 0.05)):
        clock = Clock()
        p = RetrainPolicy(PolicyConfig(cooldown_s=0, request_timeout_s=1), clock)
        p.update(ChampionChanged("m", 1, "accuracy", 1 - validated))
        requests = feed(p, clock, windows)
        assert all("gradual_drift" not in reasons for _, reasons in requests)
        assert "gradual_drift" not in p.pending_reasons("m")


def hyperplane(seed: int, change: float, before: int, width: int) -> list[Outcome]:
    """A model frozen on River's hyperplane while its drifting weights move by ``change``
    each over ``width`` events (as the lab's ``incremental`` scenario, more slowly)."""
    return [Outcome("classification", predicted, label)
            for predicted, label in frozen_hyperplane(seed, change, before, width)]


def test_a_slowly_rotating_hyperplane_asks_through_the_windows_and_the_policy() -> None:
    outcomes = hyperplane(3, change=0.6, before=5_000, width=20_000)
    validation = sum(o.label != o.predicted for o in outcomes[:5_000]) / 5_000
    clock = Clock()
    windows = Windows("labelled", WindowConfig(size=WINDOW, seconds=3600, reference_rows=0))
    p = RetrainPolicy(PolicyConfig(performance_margin=0.5), clock)
    p.update(ChampionChanged("m", 1, "accuracy", 1 - validation))
    asked = []
    for i, outcome in enumerate(outcomes, start=1):
        clock.now = T0 + timedelta(seconds=i)
        windows.update(WindowRow(i, "m", 1, clock.now, outcome), clock.now)
        for window in windows.drain():
            p.update(LabelsArrived("m", window.rows))
            decision = p.update(WindowScore("m", window.window_id, window.version,
                                            window.performance, window.rows)).requested
            if decision is not None:
                asked.append((window.last_id, decision.reasons,
                              decision.evidence["gradual_drift"]["level"]))
    assert [(last, reasons) for last, reasons, _ in asked] == [(12_500, ("gradual_drift",))]
    assert asked[0][2] > validation + 0.02
