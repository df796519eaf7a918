"""The label-driven cadence: refresh a model every ``refresh_every_labels`` new labels.

A refresh is a run of kind ``refresh``: it fine-tunes the champion (see :mod:`retrain.start`)
on the newest ``recent_examples`` labelled examples and goes through the same
champion/challenger gate on the newest held-out slice as every other run.

Counting, from the database only (so a restart counts the same): the labelled examples of a
model whose prediction is newer than the newest example any run of it has seen (training,
validation or held-out, by each version's lineage, promoted or not). Every run of the model,
whatever triggered it, so starts the count again; a refresh that failed before it made a
version is remembered in memory, and tried again only ``every`` labels later.

Drift runs go first. :meth:`Cadence.due` queues nothing while a drift request waits (pending:
stored, not yet served, or waiting for labels after the drift), and a refresh job that
finds one waiting when it starts gives way to it (:meth:`Refreshes.run`): the drift run takes
the worker, and the cadence queues the refresh again afterwards if it is still due. Refreshes
never overlap: one job id per model (``refresh:<model>``), none queued while a run of the
model is in progress or another job of it is queued, and a job that starts while a run holds
the model, or that is no longer due, does nothing. The retrain process calls
:meth:`Refreshes.check` while idle, like the follow-ups (:mod:`retrain.followups`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from retrain.registry import Registry
from retrain.runner import RunOutcome
from retrain.runs import RunStore
from streams.store import ExampleRow

log = logging.getLogger(__name__)

TRIGGER = "refresh"


@dataclass(frozen=True)
class Cadence:
    """When a model is due a refresh (pure): every ``every`` new labels; 0 disables."""

    every: int

    def due(self, new_labels: int, *, tried_at: int | None = None, champion: bool = True,
            drift_waiting: bool = False, busy: bool = False) -> bool:
        """Whether to queue a refresh now.

        ``new_labels``: labelled examples newer than anything a run of the model has seen.
        ``tried_at``: ``new_labels`` when a refresh was last queued for the same count base
        (one that failed before it made a version); the next comes ``every`` labels later.
        ``champion``: the model has one to fine-tune. ``drift_waiting``: a drift request
        waits to be served. ``busy``: a run of the model is in progress, or queued.
        """
        if self.every <= 0 or not champion or drift_waiting or busy:
            return False
        if tried_at is not None and new_labels - tried_at < self.every:
            return False
        return new_labels >= self.every


class Refreshes:
    """The cadence on the registry and the stored examples (see the module docstring).

    ``queue(model)`` adds the refresh job (False: already queued); ``queued(model)``
    says whether another run of it is queued (a follow-up).
    """

    def __init__(self, every: int, registry: Registry, runs: RunStore,
                 queue: Callable[[str], bool],
                 queued: Callable[[str], bool] = lambda model: False) -> None:
        self.cadence = Cadence(every)
        self._registry = registry
        self._runs = runs
        self._queue = queue
        self._queued = queued
        self._tried: dict[tuple[str, datetime | None], int] = {}

    def check(self) -> list[str]:
        """Queue the refreshes that are due; the models queued."""
        if self.cadence.every <= 0:
            return []
        queued = []
        waiting = bool(self._runs.pending_requests())
        for summary in self._registry.models():
            name = summary.name
            base = self.base(name)
            new = self.new_labels(name, base)
            busy = self._runs.running(name) is not None or self._queued(name)
            if not self.cadence.due(new, tried_at=self._tried.get((name, base)),
                                    champion=summary.champion is not None,
                                    drift_waiting=waiting, busy=busy):
                continue
            if self._queue(name):
                self._tried[(name, base)] = new
                queued.append(name)
                log.info("refresh queued", extra={"model": name, "new_labels": new})
        return queued

    def run(self, run: Callable[[str], RunOutcome], model: str) -> RunOutcome | None:
        """Run a queued refresh through ``run`` unless a drift request waits, a run holds
        the model or it is no longer due (then None, and nothing is recorded)."""
        if self._runs.pending_requests():
            log.info("refresh gives way to a waiting drift request", extra={"model": model})
            return None
        if self._runs.running(model) is not None:
            log.info("refresh not started: a run of the model is in progress",
                     extra={"model": model})
            return None
        champion = self._registry.champion(model) is not None
        if not self.cadence.due(self.new_labels(model, self.base(model)), champion=champion):
            log.info("refresh no longer due", extra={"model": model})
            return None
        return run(model)

    def base(self, model: str) -> datetime | None:
        """The newest example any run of ``model`` saw (None: none of its versions says)."""
        seen = (v.lineage.seen_until for v in self._registry.versions(model))
        return max((s for s in seen if s is not None), default=None)

    def new_labels(self, model: str, base: datetime | None) -> int:
        """Labelled examples of ``model`` predicted after ``base`` (all of them for None)."""
        stmt = select(func.count()).select_from(ExampleRow).where(ExampleRow.model == model)
        if base is not None:
            stmt = stmt.where(ExampleRow.prediction_timestamp > base)
        with self._registry.db.session() as session:
            return int(session.execute(stmt).scalar_one())
