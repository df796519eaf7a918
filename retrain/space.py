"""The search space of a run's challenger pool, stated once (pure).

A :class:`Candidate` is one way to train the model:

=================  ===========================================  ==========================
knob               range                                         the settings' own candidate
=================  ===========================================  ==========================
``learning_rate``  1e-4 .. 3e-2, log scale                       ``retrain.learning_rate``
``width``          16 .. 256 units per hidden layer, log scale   ``retrain.hidden`` (its
``depth``          1 .. 3 hidden layers                          widths, kept as they are)
``dropout``        0 .. 0.5                                      0
``weight_decay``   0 .. 1e-2 (Adam's L2 penalty)                 0
``window``         the newest quarter .. all of the training     all of it
                   split: how many of its newest examples the
                   candidate trains on
=================  ===========================================  ==========================

Validation and holdout stay the same for every candidate, so their validation scores compare
and the gate judges the winner on the slice it would judge any challenger on. :func:`suggest`
draws a candidate from anything that offers Optuna's ``suggest_float``/``suggest_int`` (an
Optuna trial in :mod:`retrain.search`, a stub in tests); :func:`settings_candidate` is the one
the settings describe, which every search tries first so that a search never picks worse on
validation than a run without one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

from retrain.dataset import Dataset, Split
from streams.settings import RetrainSettings

LEARNING_RATE = (1e-4, 3e-2)
WIDTH = (16, 256)
DEPTH = (1, 3)
DROPOUT = (0.0, 0.5)
WEIGHT_DECAY = (0.0, 1e-2)
#: The smallest window, as a share of the training split.
WINDOW_SHARE = 0.25


class Suggestions(Protocol):
    """What a search trial offers (the part of ``optuna.Trial`` used here)."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False
                      ) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int: ...


@dataclass(frozen=True)
class Candidate:
    """One point of the space: how a candidate trains (see the module docstring)."""

    learning_rate: float
    hidden: tuple[int, ...]
    dropout: float = 0.0
    weight_decay: float = 0.0
    window: int | None = None
    """Newest training examples it learns from; None: the whole training split."""

    def hyperparameters(self) -> dict[str, Any]:
        """The overrides a trainer reads from ``TrainingJob.hyperparameters``."""
        found: dict[str, Any] = {"learning_rate": self.learning_rate, "hidden": list(self.hidden),
                                 "dropout": self.dropout, "weight_decay": self.weight_decay}
        if self.window is not None:
            found["window"] = self.window
        return found

    def data(self, dataset: Dataset) -> Dataset:
        """``dataset`` with the training split cut to the newest ``window`` examples."""
        if self.window is None or self.window >= len(dataset.train):
            return dataset
        kept = dataset.train.examples[-self.window:]
        return dataclasses.replace(dataset, train=Split(kept),
                                   older_sampled=max(0, dataset.older_sampled
                                                     - (len(dataset.train) - self.window)))


def settings_candidate(settings: RetrainSettings) -> Candidate:
    """The candidate a run without a search trains."""
    return Candidate(settings.learning_rate, tuple(settings.hidden))


def window_range(train_rows: int) -> tuple[int, int]:
    """The window's bounds for a training split of ``train_rows`` examples."""
    high = max(1, train_rows)
    return max(1, min(high, round(high * WINDOW_SHARE))), high


def suggest(trial: Suggestions, train_rows: int) -> Candidate:
    """A candidate drawn from the space, for a training split of ``train_rows`` examples."""
    width = trial.suggest_int("width", *WIDTH, log=True)
    depth = trial.suggest_int("depth", *DEPTH)
    low, high = window_range(train_rows)
    window = trial.suggest_int("window", low, high, log=True)
    return Candidate(
        learning_rate=trial.suggest_float("learning_rate", *LEARNING_RATE, log=True),
        hidden=(width,) * depth,
        dropout=trial.suggest_float("dropout", *DROPOUT),
        weight_decay=trial.suggest_float("weight_decay", *WEIGHT_DECAY),
        window=None if window >= high else window,
    )


def as_params(candidate: Candidate, train_rows: int) -> dict[str, Any] | None:
    """``candidate`` as the parameters :func:`suggest` names (to enqueue it as a trial), or
    None when it lies outside the space (hidden widths that differ, a rate out of range)."""
    widths = set(candidate.hidden)
    low, high = window_range(train_rows)
    window = high if candidate.window is None else candidate.window
    params: dict[str, Any] = {
        "width": candidate.hidden[0] if candidate.hidden else 0, "depth": len(candidate.hidden),
        "window": window, "learning_rate": candidate.learning_rate,
        "dropout": candidate.dropout, "weight_decay": candidate.weight_decay,
    }
    inside = (len(widths) == 1 and WIDTH[0] <= params["width"] <= WIDTH[1]
              and DEPTH[0] <= params["depth"] <= DEPTH[1] and low <= window <= high
              and LEARNING_RATE[0] <= candidate.learning_rate <= LEARNING_RATE[1]
              and DROPOUT[0] <= candidate.dropout <= DROPOUT[1]
              and WEIGHT_DECAY[0] <= candidate.weight_decay <= WEIGHT_DECAY[1])
    return params if inside else None
