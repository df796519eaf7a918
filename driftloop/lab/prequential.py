"""Prequential evaluation with delayed, partial labels (pure).

Every learner sees the stream the way driftloop does in production: it is first trained on
the scenario's warm-up set, then predicts each event in turn, and learns an event's label only
when that label has arrived, i.e. ``label_delay`` events later and only for events whose
feedback flag is set. Precisely, before predicting event ``t`` the learner has learnt exactly
the labels of the warm-up and of the flagged events ``i`` with ``i + label_delay < t``; with a
delay of 0 this is ordinary test-then-train. Every event is scored against the
true label, whether or not that label is ever fed back (River's ``stream/qa.py`` does the same
for delayed labels).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from driftloop.lab.scenarios import Example, FeatureValue

Features = Mapping[str, FeatureValue]


@dataclass(frozen=True)
class Record:
    """What a method predicted for one event, the truth, and which model version answered.

    ``model_version`` is None for learners that change continuously (online learners).
    """

    index: int
    predicted: Any
    label: Any
    model_version: int | None = None

    @property
    def correct(self) -> bool:
        """Whether a class is right (for a regression, whether it is exact)."""
        return bool(self.predicted == self.label)


class Learner(Protocol):
    """A model as the adaptation benchmark drives it."""

    def warm_up(self, examples: Sequence[Example]) -> None:
        """Train on the initial training set (all labelled, before any prediction)."""
        ...

    def predict(self, index: int, features: Features) -> Any:
        """The label predicted for event ``index``; never sees the label."""
        ...

    def learn(self, index: int, features: Features, label: Any) -> None:
        """The label of event ``index`` has arrived."""
        ...

    @property
    def version(self) -> int | None:
        """The version of the model answering now; None for continuously learning models."""
        ...

    @property
    def train_cpu_s(self) -> float:
        """CPU seconds spent learning since the warm-up (the warm-up's training excluded)."""
        ...


Progress = Callable[[int], None]


def prequential(
    examples: Iterable[Example],
    learner: Learner,
    *,
    warmup: int,
    label_delay: int,
    progress: Progress | None = None,
    progress_every: int = 500,
) -> list[Record]:
    """Run ``learner`` over ``examples`` (in index order); one record per post-warm-up event."""
    records: list[Record] = []
    pending: deque[Example] = deque()
    initial: list[Example] = []
    started = False
    for example in examples:
        if example.index < warmup:
            initial.append(example)
            continue
        if not started:
            learner.warm_up(initial)
            started = True
        while pending and pending[0].index + label_delay < example.index:
            arrived = pending.popleft()
            learner.learn(arrived.index, arrived.features, arrived.label)
        predicted = learner.predict(example.index, example.features)
        records.append(Record(example.index, predicted, example.label, learner.version))
        if example.feedback:
            pending.append(example)
        if progress is not None and len(records) % progress_every == 0:
            progress(len(records))
    if not started:
        learner.warm_up(initial)
    if progress is not None:
        progress(len(records))
    return records
