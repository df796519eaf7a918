"""The real system's run of a scenario, read back from the event store for the benchmark.

Serving stores one prediction per request (``streams.store.PredictionRow``); the simulated app
named each request ``<prefix><index>`` (:mod:`driftloop.lab.simulator`), so every stored
prediction maps back to its event, and the scenario knows the true label of every event,
fed back or not. :func:`load_system_run` returns what
:func:`driftloop.lab.adaptation.evaluate_system` takes, plus the prediction times by event, with
which :func:`driftloop.lab.adaptation.index_at` turns the time of a drift report or a promotion
into an event index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from driftloop.lab.scenarios import Scenario
from driftloop.lab.simulator import default_prefix, index_of
from streams.db import Database
from streams.store import PredictionRow


@dataclass(frozen=True)
class SystemRun:
    """Per-event predictions of the real system, in event order."""

    predictions: list[tuple[int, Any, Any, int]]
    """``(index, predicted, true label, model_version)`` for every answered request."""
    sent: list[tuple[datetime, int]]
    """``(prediction timestamp, index)`` in time order, for :func:`index_at`."""

    def unanswered(self, scenario: Scenario) -> list[int]:
        """Post-warm-up events without a stored prediction (lost or not yet answered)."""
        answered = {i for i, *_ in self.predictions}
        return [i for i in range(scenario.warmup, scenario.length) if i not in answered]


def load_system_run(
    db: Database, scenario: Scenario, *, model: str, prefix: str | None = None
) -> SystemRun:
    """The stored predictions of ``model`` for the scenario's post-warm-up requests."""
    prefix = prefix if prefix is not None else default_prefix(scenario)
    labels = {e.index: e.label for e in scenario.stream()}
    stmt = (
        select(PredictionRow.request_id, PredictionRow.predicted, PredictionRow.model_version,
               PredictionRow.timestamp)
        .where(PredictionRow.model == model,
               PredictionRow.request_id.startswith(prefix, autoescape=True))
        .order_by(PredictionRow.timestamp, PredictionRow.id)
    )
    with db.session() as session:
        rows = session.execute(stmt).all()
    by_index: dict[int, tuple[int, Any, Any, int]] = {}
    sent: list[tuple[datetime, int]] = []
    for rid, predicted, version, timestamp in rows:
        index = index_of(rid, prefix)
        if index is None or index not in labels:
            continue
        by_index[index] = (index, predicted, labels[index], version)
        sent.append((timestamp, index))
    return SystemRun([by_index[i] for i in sorted(by_index)], sent)
