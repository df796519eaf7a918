"""Dating a drift in the champion's errors, and when to retrain again after it (pure)."""

from __future__ import annotations

import random
from datetime import timedelta

from retrain.concept import Scored, change_point, concept_start, followup_due, latest_since
from streams.lineage import Lineage
from tests.retrain.helpers import T0


def _bernoulli(rates: list[tuple[int, float]], seed: int = 0) -> list[float]:
    draw = random.Random(seed)
    return [float(draw.random() < p) for n, p in rates for _ in range(n)]


def _stream(errors: list[float]) -> list[Scored]:
    return [Scored(T0 + timedelta(seconds=i), 1000 + i, e) for i, e in enumerate(errors)]


def test_an_abrupt_rise_is_dated_within_a_few_examples() -> None:
    errors = _bernoulli([(1500, 0.05), (200, 0.5)], seed=3)
    point = change_point(errors)
    assert point is not None
    assert abs(point.index - 1500) <= 15
    assert point.before < 0.07
    assert point.after > 0.4
    assert point.z > 10


def test_a_stationary_stream_has_no_significant_rise() -> None:
    for seed in range(10):
        point = change_point(_bernoulli([(3000, 0.2)], seed=seed))
        assert point is None or point.z < 5, (seed, point)


def test_a_model_getting_better_is_no_drift() -> None:
    assert change_point(_bernoulli([(500, 0.5), (500, 0.05)], seed=1)) is None


def test_the_alarm_bounds_the_search_to_the_first_rise() -> None:
    # Two rises; the detector fired during the first, so the drift is the first one.
    errors = _bernoulli([(800, 0.05), (300, 0.5), (400, 0.95)], seed=2)
    stream = _stream(errors)
    alarm = {"detectors": [{"detector": "adwin", "index": 7, "example_id": 1000 + 900}]}
    dated = concept_start(stream, evidence=alarm)
    assert dated.source == "change_point"
    assert dated.since is not None
    assert abs((dated.since - stream[800].timestamp).total_seconds()) <= 20
    # Without the alarm the worse, later regime pulls the estimate away from the first rise.
    unbounded = concept_start(stream)
    assert unbounded.since is not None
    assert unbounded.since > dated.since + timedelta(seconds=50)


def test_without_a_rise_the_inherited_start_holds() -> None:
    stream = _stream(_bernoulli([(1000, 0.1)], seed=4))
    inherited = T0 - timedelta(hours=1)
    assert concept_start(stream, inherited=inherited).since == inherited
    assert concept_start(stream, inherited=inherited).source == "lineage"
    assert concept_start(stream).since is None
    # Not asked to detect (a scheduled run): the lineage only.
    drifting = _stream(_bernoulli([(500, 0.05), (300, 0.6)], seed=5))
    assert concept_start(drifting, inherited=inherited, detect=False).since == inherited
    assert concept_start(drifting, inherited=inherited).source == "change_point"


def _due(available: int, learnt: int, offered: int = 0, **kw: float) -> bool:
    args = {"growth": 2.0, "recent_examples": 5000, "min_examples": 200, **kw}
    return followup_due(available=available, learnt=learnt, offered=offered, **args)  # type: ignore[arg-type]


def test_follow_ups_come_each_time_the_new_concept_doubles() -> None:
    assert (_due(399, learnt=200), _due(400, learnt=200)) == (False, True)
    # A follow-up offered 400 that lost: the next one waits for 800.
    assert not _due(700, learnt=200, offered=400)
    assert _due(800, learnt=200, offered=400)
    # Enough examples learnt, or follow-ups disabled: none.
    assert not _due(20_000, learnt=5000)
    assert not _due(20_000, learnt=200, growth=1.0)
    # The champion predates the concept (its drift run lost): min_examples, then doubling.
    assert not _due(150, learnt=0)
    assert _due(200, learnt=0)
    assert not _due(400, learnt=0, offered=239)
    assert _due(478, learnt=0, offered=239)


def test_the_newest_dated_concept_is_the_current_one() -> None:
    def lineage(since: str | None) -> Lineage:
        return Lineage.of({"data": {"concept": {"since": since}}})

    assert latest_since([lineage(None), Lineage()]) is None
    assert latest_since([lineage(T0.isoformat()), lineage((T0 + timedelta(hours=1)).isoformat()),
                         lineage(None)]) == T0 + timedelta(hours=1)
