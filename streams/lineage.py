"""The lineage of a model version: what it learnt from, why it was trained, how it began.

Retraining writes it (the runner, :meth:`retrain.dataset.Dataset.lineage`, the trainer); the
artifact's manifest and the registry keep it; the monitor, the retrain policies and the
dashboard read it. :class:`Lineage` is its one typed home, a frozen pydantic model::

    Lineage
    ├── data: DataLineage            the examples of the run
    │   ├── from, to                 the span learnt from (train and validation)
    │   ├── train, validation, holdout: SplitLineage    count, from, to, reviewer labels
    │   ├── concept: ConceptLineage  the current concept's start, and how many examples
    │   │   └── found_by: ConceptFinding   how the run found that start
    │   └── source, task, older_sampled, skipped_unlabelled, skipped_schema, features
    ├── trigger: TriggerLineage      why the run happened (kind, request, reasons, evidence)
    ├── parent_version, code_version, run_id
    ├── training: TrainingLineage    what the trainer notes (device, epochs, seconds, ...)
    ├── origin: Origin               how the weights began: fine-tuned, or from scratch
    └── search: SearchLineage        the challenger pool it won (study, trials, best params)

Each fact has one reader: :attr:`Lineage.training_range` (the span learnt from, the
monitor's drift reference), :attr:`Lineage.learnt_until`, :attr:`Lineage.seen_until` (the
holdout counts as seen), :attr:`Lineage.concept` and :attr:`Lineage.concept_since`.

Storage is JSON (``manifest.json``, the registry's ``lineage`` column) in the shape of
:meth:`Lineage.record`: the field names, ``from`` for ``from_``, no nulls.

Compatibility. Whatever driftloop wrote loads: a missing section is ``None`` and a missing
count its default. Keys this code does not know (an older or a newer writer's, a custom
trainer's notes) are kept and written back, so reading and re-writing loses nothing;
:class:`Origin` alone ignores them, as it always has. A lineage written before the learnt span
was recorded (``data`` without ``from``/``to``) has it read from its train and validation
splits. A time without an offset is UTC. A value of the wrong type (``data.from`` that is no
time, a span that ends before it starts) is refused with ``ArtifactError``: the record is
corrupt, and a guess would move the drift reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    model_validator,
)

from streams.clock import as_utc
from streams.errors import ArtifactError
from streams.scores import Task

Time = Annotated[datetime, AfterValidator(as_utc)]
"""A moment in a lineage: ISO 8601 in JSON, UTC when it names no offset."""


@dataclass(frozen=True)
class Span:
    """A time range of examples, ``start`` to ``end`` inclusive."""

    start: datetime
    end: datetime

    @classmethod
    def cover(cls, spans: Iterable[Span | None]) -> Span | None:
        """The smallest span holding every one of ``spans`` (None: there is none)."""
        found = [s for s in spans if s is not None]
        if not found:
            return None
        return cls(min(s.start for s in found), max(s.end for s in found))


class _Section(BaseModel):
    """A part of a lineage: frozen, unknown keys kept (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)


class _Spanned(_Section):
    """A section that names a time range of examples under ``from`` and ``to``."""

    from_: Time | None = Field(None, alias="from", description="The oldest example.")
    to: Time | None = Field(None, description="The newest example.")

    @model_validator(mode="after")
    def _ordered(self) -> _Spanned:
        if self.from_ is not None and self.to is not None and self.to < self.from_:
            raise ValueError(f"'to' {self.to.isoformat()} is before 'from' "
                             f"{self.from_.isoformat()}")
        return self

    @property
    def span(self) -> Span | None:
        """``from`` to ``to``, when both are named."""
        if self.from_ is None or self.to is None:
            return None
        return Span(self.from_, self.to)


class SplitLineage(_Spanned):
    """One split of the data (train, validation or holdout): how many examples, of when."""

    count: int = Field(0, ge=0)
    reviewer_labels: int = Field(0, ge=0, description="Examples labelled by a reviewer.")


class ConceptFinding(_Section):
    """How a run found where the current concept starts."""

    since: Time | None = None
    source: str = Field("none", description="'change_point' (dated in the champion's errors), "
                                            "'lineage' (inherited) or 'none'.")
    z: float | None = Field(None, description="The change point's z-score.")
    error_before: float | None = None
    error_after: float | None = None


class ConceptLineage(_Section):
    """The current concept a run took its recent examples from."""

    since: Time | None = Field(None, description="Where the concept starts.")
    available: int = Field(0, ge=0, description="Usable examples that new (used or not).")
    examples: int = Field(0, ge=0, description="How many of them the run used (0: too few).")
    used: bool = Field(False, description="Whether the split took its examples from them.")
    found_by: ConceptFinding | None = None


class DataLineage(_Spanned):
    """The examples a run learnt from and was judged on; ``from``/``to`` span what it learnt
    from (train and validation, not the holdout)."""

    concept: ConceptLineage | None = None
    source: str | None = Field(None, description="Where the examples came from.")
    task: Task | None = None
    train: SplitLineage | None = None
    validation: SplitLineage | None = None
    holdout: SplitLineage | None = None
    older_sampled: int = Field(0, ge=0, description="Older examples sampled into training.")
    skipped_unlabelled: int = Field(0, ge=0)
    skipped_schema: int = Field(0, ge=0, description="Examples of another feature schema.")
    features: tuple[str, ...] = ()

    @property
    def learnt(self) -> Span | None:
        """The span learnt from: ``from``/``to``, or in lineage written before those were
        recorded, that of the train and validation splits."""
        if self.span is not None:
            return self.span
        return Span.cover(s.span for s in (self.train, self.validation) if s is not None)


class TriggerLineage(_Section):
    """Why a run happened: ``request`` (with the request's reasons), ``schedule``, ..."""

    kind: str
    request_id: str | None = None
    reasons: tuple[str, ...] = ()
    evidence: dict[str, JsonValue] = Field(default_factory=dict)


class TrainingLineage(_Section):
    """What the trainer notes about its fit (every field optional: trainers differ)."""

    device: str | None = None
    learning_rate: float | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None
    seconds: float | None = None
    rows: int | None = Field(None, description="Rows of the training split.")
    start_val_loss: float | None = Field(
        None, description="Validation loss of the starting weights, when fine-tuned.")


class Origin(BaseModel):
    """How a version's weights began: fine-tuned from an earlier artifact, or fresh.

    Lineage written before fine-tuning existed has none (they were all trained from
    scratch). Unknown keys are ignored, so that older code still reads what newer code writes.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    mode: Literal["fine-tuned", "fresh"]
    reason: str = Field("", description="Why the run chose this mode (the start rule's words).")
    parent_version: int | None = Field(
        None, description="The registry version fine-tuned from (or meant to be)."
    )
    checkpoint: str | None = Field(
        None, description="URI of a user's checkpoint fine-tuned from (or meant to be)."
    )
    parent_sha256: str | None = Field(None, description="Digest of the artifact started from.")
    fallback: str | None = Field(
        None, description="Why a planned fine-tune trained from scratch instead."
    )

    def fell_back(self, why: str) -> Origin:
        """The same start, recorded as trained from scratch because of ``why``."""
        return self.model_copy(update={"mode": "fresh", "fallback": why})

    def describe(self) -> str:
        """One line for a run's log."""
        parent = (f"v{self.parent_version}" if self.parent_version is not None
                  else self.checkpoint)
        if self.mode == "fine-tuned":
            return f"fine-tuned from {parent} ({self.reason})"
        if self.fallback:
            instead = f"fine-tuning {parent}" if parent else "fine-tuning"
            return f"trained from scratch instead of {instead}: {self.fallback}"
        return f"trained from scratch ({self.reason})" if self.reason else "trained from scratch"


class SearchLineage(_Section):
    """The challenger pool the version won (retrain/search.py): its Optuna study."""

    study: str = Field(description="The study's name in driftloop's database.")
    metric: str = Field(description="The validation score that ranked the candidates.")
    trials: int = Field(0, ge=0, description="Trials the run started.")
    complete: int = Field(0, ge=0)
    failed: int = Field(0, ge=0, description="Trials that crashed (recorded as FAIL).")
    pruned: int = Field(0, ge=0)
    best_trial: int | None = None
    best_value: float | None = None
    best_params: dict[str, JsonValue] = Field(
        default_factory=dict, description="The winner's hyperparameters.")


class Lineage(_Section):
    """Where a model version comes from (see the module docstring)."""

    data: DataLineage | None = None
    trigger: TriggerLineage | None = None
    parent_version: int | None = Field(None, description="The champion when the run started.")
    code_version: str | None = Field(None, description="driftloop's version (and commit).")
    run_id: int | None = None
    training: TrainingLineage | None = None
    origin: Origin | None = None
    search: SearchLineage | None = None

    @classmethod
    def of(cls, raw: Mapping[str, object] | Lineage | None) -> Lineage:
        """The lineage stored as ``raw`` (JSON values; None: an empty one); a malformed one
        raises ``ArtifactError``."""
        if isinstance(raw, Lineage):
            return raw
        try:
            return cls.model_validate(raw or {})
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise ArtifactError(f"invalid lineage at {where or 'the top'}: {error['msg']}"
                                ) from exc

    def record(self) -> dict[str, JsonValue]:
        """The JSON object to store."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @property
    def training_range(self) -> Span | None:
        """The span of the examples the version learnt from (train and validation)."""
        return self.data.learnt if self.data is not None else None

    @property
    def learnt_until(self) -> datetime | None:
        """The newest example the version learnt from."""
        learnt = self.training_range
        return learnt.end if learnt is not None else None

    @property
    def seen_until(self) -> datetime | None:
        """The newest example the version's run saw: learnt from, or judged on (holdout)."""
        holdout = self.data.holdout if self.data is not None else None
        seen = Span.cover([self.training_range, holdout.span if holdout is not None else None])
        return seen.end if seen is not None else None

    @property
    def concept(self) -> ConceptLineage | None:
        """The current concept the run took its examples from (None: every example)."""
        return self.data.concept if self.data is not None else None

    @property
    def concept_since(self) -> datetime | None:
        """Where that concept starts."""
        return self.concept.since if self.concept is not None else None
