"""What the challenger-pool studies in driftloop's database say, read with plain SQL.

:mod:`retrain.search` writes each run's study through Optuna; this module reads them back for
the dashboard without importing Optuna: the ``studies`` and ``trials`` tables of Optuna's
storage schema (stable since Optuna 3, here declared with only the columns read) and the
study's user attributes that the search sets (``model``, ``run_id``, ``metric``, then
``best_trial``, ``best_value``, ``best_params``, JSON-encoded as Optuna stores them). A
database where no search ever ran has no such tables: no studies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, func, inspect, select

from streams.db import Database

_meta = MetaData()
_studies = Table("studies", _meta, Column("study_id", Integer, primary_key=True),
                 Column("study_name", String(512)))
_attributes = Table("study_user_attributes", _meta, Column("study_id", Integer),
                    Column("key", String(512)), Column("value_json", Text))
_trials = Table("trials", _meta, Column("trial_id", Integer, primary_key=True),
                Column("study_id", Integer), Column("state", String(16)))


@dataclass(frozen=True)
class StudyInfo:
    """One study: whose it is, how its trials ended, and its winner."""

    study_id: int
    name: str
    model: str | None
    run_id: int | None
    metric: str | None
    complete: int = 0
    failed: int = 0
    pruned: int = 0
    running: int = 0
    best_trial: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)


def studies(db: Database, model: str | None = None, *, limit: int = 100) -> list[StudyInfo]:
    """The newest ``limit`` studies (of ``model`` when given), newest first."""
    if not inspect(db.engine).has_table("studies"):
        return []
    with db.session() as session:
        stmt = (select(_studies.c.study_id, _studies.c.study_name)
                .order_by(_studies.c.study_id.desc()).limit(limit))
        if model is not None:
            attr = _attributes.c
            stmt = stmt.where(_studies.c.study_id.in_(select(attr.study_id).where(
                attr.key == "model", attr.value_json == json.dumps(model))))  # as Optuna stores it
        rows = session.execute(stmt).all()
        if not rows:
            return []
        ids = [row.study_id for row in rows]
        attrs: dict[int, dict[str, Any]] = {}
        for sid, key, value in session.execute(
                select(_attributes.c.study_id, _attributes.c.key, _attributes.c.value_json)
                .where(_attributes.c.study_id.in_(ids))):
            attrs.setdefault(sid, {})[key] = _json(value)
        counts: dict[int, dict[str, int]] = {}
        for sid, state, n in session.execute(
                select(_trials.c.study_id, _trials.c.state, func.count())
                .where(_trials.c.study_id.in_(ids))
                .group_by(_trials.c.study_id, _trials.c.state)):
            counts.setdefault(sid, {})[str(state)] = int(n)
    found = []
    for row in rows:
        a, c = attrs.get(row.study_id, {}), counts.get(row.study_id, {})
        params = a.get("best_params")
        found.append(StudyInfo(
            study_id=row.study_id, name=row.study_name, model=_text(a.get("model")),
            run_id=_int(a.get("run_id")), metric=_text(a.get("metric")),
            complete=c.get("COMPLETE", 0), failed=c.get("FAIL", 0), pruned=c.get("PRUNED", 0),
            running=c.get("RUNNING", 0) + c.get("WAITING", 0),
            best_trial=_int(a.get("best_trial")), best_value=_float(a.get("best_value")),
            best_params=dict(params) if isinstance(params, dict) else {},
        ))
    return found


def _json(value: str | None) -> Any:
    try:
        return json.loads(value) if value is not None else None
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None
