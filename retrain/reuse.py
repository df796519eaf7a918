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
the one that beats the champion by most is promoted again through the registry, and the run
trains nothing. The artifact is not rewritten: the run record
(decision ``reused``), its log and the audit row's reason say "reused vN".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from retrain.dataset import Task
from retrain.decision import Decision, Evaluation, decide
from retrain.registry import VersionInfo
from streams.scores import better
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
class Reuse:
    """An archived version that beat the champion, with the gate's decision."""

    version: int
    decision: Decision

    def reason(self) -> str:
        return f"reused v{self.version}: {self.decision.reason}"


def pick(
    scored: Sequence[tuple[int, Evaluation]], champion: Evaluation, *, task: Task, metric: str,
    margin: float,
) -> Reuse | None:
    """The version (of ``(version, evaluation)`` pairs) that beats ``champion`` by most, or None.

    Each passes the same gate as a challenger (sanity checks, then more than ``margin``
    better on ``metric``); ties go to the newer version."""
    best: Reuse | None = None
    for version, evaluation in scored:
        decision = decide(evaluation, champion, task=task, metric=metric, margin=margin)
        if not decision.promote:
            continue
        if best is None or _better(decision, best.decision, metric) or (
            decision.challenger[metric] == best.decision.challenger[metric]
            and version > best.version
        ):
            best = Reuse(version, decision)
    return best


def _better(a: Decision, b: Decision, metric: str) -> bool:
    return better(metric, a.challenger[metric], b.challenger[metric])
