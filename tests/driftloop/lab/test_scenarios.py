"""The scenarios: deterministic per seed, drifting exactly where they say, valid on the wire."""

from __future__ import annotations

import itertools
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
    assert {e.label for e in examples} == {0, 1}
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
