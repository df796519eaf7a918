"""Read-only views of retraining work: schedules, runs (running and past), requests and the
studies of runs that searched a challenger pool (:mod:`retrain.studies`).

Schedules are read from the scheduler's job table (its id and next run time; the pickled job
state is never unpickled here) and described with the schedule the settings configure.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import select

from retrain.runs import RunInfo, RunStore
from retrain.scheduler import REQUEST_PREFIX, SCHEDULE_PREFIX, schedule_specs
from retrain.studies import StudyInfo, studies
from retrain.tables import RetrainRequestRow, SchedulerJobRow
from streams.clock import Clock, utc_now
from streams.db import Database
from streams.settings import Settings
from streams.statuses import RequestStatus

RUN_COLUMNS = (
    "id", "model", "trigger", "status", "decision", "version", "device", "started_at",
    "finished_at", "duration_s", "metrics", "error",
)
REQUEST_COLUMNS = (
    "requested_at", "model", "status", "reasons", "champion_version", "run_id", "event_id",
)
SCHEDULE_COLUMNS = ("job", "kind", "model", "every", "next_run")
STUDY_COLUMNS = (
    "study", "model", "run_id", "metric", "complete", "failed", "pruned", "running",
    "best_value", "best_trial", "best_params",
)
OPEN_REQUESTS = (RequestStatus.PENDING, RequestStatus.RUNNING)


def _flat_metrics(metrics: Mapping[str, Any]) -> str:
    """The run's headline numbers as short text (validation metrics, then the decision)."""
    parts = []
    validation = metrics.get("validation")
    if isinstance(validation, Mapping):
        parts += [f"{k} {v:.4g}" for k, v in validation.items() if isinstance(v, int | float)]
    holdout = metrics.get("holdout")
    if isinstance(holdout, Mapping) and isinstance(holdout.get("challenger"), Mapping):
        metric = holdout.get("metric")
        value = holdout["challenger"].get(metric)
        if isinstance(value, int | float):
            parts.append(f"holdout {metric} {value:.4g}")
    return ", ".join(parts)


def study_record(study: StudyInfo) -> dict[str, Any]:
    params = ", ".join(f"{k} {_short(v)}" for k, v in study.best_params.items())
    return {
        "study": study.name, "model": study.model, "run_id": study.run_id,
        "metric": study.metric, "complete": study.complete, "failed": study.failed,
        "pruned": study.pruned, "running": study.running, "best_value": study.best_value,
        "best_trial": study.best_trial, "best_params": params,
    }


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def run_record(run: RunInfo, now: datetime) -> dict[str, Any]:
    end = run.finished_at or now
    return {
        "id": run.id, "model": run.model, "trigger": run.trigger, "status": run.status,
        "decision": run.decision, "version": run.version, "device": run.device,
        "started_at": run.started_at, "finished_at": run.finished_at,
        "duration_s": round((end - run.started_at).total_seconds(), 1),
        "metrics": _flat_metrics(run.metrics), "error": run.error,
    }


class JobQueries:
    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._runs = RunStore(db)
        self._clock = clock

    def runs(self, model: str | None = None, *, limit: int = 100) -> pd.DataFrame:
        """Runs, newest first; a running one's duration counts up to now."""
        now = self._clock()
        records = [run_record(r, now) for r in reversed(self._runs.runs(model, limit=limit))]
        return pd.DataFrame.from_records(records, columns=list(RUN_COLUMNS))

    def run(self, run_id: int) -> RunInfo:
        return self._runs.run(run_id)

    def studies(self, model: str | None = None, *, limit: int = 100) -> pd.DataFrame:
        """The challenger-pool studies of runs, newest first."""
        records = [study_record(s) for s in studies(self._db, model, limit=limit)]
        return pd.DataFrame.from_records(records, columns=list(STUDY_COLUMNS))

    def requests(
        self, model: str | None = None, *, open_only: bool = False, limit: int = 100
    ) -> pd.DataFrame:
        """Retrain requests received from the monitor, newest first."""
        r = RetrainRequestRow
        stmt = select(r).order_by(r.requested_at.desc()).limit(limit)
        if model is not None:
            stmt = stmt.where(r.model == model)
        if open_only:
            stmt = stmt.where(r.status.in_(OPEN_REQUESTS))
        with self._db.session() as session:
            rows = list(session.execute(stmt).scalars())
        records = [
            {"requested_at": x.requested_at, "model": x.model, "status": x.status,
             "reasons": ", ".join(x.reasons or ()), "champion_version": x.champion_version,
             "run_id": x.run_id, "event_id": x.event_id}
            for x in rows
        ]
        return pd.DataFrame.from_records(records, columns=list(REQUEST_COLUMNS))

    def schedules(self, settings: Settings) -> pd.DataFrame:
        """Stored scheduler jobs with their next run, plus configured schedules not stored yet."""
        specs = schedule_specs(settings)
        with self._db.session() as session:
            rows = session.execute(
                select(SchedulerJobRow.id, SchedulerJobRow.next_run_time)
                .order_by(SchedulerJobRow.next_run_time)
            ).all()
        records = []
        seen = set()
        for job_id, next_run in rows:
            if job_id.startswith(SCHEDULE_PREFIX):
                kind, model = "schedule", job_id.removeprefix(SCHEDULE_PREFIX)
                seen.add(model)
            elif job_id.startswith(REQUEST_PREFIX):
                kind, model = "request", None
            else:
                kind, model = "other", None
            records.append({
                "job": job_id, "kind": kind, "model": model,
                "every": _describe(specs.get(model)) if model else None,
                "next_run": datetime.fromtimestamp(next_run, UTC) if next_run else None,
            })
        for model, spec in sorted(specs.items()):
            if model not in seen:
                records.append({"job": f"{SCHEDULE_PREFIX}{model}", "kind": "schedule",
                                "model": model, "every": _describe(spec), "next_run": None})
        return pd.DataFrame.from_records(records, columns=list(SCHEDULE_COLUMNS))


def _describe(spec: float | str | None) -> str | None:
    if spec is None:
        return None
    try:
        seconds = float(spec)
    except ValueError:
        return f"cron {spec}"
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
