"""Where a run's weights begin: from scratch, or fine-tuned from an artifact (pure).

Fine-tuning continues from what a model already knows: the champion (or a checkpoint the user
names in ``settings.retrain.checkpoints``), with the same architecture and the same fitted
preprocessing, classes and target scaling, at its own lower learning rate and for fewer
epochs. That is right when the world changed a little (a scheduled, follow-up or label-driven
refresh) and wrong after an abrupt drift, where the champion's knowledge is wrong: there a run
trains from scratch on the examples since the drift (see :mod:`retrain.concept`).

:func:`choose_start` is that rule, by ``settings.retrain.fine_tune``:

- ``"never"``: every run trains from scratch.
- ``"refreshes"`` (the default): runs of :data:`REFRESH_TRIGGERS` fine-tune; drift requests and
  a person's runs (``manual``) train from scratch.
- ``"unless-abrupt"``: every run fine-tunes, unless the rule below says the start is wrong.

Whatever the setting, a run trains from scratch when it dated an abrupt drift itself, or when
the champion learnt only from before the current concept began. A start chosen here is then
checked against the data (:func:`mismatch`); one that does not fit falls back to training from
scratch, and the version's :class:`~streams.lineage.Origin` says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from retrain.dataset import Dataset
from streams.artifacts import MANIFEST, Artifact, Manifest, Preprocessor
from streams.errors import SchemaError
from streams.lineage import Lineage, Origin
from streams.scores import label_key, label_keys

FineTune = Literal["never", "refreshes", "unless-abrupt"]

#: Triggers whose runs refresh a model that is still right: they fine-tune by default.
REFRESH_TRIGGERS = frozenset({"schedule", "follow-up", "refresh"})


@dataclass(frozen=True)
class StartChoice:
    """Whether a run fine-tunes, and why (the words go into the version's lineage)."""

    fine_tune: bool
    reason: str


def choose_start(
    policy: FineTune, trigger: str, *, dated_drift: bool = False, champion_predates: bool = False
) -> StartChoice:
    """Fine-tune or train from scratch, for a run of ``trigger`` under ``policy``.

    ``dated_drift``: this run dated an abrupt drift in the champion's errors.
    ``champion_predates``: the champion learnt only from before the current concept began.
    """
    if policy == "never":
        return StartChoice(False, "fine_tune is 'never'")
    if dated_drift:
        return StartChoice(False, "an abrupt drift was dated: the champion's knowledge is wrong")
    if champion_predates:
        return StartChoice(False, "the champion learnt before the current concept began")
    if policy == "refreshes" and trigger not in REFRESH_TRIGGERS:
        return StartChoice(False, f"a {trigger} run trains from scratch")
    return StartChoice(True, f"a {trigger} run refreshes the model it starts from")


@dataclass(frozen=True)
class Start:
    """The artifact a fine-tune starts from, and the origin its version records when it does."""

    artifact: Artifact
    origin: Origin


def mismatch(manifest: Manifest, dataset: Dataset) -> str | None:
    """Why an artifact cannot start a fine-tune on ``dataset`` (``None``: it can).

    Its task must be the data's, its fitted preprocessing must encode every example (the same
    feature names and kinds), and for classification every label must be one of its classes.
    """
    examples = [*dataset.train.examples, *dataset.validation.examples]
    if manifest.task != dataset.task:
        return f"it is a {manifest.task} model and the data is {dataset.task}"
    try:
        Preprocessor(manifest.features).transform([e.features for e in examples])
    except SchemaError as exc:
        return f"its feature schema does not fit the data: {exc}"
    if dataset.task == "classification":
        known = {label_key(c) for c in manifest.classes}
        unknown = sorted(set(label_keys([e.label for e in examples])) - known)
        if unknown:
            return (f"its classes {_spell(manifest.classes)} do not hold the labels "
                    f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}")
    return None


def start_from(artifact: Artifact, dataset: Dataset, origin: Origin) -> tuple[Start | None, Origin]:
    """A :class:`Start` from ``artifact`` when it fits ``dataset``, with the origin to record;
    else no start, and ``origin`` fallen back to training from scratch with the reason."""
    why = mismatch(artifact.manifest, dataset)
    if why is not None:
        return None, origin.fell_back(why)
    return Start(artifact, origin), origin


def checkpoint_folder(path: Path) -> Path:
    """The artifact folder of a checkpoint named by its folder or by a file in it."""
    return path.parent if path.is_file() or path.name == MANIFEST else path


def champion_predates(champion_lineage: Lineage, concept_since: datetime | None) -> bool:
    """Whether the champion learnt from before the current concept's start, by the concept
    start its lineage names (none: it learnt from every example, the old concept's too)."""
    if concept_since is None:
        return False
    learnt = champion_lineage.concept_since
    return learnt is None or learnt < concept_since


def _spell(classes: Sequence[Any]) -> str:
    return "[" + ", ".join(label_keys(list(classes))) + "]"
