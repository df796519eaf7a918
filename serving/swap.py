"""Deciding which promoted version to serve, and swapping to it safely.

:class:`Champion` is what a ``ModelPromoted`` or ``ModelRolledBack`` event asks for.
:func:`wanted` is the pure rule: a promotion is taken only when it is newer than what is
served (or the same version with a different digest), a rollback whenever it names a
different artifact, and :func:`settle` folds a run of events into the one swap they call
for. :class:`Swapper` loads and verifies the artifact, checks that it is the
model and version the event named, runs the canary, and only then replaces the one reference
the batch loop reads. Any failure leaves the current model serving.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import torch

from serving import metrics
from serving.canary import RecentRequests, run_canary
from serving.model import ModelHolder, ServedModel, load_model
from streams.errors import ArtifactError
from streams.events import ModelPromoted, ModelRolledBack

log = logging.getLogger(__name__)

Loader = Callable[..., ServedModel]


@dataclass(frozen=True)
class Champion:
    """A version some event made its model's champion, and where its artifact lives."""

    model: str
    version: int
    uri: str
    sha256: str
    rollback: bool
    timestamp: datetime
    event_id: str = ""

    @classmethod
    def of(cls, event: object) -> Champion | None:
        if isinstance(event, ModelPromoted | ModelRolledBack):
            return cls(event.model, event.version, event.artifact_uri, event.sha256,
                       isinstance(event, ModelRolledBack), event.timestamp, event.event_id)
        return None


class Versioned(Protocol):
    """A model version and its artifact's digest (a served model, or a champion)."""

    @property
    def version(self) -> int: ...

    @property
    def sha256(self) -> str: ...


def wanted(serving: Versioned | None, champion: Champion) -> bool:
    """Whether ``champion`` should replace ``serving`` (pure; the model name is checked first)."""
    if serving is None:
        return True
    same = champion.version == serving.version and champion.sha256 == serving.sha256
    if champion.rollback:
        return not same
    if champion.version > serving.version:
        return True
    return champion.version == serving.version and not same


def settle(serving: Versioned | None, champions: Iterable[Champion]) -> Champion | None:
    """Where ``champions``, applied in order, lead from ``serving``; None if nowhere new."""
    state: Versioned | None = serving
    for champion in champions:
        if wanted(state, champion):
            state = champion
    if state is serving or not isinstance(state, Champion):
        return None
    if serving is not None and (state.version, state.sha256) == (serving.version,
                                                                  serving.sha256):
        return None
    return state


def history(champions: Iterable[Champion]) -> list[Champion]:
    """Champions oldest first: by event time, ties in the order given (log order)."""
    return sorted(champions, key=lambda c: c.timestamp)


class Swapper:
    """Loads, verifies and canaries a model, then makes it the one the batch loop uses."""

    def __init__(
        self,
        model: str,
        holder: ModelHolder,
        recent: RecentRequests,
        *,
        device: torch.device,
        loader: Loader = load_model,
    ) -> None:
        self.model = model
        self.holder = holder
        self.recent = recent
        self.device = device
        self._loader = loader

    def next(self, champions: Iterable[Champion]) -> Champion | None:
        """The champion to swap to after ``champions`` (in order), or None to stay."""
        return settle(self.holder.current, [c for c in champions if c.model == self.model])

    def swap_to(self, champion: Champion) -> ServedModel:
        """Serve ``champion`` from the next batch, or raise ``ArtifactError`` and keep the old."""
        return self._install(champion.uri, champion.sha256, expect_version=champion.version)

    def swap_to_path(self, path: Path) -> ServedModel:
        """Serve the artifact at ``path`` (the fallback when no registry names a champion)."""
        return self._install(path, None, expect_version=None)

    def _install(
        self, location: str | Path, sha256: str | None, *, expect_version: int | None
    ) -> ServedModel:
        try:
            candidate = self._loader(location, device=self.device, expected_sha256=sha256)
            if candidate.name != self.model:
                raise ArtifactError(
                    f"artifact is for model {candidate.name!r}, not {self.model!r}")
            if expect_version is not None and candidate.version != expect_version:
                raise ArtifactError(
                    f"artifact holds v{candidate.version}, the event promoted v{expect_version}")
            current = self.holder.current
            size = run_canary(candidate, current, self.recent.snapshot())
        except ArtifactError:
            metrics.SWAPS.labels(model=self.model, outcome="failed").inc()
            raise
        previous = self.holder.swap(candidate)
        metrics.SWAPS.labels(model=self.model, outcome="swapped").inc()
        metrics.VERSION.labels(model=self.model).set(candidate.version)
        log.info(
            "now serving a new model version",
            extra={"model": self.model, "version": candidate.version,
                   "previous": previous.version if previous else None, "canary": size},
        )
        return candidate
