"""The retrain policy: what asks for retraining, and what holds a request back."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from monitor.policy import (
    ChampionChanged,
    DetectorFired,
    LabelsArrived,
    PolicyConfig,
    QualityViolated,
    RetrainPolicy,
    WindowDrift,
    WindowEstimate,
    WindowScore,
)
from tests.monitor.events import T0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


CONFIG = PolicyConfig(drift_share_threshold=0.5, drift_windows=2, performance_margin=0.05,
                      cooldown_s=600, min_fresh_labels=100, request_timeout_s=3600,
                      min_window_rows=30)


def policy() -> tuple[RetrainPolicy, Clock]:
    clock = Clock()
    return RetrainPolicy(CONFIG, clock), clock


def alarm(index: int = 7, detector: str = "adwin") -> DetectorFired:
    return DetectorFired("m", detector, index, example_id=index + 1, window_id="m.labelled.v1.3")


def test_a_detector_alarm_asks_for_retraining_with_its_evidence() -> None:
    p, _ = policy()
    p.update(ChampionChanged("m", 3, "accuracy", 0.9)).update(LabelsArrived("m", 150))
    decision = p.update(alarm()).requested
    assert decision is not None
    assert decision.reasons == ("detector:adwin",)
    assert decision.champion_version == 3
    assert decision.evidence == {
        "windows": ["m.labelled.v1.3"], "fresh_labels": 150,
        "detectors": [{"detector": "adwin", "index": 7, "example_id": 8,
                       "window_id": "m.labelled.v1.3"}],
    }
    assert p.open_request("m") is not None


def test_too_few_fresh_labels_hold_the_request_until_they_arrive() -> None:
    p, _ = policy()
    p.update(LabelsArrived("m", 40))
    assert p.update(alarm()).requested is None
    assert p.pending_reasons("m") == ("detector:adwin",)
    assert p.update(LabelsArrived("m", 59)).requested is None
    decision = p.update(LabelsArrived("m", 1)).requested
    assert decision is not None
    assert decision.evidence["fresh_labels"] == 100


def test_one_open_request_per_model_until_a_newer_champion() -> None:
    p, clock = policy()
    p.update(ChampionChanged("m", 1)).update(LabelsArrived("m", 500))
    first = p.update(alarm(1)).requested
    assert first is not None
    clock.advance(1000)  # past the cooldown, still open
    p.update(LabelsArrived("m", 500))
    assert p.update(alarm(2)).requested is None
    assert p.update(LabelsArrived("m", 1)).requested is None
    p.update(ChampionChanged("m", 2))
    assert p.closed == ((first.event_id, "promoted v2"),)
    assert p.open_request("m") is None
    assert p.pending_reasons("m") == (), "evidence about the old champion is dropped"
    p.update(LabelsArrived("m", 100))
    second = p.update(alarm(3, "page_hinkley")).requested
    assert second is not None
    assert second.champion_version == 2
    assert second.event_id != first.event_id


def test_a_rollback_to_an_older_version_does_not_close_the_request() -> None:
    p, _ = policy()
    p.update(ChampionChanged("m", 2)).update(LabelsArrived("m", 500)).update(alarm())
    p.update(ChampionChanged("m", 1))
    assert p.closed == ()
    assert p.open_request("m") is not None


def test_a_request_times_out_and_the_cooldown_still_applies() -> None:
    p, clock = policy()
    p.update(LabelsArrived("m", 500))
    first = p.update(alarm(1)).requested
    assert first is not None
    clock.advance(3601)
    p.update(LabelsArrived("m", 500))
    second = p.update(alarm(2)).requested
    assert p.closed == ((first.event_id, "timeout"),)
    assert second is not None
    clock.advance(10)
    p.update(LabelsArrived("m", 500))
    assert p.open_request("m") is not None
    assert p.update(alarm(3)).requested is None


def test_the_cooldown_spaces_requests() -> None:
    config = PolicyConfig(cooldown_s=600, min_fresh_labels=0, request_timeout_s=1)
    clock = Clock()
    p = RetrainPolicy(config, clock)
    assert p.update(alarm(1)).requested is not None
    clock.advance(300)
    assert p.update(alarm(2)).requested is None, "request timed out, cooldown not over"
    clock.advance(301)
    assert p.update(LabelsArrived("m", 1)).requested is not None, "the pending alarm goes"


def test_k_consecutive_drifted_windows_of_one_kind() -> None:
    p, _ = policy()
    p.update(LabelsArrived("m", 500))
    assert p.update(WindowDrift("m", "w1", "served", 0.6, 500)).requested is None
    assert p.update(WindowDrift("m", "w2", "served", 0.2, 500)).requested is None
    assert p.update(WindowDrift("m", "w3", "served", 0.7, 500)).requested is None
    assert p.update(WindowDrift("m", "l1", "labelled", 0.9, 500)).requested is None
    assert p.update(WindowDrift("m", "tiny", "served", 0.9, 10)).requested is None
    decision = p.update(WindowDrift("m", "w4", "served", 0.8, 500)).requested
    assert decision is not None
    assert decision.reasons == ("data_drift",)
    assert decision.evidence["drift_windows"] == [
        {"window_id": "w3", "drifted_share": 0.7}, {"window_id": "w4", "drifted_share": 0.8}]
    assert decision.evidence["windows"] == ["w3", "w4"]


def test_windowed_performance_below_the_champion() -> None:
    p, _ = policy()
    p.update(ChampionChanged("m", 2, "accuracy", 0.90)).update(LabelsArrived("m", 500))
    assert p.update(WindowScore("m", "a", 2, {"accuracy": 0.86}, 500)).requested is None
    assert p.update(WindowScore("m", "b", 1, {"accuracy": 0.5}, 500)).requested is None, (
        "another version's window says nothing about the champion")
    assert p.update(WindowScore("m", "c", 2, {"accuracy": 0.5}, 5)).requested is None
    decision = p.update(WindowScore("m", "d", 2, {"accuracy": 0.84}, 500)).requested
    assert decision is not None
    assert decision.reasons == ("performance",)
    assert decision.evidence["performance"] == {
        "window_id": "d", "metric": "accuracy", "value": 0.84, "champion": 0.90, "margin": 0.05}


def estimated(window: str, accuracy: float, *, version: int = 2, rows: int = 500,
              lower: float = 0.85) -> WindowEstimate:
    return WindowEstimate("m", window, version, {"accuracy": accuracy, "f1": 0.9},
                          {"accuracy": lower, "f1": 0.8}, rows)


def test_an_estimate_below_its_band_asks_for_retraining_before_any_label_of_the_drop() -> None:
    p, _ = policy()
    p.update(ChampionChanged("m", 2, "accuracy", 0.90)).update(LabelsArrived("m", 500))
    assert p.update(estimated("a", 0.86)).requested is None, "inside the band"
    assert p.update(estimated("b", 0.5, version=1)).requested is None, (
        "another version's window says nothing about the champion")
    assert p.update(estimated("c", 0.5, rows=5)).requested is None, "too few rows"
    assert p.pending_reasons("m") == ()
    assert p.update(estimated("d", 0.80)).requested is None, "one window below is not enough"
    assert p.pending_reasons("m") == ()
    decision = p.update(estimated("e", 0.79)).requested
    assert decision is not None
    assert decision.reasons == ("estimated_performance",)
    assert decision.evidence["estimated_performance"] == {
        "window_id": "e", "metric": "accuracy", "value": 0.79, "lower": 0.85,
        "windows": ["d", "e"]}
    assert decision.evidence["windows"] == ["d", "e"]


def test_a_window_back_inside_the_band_breaks_the_estimated_streak() -> None:
    p, _ = policy()
    p.update(ChampionChanged("m", 2, "accuracy", 0.90)).update(LabelsArrived("m", 500))
    for window, accuracy in (("a", 0.80), ("b", 0.88), ("c", 0.80), ("d", 0.88)):
        assert p.update(estimated(window, accuracy)).requested is None, window
    assert p.pending_reasons("m") == ()
    restored = RetrainPolicy.from_state(p.config, lambda: T0, p.state())
    restored.update(estimated("e", 0.80))
    assert restored.update(estimated("f", 0.80)).requested is not None, (
        "two in a row, across a restart of the policy")


def test_an_estimated_drop_waits_out_the_cooldown_like_every_reason() -> None:
    p, clock = policy()
    p.update(ChampionChanged("m", 2, "accuracy", 0.90)).update(LabelsArrived("m", 500))
    p.update(estimated("a", 0.80))
    assert p.update(estimated("a2", 0.80)).requested is not None
    p.update(ChampionChanged("m", 3, "accuracy", 0.90))  # the retraining closed the request
    p.update(LabelsArrived("m", 500))
    p.update(estimated("b", 0.80, version=3))
    assert p.update(estimated("b2", 0.80, version=3)).requested is None, "within the cooldown"
    assert p.pending_reasons("m") == ("estimated_performance",)
    clock.advance(601)
    assert p.update(LabelsArrived("m", 1)).requested is not None
    p.update(ChampionChanged("m", 4, "accuracy", 0.90))
    p.update(estimated("c", 0.80, version=4))
    p.update(ChampionChanged("m", 5, "accuracy", 0.90))
    p.update(estimated("c2", 0.80, version=5))
    assert p.pending_reasons("m") == (), "a new champion forgets the old one's estimates"


def test_a_window_whose_data_quality_broke_asks_for_retraining() -> None:
    p, _ = policy()
    p.update(ChampionChanged("m", 2, "accuracy", 0.90)).update(LabelsArrived("m", 500))
    assert p.update(QualityViolated("m", "tiny", "served", ("income",), 10)).requested is None
    decision = p.update(QualityViolated("m", "w7", "served", ("income", "city"), 300)).requested
    assert decision is not None
    assert decision.reasons == ("data_quality",)
    assert decision.evidence["data_quality"] == {
        "window_id": "w7", "kind": "served", "columns": ["income", "city"]}
    assert decision.evidence["windows"] == ["w7"]


def test_a_new_champion_forgets_the_old_ones_quality_violation() -> None:
    p, _ = policy()
    p.update(ChampionChanged("m", 2, "accuracy", 0.90))
    p.update(QualityViolated("m", "w7", "served", ("income",), 300))
    assert p.pending_reasons("m") == ("data_quality",)
    p.update(ChampionChanged("m", 3, "accuracy", 0.92))
    assert p.pending_reasons("m") == ()


def test_error_scores_compare_relatively() -> None:
    p, _ = policy()
    p.update(ChampionChanged("m", 1, "mse", 2.0)).update(LabelsArrived("m", 500))
    assert p.update(WindowScore("m", "a", 1, {"mse": 2.09}, 500)).requested is None
    assert p.update(WindowScore("m", "b", 1, {"mse": 2.2}, 500)).requested is not None


def test_the_state_resumes_exactly() -> None:
    p, clock = policy()
    p.update(ChampionChanged("m", 1, "accuracy", 0.9)).update(LabelsArrived("m", 50))
    p.update(alarm()).update(WindowDrift("m", "w1", "served", 0.9, 100))
    restored = RetrainPolicy.from_state(CONFIG, clock, json.loads(json.dumps(p.state())))
    for q in (p, restored):
        q.update(LabelsArrived("m", 60))
    assert p.requested is not None
    assert restored.requested == p.requested


def test_a_steadily_rising_windowed_error_asks_for_gradual_drift() -> None:
    # MSE climbing 0.3% of the champion's 2.0 per window, zigzagging: no window is 5% above
    # it before the trend is clear, and once asked, the open request holds the rest back.
    p, clock = policy()
    p.update(ChampionChanged("m", 1, "mse", 2.0)).update(LabelsArrived("m", 500))
    asked = []
    for i in range(30):
        clock.advance(60)
        mse = 2.0 + 0.006 * i - (0.01 if i % 2 else 0.0)
        decision = p.update(WindowScore("m", f"w{i}", 1, {"mse": mse}, 500)).requested
        if decision is not None:
            asked.append(decision)
    assert len(asked) == 1, "one request per open request, however many windows follow"
    decision = asked[0]
    assert decision.reasons == ("gradual_drift",)
    gradual = decision.evidence["gradual_drift"]
    assert gradual["window_id"] == "w13"
    assert decision.evidence["windows"] == ["w13"]
    assert gradual["metric"] == "mse"
    assert gradual["windows"] == 14
    assert gradual["reference"] == 2.0
    assert gradual["threshold"] == pytest.approx(2.0 * 1.02)
    assert gradual["level"] > gradual["threshold"]
    assert p.state()["m"]["suppressed"] >= 1
    assert p.pending_reasons("m") == ("performance", "gradual_drift"), (
        "both came back on fresh windows, and wait for the open request")
