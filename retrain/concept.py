"""Where the current concept starts, and when to retrain again after a drift (pure).

A model retrained right after a drift must learn the new concept, not the old one: most of
the newest few thousand labels still come from before the drift, because the monitor notices
a drift after a few hundred labels and labels arrive late. So a drift-triggered run dates the
drift and trains on what came after it (:func:`retrain.dataset.build_dataset` with ``since``).

Dating a drift. The champion is scored on the stored labelled examples that came after the
data it learnt from (out of sample, whichever version served them), which gives its error
stream. :func:`change_point` finds the split of that stream where the error rate rises the
most significantly (the classic mean-shift statistic, standardised:
``(after - before) / sqrt(var * (1/k + 1/(n - k)))``); the drift is said to start at the first
example after the split when that z-score reaches ``z_min``. A River detector's alarm ends the
stream searched: the drift started before the example that fired it.
Without a significant split, the concept start named in the champion's lineage (the start
of the data it learnt) still holds, so later runs keep to the concept the champion learnt.

Growing after a drift. The first post-drift model learns from a few hundred labels.
:func:`followup_due` says when to retrain again: each time the examples since the concept
start have grown ``growth``-fold over the most a run has used (or been offered, when its
challenger lost), until ``recent_examples`` of them fill a training set.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streams.lineage import ConceptFinding, Lineage

#: Keys of a RetrainRequested's evidence that say a River detector fired, and on which example.
DETECTORS_KEY = "detectors"


@dataclass(frozen=True)
class ChangePoint:
    """The new regime starts at ``index`` of the error stream."""

    index: int
    before: float
    after: float
    z: float


def change_point(
    errors: Sequence[float], *, last: int | None = None, min_size: int = 10
) -> ChangePoint | None:
    """The most significant rise of the mean of ``errors`` starting at or before ``last``.

    ``None`` when the stream is too short or never gets worse.
    """
    n = len(errors)
    if n < 2 * min_size:
        return None
    prefix = [0.0]
    for e in errors:
        prefix.append(prefix[-1] + e)
    total = prefix[-1]
    mean = total / n
    var = sum((e - mean) ** 2 for e in errors) / n
    if var <= 0:
        return None
    highest = n - min_size if last is None else min(n - min_size, last)
    best: ChangePoint | None = None
    for k in range(min_size, highest + 1):
        before = prefix[k] / k
        after = (total - prefix[k]) / (n - k)
        z = (after - before) / math.sqrt(var * (1 / k + 1 / (n - k)))
        if best is None or z > best.z:
            best = ChangePoint(k, before, after, z)
    return best if best is not None and best.z > 0 else None


def alarm_example(evidence: Mapping[str, Any]) -> int | None:
    """The stored example id of the first detector alarm in a request's evidence."""
    ids = []
    for alarm in evidence.get(DETECTORS_KEY) or ():
        if isinstance(alarm, Mapping) and isinstance(alarm.get("example_id"), int):
            ids.append(int(alarm["example_id"]))
    return min(ids) if ids else None


@dataclass(frozen=True)
class Concept:
    """Where the data of the current concept starts, and how that was found."""

    since: datetime | None
    source: str
    z: float | None = None
    error_before: float | None = None
    error_after: float | None = None

    def finding(self) -> ConceptFinding:
        """How it was found, for the lineage."""
        return ConceptFinding(
            since=self.since, source=self.source,
            z=None if self.z is None else round(self.z, 2),
            error_before=None if self.error_before is None else round(self.error_before, 4),
            error_after=None if self.error_after is None else round(self.error_after, 4),
        )


@dataclass(frozen=True)
class Scored:
    """One labelled example's error under the champion, for dating a drift."""

    timestamp: datetime
    example_id: int | None
    error: float


def concept_start(
    stream: Sequence[Scored],
    *,
    inherited: datetime | None = None,
    evidence: Mapping[str, Any] | None = None,
    detect: bool = True,
    z_min: float = 5.0,
    min_size: int = 10,
) -> Concept:
    """The current concept's start: a significant rise of the champion's errors over
    ``stream`` (time order; only when ``detect``), else the ``inherited`` start, else none
    (every example is current). A detector alarm in ``evidence`` bounds the search."""
    found: Concept | None = None
    if detect and stream:
        anchor = alarm_example(evidence or {})
        last = None
        if anchor is not None:
            upto = [i for i, s in enumerate(stream)
                    if s.example_id is not None and s.example_id <= anchor]
            last = upto[-1] if upto else None
        if anchor is None or last is not None:
            # Up to the alarm only: a later, different change must not pull the estimate.
            upto_alarm = stream if last is None else stream[: last + 1]
            point = change_point([s.error for s in upto_alarm], min_size=min_size)
            if point is not None and point.z >= z_min:
                found = Concept(stream[point.index].timestamp, "change_point", point.z,
                                point.before, point.after)
    if found is not None and found.since is not None and (
            inherited is None or found.since >= inherited):
        return found
    if inherited is not None:
        return Concept(inherited, "lineage")
    return Concept(None, "none")


def latest_since(lineages: Iterable[Lineage]) -> datetime | None:
    """The newest concept start any version's run dated or inherited: where the current
    concept starts, even when the run that dated it lost (its challenger was rejected)."""
    return max((s for s in (lineage.concept_since for lineage in lineages) if s is not None),
               default=None)


def followup_due(
    *, available: int, learnt: int, offered: int, growth: float, recent_examples: int,
    min_examples: int,
) -> bool:
    """Whether to retrain again now that ``available`` examples of the current concept exist,
    when the champion ``learnt`` from ``learnt`` of them (0: it predates the concept) and runs
    since were ``offered`` at most ``offered``."""
    if growth <= 1 or learnt >= recent_examples:
        return False
    return available >= max(min_examples, growth * max(learnt, offered))
