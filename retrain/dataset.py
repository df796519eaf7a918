"""Training, validation and held-out splits built from stored labelled examples (pure).

The store already keeps, for each (model, request), the label that wins (a reviewer's
correction beats the app's label), so the examples arrive here with the right labels. The
split is by time, newest last::

    older examples ........ | recent_examples newest examples ...................... |
    sampled: older_share of  | train (oldest) | validation | holdout (newest share)    |
    the training set         |                                                       |

The newest ``holdout_share`` of the recent examples is the held-out slice on which the
champion and the challenger are compared; nothing from it, and nothing newer, is in the
training or validation splits. Validation (early stopping) is the newest share of what is left,
training the rest plus a seeded sample of older examples.

After a drift the caller passes ``since``, the start of the current concept (see
:mod:`retrain.concept`): when at least ``min_examples`` examples are that new, the recent
examples are taken from them only (so the holdout is the newest slice of the new concept too),
and ``drift_older_share`` of the training set, not ``older_share``, comes from before. With
fewer the plan falls back to the usual split, and the lineage says so.

Examples without a label are skipped, and so are examples whose feature names differ from the
newest example's (the schema the model will be served with); the lineage counts both.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from streams.errors import TrainingError
from streams.lineage import ConceptLineage, DataLineage, SplitLineage
from streams.scores import Task
from streams.settings import RetrainSettings

#: Integer labels with at most this many distinct values are classes, not quantities.
MAX_INTEGER_CLASSES = 20


@dataclass(frozen=True)
class Example:
    """One labelled example: what the model saw, the winning label, and when."""

    request_id: str
    features: Mapping[str, Any]
    label: Any
    timestamp: datetime
    label_source: str = "app"
    version: int | None = None
    """The model version that answered the request (0: logged by the app itself)."""
    predicted: Any = None
    """What that version answered, when known."""
    id: int | None = None
    """The stored example's id, when it comes from the store."""


@dataclass(frozen=True)
class Split:
    """An ordered (oldest first) slice of examples."""

    examples: tuple[Example, ...]

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def features(self) -> list[Mapping[str, Any]]:
        return [e.features for e in self.examples]

    @property
    def labels(self) -> list[Any]:
        return [e.label for e in self.examples]

    def lineage(self) -> SplitLineage:
        """Counts and time range, for lineage."""
        if not self.examples:
            return SplitLineage(count=0)
        times = [e.timestamp for e in self.examples]
        return SplitLineage(
            count=len(self.examples), from_=min(times), to=max(times),
            reviewer_labels=sum(e.label_source == "reviewer" for e in self.examples),
        )


@dataclass(frozen=True)
class Dataset:
    """What one training run learns from and is judged on."""

    model: str
    task: Task
    train: Split
    validation: Split
    holdout: Split
    older_sampled: int = 0
    skipped_unlabelled: int = 0
    skipped_schema: int = 0
    since: datetime | None = None
    """The start of the concept the recent examples were taken from (None: every example)."""
    since_examples: int = 0
    """How many usable examples are that new (counted even when too few to be used)."""
    since_used: bool = False

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(sorted(self.holdout.examples[0].features)) if self.holdout else ()

    def lineage(self) -> DataLineage:
        learnt = [e.timestamp for e in (*self.train.examples, *self.validation.examples)]
        concept = None
        if self.since is not None:
            recent = len(self.train) - self.older_sampled + len(self.validation) + len(
                self.holdout)
            concept = ConceptLineage(since=self.since, available=self.since_examples,
                                     examples=recent if self.since_used else 0,
                                     used=self.since_used)
        return DataLineage(
            # The span of what the model learnt from (the monitor's drift reference).
            from_=min(learnt, default=None),
            to=max(learnt, default=None),
            concept=concept,
            source="labelled_examples",
            task=self.task,
            train=self.train.lineage(),
            validation=self.validation.lineage(),
            holdout=self.holdout.lineage(),
            older_sampled=self.older_sampled,
            skipped_unlabelled=self.skipped_unlabelled,
            skipped_schema=self.skipped_schema,
            features=self.feature_names,
        )


@dataclass(frozen=True)
class DatasetPlan:
    """How many examples of which age go where."""

    recent_examples: int = 5_000
    older_share: float = 0.2
    holdout_share: float = 0.2
    validation_share: float = 0.15
    min_examples: int = 200
    max_examples: int = 50_000
    seed: int = 0
    task: Literal["auto", "classification", "regression"] = "auto"
    drift_older_share: float = 0.0

    @classmethod
    def from_settings(cls, settings: RetrainSettings) -> DatasetPlan:
        return cls(
            recent_examples=settings.recent_examples,
            older_share=settings.older_share,
            holdout_share=settings.holdout_share,
            validation_share=settings.validation_share,
            min_examples=settings.min_examples,
            max_examples=settings.max_examples,
            seed=settings.seed,
            task=settings.task,
            drift_older_share=settings.drift_older_share,
        )


def infer_task(labels: Sequence[Any]) -> Task:
    """Text or booleans, or integers with few distinct values, are classes; else quantities."""
    if all(isinstance(v, str | bool) for v in labels):
        return "classification"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        return "classification" if len(set(labels)) <= MAX_INTEGER_CLASSES else "regression"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in labels):
        return "regression"
    return "classification"


def _take(n_total: int, share: float) -> int:
    """At least one, at most all but one, of ``n_total`` items for a share."""
    return min(max(1, round(n_total * share)), n_total - 1)


def build_dataset(
    model: str, examples: Sequence[Example], plan: DatasetPlan, *, since: datetime | None = None
) -> Dataset:
    """Split ``examples`` (any order) by time; raise TrainingError when they cannot train.

    ``since``: the current concept's start (see the module docstring)."""
    ordered = sorted(examples, key=lambda e: (e.timestamp, e.request_id))[-plan.max_examples :]
    labelled = [e for e in ordered if e.label is not None]
    skipped_unlabelled = len(ordered) - len(labelled)
    schema = set(labelled[-1].features) if labelled else set()
    usable = [e for e in labelled if set(e.features) == schema]
    skipped_schema = len(labelled) - len(usable)
    if len(usable) < plan.min_examples:
        raise TrainingError(
            f"{model}: {len(usable)} usable labelled examples, at least {plan.min_examples} "
            "are needed"
        )
    task: Task = infer_task([e.label for e in usable]) if plan.task == "auto" else plan.task
    if task == "regression" and not all(
        isinstance(e.label, int | float) and not isinstance(e.label, bool) for e in usable
    ):
        raise TrainingError(f"{model}: regression needs numeric labels")

    current = [e for e in usable if e.timestamp >= since] if since is not None else []
    since_used = since is not None and len(current) >= plan.min_examples
    older_share = plan.older_share
    if since_used:
        recent = current[-plan.recent_examples :]
        older_share = plan.drift_older_share
    else:
        recent = usable[-plan.recent_examples :]
    older = usable[: len(usable) - len(recent)]
    n_holdout = _take(len(recent), plan.holdout_share)
    holdout = recent[len(recent) - n_holdout :]
    pool = recent[: len(recent) - n_holdout]
    if len(pool) < 2:
        raise TrainingError(f"{model}: too few examples left to train after the holdout")
    n_val = _take(len(pool), plan.validation_share)
    validation = pool[len(pool) - n_val :]
    train_recent = pool[: len(pool) - n_val]

    if older_share >= 1:
        n_older = len(older)
    else:
        wanted = round(len(train_recent) * older_share / (1 - older_share))
        n_older = min(len(older), wanted)
    sampled = random.Random(plan.seed).sample(range(len(older)), n_older)  # noqa: S311
    train = [older[i] for i in sorted(sampled)] + train_recent

    if task == "classification" and len({repr(e.label) for e in train}) < 2:
        raise TrainingError(f"{model}: the training split holds a single class")
    return Dataset(
        model=model,
        task=task,
        train=Split(tuple(train)),
        validation=Split(tuple(validation)),
        holdout=Split(tuple(holdout)),
        older_sampled=n_older,
        skipped_unlabelled=skipped_unlabelled,
        skipped_schema=skipped_schema,
        since=since,
        since_examples=len(current),
        since_used=since_used,
    )
