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

from retrain.registry import Registry
from streams.outbox import publish_pending
from streams.producer import Producer

log = logging.getLogger(__name__)

class UpdatePublisher:
    def __init__(self, registry: Registry, producer: Producer, topic: str) -> None:
        self._registry = registry
        self._producer = producer
        self._topic = topic
        self._lock = threading.Lock()

    def publish_pending(self) -> int:
        """Send every unpublished registry event; return how many were acknowledged."""
        with self._lock:
            sent = publish_pending(self._registry, self._producer, self._topic)
        if sent:
            log.info("published model updates", extra={"count": sent, "topic": self._topic})
        return sent
