"""The scenarios: deterministic per seed, drifting exactly where they say, valid on the wire."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime

import pytest

from driftloop.lab.scenarios import SCENARIOS, DriftPoint, Example, Scenario, get_scenario
from streams.errors import ConfigError
from streams.events import InferenceRequest

# The Agrawal and STAGGER concepts, written out from the papers (independently of River).


def agrawal_0(x: dict) -> int:
    return int(x["age"] < 40 or x["age"] >= 60)


def agrawal_1(x: dict) -> int:
    age, salary = x["age"], x["salary"]
    if age < 40:
        return int(50_000 <= salary <= 100_000)
    if age < 60:
        return int(75_000 <= salary <= 125_000)
    return int(25_000 <= salary <= 75_000)


def agrawal_2(x: dict) -> int:
    age, elevel = x["age"], x["elevel"]
    if age < 40:
        return int(elevel in (0, 1))
    if age < 60:
        return int(elevel in (1, 2, 3))
    return int(elevel in (2, 3, 4))


def agrawal_6(x: dict) -> int:
    disposable = 2 * (x["salary"] + x["commission"]) / 3 - x["loan"] / 5 - 20_000
    return 0 if disposable > 1 else 1


def agrawal_8(x: dict) -> int:
    disposable = (2 * (x["salary"] + x["commission"]) / 3 - 5_000 * x["elevel"]
                  - x["loan"] / 5 - 10_000)
    return 0 if disposable > 1 else 1


def stagger_a(x: dict) -> int:
    return int(x["size"] == "small" and x["color"] == "red")


def stagger_b(x: dict) -> int:
    return int(x["color"] == "green" or x["shape"] == "circle")


def segment(examples: list[Example], start: int, end: int) -> list[Example]:
    return [e for e in examples if start <= e.index < end]


def agreement(examples: list[Example], concept) -> float:
    return sum(concept(dict(e.features)) == e.label for e in examples) / len(examples)


def small(name: str, length: int = 6_000) -> Scenario:
    return get_scenario(name).resized(length)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_seed_same_stream_other_seed_other_stream(name: str) -> None:
    scenario = small(name, 1_500)
    first = list(scenario.examples())
    assert first == list(scenario.examples())
    other = list(scenario.reseeded(scenario.seed + 1).examples())
    assert [e.features for e in other] != [e.features for e in first]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_examples_are_valid_requests_numbered_from_zero(name: str) -> None:
    scenario = small(name, 2_000)
    examples = list(scenario.examples())
    assert [e.index for e in examples] == list(range(scenario.length))
    now = datetime.now(UTC)
    for e in examples[:200]:
        InferenceRequest(request_id=f"r{e.index}", model="m", features=dict(e.features),
                         timestamp=now)
    if scenario.task == "regression":
        assert all(type(e.label) is float for e in examples)
    else:
        assert {e.label for e in examples} == set(range(scenario.classes))
    assert all(e.feedback for e in examples[: scenario.warmup])
    assert scenario.warmup_examples() == examples[: scenario.warmup]
    assert list(scenario.stream()) == examples[scenario.warmup :]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_feedback_share_matches_the_rate(name: str) -> None:
    scenario = small(name, 8_000)
    told = [e.feedback for e in scenario.stream()]
    assert sum(told) / len(told) == pytest.approx(scenario.feedback_rate, abs=0.03)


def test_abrupt_switches_agrawal_function_exactly_at_each_drift_point() -> None:
    scenario = small("abrupt")
    first, second = (d.index for d in scenario.drifts)
    assert (first, second) == (2_400, 4_200)
    examples = list(scenario.examples())
    assert agreement(segment(examples, 0, first), agrawal_6) == 1.0
    assert agreement(segment(examples, first, second), agrawal_0) == 1.0
    assert agreement(segment(examples, second, scenario.length), agrawal_2) == 1.0
    # The old concept is close to a coin flip on the new one: the drift hurts.
    assert agreement(segment(examples, first, second), agrawal_6) < 0.6
    assert agreement(segment(examples, second, scenario.length), agrawal_0) < 0.6


def test_a_classifier_fit_before_the_abrupt_drift_loses_accuracy_after_it() -> None:
    from river import tree

    scenario = small("abrupt")
    drift = scenario.drifts[0].index
    examples = list(scenario.examples())
    model = tree.HoeffdingTreeClassifier()
    for e in segment(examples, 0, drift - 500):
        model.learn_one(dict(e.features), e.label)

    def acc(part: list[Example]) -> float:
        return sum(model.predict_one(dict(e.features)) == e.label for e in part) / len(part)

    assert acc(segment(examples, drift - 500, drift)) > 0.85
    assert acc(segment(examples, drift, drift + 500)) < 0.6


def test_gradual_moves_from_function_1_to_8_along_the_sigmoid() -> None:
    scenario = get_scenario("gradual")
    drift = scenario.drifts[0]
    assert (drift.start, drift.index, drift.end) == (12_000, 15_000, 18_000)
    examples = list(scenario.examples())

    def share_new(part: list[Example]) -> float:
        # Among examples where the two concepts disagree, the share labelled by the new one.
        split = [e for e in part if agrawal_1(dict(e.features)) != agrawal_8(dict(e.features))]
        return sum(agrawal_8(dict(e.features)) == e.label for e in split) / len(split)

    assert share_new(segment(examples, 0, drift.index - drift.width)) < 0.03
    assert 0.3 < share_new(segment(examples, drift.index - 500, drift.index + 500)) < 0.7
    assert share_new(segment(examples, drift.index + drift.width, scenario.length)) > 0.97
    middle = [share_new(segment(examples, a, a + 1_500)) for a in range(12_000, 18_000, 1_500)]
    assert middle == sorted(middle)


def test_incremental_rotates_only_during_its_span() -> None:
    from river import linear_model, preprocessing

    scenario = small("incremental", 12_000)
    drift = scenario.drifts[0]
    assert (drift.start, drift.end) == (4_000, 8_000)
    examples = list(scenario.examples())

    def fit(part: list[Example]):
        model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
        for e in part:
            model.learn_one(dict(e.features), e.label)
        return model

    def acc(model, part: list[Example]) -> float:
        return sum(model.predict_one(dict(e.features)) == e.label for e in part) / len(part)

    old = fit(segment(examples, 0, drift.start - 1_000))
    before = acc(old, segment(examples, drift.start - 1_000, drift.start))
    quarters = [acc(old, segment(examples, a, a + 1_000))
                for a in range(drift.start, drift.end, 1_000)]
    assert before > 0.88
    assert quarters[0] > quarters[-1] + 0.05  # the boundary keeps moving away
    assert acc(old, segment(examples, drift.end, scenario.length)) < before - 0.12
    # After the span the concept rests: a model fit on it stays accurate to the end.
    new = fit(segment(examples, drift.end, drift.end + 2_000))
    assert acc(new, segment(examples, scenario.length - 1_000, scenario.length)) > 0.88


def test_covariate_keeps_the_labelling_function_and_moves_the_population() -> None:
    scenario = small("covariate")
    shift = scenario.drifts[0].index
    examples = list(scenario.examples())
    assert agreement(examples, agrawal_2) == 1.0
    before = segment(examples, 0, shift)
    after = segment(examples, shift, scenario.length)
    assert sum(e.features["age"] < 40 for e in before) / len(before) > 0.7
    assert sum(e.features["age"] >= 60 for e in after) / len(after) > 0.7
    assert isinstance(examples[0].features["car"], str)
    assert isinstance(examples[0].features["zipcode"], str)


def test_recurring_brings_the_first_concept_back() -> None:
    scenario = small("recurring")
    bounds = [0, *(d.index for d in scenario.drifts), scenario.length]
    assert bounds == [0, 1_800, 3_200, 4_600, 6_000]
    examples = list(scenario.examples())
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        concept, other = (stagger_a, stagger_b) if k % 2 == 0 else (stagger_b, stagger_a)
        assert agreement(segment(examples, a, b), concept) == 1.0
        assert agreement(segment(examples, a, b), other) < 0.6


def test_resized_scales_drift_points_warmup_and_delay() -> None:
    scenario = get_scenario("abrupt")
    half = scenario.resized(15_000)
    assert [d.index for d in half.drifts] == [6_000, 10_500]
    assert (half.warmup, half.label_delay, half.length) == (1_500, 250, 15_000)
    assert len(list(half.examples())) == 15_000
    assert scenario.resized(60_000).label_delay == scenario.label_delay


def test_drift_point_bounds() -> None:
    assert (DriftPoint(100, "abrupt").start, DriftPoint(100, "abrupt").end) == (100, 100)
    gradual = DriftPoint(100, "gradual", width=40)
    assert (gradual.start, gradual.end) == (80, 120)
    incremental = DriftPoint(100, "incremental", width=40)
    assert (incremental.start, incremental.end) == (100, 140)


def test_bad_scenarios_and_names_are_refused() -> None:
    scenario = get_scenario("abrupt")
    with pytest.raises(ConfigError, match="unknown scenario 'nope'"):
        get_scenario("nope")
    with pytest.raises(ConfigError, match="feedback rate"):
        scenario.with_feedback(feedback_rate=0.0)
    with pytest.raises(ConfigError, match="drift points"):
        scenario.resized(30_000, warmup=20_000)


# -- the scenarios added for continual retraining ---------------------------------------------

NEW = ("sea", "rbf", "led", "friedman", "rotating")


def test_new_scenarios_are_listed_with_their_task_and_drift_points() -> None:
    assert set(NEW) <= set(SCENARIOS)
    tasks = {name: (SCENARIOS[name].task, SCENARIOS[name].classes) for name in NEW}
    assert tasks == {"sea": ("classification", 2), "rbf": ("classification", 2),
                     "led": ("classification", 10), "friedman": ("regression", 0),
                     "rotating": ("classification", 2)}
    assert [d.index for d in SCENARIOS["sea"].drifts] == [9_000, 16_000, 23_000]
    assert [d.index for d in SCENARIOS["led"].drifts] == [12_000, 21_000]
    assert [d.index for d in SCENARIOS["friedman"].drifts] == [12_000, 21_000]
    for name in ("rbf", "rotating"):
        (drift,) = SCENARIOS[name].drifts
        assert (drift.kind, drift.start, drift.end) == ("incremental", 3_000, 30_000)


def test_the_trainer_infers_each_new_scenarios_declared_task() -> None:
    from retrain.dataset import infer_task

    for name in NEW:
        scenario = small(name, 3_000)
        assert infer_task([e.label for e in scenario.examples()]) == scenario.task, name


def test_a_stream_that_drifts_throughout_still_ends_at_its_last_event_when_resized() -> None:
    for length in (1_000, 2_001, 4_286, 7_777):
        (drift,) = get_scenario("rotating").resized(length).drifts
        assert drift.end == length


def sea_concept(threshold: float):
    return lambda x: int(x["x0"] + x["x1"] > threshold)


def test_sea_moves_its_threshold_at_each_drift_point_with_ten_percent_noise() -> None:
    scenario = small("sea", 8_000)
    bounds = [0, *(d.index for d in scenario.drifts), scenario.length]
    assert bounds == [0, 2_400, 4_267, 6_133, 8_000]
    examples = list(scenario.examples())
    thresholds = (8, 9, 7, 9.5)
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        part = segment(examples, a, b)
        assert agreement(part, sea_concept(thresholds[k])) == pytest.approx(0.9, abs=0.025)
    # The neighbouring thresholds disagree on a visible share of each segment.
    assert agreement(segment(examples, 2_400, 4_267), sea_concept(8)) < 0.85
    assert agreement(segment(examples, 4_267, 6_133), sea_concept(9)) < 0.82


#: The seven segments of each digit (top, top-left, top-right, middle, bottom-left,
#: bottom-right, bottom), from the LED problem of Breiman et al.
DIGITS = {
    0: (1, 1, 1, 0, 1, 1, 1), 1: (0, 0, 1, 0, 0, 1, 0), 2: (1, 0, 1, 1, 1, 0, 1),
    3: (1, 0, 1, 1, 0, 1, 1), 4: (0, 1, 1, 1, 0, 1, 0), 5: (1, 1, 0, 1, 0, 1, 1),
    6: (1, 1, 0, 1, 1, 1, 1), 7: (1, 0, 1, 0, 0, 1, 0), 8: (1, 1, 1, 1, 1, 1, 1),
    9: (1, 1, 1, 1, 0, 1, 1),
}


def read_display(x: dict) -> int:
    """The digit whose segments are nearest to inputs x0..x6 (the first digit when tied)."""
    shown = tuple(x[f"x{i}"] for i in range(7))
    return min(DIGITS, key=lambda d: sum(a != b for a, b in zip(DIGITS[d], shown, strict=True)))


def test_led_rewires_segments_at_each_drift_point() -> None:
    scenario = small("led", 6_000)
    first, second = (d.index for d in scenario.drifts)
    assert (first, second) == (2_400, 4_200)
    examples = list(scenario.examples())
    assert len(examples[0].features) == 24
    assert {e.label for e in examples} == set(range(10))
    before = agreement(segment(examples, 0, first), read_display)
    middle = agreement(segment(examples, first, second), read_display)
    after = agreement(segment(examples, second, scenario.length), read_display)
    # 9% of segments flip: reading the display is right about 3 times in 4 before the drift.
    assert 0.65 < before < 0.85
    assert middle < before - 0.25
    assert after < middle


def friedman(x: dict) -> float:
    return (10 * math.sin(math.pi * x["x0"] * x["x1"]) + 20 * (x["x2"] - 0.5) ** 2
            + 10 * x["x3"] + 5 * x["x4"])


def residual(examples: list[Example]) -> float:
    return math.sqrt(sum((e.label - friedman(dict(e.features))) ** 2 for e in examples)
                     / len(examples))


def test_friedman_is_a_regression_whose_function_changes_then_returns() -> None:
    scenario = small("friedman")
    first, second = (d.index for d in scenario.drifts)
    assert (first, second) == (2_400, 4_200)
    examples = list(scenario.examples())
    assert all(type(e.label) is float for e in examples)
    # Friedman's function plus unit Gaussian noise, except between the two drifts.
    assert residual(segment(examples, 0, first)) == pytest.approx(1.0, abs=0.08)
    assert residual(segment(examples, first, second)) > 4.0
    assert residual(segment(examples, second, scenario.length)) == pytest.approx(1.0, abs=0.08)
    # Right at each drift point, not an event early or late.
    assert abs(examples[first - 1].label - friedman(dict(examples[first - 1].features))) < 5
    changed = [abs(e.label - friedman(dict(e.features))) > 5
               for e in segment(examples, first, first + 200)]
    assert sum(changed) > 40


def fit_then_score(examples: list[Example], fit_end: int, parts: list[tuple[int, int]]
                   ) -> list[float]:
    from river import linear_model, preprocessing

    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    for e in segment(examples, 0, fit_end):
        model.learn_one(dict(e.features), e.label)
    return [sum(model.predict_one(dict(e.features)) == e.label for e in segment(examples, a, b))
            / (b - a) for a, b in parts]


def test_rotating_drifts_from_the_first_event_to_the_last() -> None:
    scenario = get_scenario("rotating")
    examples = list(itertools.islice(scenario.examples(), 30_000))
    # A model of the warm-up's boundary gets steadily worse: no stretch is free of drift.
    known, *later = fit_then_score(examples, 3_000,
                                   [(2_000, 3_000), *((a, a + 1_000)
                                                      for a in range(3_000, 30_000, 3_000))])
    assert known > 0.85
    assert max(later) < known - 0.05
    assert later[-1] < known - 0.3


def test_rbf_centroids_keep_moving() -> None:
    from river import forest

    scenario = get_scenario("rbf")
    examples = list(scenario.examples())
    model = forest.ARFClassifier(seed=1)
    for e in segment(examples, 0, 3_000):
        model.learn_one(dict(e.features), e.label)

    def acc(a: int) -> float:
        part = segment(examples, a, a + 1_000)
        return sum(model.predict_one(dict(e.features)) == e.label for e in part) / len(part)

    known = acc(2_000)
    assert known > 0.85
    assert acc(6_000) < known - 0.05
    assert max(acc(a) for a in range(10_000, 30_000, 4_000)) < known - 0.15
