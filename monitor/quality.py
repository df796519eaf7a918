"""Data quality of a window's features against its reference rows (pure, no Evidently).

Per feature the window gets three rates, each against the reference the drift report uses
(the champion's training examples when its lineage names them, else the model's first rows):

* ``missing``: the share of rows where the feature is null, next to the reference's share;
* ``out_of_range`` (numeric features): the share of rows outside the reference's smallest to
  largest value, or holding something that is not a number;
* ``unseen`` (categorical features, booleans included): the share of rows with a category the
  reference never had.

A feature is *violated* when its missing share exceeds the reference's by more than
``margin``, when more than ``margin`` of the rows are out of range, or when the unseen share
exceeds ``margin`` plus the share the reference itself predicts for new categories (its
Good-Turing estimate: the share of reference rows whose category occurs there once), so a
feature with many rare categories is not flagged for being what it always was. A feature that
is null in every reference row has no range or categories to check; only its missing share is.

"Exceeds" is a test, not a comparison, so that small windows do not flag noise: a count ``k``
of ``n`` rows exceeds the allowed share ``p`` only when ``k / n > p`` and the Chernoff bound
``exp(-n * KL(k/n || p))`` on the chance of seeing that many at the allowed share is below
:data:`ALPHA`. On 30 rows, 15 nulls where the reference had none is a violation, 6 where it
had 10% is not.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from streams.events import ColumnQuality

#: The chance, at most, that a window whose true rate is the allowed one is flagged.
ALPHA = 1e-3


def exceeds(count: int, total: int, allowed: float) -> bool:
    """Whether ``count`` of ``total`` is significantly above the share ``allowed``."""
    if total == 0 or count / total <= allowed:
        return False
    if allowed <= 0.0:
        return True
    if allowed >= 1.0:
        return False
    q = count / total
    kl = q * math.log(q / allowed)
    if q < 1.0:
        kl += (1.0 - q) * math.log((1.0 - q) / (1.0 - allowed))
    return total * kl > math.log(1.0 / ALPHA)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


def _key(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def column_quality(
    name: str, reference: Sequence[Any], current: Sequence[Any], *, margin: float
) -> ColumnQuality:
    """The quality of one column, given its values in the reference and in the window."""
    ref = [v for v in reference if v is not None]
    cur = [v for v in current if v is not None]
    n = len(current)
    missing = 1.0 - _share(len(cur), n)
    reference_missing = 1.0 - _share(len(ref), len(reference))
    violated = exceeds(n - len(cur), n, reference_missing + margin)
    out_of_range = unseen = None
    if ref and all(_is_number(v) and math.isfinite(v) for v in ref):
        low, high = min(ref), max(ref)
        outside = sum(1 for v in cur if not _is_number(v) or not low <= v <= high)
        out_of_range = _share(outside, n)
        violated = violated or exceeds(outside, n, margin)
    elif ref:
        counts = Counter(_key(v) for v in ref)
        new = sum(1 for v in cur if _key(v) not in counts)
        unseen = _share(new, n)
        expected = _share(sum(1 for c in counts.values() if c == 1), len(ref))
        violated = violated or exceeds(new, n, expected + margin)
    return ColumnQuality(column=name, missing=missing, reference_missing=reference_missing,
                         out_of_range=out_of_range, unseen=unseen, violated=violated)


def window_quality(
    reference: Sequence[Mapping[str, Any]],
    current: Sequence[Mapping[str, Any]],
    *,
    margin: float,
    exclude: Collection[str] = (),
) -> tuple[ColumnQuality, ...]:
    """Every column of the window but ``exclude``, in the order the rows name them."""
    if not reference or not current:
        return ()
    names = dict.fromkeys(name for row in (reference[0], current[0]) for name in row)
    return tuple(
        column_quality(name, [r.get(name) for r in reference], [r.get(name) for r in current],
                       margin=margin)
        for name in names if name not in exclude
    )
