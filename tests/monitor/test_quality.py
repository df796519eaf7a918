"""Data quality per window: nulls, out-of-range numbers and unseen categories, tested so that
noise in small windows is not flagged and real breakage is."""

from __future__ import annotations

import random
from typing import Any

import pytest

from monitor.quality import column_quality, exceeds, window_quality

MARGIN = 0.1


def _row(rng: random.Random, *, null_share: float = 0.05, shift: float = 0.0,
         new_category: float = 0.0) -> dict[str, Any]:
    city = f"c{int(rng.paretovariate(1.2))}"  # many rare categories, a few common ones
    if rng.random() < new_category:
        city = "atlantis"
    return {
        "income": None if rng.random() < null_share else rng.gauss(50 + shift, 10),
        "plan": rng.choice(["free", "pro", "team"]),
        "active": rng.random() < 0.7,
        "city": city,
        "user": f"u{rng.randrange(5000)}",  # mostly new in any window: Good-Turing knows
        "prediction": rng.random() < 0.5,
    }


def _rows(seed: int, n: int, **kwargs: float) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [_row(rng, **kwargs) for _ in range(n)]


@pytest.mark.parametrize("size", [30, 100, 1000])
def test_windows_like_the_reference_are_not_flagged(size: int) -> None:
    reference = _rows(0, 1000)
    flagged = []
    for seed in range(1, 201):
        quality = window_quality(reference, _rows(seed, size), margin=MARGIN,
                                 exclude=("prediction",))
        flagged += [(seed, q.column) for q in quality if q.violated]
    assert flagged == []


def test_a_feature_that_goes_null_is_flagged_and_the_others_are_not() -> None:
    quality = {q.column: q for q in window_quality(
        _rows(0, 1000), _rows(1, 100, null_share=0.5), margin=MARGIN, exclude=("prediction",))}
    assert set(quality) == {"income", "plan", "active", "city", "user"}
    income = quality["income"]
    assert income.violated
    assert income.missing == pytest.approx(0.5, abs=0.12)
    assert income.reference_missing == pytest.approx(0.05, abs=0.02)
    assert [c for c, q in quality.items() if q.violated] == ["income"]


def test_a_shifted_number_is_out_of_range() -> None:
    quality = {q.column: q for q in window_quality(_rows(0, 1000), _rows(1, 200, shift=60.0),
                                                   margin=MARGIN)}
    assert quality["income"].violated
    assert quality["income"].out_of_range is not None
    assert quality["income"].out_of_range > 0.5
    assert quality["income"].unseen is None


def test_a_new_category_is_unseen() -> None:
    quality = {q.column: q for q in window_quality(_rows(0, 1000),
                                                   _rows(1, 200, new_category=0.4),
                                                   margin=MARGIN)}
    assert quality["city"].violated
    assert quality["city"].unseen is not None
    assert quality["city"].unseen > 0.3
    assert quality["city"].out_of_range is None


def test_text_in_a_numeric_column_is_out_of_range_and_a_dropped_key_is_missing() -> None:
    reference = [{"x": float(i), "y": i} for i in range(100)]
    current = [{"x": "high"} for _ in range(40)]
    x, y = window_quality(reference, current, margin=MARGIN)
    assert (x.column, x.out_of_range, x.missing, x.violated) == ("x", 1.0, 0.0, True)
    assert (y.column, y.missing, y.violated) == ("y", 1.0, True)


def test_a_feature_null_in_the_whole_reference_only_has_its_missing_share_checked() -> None:
    q = column_quality("gap", [None] * 50, [1.0] * 30, margin=MARGIN)
    assert (q.missing, q.reference_missing, q.out_of_range, q.unseen, q.violated) == (
        0.0, 1.0, None, None, False)


@pytest.mark.parametrize(
    ("count", "total", "allowed", "expected"),
    [
        (15, 30, 0.1, True),    # half the rows null where the reference allows 10%
        (6, 30, 0.2, False),    # at the allowed share exactly
        (12, 30, 0.2, False),   # 40% of 30 rows: not enough evidence over 20%
        (300, 1000, 0.2, True),  # 30% of 1000 rows is
        (1, 30, 0.0, True),     # anything at all when nothing is allowed
        (30, 30, 1.0, False),   # nothing exceeds everything
        (0, 0, 0.1, False),
    ],
)
def test_exceeds_is_a_test_not_a_comparison(count: int, total: int, allowed: float,
                                            expected: bool) -> None:
    assert exceeds(count, total, allowed) is expected
