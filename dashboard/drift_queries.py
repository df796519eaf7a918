"""Read-only views of the monitor's tables: drift reports, window performance, alarms, requests.

Estimated performance (CBPE, :mod:`monitor.estimate`) is read from the served windows'
``estimate``; a window without one (its champion has no calibration) reads "no estimate",
never a number.

Evidently scores mean different things per method: a p-value drifts when it falls *below*
its threshold, a distance when it rises *above* it. :func:`strength` puts both on one scale
(1 is the threshold, above 1 is drift) so one heatmap can show every feature.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import func, select

from monitor.tables import (
    DONE,
    OPEN,
    SCORE_COLUMNS,
    AlarmRow,
    DriftReportRow,
    MonitorRetrainRequestRow,
    WindowPerformanceRow,
)
from streams.clock import Clock, utc_now
from streams.db import Database
from streams.scores import HEADLINE_ORDER, headline

REPORT_COLUMNS = (
    "window_id", "kind", "model_version", "window_start", "window_end", "rows", "status",
    "drifted_share", "drift_detected", "alarms", "trigger", "has_report",
)
CELL_COLUMNS = (
    "window_id", "kind", "window_end", "column", "method", "score", "threshold", "drifted",
    "strength",
)
QUALITY_COLUMNS = (
    "window_id", "kind", "window_end", "column", "missing", "reference_missing",
    "out_of_range", "unseen", "violated",
)
PERFORMANCE_COLUMNS = ("start", "model_version", "score", "metric", "examples")
ESTIMATE_COLUMNS = ("window_end", "performance", "model_version", "rows", "accuracy",
                    "accuracy_lower", "accuracy_upper", "f1")
NO_ESTIMATE = "no estimate"
#: Which windowed metric to chart, best first.
MAX_STRENGTH = 5.0


def strength(method: str, score: float, threshold: float) -> float:
    """How far past its threshold a column's drift score is: 1 at the threshold, more is drift.

    p-values (lower is drift) use ``log(p) / log(threshold)``; distances and divergences use
    ``score / threshold``. Capped at :data:`MAX_STRENGTH`.
    """
    if threshold <= 0 or not math.isfinite(score):
        return 0.0
    if "p_value" in method.lower():
        if threshold >= 1:
            return 0.0
        value = math.log(max(score, 1e-300)) / math.log(threshold)
    else:
        value = score / threshold
    return float(min(max(value, 0.0), MAX_STRENGTH))


@dataclass(frozen=True)
class DriftStatus:
    """A model's drift as the Overview shows it."""

    status: str
    detail: str = ""
    window_end: datetime | None = None


@dataclass(frozen=True)
class EstimateStatus:
    """The newest served window's estimated accuracy beside the newest labelled one's."""

    estimated: float | None = None
    lower: float | None = None
    upper: float | None = None
    realised: float | None = None
    window_end: datetime | None = None

    @property
    def text(self) -> str:
        return NO_ESTIMATE if self.estimated is None else f"{self.estimated:.0%}"

    @property
    def below(self) -> bool:
        return (self.estimated is not None and self.lower is not None
                and self.estimated < self.lower)

    @property
    def band(self) -> str:
        if self.lower is None or self.upper is None:
            return ""
        return f"band {self.lower:.0%}–{self.upper:.0%}" + (" · below the band" if self.below
                                                            else "")


class DriftQueries:
    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    def _reports(self, model: str, kind: str | None, limit: int) -> list[DriftReportRow]:
        r = DriftReportRow
        stmt = select(r).where(r.model == model).order_by(r.window_end.desc(), r.id.desc())
        if kind is not None:
            stmt = stmt.where(r.kind == kind)
        with self._db.session() as session:
            rows = list(session.execute(stmt.limit(limit)).scalars())
        rows.reverse()
        return rows

    def kinds(self, model: str) -> list[str]:
        stmt = select(DriftReportRow.kind).where(DriftReportRow.model == model).distinct()
        with self._db.session() as session:
            return sorted(str(k) for k in session.execute(stmt).scalars())

    def reports(self, model: str, *, kind: str | None = None, limit: int = 200) -> pd.DataFrame:
        """Closed windows, oldest first (the newest ``limit``)."""
        records = [
            {"window_id": r.window_id, "kind": r.kind, "model_version": r.model_version,
             "window_start": r.window_start, "window_end": r.window_end, "rows": r.rows,
             "status": r.status, "drifted_share": r.drifted_share,
             "drift_detected": r.drift_detected, "alarms": ", ".join(r.alarms or ()),
             "trigger": r.trigger, "has_report": bool(r.full_snapshot or r.snapshot)}
            for r in self._reports(model, kind, limit)
        ]
        return pd.DataFrame.from_records(records, columns=list(REPORT_COLUMNS))

    def cells(self, model: str, *, kind: str | None = None, limit: int = 200) -> pd.DataFrame:
        """Per-feature drift of each finished window (one row per window and column)."""
        records = []
        for r in self._reports(model, kind, limit):
            if r.status != DONE:
                continue
            for c in r.columns or ():
                score, threshold = float(c.get("score", 0.0)), float(c.get("threshold", 0.0))
                method = str(c.get("method", ""))
                records.append({
                    "window_id": r.window_id, "kind": r.kind, "window_end": r.window_end,
                    "column": str(c.get("column")), "method": method, "score": score,
                    "threshold": threshold, "drifted": bool(c.get("drifted")),
                    "strength": strength(method, score, threshold),
                })
        return pd.DataFrame.from_records(records, columns=list(CELL_COLUMNS))

    def quality(self, model: str, *, kind: str | None = None, limit: int = 200) -> pd.DataFrame:
        """Per-feature data quality of each reported window (one row per window and column);
        windows reported before the monitor measured it have none."""
        records = [
            {"window_id": r.window_id, "kind": r.kind, "window_end": r.window_end,
             "column": str(q.get("column")), "missing": q.get("missing"),
             "reference_missing": q.get("reference_missing"),
             "out_of_range": q.get("out_of_range"), "unseen": q.get("unseen"),
             "violated": bool(q.get("violated"))}
            for r in self._reports(model, kind, limit) for q in r.quality or ()
        ]
        return pd.DataFrame.from_records(records, columns=list(QUALITY_COLUMNS))

    def snapshot(self, window_id: str) -> tuple[str | None, str | None]:
        """A window's Evidently snapshots: (full, renderable as HTML; summary JSON)."""
        stmt = select(DriftReportRow.full_snapshot, DriftReportRow.snapshot).where(
            DriftReportRow.window_id == window_id)
        with self._db.session() as session:
            row = session.execute(stmt).one_or_none()
        return (row[0], row[1]) if row is not None else (None, None)

    def alarms(self, model: str, *, limit: int = 200) -> pd.DataFrame:
        a = AlarmRow
        stmt = (select(a).where(a.model == model).order_by(a.created_at.desc(), a.id.desc())
                .limit(limit))
        with self._db.session() as session:
            rows = list(session.execute(stmt).scalars())
        return pd.DataFrame.from_records(
            [{"at": x.created_at, "detector": x.detector, "model_version": x.model_version,
              "window_id": x.window_id, "error_rate": x.error_rate, "index": x.index}
             for x in rows],
            columns=["at", "detector", "model_version", "window_id", "error_rate", "index"],
        )

    def performance(self, model: str, *, limit: int = 500) -> pd.DataFrame:
        """Windowed scores (one preferred metric), oldest first, like ``score_over_time``."""
        w = WindowPerformanceRow
        stmt = (select(w).where(w.model == model).order_by(w.window_end.desc(), w.id.desc())
                .limit(limit))
        with self._db.session() as session:
            rows = list(reversed(list(session.execute(stmt).scalars())))
        metric = headline(m for m in HEADLINE_ORDER
                          if any(getattr(r, m) is not None for r in rows))
        if metric is None:
            return pd.DataFrame(columns=list(PERFORMANCE_COLUMNS))
        frame = pd.DataFrame.from_records(
            [{"start": r.window_end, "model_version": r.model_version,
              "score": getattr(r, metric), "metric": metric, "examples": r.rows}
             for r in rows if getattr(r, metric) is not None],
            columns=list(PERFORMANCE_COLUMNS),
        )
        frame["start"] = pd.to_datetime(frame["start"], utc=True)
        return frame

    def estimate(self, model: str) -> EstimateStatus:
        """The newest served window's estimate (none: "no estimate") and realised accuracy."""
        r, w = DriftReportRow, WindowPerformanceRow
        served = (select(r.estimate, r.window_end).where(r.model == model, r.kind == "served")
                  .order_by(r.window_end.desc(), r.id.desc()).limit(1))
        labelled = (select(w.accuracy).where(w.model == model, w.accuracy.is_not(None))
                    .order_by(w.window_end.desc(), w.id.desc()).limit(1))
        with self._db.session() as session:
            row = session.execute(served).one_or_none()
            realised = session.execute(labelled).scalar_one_or_none()
        estimate = (row[0] or {}) if row is not None else {}
        return EstimateStatus(estimate.get("accuracy"), estimate.get("accuracy_lower"),
                              estimate.get("accuracy_upper"), realised,
                              row[1] if row is not None else None)

    def estimates(self, model: str, *, limit: int = 200) -> pd.DataFrame:
        """Estimated (served windows) beside realised (labelled windows) scores, newest first."""
        r, w = DriftReportRow, WindowPerformanceRow
        served = (select(r).where(r.model == model, r.kind == "served")
                  .order_by(r.window_end.desc(), r.id.desc()).limit(limit))
        labelled = (select(w).where(w.model == model, w.accuracy.is_not(None))
                    .order_by(w.window_end.desc(), w.id.desc()).limit(limit))
        with self._db.session() as session:
            reports = list(session.execute(served).scalars())
            scores = list(session.execute(labelled).scalars())
        records: list[dict[str, Any]] = [
            {"window_end": x.window_end, "model_version": x.model_version, "rows": x.rows,
             "performance": "estimated" if x.estimate else NO_ESTIMATE,
             **{k: (x.estimate or {}).get(k) for k in ESTIMATE_COLUMNS[4:]}}
            for x in reports
        ]
        records += [
            {"window_end": x.window_end, "model_version": x.model_version, "rows": x.rows,
             "performance": "realised", "accuracy": x.accuracy, "f1": x.f1}
            for x in scores
        ]
        frame = pd.DataFrame.from_records(records, columns=list(ESTIMATE_COLUMNS))
        return frame.sort_values("window_end", ascending=False, kind="stable").reset_index(
            drop=True)

    def scores_table(self, model: str, *, limit: int = 200) -> pd.DataFrame:
        """Every score of each labelled window, newest first."""
        w = WindowPerformanceRow
        stmt = (select(w).where(w.model == model).order_by(w.window_end.desc(), w.id.desc())
                .limit(limit))
        with self._db.session() as session:
            rows = list(session.execute(stmt).scalars())
        records = []
        for r in rows:
            record: dict[str, Any] = {"window_end": r.window_end, "window_id": r.window_id,
                                      "model_version": r.model_version, "rows": r.rows}
            record.update({m: getattr(r, m) for m in SCORE_COLUMNS})
            records.append(record)
        frame = pd.DataFrame.from_records(records)
        return frame.dropna(axis="columns", how="all") if not frame.empty else frame

    def open_requests(self, model: str) -> pd.DataFrame:
        r = MonitorRetrainRequestRow
        stmt = (select(r).where(r.model == model, r.status == OPEN)
                .order_by(r.requested_at.desc()))
        with self._db.session() as session:
            rows = list(session.execute(stmt).scalars())
        return pd.DataFrame.from_records(
            [{"requested_at": x.requested_at, "reasons": ", ".join(x.reasons or ()),
              "champion_version": x.champion_version, "event_id": x.event_id} for x in rows],
            columns=["requested_at", "reasons", "champion_version", "event_id"],
        )

    def status(self, model: str) -> DriftStatus:
        """The newest finished window's verdict, with its drifted share and alarms."""
        r = DriftReportRow
        stmt = (select(r).where(r.model == model, r.status == DONE)
                .order_by(r.window_end.desc(), r.id.desc()).limit(1))
        recent_alarms = select(func.count()).select_from(AlarmRow).where(AlarmRow.model == model)
        with self._db.session() as session:
            row = session.execute(stmt).scalar_one_or_none()
            alarms = int(session.execute(recent_alarms).scalar_one())
        if row is None:
            return DriftStatus("no report", "the monitor has not finished a window yet")
        drifted = [str(c.get("column")) for c in row.columns or () if c.get("drifted")]
        share = row.drifted_share or 0.0
        detail = (f"{share:.0%} of {len(row.columns or ())} columns drifted"
                  + (f" ({', '.join(drifted[:5])})" if drifted else "")
                  + (f"; alarms: {', '.join(row.alarms)}" if row.alarms else "")
                  + f"; {alarms} detector alarm(s) in all")
        return DriftStatus("drift" if row.drift_detected else "stable", detail, row.window_end)


def summary_metrics(summary: Mapping[str, Any]) -> pd.DataFrame:
    """The metric results of a summary snapshot (``Snapshot.json()``) as a table."""
    rows = []
    for metric in summary.get("metrics", []) or []:
        config = metric.get("config", {}) or {}
        value = metric.get("value")
        rows.append({"metric": str(config.get("type", "")).rsplit(":", 1)[-1],
                     "column": config.get("column"), "method": config.get("method"),
                     "value": f"{value:.4g}" if isinstance(value, int | float) else str(value)})
    return pd.DataFrame(rows, columns=["metric", "column", "method", "value"])
