"""Read-only views of the model registry (retrain's tables) for the Overview and Models pages.

Versions come with their metrics flattened into columns so they sit side by side, their
lineage (the data ranges they learned from, what triggered them, their parent) and the
champion/challenger decision that was taken for them. Promotions and rollbacks from the
registry's audit log mark the score charts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]
from sqlalchemy import select

from retrain.registry import Registry, VersionInfo
from retrain.tables import RegistryModelRow, WindowScoreRow
from streams.db import Database
from streams.scores import headline

VERSION_COLUMNS = (
    "version", "status", "created_at", "champion_since", "parent_version", "trigger",
    "reasons", "train_from", "train_to", "train_rows", "holdout_rows", "decision",
    "promote", "run_id", "note",
)
MARK_COLUMNS = ("at", "version", "event", "label", "actor", "reason")
SCORE_COLUMNS = ("start", "model_version", "score", "metric", "examples")
#: Which windowed metric to chart, best first.


def version_record(info: VersionInfo) -> dict[str, Any]:
    """One version as a flat row: lineage and decision spelled out, metrics as columns."""
    data, trigger = info.lineage.data, info.lineage.trigger
    train = data.train if data is not None else None
    holdout = data.holdout if data is not None else None
    record: dict[str, Any] = {
        "version": info.version,
        "status": info.status,
        "created_at": info.created_at,
        "champion_since": info.champion_since,
        "parent_version": info.parent_version,
        "trigger": trigger.kind if trigger is not None else None,
        "reasons": ", ".join(trigger.reasons) if trigger is not None else "",
        "train_from": train.from_ if train is not None else None,
        "train_to": train.to if train is not None else None,
        "train_rows": train.count if train is not None else None,
        "holdout_rows": holdout.count if holdout is not None else None,
        "decision": info.evaluation.get("reason"),
        "promote": info.evaluation.get("promote"),
        "run_id": info.run_id,
        "note": info.note,
    }
    for name, value in info.metrics.items():
        if isinstance(value, int | float):
            record[f"validation {name}"] = float(value)
    challenger = info.evaluation.get("challenger")
    if isinstance(challenger, Mapping):
        for name, value in challenger.items():
            if isinstance(value, int | float):
                record[f"holdout {name}"] = float(value)
    champion = info.evaluation.get("champion")
    if isinstance(champion, Mapping):
        for name, value in champion.items():
            if isinstance(value, int | float):
                record[f"champion's holdout {name}"] = float(value)
    return record


class RegistryQueries:
    """Models, versions and promotions as the dashboard shows them."""

    def __init__(self, db: Database) -> None:
        self.registry = Registry(db)

    def model_names(self) -> list[str]:
        """Every model the registry knows, by name."""
        stmt = select(RegistryModelRow.name).order_by(RegistryModelRow.name)
        with self.registry.db.session() as session:
            return [str(name) for name in session.execute(stmt).scalars()]

    def champion(self, model: str) -> VersionInfo | None:
        return self.registry.champion(model)

    def versions(self, model: str) -> list[VersionInfo]:
        return self.registry.versions(model)

    def versions_frame(self, model: str) -> pd.DataFrame:
        """Every version of ``model``, newest first, one column per metric."""
        records = [version_record(v) for v in reversed(self.versions(model))]
        frame = pd.DataFrame.from_records(records)
        if frame.empty:
            return pd.DataFrame(columns=list(VERSION_COLUMNS))
        for column in ("created_at", "champion_since"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        for column in ("train_from", "train_to"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame

    def metrics_long(self, model: str) -> pd.DataFrame:
        """Holdout (else validation) metrics per version, one row each, for a bar chart."""
        rows = []
        for info in self.versions(model):
            challenger = info.evaluation.get("challenger")
            source, values = (
                ("holdout", challenger) if isinstance(challenger, Mapping) and challenger
                else ("validation", info.metrics)
            )
            for name, value in values.items():
                if isinstance(value, int | float):
                    rows.append({"version": info.version, "status": info.status,
                                 "metric": name, "value": float(value), "source": source})
        return pd.DataFrame(rows, columns=["version", "status", "metric", "value", "source"])

    def marks(self, model: str) -> pd.DataFrame:
        """Promotions and rollbacks of ``model``, oldest first, to mark on charts."""
        rows = []
        for entry in reversed(self.registry.audit(model)):
            if entry.action == "promote":
                event, label = "promoted", f"v{entry.version}"
            elif entry.action == "rollback":
                event, label = "rolled back", f"v{entry.from_version}→v{entry.version}"
            else:
                continue
            rows.append({"at": entry.at, "version": entry.version, "event": event,
                         "label": label, "actor": entry.actor, "reason": entry.reason})
        return pd.DataFrame(rows, columns=list(MARK_COLUMNS))

    def window_scores(self, model: str, *, limit: int = 500) -> pd.DataFrame:
        """The monitor's windowed performance per champion version, as retrain recorded it.

        Columns as :meth:`dashboard.queries.StreamQueries.score_over_time` (``start`` is the
        window's end); empty when no window carried a known metric.
        """
        w = WindowScoreRow
        stmt = (select(w.window_end, w.version, w.performance).where(w.model == model)
                .order_by(w.window_end.desc()).limit(limit))
        with self.registry.db.session() as session:
            rows = list(reversed(session.execute(stmt).all()))
        metric = headline(name for r in rows if isinstance(r[2], Mapping) for name in r[2])
        if metric is None:
            return pd.DataFrame(columns=list(SCORE_COLUMNS))
        records = [
            {"start": end, "model_version": version if version is not None else -1,
             "score": float(perf[metric]), "metric": metric, "examples": None}
            for end, version, perf in rows
            if isinstance(perf, Mapping) and isinstance(perf.get(metric), int | float)
        ]
        frame = pd.DataFrame.from_records(records, columns=list(SCORE_COLUMNS))
        frame["start"] = pd.to_datetime(frame["start"], utc=True)
        return frame

    def audit(self, model: str | None = None, *, limit: int = 100) -> pd.DataFrame:
        rows = [
            {"at": e.at, "model": e.model, "action": e.action, "version": e.version,
             "from_version": e.from_version, "actor": e.actor, "reason": e.reason,
             "published": e.published_at is not None}
            for e in self.registry.audit(model, limit=limit)
        ]
        return pd.DataFrame(rows, columns=["at", "model", "action", "version", "from_version",
                                           "actor", "reason", "published"])
