"""Topic names under the configured prefix, what each carries, and idempotent creation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streams.errors import BrokerError
from streams.events import (
    DriftEvent,
    Feedback,
    InferenceRequest,
    ModelUpdate,
    Prediction,
)
from streams.settings import KafkaSettings, TopicSettings
from streams.transport import transport_for

log = logging.getLogger(__name__)


class Topic(StrEnum):
    REQUESTS = "requests"
    PREDICTIONS = "predictions"
    FEEDBACK = "feedback"
    DRIFT = "drift"
    MODEL_UPDATES = "model-updates"
    DEAD_LETTER = "dead-letter"


#: The event type (or tagged union) each topic carries; the dead-letter topic carries raw bytes.
TOPIC_EVENTS: dict[Topic, Any] = {
    Topic.REQUESTS: InferenceRequest,
    Topic.PREDICTIONS: Prediction,
    Topic.FEEDBACK: Feedback,
    Topic.DRIFT: DriftEvent,
    Topic.MODEL_UPDATES: ModelUpdate,
}


@dataclass(frozen=True)
class TopicNames:
    """Full topic names for one deployment."""

    prefix: str

    def __call__(self, topic: Topic) -> str:
        return f"{self.prefix}.{topic.value}"

    def all(self) -> list[str]:
        return [self(t) for t in Topic]

    def topic_of(self, name: str) -> Topic:
        for topic in Topic:
            if self(topic) == name:
                return topic
        raise KeyError(name)


def ensure_topics(
    kafka: KafkaSettings,
    topics: TopicSettings,
    *,
    partitions: int | None = None,
    names: list[str] | None = None,
) -> list[str]:
    """Create the deployment's topics that do not exist yet; return those created."""
    wanted = names if names is not None else TopicNames(topics.prefix).all()
    count = partitions if partitions is not None else topics.partitions
    try:
        admin = transport_for(kafka).admin(client_id=f"{kafka.client_id}-admin",
                                           **kafka.client_config())
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {kafka.bootstrap_servers}: {exc}") from exc
    try:
        existing = set(admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        created: list[str] = []
        for name in missing:
            new = NewTopic(name, num_partitions=count, replication_factor=topics.replication_factor)
            try:
                admin.create_topics([new])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        if created:
            log.info("created topics", extra={"topics": created, "partitions": count})
        return created
    except KafkaError as exc:
        raise BrokerError(f"could not create topics: {exc}") from exc
    finally:
        admin.close()
