"""Champion vs challenger, and automatic rollback: the two verdicts of retraining (pure).

:func:`decide` compares two :class:`Evaluation` s made on the same held-out slice. The
challenger must pass the sanity checks (every output finite; no class collapse, i.e. it
does not answer one class for everything when the slice holds several; a regressor does not
answer one constant) and beat the champion on the promotion metric by more than the margin.
The first model of a name only has to be sane.

:func:`rollback_verdict` looks at the monitor's windowed scores after a promotion: when the
new champion's average over its newest windows falls below the previous champion's by more
than the margin, it says why the new one should be rolled back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from streams.scores import Task
from streams.scores import gain as score_gain

ROLLBACK_METRICS = ("accuracy", "f1", "mae", "mse", "rmse")


@dataclass(frozen=True)
class Evaluation:
    """One model's result on the held-out slice."""

    metrics: Mapping[str, float]
    rows: int
    finite: bool = True
    predicted_classes: int = 0
    true_classes: int = 0
    prediction_spread: float = 0.0
    target_spread: float = 0.0

    def problems(self, task: Task) -> tuple[str, ...]:
        """Sanity problems; empty when the model is fit to serve."""
        found = []
        if self.rows == 0:
            found.append("the held-out slice is empty")
        if not self.finite:
            found.append("non-finite outputs on the held-out slice")
        if task == "classification" and self.true_classes > 1 and self.predicted_classes <= 1:
            found.append(
                f"class collapse: one class predicted for all {self.rows} rows while the "
                f"slice holds {self.true_classes}"
            )
        if task == "regression" and self.target_spread > 0 and self.prediction_spread == 0:
            found.append("collapse: the same value predicted for every row")
        return tuple(found)


class DecisionRecord(TypedDict):
    """:meth:`Decision.record`: how a gate decided, as stored with the version and the run."""

    promote: bool
    reason: str
    metric: str
    margin: float
    challenger: dict[str, float]
    champion: dict[str, float] | None
    problems: list[str]


class RunScores(TypedDict, total=False):
    """What a run scored: its challenger's validation scores (none for a reuse) and the gate's
    decision on the holdout, stored with the run."""

    validation: dict[str, float]
    holdout: DecisionRecord


@dataclass(frozen=True)
class Decision:
    """Whether the challenger becomes champion, with the numbers that decided it."""

    promote: bool
    reason: str
    metric: str
    challenger: Mapping[str, float]
    champion: Mapping[str, float] | None = None
    problems: tuple[str, ...] = ()
    margin: float = 0.0

    def record(self) -> DecisionRecord:
        """A JSON-ready account, stored with the version and the run."""
        return {
            "promote": self.promote,
            "reason": self.reason,
            "metric": self.metric,
            "margin": self.margin,
            "challenger": dict(self.challenger),
            "champion": dict(self.champion) if self.champion is not None else None,
            "problems": list(self.problems),
        }


def promotion_metric(task: Task, configured: str = "auto") -> str:
    if configured != "auto":
        return configured
    return "accuracy" if task == "classification" else "mse"


def decide(
    challenger: Evaluation,
    champion: Evaluation | None,
    *,
    task: Task,
    metric: str,
    margin: float,
    champion_error: str | None = None,
) -> Decision:
    """Promote only a sane challenger that beats the champion by more than ``margin``."""
    problems = challenger.problems(task)

    def verdict(promote: bool, reason: str) -> Decision:
        return Decision(
            promote, reason, metric, challenger.metrics,
            champion.metrics if champion is not None else None, problems, margin,
        )

    if problems:
        return verdict(False, "fails sanity checks: " + "; ".join(problems))
    if champion is None:
        why = (
            f"the champion could not be scored ({champion_error})"
            if champion_error else "first model of its name"
        )
        return verdict(True, f"{why}; passes sanity checks")
    new, old = challenger.metrics[metric], champion.metrics[metric]
    gain = score_gain(metric, new, old)
    numbers = f"{metric} {new:.4f} vs champion {old:.4f} (gain {gain:+.4f}, margin {margin:g})"
    if gain > margin:
        return verdict(True, f"beats the champion: {numbers}")
    return verdict(False, f"does not beat the champion: {numbers}")


@dataclass(frozen=True)
class RollbackVerdict:
    metric: str
    new_score: float
    old_score: float
    windows: int
    reason: str = field(default="")


def pick_rollback_metric(
    reports: Sequence[Mapping[str, float]], configured: str | None
) -> str | None:
    """The configured metric, or the first well-known one every report carries."""
    if configured is not None:
        return configured
    for name in ROLLBACK_METRICS:
        if reports and all(name in r for r in reports):
            return name
    return None


def rollback_verdict(
    old: Sequence[Mapping[str, float]],
    new: Sequence[Mapping[str, float]],
    *,
    margin: float,
    windows: int,
    metric: str | None = None,
) -> RollbackVerdict | None:
    """A verdict when the newest ``windows`` reports of the new champion fall below the old.

    ``old`` are the previous champion's window scores before the promotion, ``new`` the new
    champion's since, oldest first. Nothing is said before ``windows`` new reports exist.
    """
    if len(new) < windows or not old:
        return None
    recent_new, recent_old = list(new[-windows:]), list(old[-windows:])
    name = pick_rollback_metric([*recent_new, *recent_old], metric)
    if name is None or any(name not in r for r in (*recent_new, *recent_old)):
        return None
    new_score = sum(r[name] for r in recent_new) / len(recent_new)
    old_score = sum(r[name] for r in recent_old) / len(recent_old)
    drop = score_gain(name, old_score, new_score)
    if drop <= margin:
        return None
    reason = (
        f"windowed {name} {new_score:.4f} over {len(recent_new)} windows is worse than the "
        f"previous champion's {old_score:.4f} by {drop:.4f} (margin {margin:g})"
    )
    return RollbackVerdict(name, new_score, old_score, len(recent_new), reason)
