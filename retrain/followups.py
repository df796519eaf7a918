"""Queues follow-up runs after a drift, as labels of the new concept accumulate.

The first model trained after a drift learns from a few hundred labels; every
``followup_growth``-fold growth of the examples since the drift gets another run (see
:func:`retrain.concept.followup_due`), which becomes champion only if it beats the current one
on the newest slice. :class:`FollowUps` looks at every champion's lineage and counts the
stored examples since its concept start; the retrain process calls :meth:`FollowUps.check`
while idle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select

from retrain.concept import followup_due, latest_since
from retrain.registry import Registry
from retrain.runs import RunStore
from streams.settings import RetrainSettings
from streams.statuses import VersionStatus
from streams.store import ExampleRow

log = logging.getLogger(__name__)


class FollowUps:
    """See the module docstring; ``queue(model)`` adds the run (False: already queued)."""

    def __init__(self, settings: RetrainSettings, registry: Registry, runs: RunStore,
                 queue: Callable[[str], bool]) -> None:
        self._settings = settings
        self._registry = registry
        self._runs = runs
        self._queue = queue
        self._attempted: dict[tuple[str, datetime], int] = {}

    def check(self) -> list[str]:
        """Queue the follow-up runs that are due; the models queued."""
        if self._settings.followup_growth <= 1:
            return []
        queued = []
        # A pending drift request will date a newer concept: no follow-up of the old one.
        waiting = {r.model for r in self._runs.pending_requests()}
        for summary in self._registry.models():
            name = summary.name
            if summary.champion is None or name in waiting or self._runs.running(name):
                continue
            versions = self._registry.versions(name)
            since = latest_since(v.lineage for v in versions)
            if since is None:
                continue
            learnt, offered = 0, 0
            for v in versions:
                concept = v.lineage.concept
                if concept is None or concept.since != since:
                    continue
                if v.status == VersionStatus.CHAMPION:
                    learnt = concept.examples
                else:
                    offered = max(offered, concept.available)
            key = (name, since)
            available = self.count_since(name, since)
            if not followup_due(available=available, learnt=learnt,
                                offered=max(offered, self._attempted.get(key, 0)),
                                growth=self._settings.followup_growth,
                                recent_examples=self._settings.recent_examples,
                                min_examples=self._settings.min_examples):
                continue
            if self._queue(name):
                self._attempted[key] = available
                queued.append(name)
                log.info("follow-up run queued", extra={
                    "model": name, "since": since.isoformat(), "examples": available})
        return queued

    def count_since(self, model: str, since: datetime) -> int:
        stmt = select(func.count()).select_from(ExampleRow).where(
            ExampleRow.model == model, ExampleRow.prediction_timestamp >= since)
        with self._registry.db.session() as session:
            return int(session.execute(stmt).scalar_one())
