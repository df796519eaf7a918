"""Which label wins when a prediction has more than one: the rule every stage applies.

A prediction may get several labels: the app's, then a reviewer's correction, or a replayed
event. The winner, whatever order they arrive in:

1. a reviewer's label beats the app's;
2. then the later timestamp (a naive one counts as UTC);
3. then the larger event id, so that two labels of the same moment still have one winner.

The monitor's join and the example store (in Python, and in SQL through the stored
``label_rank``) decide with this rule, so a replay or a restart never changes the outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from streams.clock import as_utc

LabelSource = Literal["app", "reviewer"]

SOURCE_RANK: dict[str, int] = {"app": 0, "reviewer": 1}
"""A source's rank: the higher one wins, whatever the timestamps."""

Precedence = tuple[int, datetime, str]


class Labelled(Protocol):
    """What the rule reads of a label (a ``Feedback`` event has these)."""

    @property
    def source(self) -> str: ...

    @property
    def timestamp(self) -> datetime: ...

    @property
    def event_id(self) -> str: ...


def precedence(source: str, timestamp: datetime, event_id: str) -> Precedence:
    """The sort key of a label: of two labels for one prediction, the larger one wins."""
    return (SOURCE_RANK[source], as_utc(timestamp), event_id)


def precedence_of(label: Labelled) -> Precedence:
    """:func:`precedence` of a feedback event."""
    return precedence(label.source, label.timestamp, label.event_id)
