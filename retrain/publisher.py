"""Publishes promotions and rollbacks from the registry's outbox to the model-updates topic.

The registry writes each ``ModelPromoted`` / ``ModelRolledBack`` in the same transaction as
the change itself (``registry_audit``, ``published_at`` empty). :meth:`publish_pending` sends
every unpublished one in order, keyed by model (so one model's updates stay in order on one
partition), waits for Kafka's acknowledgement, then marks them published. A crash between the
commit and the acknowledgement leaves them unpublished, and the next call (at the retrain
process's start, after each change, and periodically while it idles) sends them again. An event
can therefore arrive twice, with the same ``event_id``; serving treats a second swap to the
version it already runs as a no-op.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pydantic import TypeAdapter

from retrain.registry import Registry
from streams.events import ModelUpdate
from streams.producer import Producer

log = logging.getLogger(__name__)

_UPDATES: TypeAdapter[Any] = TypeAdapter(ModelUpdate)


class UpdatePublisher:
    def __init__(self, registry: Registry, producer: Producer, topic: str) -> None:
        self._registry = registry
        self._producer = producer
        self._topic = topic
        self._lock = threading.Lock()

    def publish_pending(self) -> int:
        """Send every unpublished registry event; return how many were acknowledged."""
        with self._lock:
            pending = self._registry.unpublished()
            if not pending:
                return 0
            for entry in pending:
                self._producer.send(self._topic, _UPDATES.validate_python(entry.event),
                                    key=entry.model)
            self._producer.flush()
            self._registry.mark_published([e.id for e in pending])
        log.info("published model updates", extra={"count": len(pending), "topic": self._topic})
        return len(pending)
