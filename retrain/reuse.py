"""Reuse of earlier models: when a concept comes back, a former champion may already know it (pure).

A drift request first looks back before it trains. :func:`candidates` names the newest
``reuse_candidates`` archived versions: former champions that stepped down for a newer one.
A version serving refused, or one rolled back or rejected, never comes back this way (nor could
it: the registry refuses to crown a refused version). The runner scores each of them and the
champion on the slice a challenger would be judged on: the run's holdout, the newest
``holdout_share`` of its recent examples (of those since the drift, when the run dated it).
Not on all the recent examples: the gate cares for the newest, and older ones can favour the
wrong model (corrupted labels followed by clean ones). :func:`pick` applies the
champion/challenger gate (:func:`retrain.decision.decide`, same metric and margin) to each;
and a version must also be right where the champion is wrong significantly more often than the
reverse, row by row on that slice (:class:`Paired`: a one-sided sign test, McNemar's exact test
for classes, at ``reuse_confidence``), so that a few lucky rows of a small slice after a drift
never bring back a model of an older concept. Of those that pass, the one that beats the
champion by most is promoted again through the registry, and the run trains nothing. The
artifact is not rewritten: the run record (decision ``reused``), its log and the audit row's
reason say "reused vN".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from retrain.decision import Decision, Evaluation, decide
from retrain.registry import VersionInfo
from streams.scores import Task, better, label_keys
from streams.statuses import VersionStatus

#: The only status a version may be reused from.
REUSABLE = VersionStatus.ARCHIVED


def candidates(versions: Sequence[VersionInfo], limit: int) -> list[VersionInfo]:
    """The newest ``limit`` archived versions that have an artifact, newest first."""
    if limit <= 0:
        return []
    found = [v for v in versions if v.status == REUSABLE and v.artifact_uri and v.sha256]
    return sorted(found, key=lambda v: v.version, reverse=True)[:limit]


@dataclass(frozen=True)
class Paired:
    """Row by row on one slice, how often a version was closer to the truth than the champion
    (``wins``) and how often further (``losses``); ties, where both are right or both equally
    far, say nothing and are left out."""

    wins: int
    losses: int

    @classmethod
    def of(cls, task: Task, truth: Sequence[Any], mine: Sequence[Any], theirs: Sequence[Any]
           ) -> Paired:
        if not len(truth) == len(mine) == len(theirs):
            raise ValueError(f"{len(truth)} labels, {len(mine)} and {len(theirs)} predictions")
        if task == "classification":
            t, m, c = label_keys(truth), label_keys(mine), label_keys(theirs)
            wins = sum(a == x != b for x, a, b in zip(t, m, c, strict=True))
            losses = sum(b == x != a for x, a, b in zip(t, m, c, strict=True))
            return cls(wins, losses)
        near = [abs(float(a) - float(x)) for x, a in zip(truth, mine, strict=True)]
        far = [abs(float(b) - float(x)) for x, b in zip(truth, theirs, strict=True)]
        return cls(sum(a < b for a, b in zip(near, far, strict=True)),
                   sum(a > b for a, b in zip(near, far, strict=True)))

    @property
    def p_value(self) -> float:
        """The chance of at least ``wins`` of ``wins + losses`` if neither model were better
        (exact one-sided binomial at 1/2; 1.0 when the two never differ)."""
        n = self.wins + self.losses
        if n == 0:
            return 1.0
        return sum(math.comb(n, k) for k in range(self.wins, n + 1)) / (1 << n)

    def significant(self, confidence: float) -> bool:
        """Whether the wins outnumber the losses at ``confidence`` (0: always)."""
        return confidence <= 0 or self.p_value <= 1 - confidence

    def describe(self) -> str:
        return (f"better on {self.wins} rows, worse on {self.losses} "
                f"(sign test p {self.p_value:.3g})")


@dataclass(frozen=True)
class Reuse:
    """An archived version that beat the champion, with the gate's decision."""

    version: int
    decision: Decision
    paired: Paired | None = None

    def reason(self) -> str:
        rows = f"; {self.paired.describe()}" if self.paired is not None else ""
        return f"reused v{self.version}: {self.decision.reason}{rows}"


def pick(
    scored: Sequence[tuple[int, Evaluation, Paired]], champion: Evaluation, *, task: Task,
    metric: str, margin: float, confidence: float,
) -> Reuse | None:
    """The version (of ``(version, evaluation, paired with the champion)``) that beats
    ``champion`` by most, or None.

    Each passes the same gate as a challenger (sanity checks, then more than ``margin``
    better on ``metric``) and wins significantly more rows than it loses at ``confidence``;
    ties go to the newer version."""
    best: Reuse | None = None
    for version, evaluation, paired in scored:
        decision = decide(evaluation, champion, task=task, metric=metric, margin=margin)
        if not decision.promote or not paired.significant(confidence):
            continue
        if best is None or _better(decision, best.decision, metric) or (
            decision.challenger[metric] == best.decision.challenger[metric]
            and version > best.version
        ):
            best = Reuse(version, decision, paired)
    return best


def _better(a: Decision, b: Decision, metric: str) -> bool:
    return better(metric, a.challenger[metric], b.challenger[metric])
