"""Everything the pages share, built once per settings: database, queries, audit, access.

Nothing here imports Streamlit, so the same object serves the app and the tests. The Kafka
client that sends corrections is created on first use, so viewing never needs a broker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from dashboard.actions import ModelActions
from dashboard.audit import AuditLog
from dashboard.auth import Access, PasswordBook
from dashboard.corrections import CorrectionService, FeedbackSink
from dashboard.drift_queries import DriftQueries
from dashboard.job_queries import JobQueries
from dashboard.queries import StreamQueries
from dashboard.registry_queries import RegistryQueries
from dashboard.signin import SignInDesk
from retrain.publisher import UpdatePublisher
from streams.clock import Clock, utc_now
from streams.db import Database
from streams.producer import Producer
from streams.settings import Settings
from streams.topics import Topic, TopicNames

log = logging.getLogger(__name__)


def reveal(value: Any) -> Any:
    """JSON fallback that writes secrets in clear (for the child process and cache keys)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value)


def settings_fingerprint(settings: Settings) -> str:
    """A stable digest of every setting, secrets included (a cache key, never shown)."""
    payload = json.dumps(settings.model_dump(mode="python"), default=reveal, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _client_sink(settings: Settings) -> FeedbackSink:
    from streams.client import Client

    return Client(settings)


class Dashboard:
    """The dashboard's adapters for one deployment."""

    def __init__(
        self,
        settings: Settings,
        *,
        db: Database | None = None,
        sink_factory: Callable[[Settings], FeedbackSink] = _client_sink,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.db = db or Database(settings.database_url, echo=settings.database.echo)
        self.clock = clock
        self.streams = StreamQueries(self.db, clock=clock)
        self.registry = RegistryQueries(self.db)
        self.jobs = JobQueries(self.db, clock=clock)
        self.drift = DriftQueries(self.db, clock=clock)
        self.audit = AuditLog(self.db, clock=clock)
        self.access = Access(open_viewing=settings.dashboard.open_viewing)
        self.passwords = PasswordBook(settings.dashboard.users)
        self.sign_in = SignInDesk(self.passwords, self.audit)
        self.actions = ModelActions(self.registry.registry, self.audit, self.access,
                                    self._update_publisher)
        self._sink_factory = sink_factory
        self._corrections: CorrectionService | None = None
        self._sink: FeedbackSink | None = None
        self._publisher: UpdatePublisher | None = None
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    def _update_publisher(self) -> UpdatePublisher:
        """Publishes the registry's pending events; connects to Kafka on first use."""
        with self._lock:
            if self._publisher is None:
                self._producer = Producer(self.settings.kafka, client_id="driftloop-dashboard")
                topic = TopicNames(self.settings.topics.prefix)(Topic.MODEL_UPDATES)
                self._publisher = UpdatePublisher(self.registry.registry, self._producer, topic)
            return self._publisher

    def corrections(self) -> CorrectionService:
        """The correction service; connects to Kafka the first time it is asked for."""
        with self._lock:
            if self._corrections is None:
                self._sink = self._sink_factory(self.settings)
                self._corrections = CorrectionService(self._sink, self.audit, self.access)
            return self._corrections

    @property
    def models(self) -> tuple[str, ...]:
        """Configured model names and every model seen in the predictions."""
        return tuple(sorted({*self.settings.models, *self.streams.models()}))

    def all_models(self) -> tuple[str, ...]:
        """Every model known anywhere: settings, predictions and the registry."""
        registered = set(self.registry.model_names())
        return tuple(sorted({*self.models, *registered}))

    def close(self) -> None:
        with self._lock:
            close = getattr(self._sink, "close", None)
            if close is not None:
                close()
            if self._producer is not None:
                self._producer.close()
        self.db.dispose()
