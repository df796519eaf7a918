"""The model registry: models, their versions, promotions, rollbacks and the audit log.

A version is created as a ``candidate`` when its run starts, gets its artifact (URI and the
manifest's sha256) when training ends, and then becomes the ``champion``, ``rejected`` (with
the numbers that rejected it) or ``failed``. A champion that is replaced becomes ``archived``;
one that is rolled back becomes ``rejected``; one that serving refused to load becomes
``refused``.

Every way a version becomes champion (the retrain runner's promotion, ``driftloop models
promote`` and ``rollback``, the dashboard's buttons, the automatic rollback, and the return
to what serving runs after it refused a swap) goes through one method, ``_crown``: it loads
the target's artifact and verifies it (the manifest's sha256 against the registry's, every
file against the manifest, the manifest's schema, model name and version) *before* anything
changes. A tampered or missing artifact is refused with a ``RegistryError`` that says why, and
the registry is left exactly as it was: the same rows, no audit row, no event.

Promotion and rollback are each one transaction: the old champion steps down, the new one
steps up (the partial unique index refuses a second champion, so two racing promotions cannot
both win), and an audit row records who and why together with the ``ModelPromoted`` or
``ModelRolledBack`` event to publish. The audit table doubles as an outbox: the event is
published after the commit and ``published_at`` set once Kafka acknowledged it; rows still
unpublished (a crash between the commit and the publish) are re-sent by
:class:`retrain.publisher.UpdatePublisher` when the retrain process starts and while it runs.

One truth about the champion. Serving still verifies and canaries every swap, and may refuse
one (an artifact changed after the registry checked it, a canary that fails on its device);
it then keeps the version it runs and publishes ``SwapFailed``. The retrain process reads
those from the model-updates topic and calls :meth:`Registry.refused`: when the refused
version is still the champion, it becomes ``refused`` and the champion it replaced (the
``from``/``previous`` version of the change that crowned it, which is what serving kept)
is restored through ``_crown`` with an audit row (``rollback`` by ``serving:<instance>``)
and a ``ModelRolledBack`` event. Serving already runs that version (the event is a no-op for
it, or swaps a serving process that had none back to it); the monitor reads the event like
any rollback. So the registry, serving and the monitor end on the same version. A
``SwapFailed`` for a version that is no longer the champion, or older than its crowning (a
replay), changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from retrain.tables import RegistryAuditRow, RegistryModelRow, RegistryVersionRow
from streams.artifacts import load_artifact
from streams.clock import Clock, utc_now
from streams.db import Database
from streams.errors import ArtifactError, RegistryError, StoreError
from streams.events import (
    ModelPromoted,
    ModelRolledBack,
    ModelUpdate,
    SwapFailed,
    new_event_id,
)
from streams.lineage import Lineage
from streams.outbox import Outgoing, Pending
from streams.statuses import VersionStatus

log = logging.getLogger(__name__)

_UPDATES: TypeAdapter[Any] = TypeAdapter(ModelUpdate)

#: How much earlier than the crowning of a version a ``SwapFailed`` for it may be stamped and
#: still count (serving's clock against the registry's); an older one is a replay.
SWAP_CLOCK_SKEW = timedelta(seconds=60)


@dataclass(frozen=True)
class VersionInfo:
    model: str
    version: int
    status: VersionStatus
    artifact_uri: str | None
    sha256: str | None
    metrics: Mapping[str, float]
    evaluation: Mapping[str, Any]
    hyperparameters: Mapping[str, Any]
    lineage: Lineage
    trainer: str
    code_version: str
    parent_version: int | None
    run_id: int | None
    note: str
    created_at: datetime
    champion_since: datetime | None

    @classmethod
    def of(cls, row: RegistryVersionRow) -> VersionInfo:
        return cls(
            row.model, row.version, VersionStatus(row.status), row.artifact_uri, row.sha256,
            dict(row.metrics), dict(row.evaluation), dict(row.hyperparameters), row.lineage,
            row.trainer, row.code_version, row.parent_version, row.run_id, row.note, row.created_at,
            row.champion_since,
        )


@dataclass(frozen=True)
class AuditEntry:
    id: int
    model: str
    action: str
    version: int
    from_version: int | None
    actor: str
    reason: str
    at: datetime
    published_at: datetime | None
    event: Mapping[str, Any]

    @classmethod
    def of(cls, row: RegistryAuditRow) -> AuditEntry:
        return cls(row.id, row.model, row.action, row.version, row.from_version, row.actor,
                   row.reason, row.at, row.published_at, dict(row.event))


@dataclass(frozen=True)
class ModelSummary:
    name: str
    task: str | None
    champion: int | None
    versions: int
    latest: int | None


def _is_conflict(exc: StoreError) -> bool:
    return isinstance(exc.__cause__, IntegrityError)


def _verify(row: RegistryVersionRow, uri: str, sha256: str) -> None:
    """Load ``row``'s artifact as serving would; a mismatch raises ``RegistryError``."""
    name = f"{row.model} v{row.version}"
    try:
        artifact = load_artifact(uri, expected_sha256=sha256)
        manifest = artifact.manifest
        if (manifest.model, manifest.version) != (row.model, row.version):
            raise ArtifactError(f"the artifact holds {manifest.model} v{manifest.version}")
    except ArtifactError as exc:
        raise RegistryError(
            f"{name} cannot become the champion: its artifact failed verification ({exc}); "
            "nothing was changed") from exc


class Registry:
    """Reads and changes the registry in the database; every change is one transaction."""

    def __init__(self, db: Database, *, clock: Clock = utc_now) -> None:
        self.db = db
        self._now = clock

    # -- versions -------------------------------------------------------------------------

    def ensure_model(self, model: str, task: str | None = None) -> None:
        stmt = self.db.insert(RegistryModelRow).values(
            name=model, task=task, created_at=self._now()
        ).on_conflict_do_nothing()
        with self.db.session() as session:
            session.execute(stmt)
            if task is not None:
                session.execute(
                    update(RegistryModelRow)
                    .where(RegistryModelRow.name == model, RegistryModelRow.task.is_(None))
                    .values(task=task)
                )

    def create_version(
        self,
        model: str,
        *,
        trainer: str,
        hyperparameters: Mapping[str, Any],
        code_version: str,
        parent_version: int | None = None,
        run_id: int | None = None,
        lineage: Lineage | None = None,
    ) -> int:
        """Allocate the next version number of ``model`` as a candidate; return it."""
        self.ensure_model(model)
        for _attempt in range(5):
            try:
                with self.db.session() as session:
                    latest = session.execute(
                        select(func.max(RegistryVersionRow.version)).where(
                            RegistryVersionRow.model == model
                        )
                    ).scalar_one()
                    version = (latest or 0) + 1
                    session.add(RegistryVersionRow(
                        model=model, version=version, status=VersionStatus.CANDIDATE,
                        artifact_uri=None, sha256=None, metrics={}, evaluation={},
                        hyperparameters=dict(hyperparameters),
                        lineage=lineage if lineage is not None else Lineage(),
                        trainer=trainer, code_version=code_version,
                        parent_version=parent_version, run_id=run_id, note="",
                        created_at=self._now(), champion_since=None,
                    ))
                return version
            except StoreError as exc:
                if not _is_conflict(exc):
                    raise
        raise RegistryError(f"could not allocate a version of {model} (too many concurrent runs)")

    def attach_artifact(
        self, model: str, version: int, *, artifact_uri: str, sha256: str,
        metrics: Mapping[str, float], lineage: Lineage,
        hyperparameters: Mapping[str, Any] | None = None,
    ) -> None:
        """Record the version's verified artifact; ``hyperparameters`` replace those recorded
        at :meth:`create_version` (a search's winner trained with its own)."""
        with self.db.session() as session:
            row = self._version_row(session, model, version)
            row.artifact_uri, row.sha256 = artifact_uri, sha256
            row.metrics, row.lineage = dict(metrics), lineage
            if hyperparameters is not None:
                row.hyperparameters = dict(hyperparameters)

    def reject(self, model: str, version: int, *, evaluation: Mapping[str, Any], note: str) -> None:
        self._set_outcome(model, version, VersionStatus.REJECTED, note, evaluation)

    def fail(self, model: str, version: int, *, note: str) -> None:
        self._set_outcome(model, version, VersionStatus.FAILED, note, None)

    def _set_outcome(
        self, model: str, version: int, status: VersionStatus, note: str,
        evaluation: Mapping[str, Any] | None,
    ) -> None:
        with self.db.session() as session:
            row = self._version_row(session, model, version)
            if row.status == VersionStatus.CHAMPION:
                raise RegistryError(f"{model} v{version} is the champion; it cannot be {status}")
            row.status, row.note = status, note[:10_000]
            if evaluation is not None:
                row.evaluation = dict(evaluation)

    def fail_candidates(self, run_ids: Sequence[int], *, note: str) -> int:
        """Mark the candidates of runs that died half-way as failed; return how many."""
        if not run_ids:
            return 0
        with self.db.session() as session:
            result: Any = session.execute(
                update(RegistryVersionRow)
                .where(RegistryVersionRow.run_id.in_(list(run_ids)),
                       RegistryVersionRow.status == VersionStatus.CANDIDATE)
                .values(status=VersionStatus.FAILED, note=note)
            )
            return int(result.rowcount)

    # -- promotion and rollback -----------------------------------------------------------

    def promote(
        self, model: str, version: int, *, actor: str, reason: str,
        evaluation: Mapping[str, Any] | None = None,
    ) -> ModelPromoted:
        """Make ``version`` the champion in one transaction; return the event to publish."""
        with self._changing(model) as session:
            target = self._version_row(session, model, version)
            current = self._champion_row(session, model)
            now = self._now()
            uri, sha256 = self._crown(session, target, current, steps_down=VersionStatus.ARCHIVED,
                                      note=reason, at=now)
            if evaluation is not None:
                target.evaluation = dict(evaluation)
            event = ModelPromoted(
                event_id=new_event_id(), model=model, version=version,
                previous_version=current.version if current is not None else None,
                artifact_uri=uri, sha256=sha256, actor=actor,
                reason=reason, timestamp=now,
            )
            self._audit(session, "promote", version, event.previous_version, actor, reason,
                        event.model_dump(mode="json"), model, now)
        log.info("promoted %s v%d", model, version, extra={"actor": actor, "reason": reason})
        return event

    def rollback(
        self, model: str, *, actor: str, reason: str, to_version: int | None = None
    ) -> ModelRolledBack:
        """Restore the previous champion (or ``to_version``); the current one is rejected."""
        with self._changing(model) as session:
            current = self._champion_row(session, model)
            if current is None:
                raise RegistryError(f"{model} has no champion to roll back")
            if to_version is not None:
                target = self._version_row(session, model, to_version)
            else:
                found = session.execute(
                    select(RegistryVersionRow)
                    .where(RegistryVersionRow.model == model,
                           RegistryVersionRow.status == VersionStatus.ARCHIVED,
                           RegistryVersionRow.champion_since.is_not(None))
                    .order_by(RegistryVersionRow.champion_since.desc())
                    .limit(1)
                ).scalar_one_or_none()
                if found is None:
                    raise RegistryError(f"{model} has no former champion to roll back to")
                target = found
            now = self._now()
            event = self._restore(session, target, current, steps_down=VersionStatus.REJECTED,
                                  note=f"rolled back: {reason}", actor=actor, reason=reason,
                                  at=now)
        log.warning("rolled back %s v%d -> v%d", model, event.from_version, event.version,
                    extra={"actor": actor, "reason": reason})
        return event

    def refused(self, event: SwapFailed) -> ModelRolledBack | None:
        """Serving refused ``event.version``: mark it ``refused`` and restore what serving runs.

        Acts only while the refused version is the champion, and only on a refusal stamped no
        earlier than its crowning (less :data:`SWAP_CLOCK_SKEW`): a second serving process
        refusing the same version, or a replay, changes nothing and returns None. Otherwise
        the champion it replaced is restored (verified like any other) and the
        ``ModelRolledBack`` to publish is returned; with no champion to return to, the refused
        version steps down alone and None is returned.
        """
        model, version = event.model, event.version
        actor = f"serving:{event.instance}"[:200]
        reason = f"serving refused v{version}: {event.error}"
        with self._changing(model) as session:
            current = self._champion_row(session, model)
            since = current.champion_since if current is not None else None
            if (current is None or current.version != version
                    or (since is not None and event.timestamp < since - SWAP_CLOCK_SKEW)):
                log.info("a refused swap that is no longer the champion; nothing to undo",
                         extra={"model": model, "version": version, "instance": event.instance})
                return None
            target = self._kept_by_serving(session, model, current)
            rolled = None
            if target is not None:
                try:
                    rolled = self._restore(session, target, current,
                                           steps_down=VersionStatus.REFUSED, note=reason,
                                           actor=actor, reason=reason, at=self._now())
                except RegistryError as exc:  # raised before any row changed
                    log.error("the version serving kept cannot be restored",
                              extra={"model": model, "version": target.version,
                                     "error": str(exc)})
            if rolled is None:
                current.status, current.note = VersionStatus.REFUSED, reason[:10_000]
                log.error("serving refused %s v%d and no champion is left", model, version,
                          extra={"instance": event.instance, "error": event.error})
                return None
        log.error("serving refused %s v%d; v%d is the champion again", model, version,
                  rolled.version, extra={"instance": event.instance, "error": event.error})
        return rolled

    def _kept_by_serving(
        self, session: Session, model: str, refused: RegistryVersionRow
    ) -> RegistryVersionRow | None:
        """The version serving kept when it refused ``refused``: the one it replaced."""
        crowning = session.execute(
            select(RegistryAuditRow)
            .where(RegistryAuditRow.model == model, RegistryAuditRow.version == refused.version)
            .order_by(RegistryAuditRow.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if crowning is None or crowning.from_version is None:
            return None
        return self._version_row(session, model, crowning.from_version)

    def _restore(
        self, session: Session, target: RegistryVersionRow, current: RegistryVersionRow, *,
        steps_down: VersionStatus, note: str, actor: str, reason: str, at: datetime,
    ) -> ModelRolledBack:
        """Crown ``target`` in place of ``current`` and record the ``ModelRolledBack``."""
        uri, sha256 = self._crown(session, target, current, steps_down=steps_down, note=None,
                                  at=at)
        current.note = note[:10_000]
        event = ModelRolledBack(
            event_id=new_event_id(), model=target.model, version=target.version,
            from_version=current.version, artifact_uri=uri, sha256=sha256, actor=actor,
            reason=reason, timestamp=at,
        )
        self._audit(session, "rollback", target.version, current.version, actor, reason,
                    event.model_dump(mode="json"), target.model, at)
        return event

    def _crown(
        self, session: Session, target: RegistryVersionRow, current: RegistryVersionRow | None,
        *, steps_down: VersionStatus, note: str | None, at: datetime,
    ) -> tuple[str, str]:
        """Make ``target`` the champion in place of ``current`` (which becomes ``steps_down``).

        The one way to the champion's seat: the target's artifact is verified first, and a
        refusal raises ``RegistryError`` before any row changes. Returns the verified
        artifact's URI and sha256.
        """
        name = f"{target.model} v{target.version}"
        if current is not None and target.version == current.version:
            raise RegistryError(f"{name} is already the champion")
        uri, sha256 = target.artifact_uri, target.sha256
        if target.status == VersionStatus.REFUSED:
            raise RegistryError(f"{name} cannot become the champion: {target.note}")
        if target.status == VersionStatus.FAILED or not uri or not sha256:
            raise RegistryError(f"{name} has no usable artifact ({target.status})")
        _verify(target, uri, sha256)
        if current is not None:
            current.status = steps_down
            session.flush()
        target.status, target.champion_since = VersionStatus.CHAMPION, at
        if note is not None:
            target.note = note[:10_000]
        session.flush()
        return uri, sha256

    @contextmanager
    def _changing(self, model: str) -> Iterator[Session]:
        """A transaction that holds the model's row lock (PostgreSQL) while it changes."""
        try:
            with self.db.session() as session:
                row = session.execute(
                    select(RegistryModelRow).where(RegistryModelRow.name == model)
                    .with_for_update()
                ).scalar_one_or_none()
                if row is None:
                    raise RegistryError(f"unknown model {model!r}")
                yield session
        except StoreError as exc:
            if _is_conflict(exc):
                raise RegistryError(f"{model} changed concurrently; try again") from exc
            raise

    def _audit(
        self, session: Session, action: str, version: int, from_version: int | None, actor: str,
        reason: str, event: dict[str, Any], model: str, at: datetime,
    ) -> None:
        session.add(RegistryAuditRow(
            model=model, action=action, version=version, from_version=from_version,
            actor=actor, reason=reason, at=at, event=event, published_at=None,
        ))

    # -- outbox ---------------------------------------------------------------------------

    def unpublished(self) -> list[AuditEntry]:
        stmt = (select(RegistryAuditRow).where(RegistryAuditRow.published_at.is_(None))
                .order_by(RegistryAuditRow.id))
        with self.db.session() as session:
            return [AuditEntry.of(r) for r in session.execute(stmt).scalars()]

    def pending(self) -> Pending[int]:
        """The outbox (:mod:`streams.outbox`): the unpublished promotions and rollbacks as
        events, keyed by model, by audit id."""
        return Pending([Outgoing(entry.id, _UPDATES.validate_python(entry.event), entry.model)
                        for entry in self.unpublished()])

    def mark_published(self, audit_ids: Collection[int]) -> None:
        if not audit_ids:
            return
        with self.db.session() as session:
            session.execute(
                update(RegistryAuditRow)
                .where(RegistryAuditRow.id.in_(list(audit_ids)),
                       RegistryAuditRow.published_at.is_(None))
                .values(published_at=self._now())
            )

    # -- reads ----------------------------------------------------------------------------

    def champion(self, model: str) -> VersionInfo | None:
        with self.db.session() as session:
            row = self._champion_row(session, model)
            return VersionInfo.of(row) if row is not None else None

    def version(self, model: str, version: int) -> VersionInfo:
        with self.db.session() as session:
            return VersionInfo.of(self._version_row(session, model, version))

    def versions(self, model: str) -> list[VersionInfo]:
        stmt = (select(RegistryVersionRow).where(RegistryVersionRow.model == model)
                .order_by(RegistryVersionRow.version))
        with self.db.session() as session:
            return [VersionInfo.of(r) for r in session.execute(stmt).scalars()]

    def models(self) -> list[ModelSummary]:
        with self.db.session() as session:
            models = list(session.execute(
                select(RegistryModelRow).order_by(RegistryModelRow.name)).scalars())
            counts: dict[str, int] = dict(session.execute(
                select(RegistryVersionRow.model, func.count()).group_by(RegistryVersionRow.model)
            ).all())
            latest: dict[str, int] = dict(session.execute(
                select(RegistryVersionRow.model, func.max(RegistryVersionRow.version))
                .group_by(RegistryVersionRow.model)
            ).all())
            champions: dict[str, int] = dict(session.execute(
                select(RegistryVersionRow.model, RegistryVersionRow.version)
                .where(RegistryVersionRow.status == VersionStatus.CHAMPION)
            ).all())
        return [ModelSummary(m.name, m.task, champions.get(m.name), counts.get(m.name, 0),
                             latest.get(m.name)) for m in models]

    def audit(self, model: str | None = None, limit: int | None = None) -> list[AuditEntry]:
        """Promotions and rollbacks, newest first."""
        stmt = select(RegistryAuditRow).order_by(RegistryAuditRow.id.desc())
        if model is not None:
            stmt = stmt.where(RegistryAuditRow.model == model)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self.db.session() as session:
            return [AuditEntry.of(r) for r in session.execute(stmt).scalars()]

    def _champion_row(self, session: Session, model: str) -> RegistryVersionRow | None:
        return session.execute(
            select(RegistryVersionRow).where(RegistryVersionRow.model == model,
                                             RegistryVersionRow.status == VersionStatus.CHAMPION)
        ).scalar_one_or_none()

    def _version_row(self, session: Session, model: str, version: int) -> RegistryVersionRow:
        row = session.execute(
            select(RegistryVersionRow).where(RegistryVersionRow.model == model,
                                             RegistryVersionRow.version == version)
        ).scalar_one_or_none()
        if row is None:
            raise RegistryError(f"{model} has no version {version}")
        return row
