"""Promote and roll back from the dashboard: signed-in users only, a reason always required.

The change itself is retrain's: :meth:`retrain.registry.Registry.promote` / ``rollback`` verify
the target's artifact (a tampered one is refused before anything changes, with a
``RegistryError`` the page shows), then write the change and its ``ModelPromoted`` /
``ModelRolledBack`` event in one transaction (the registry's audit log doubles as its outbox),
and :class:`retrain.publisher.UpdatePublisher` sends the pending events to the model-updates
topic. If Kafka cannot be reached the change stands and the retrain process publishes it later.
The dashboard's audit log records every attempt, refused ones included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from dashboard.audit import AuditLog
from dashboard.auth import Access, User
from retrain.publisher import UpdatePublisher
from retrain.registry import Registry
from streams.errors import DriftloopError
from streams.events import ModelPromoted, ModelRolledBack

log = logging.getLogger(__name__)


class ReasonRequiredError(DriftloopError):
    """A promotion or rollback was asked for without saying why."""


@dataclass(frozen=True)
class Outcome:
    """What an action did: the event the registry recorded, and whether it is on Kafka yet."""

    event: ModelPromoted | ModelRolledBack
    published: bool


class ModelActions:
    def __init__(
        self,
        registry: Registry,
        audit: AuditLog,
        access: Access,
        publisher: Callable[[], UpdatePublisher],
    ) -> None:
        self._registry = registry
        self._audit = audit
        self._access = access
        self._publisher = publisher

    def _check(self, user: User | None, action: str, model: str, target: str | None,
               reason: str) -> tuple[User, str]:
        if user is None:
            self._audit.record("anonymous", "refused", model=model, target=target,
                               reason=f"{action} without signing in")
        actor = self._access.require_actor(user, action)
        why = reason.strip()
        if not why:
            raise ReasonRequiredError(f"say why you {action}")
        return actor, why

    def _publish(self) -> bool:
        try:
            self._publisher().publish_pending()
        except DriftloopError as exc:
            log.warning("the change is recorded but not published yet: %s", exc)
            return False
        return True

    def promote(self, user: User | None, model: str, version: int, reason: str) -> Outcome:
        """Make ``version`` the champion of ``model``."""
        actor, why = self._check(user, "promote", model, str(version), reason)
        try:
            event = self._registry.promote(model, version, actor=actor.name, reason=why)
        except DriftloopError as exc:
            self._audit.record(actor.name, "promote_failed", model=model, target=str(version),
                               reason=why, detail={"error": str(exc)})
            raise
        self._audit.record(actor.name, "promote", model=model, target=str(version), reason=why,
                           detail={"previous_version": event.previous_version,
                                   "event_id": event.event_id})
        return Outcome(event, self._publish())

    def rollback(
        self, user: User | None, model: str, reason: str, *, to_version: int | None = None
    ) -> Outcome:
        """Restore the previous champion of ``model`` (or ``to_version``)."""
        target = str(to_version) if to_version is not None else None
        actor, why = self._check(user, "roll back", model, target, reason)
        try:
            event = self._registry.rollback(model, actor=actor.name, reason=why,
                                            to_version=to_version)
        except DriftloopError as exc:
            self._audit.record(actor.name, "rollback_failed", model=model, target=target,
                               reason=why, detail={"error": str(exc)})
            raise
        self._audit.record(actor.name, "rollback", model=model, target=str(event.version),
                           reason=why, detail={"from_version": event.from_version,
                                               "event_id": event.event_id})
        return Outcome(event, self._publish())
