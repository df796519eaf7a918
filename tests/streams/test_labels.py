from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from streams.events import Feedback
from streams.labels import precedence, precedence_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def feedback(event_id: str, source: str = "app", seconds: int = 0) -> Feedback:
    return Feedback(event_id=event_id, request_id="r1", model="m", label=1, source=source,
                    reviewer="ana" if source == "reviewer" else None,
                    timestamp=T0 + timedelta(seconds=seconds))


def test_a_reviewer_beats_a_later_app_label() -> None:
    assert precedence_of(feedback("a", "reviewer", 0)) > precedence_of(feedback("b", "app", 60))


def test_then_the_later_label_then_the_larger_event_id() -> None:
    assert precedence_of(feedback("a", seconds=2)) > precedence_of(feedback("z", seconds=1))
    assert precedence_of(feedback("b")) > precedence_of(feedback("a"))


def test_a_naive_timestamp_counts_as_utc() -> None:
    naive = datetime(2026, 1, 1, 0, 0, 1)
    assert precedence("app", naive, "a") > precedence("app", T0, "a")
    assert precedence("app", naive, "a") == precedence("app", naive.replace(tzinfo=UTC), "a")


sources = st.sampled_from(["app", "reviewer"])


@given(st.lists(st.tuples(sources, st.integers(0, 5), st.integers(0, 5)), min_size=1,
                max_size=8, unique_by=lambda t: t[2]))
def test_the_winner_does_not_depend_on_arrival_order(labels: list[tuple[str, int, int]]) -> None:
    events = [feedback(f"e{i}", source, seconds) for source, seconds, i in labels]
    forward = max(events, key=precedence_of)
    backward = max(reversed(events), key=precedence_of)
    assert forward.event_id == backward.event_id
