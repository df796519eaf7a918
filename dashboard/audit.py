"""The dashboard's audit log: who did what to which model, when, and why.

Every action taken in the dashboard (a label correction, a promotion, a rollback, and refused
attempts) is appended here before or as it happens. Rows are never updated or deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from streams.clock import Clock, utc_now
from streams.db import Base, Database
from streams.store import UTCDateTime

log = logging.getLogger(__name__)

_ID = BigInteger().with_variant(Integer, "sqlite")


class AuditRow(Base):
    __tablename__ = "dashboard_audit"
    __table_args__ = (Index("ix_dashboard_audit_at", "at"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50))
    model: Mapped[str | None] = mapped_column(String(100), nullable=True)
    target: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str] = mapped_column(String(2000), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    model: str | None
    target: str | None
    reason: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)


class AuditLog:
    """Appends and lists audit entries."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self._db = db
        self._clock = clock

    def record(
        self,
        actor: str,
        action: str,
        *,
        model: str | None = None,
        target: str | None = None,
        reason: str = "",
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        entry = AuditEntry(self._clock(), actor, action, model, target, reason, dict(detail or {}))
        with self._db.session() as session:
            session.add(
                AuditRow(
                    at=entry.at, actor=actor, action=action, model=model, target=target,
                    reason=reason, detail=dict(entry.detail),
                )
            )
        log.info("audit", extra={"actor": actor, "action": action, "model": model,
                                 "target": target})
        return entry

    def record_many(self, entries: Sequence[AuditEntry]) -> None:
        """Append several entries in one transaction (all or none)."""
        with self._db.session() as session:
            session.add_all(
                AuditRow(
                    at=e.at, actor=e.actor, action=e.action, model=e.model, target=e.target,
                    reason=e.reason, detail=dict(e.detail),
                )
                for e in entries
            )
        log.info("audit", extra={"entries": len(entries)})

    def now(self) -> datetime:
        return self._clock()

    def recent(
        self,
        *,
        limit: int = 200,
        model: str | None = None,
        actor: str | None = None,
        actions: Sequence[str] = (),
    ) -> list[AuditEntry]:
        """The newest entries first, optionally of one model, one actor or some actions."""
        stmt = select(AuditRow).order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(limit)
        if model is not None:
            stmt = stmt.where(AuditRow.model == model)
        if actor is not None:
            stmt = stmt.where(AuditRow.actor == actor)
        if actions:
            stmt = stmt.where(AuditRow.action.in_(list(actions)))
        with self._db.session() as session:
            rows = list(session.execute(stmt).scalars())
        return [
            AuditEntry(r.at, r.actor, r.action, r.model, r.target, r.reason, dict(r.detail or {}))
            for r in rows
        ]
