"""ADWIN and Page-Hinkley on seeded error streams: exact alarms, no false ones, exact restore."""

from __future__ import annotations

import random

import pytest

from monitor.detectors import DetectorConfig, ErrorDetectors
from monitor.trend import TrendConfig, TrendDetector
from streams.settings import MonitorSettings


def default_config() -> DetectorConfig:
    m = MonitorSettings()
    return DetectorConfig(adwin_delta=m.adwin_delta, ph_delta=m.page_hinkley_delta,
                          ph_threshold=m.page_hinkley_threshold)


def bernoulli(seed: int, *parts: tuple[float, int]) -> list[float]:
    rng = random.Random(seed)
    return [1.0 if rng.random() < p else 0.0 for p, n in parts for _ in range(n)]


def alarms(errors: list[float], detectors: ErrorDetectors | None = None,
           start: int = 0) -> list[tuple[str, int]]:
    detectors = detectors or ErrorDetectors(default_config())
    fired = []
    for i, error in enumerate(errors[start:], start=start):
        fired += [(a.detector, a.index) for a in detectors.update(error, i + 1).alarms]
    return fired


@pytest.mark.parametrize(("seed", "expected"), [
    (1, [("adwin", 2047), ("page_hinkley", 2127)]),
    (2, [("adwin", 2079), ("page_hinkley", 2171)]),
    (3, [("adwin", 2079), ("page_hinkley", 2153)]),
])
def test_an_error_rate_jump_is_detected_at_exact_indices(
    seed: int, expected: list[tuple[str, int]]
) -> None:
    assert alarms(bernoulli(seed, (0.1, 2000), (0.5, 1000))) == expected


def test_a_small_jump_is_caught_by_adwin_first() -> None:
    fired = alarms(bernoulli(4, (0.05, 3000), (0.15, 3000)))
    assert fired[0] == ("adwin", 3199)
    assert all(i >= 3000 for _, i in fired)


def test_an_improvement_is_no_alarm_for_page_hinkley() -> None:
    fired = alarms(bernoulli(5, (0.4, 2000), (0.05, 2000)))
    assert [d for d, _ in fired] == ["adwin"], "one-sided: fewer errors are no reason"


@pytest.mark.parametrize("rate", [0.02, 0.2, 0.5])
def test_a_stationary_stream_of_100k_labelled_events_raises_no_alarm(rate: float) -> None:
    errors = bernoulli(11, (rate, 100_000))
    assert alarms(errors) == []
    # Nor does the slow-drift detector on its 200 windows of 500, against a champion that
    # validated at the true rate, or 0.05 better than that (its level test then always holds).
    windows = [sum(errors[i:i + 500]) / 500 for i in range(0, 100_000, 500)]
    for reference in (rate, max(0.0, rate - 0.05)):
        trend = TrendDetector(TrendConfig.from_settings(MonitorSettings()), reference)
        assert not any(trend.update(w).drift_detected for w in windows)


@pytest.mark.parametrize("stop_at", [500, 2048, 2100, 2600])
def test_restoring_from_state_and_replay_continues_exactly(stop_at: int) -> None:
    errors = bernoulli(1, (0.1, 2000), (0.5, 1000))
    expected = alarms(errors)
    config = default_config()
    first = ErrorDetectors(config)
    before = alarms(errors[:stop_at], first)
    state = first.state()
    # What the monitor replays: stored errors after the earliest reset, by example id.
    since = ErrorDetectors.replay_from(state)
    replay = [(i + 1, e) for i, e in enumerate(errors[:stop_at]) if i + 1 > since]
    restored = ErrorDetectors.restore(config, state, replay)
    assert restored.n == stop_at
    assert before + alarms(errors, restored, start=stop_at) == expected


def test_reset_forgets_the_past() -> None:
    detectors = ErrorDetectors(default_config())
    alarms(bernoulli(1, (0.1, 2000)), detectors)
    detectors.reset(after_id=2000)
    assert ErrorDetectors.replay_from(detectors.state()) == 2000
    assert detectors.error_rate == 0.0
