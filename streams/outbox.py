"""The transactional outbox both publishing stages share.

A store that must put events on Kafka writes each one in the same transaction as the change
it reports, unpublished. :func:`publish_pending` then sends what the store hands out, in
order and keyed (one key's events stay in order on one partition), waits until the broker
acknowledged all of them, and only then has the store mark them published. A crash in
between leaves them unpublished: they are sent again, with the same ``event_id``, and every
reader treats a repeat as a no-op. The monitor's drift reports and retrain requests and the
registry's promotions and rollbacks go out this way.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from streams.events import Event
from streams.producer import Producer

Ref = TypeVar("Ref", bound=Hashable)


@dataclass(frozen=True)
class Outgoing(Generic[Ref]):
    """One event to send; ``ref`` is what the store marks published once it is acknowledged."""

    ref: Ref
    event: Event
    key: str


@dataclass(frozen=True)
class Pending(Generic[Ref]):
    """What an outbox holds, oldest first: events to send, and ``retired`` rows that are
    never sent (nothing in them to report) and are only marked done."""

    outgoing: list[Outgoing[Ref]] = field(default_factory=list)
    retired: list[Ref] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.outgoing or self.retired)


class Outbox(Protocol[Ref]):
    def pending(self) -> Pending[Ref]: ...

    def mark_published(self, refs: Collection[Ref]) -> None: ...


def publish_pending(outbox: Outbox[Ref], producer: Producer, topic: str) -> int:
    """Send everything ``outbox`` holds to ``topic`` and mark it published once acknowledged;
    return how many events were sent. A broker error leaves all of it pending."""
    pending = outbox.pending()
    if not pending:
        return 0
    for item in pending.outgoing:
        producer.send(topic, item.event, key=item.key)
    if pending.outgoing:
        producer.flush()
    outbox.mark_published([*(item.ref for item in pending.outgoing), *pending.retired])
    return len(pending.outgoing)
