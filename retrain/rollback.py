"""Automatic rollback: follow the monitor's windowed performance of a newly promoted champion.

Every ``DriftReport`` read from the drift topic is stored (idempotently, by event id) with the
model version it measured and its ``performance`` scores. When the current champion came from
a promotion that replaced another version, and the newest ``settings.retrain.rollback_windows``
reports of the new champion score worse than the previous champion's last reports by more than
``settings.retrain.rollback_margin``, the previous champion is restored
(:meth:`retrain.registry.Registry.rollback`, which verifies its artifact first: a tampered one
is refused and the current champion stays) with the numbers as the reason. The verdict itself
is the pure :func:`retrain.decision.rollback_verdict`.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from retrain.decision import rollback_verdict
from retrain.registry import Registry
from retrain.tables import WindowScoreRow
from streams.clock import Clock, utc_now
from streams.db import Database
from streams.events import DriftReport, ModelRolledBack
from streams.settings import RetrainSettings

log = logging.getLogger(__name__)

ACTOR = "driftloop:auto-rollback"


class AutoRollback:
    def __init__(
        self, db: Database, registry: Registry, settings: RetrainSettings, *,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.registry = registry
        self.settings = settings
        self._now = clock

    def record(self, report: DriftReport) -> bool:
        """Store a report's scores; False when it was stored before (a replay)."""
        stmt = self.db.insert(WindowScoreRow).values(
            event_id=report.event_id, model=report.model, version=report.model_version,
            window_id=report.window_id, window_end=report.window_end,
            performance=dict(report.performance), received_at=self._now(),
        ).on_conflict_do_nothing().returning(WindowScoreRow.event_id)
        with self.db.session() as session:
            return session.execute(stmt).first() is not None

    def scores(
        self, model: str, version: int, *, limit: int | None = None
    ) -> list[dict[str, float]]:
        """The performance of ``version``'s windows, oldest first (the newest ``limit``)."""
        stmt = (select(WindowScoreRow.performance)
                .where(WindowScoreRow.model == model, WindowScoreRow.version == version)
                .order_by(WindowScoreRow.window_end.desc(), WindowScoreRow.event_id.desc()))
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.db.session() as session:
            rows = [dict(p) for p in session.execute(stmt).scalars()]
        rows.reverse()
        return rows

    def observe(self, report: DriftReport) -> ModelRolledBack | None:
        """Store the report, then roll back if the new champion does worse than the old one."""
        self.record(report)
        if report.model_version is None or not report.performance:
            return None
        champion = self.registry.champion(report.model)
        if champion is None or champion.version != report.model_version:
            return None
        changes = self.registry.audit(report.model, limit=1)
        last = changes[0] if changes else None
        if (last is None or last.action != "promote" or last.version != champion.version
                or last.from_version is None):
            return None
        windows = self.settings.rollback_windows
        verdict = rollback_verdict(
            self.scores(report.model, last.from_version, limit=windows),
            self.scores(report.model, champion.version, limit=windows),
            margin=self.settings.rollback_margin, windows=windows,
            metric=self.settings.rollback_metric,
        )
        if verdict is None:
            return None
        log.warning("automatic rollback", extra={"model": report.model, "reason": verdict.reason})
        return self.registry.rollback(
            report.model, actor=ACTOR, reason=f"automatic rollback: {verdict.reason}",
            to_version=last.from_version,
        )
