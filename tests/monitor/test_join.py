"""The join: order-independent, bounded, restart-proof through the archive."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.join import Join, JoinConfig, Key, key_of, label_fits
from streams.events import Feedback, Prediction
from streams.store import LabelledExample
from tests.monitor.events import T0, feedback, prediction

TTL = 100.0


class MemoryArchive:
    """What the event store would hold: first prediction per key, every feedback by id."""

    def __init__(self) -> None:
        self.stored_predictions: dict[Key, Prediction] = {}
        self.stored_feedback: dict[str, Feedback] = {}

    def add(self, events: Sequence[Prediction | Feedback]) -> None:
        for e in events:
            if isinstance(e, Prediction):
                self.stored_predictions.setdefault(key_of(e), e)
            else:
                self.stored_feedback.setdefault(e.event_id, e)

    def predictions(self, keys: Collection[Key]) -> Mapping[Key, Prediction]:
        return {k: self.stored_predictions[k] for k in keys if k in self.stored_predictions}

    def feedback(self, keys: Collection[Key]) -> Mapping[Key, Sequence[Feedback]]:
        out: dict[Key, list[Feedback]] = {}
        for f in self.stored_feedback.values():
            if key_of(f) in keys:
                out.setdefault(key_of(f), []).append(f)
        return out


def fold(examples: Sequence[LabelledExample], into: dict[Key, LabelledExample]) -> None:
    """What EventStore.upsert_examples keeps: per key, the example whose label wins."""
    for ex in examples:
        key = (ex.model, ex.request_id)
        if key not in into or ex.beats(into[key]):
            into[key] = ex


def run(batches: Sequence[Sequence[Prediction | Feedback]], delays: Sequence[float], *,
        archive: MemoryArchive | None, max_pending: int = 1000) -> tuple[dict, Join]:
    """Feed batches the way the monitor does: predictions stored, join, then feedback stored."""
    join = Join(JoinConfig(ttl_s=TTL, max_pending=max_pending), archive)
    joined: dict[Key, LabelledExample] = {}
    now = T0
    for batch, delay in zip(batches, delays, strict=True):
        now += timedelta(seconds=delay)
        if archive is not None:
            archive.add([e for e in batch if isinstance(e, Prediction)])
        result = join.process(batch, now)
        fold(result.examples, joined)
        refused = {f.event_id for f, _ in result.rejected}
        if archive is not None:
            archive.add([e for e in batch if isinstance(e, Feedback)
                         and e.event_id not in refused])
    return joined, join


def expected(events: Sequence[Prediction | Feedback]) -> dict[Key, LabelledExample]:
    """The joined set defined by the events alone."""
    preds = {key_of(e): e for e in events if isinstance(e, Prediction)}
    out: dict[Key, LabelledExample] = {}
    for f in {e.event_id: e for e in events if isinstance(e, Feedback)}.values():
        p = preds.get(key_of(f))
        if p is None or not label_fits(p, f.label):
            continue
        if abs((f.timestamp - p.timestamp).total_seconds()) > TTL:
            continue
        fold([LabelledExample.join(p, f)], out)
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> list[Prediction | Feedback]:
    events: list[Prediction | Feedback] = []
    for i in range(draw(st.integers(1, 6))):
        rid = f"r{i}"
        at = draw(st.integers(0, 300))
        regression = draw(st.booleans())
        if draw(st.integers(0, 4)) > 0:  # sometimes the prediction never comes
            events.append(prediction(rid, at=at, value=1.5 if regression else None))
        for _ in range(draw(st.integers(0, 3))):
            label = draw(st.sampled_from(["stay", "leave", 2.0, True]))
            source = draw(st.sampled_from(["app", "reviewer"]))
            lag = draw(st.integers(-20, 150))  # beyond TTL sometimes, before it sometimes
            events.append(feedback(rid, label, at=at + lag, source=source,
                                   event_id=f"f{i}-{len(events)}"))
    return events


@st.composite
def deliveries(draw: st.DrawFn, events: list[Prediction | Feedback]) -> tuple[list, list]:
    """Any interleaving, with duplicates, cut into batches with delays between them."""
    copies = [e for e in events for _ in range(draw(st.integers(1, 3)))]
    order = draw(st.permutations(copies))
    cuts = sorted(draw(st.lists(st.integers(0, len(order)), max_size=6)))
    bounds = [0, *cuts, len(order)]
    batches = [order[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    delays = draw(st.lists(st.floats(0, 3 * TTL), min_size=len(batches),
                           max_size=len(batches)))
    return batches, delays


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), events=scenarios(), max_pending=st.sampled_from([1, 2, 1000]))
def test_any_interleaving_duplication_and_delay_gives_the_same_joined_set(
    data: st.DataObject, events: list[Prediction | Feedback], max_pending: int
) -> None:
    batches, delays = data.draw(deliveries(events))
    joined, _ = run(batches, delays, archive=MemoryArchive(), max_pending=max_pending)
    assert joined == expected(events)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), events=scenarios())
def test_within_the_ttl_memory_alone_joins_everything(
    data: st.DataObject, events: list[Prediction | Feedback]
) -> None:
    batches, _ = data.draw(deliveries(events))
    joined, _ = run(batches, [0.0] * len(batches), archive=None)
    assert joined == expected(events)


def test_a_restarted_join_finds_the_counterparts_in_the_store() -> None:
    archive = MemoryArchive()
    first = [prediction("a", at=0), feedback("b", "leave", at=5)]
    run([first], [0.0], archive=archive)  # the process stops here; its memory is gone
    later = [feedback("a", "leave", at=20), prediction("b", at=1)]
    joined, join = run([later], [0.0], archive=archive)
    assert {k: v.label for k, v in joined.items()} == {("churn", "a"): "leave",
                                                       ("churn", "b"): "leave"}
    assert join.stats.recovered["churn"] == 1


def test_a_reviewer_beats_the_app_whatever_the_order() -> None:
    events = [feedback("a", "leave", at=50, source="reviewer"), prediction("a"),
              feedback("a", "stay", at=80)]
    for batches in ([events], [[e] for e in events], [[e] for e in reversed(events)]):
        joined, _ = run(batches, [1.0] * len(batches), archive=MemoryArchive())
        assert joined[("churn", "a")].label == "leave"
        assert joined[("churn", "a")].label_source == "reviewer"


def test_unmatched_items_expire_after_the_ttl_and_are_counted() -> None:
    join = Join(JoinConfig(ttl_s=TTL))
    join.process([prediction("a"), prediction("b"), feedback("zzz")], T0)
    join.process([feedback("a", at=30)], T0 + timedelta(seconds=50))
    assert (join.pending_predictions, join.pending_feedback) == (1, 1)
    join.process([], T0 + timedelta(seconds=TTL + 1))
    assert join.stats.expired_predictions["churn"] == 1
    assert join.stats.expired_feedback["churn"] == 1
    assert (join.pending_predictions, join.pending_feedback) == (0, 0)
    assert join.stats.coverage("churn") == 0.5
    # Too late now: without an archive the label is not joined.
    assert join.process([feedback("b", at=60)], T0 + timedelta(seconds=TTL + 2)).examples == ()


def test_memory_is_bounded_oldest_first() -> None:
    join = Join(JoinConfig(ttl_s=TTL, max_pending=3))
    join.process([prediction(f"r{i}") for i in range(10)], T0)
    join.process([feedback(f"x{i}") for i in range(10)], T0)
    assert join.held_predictions == 3
    assert join.pending_feedback == 3
    assert join.stats.expired_predictions["churn"] == 7
    assert join.stats.expired_feedback["churn"] == 7
    assert join.process([feedback("r9")], T0).examples != ()
    assert join.process([feedback("r0")], T0).examples == ()


def test_label_latency_is_measured_at_the_first_label() -> None:
    join = Join()
    result = join.process([prediction("a", at=0), feedback("a", at=42),
                           feedback("a", "leave", at=90, source="reviewer")], T0)
    assert result.latencies == (("churn", 42.0),)
    assert len(result.examples) == 2
    assert join.stats.labelled["churn"] == 1
    assert join.stats.matches["churn"] == 2


def test_labels_of_the_wrong_type_are_refused() -> None:
    join = Join()
    wrong = feedback("a", 3.5)
    early_wrong = feedback("b", "text", event_id="fb")
    result = join.process([prediction("a"), wrong, early_wrong,
                           prediction("b", value=2.0)], T0)
    assert result.examples == ()
    assert [f.event_id for f, _ in result.rejected] == [wrong.event_id, "fb"]
    assert {e.reason for _, e in result.rejected} == {"label_type"}
    assert join.stats.invalid_labels["churn"] == 2
    ok = join.process([feedback("b", 2, at=11)], T0)
    assert [ex.label for ex in ok.examples] == [2]


def test_feedback_too_far_from_its_prediction_does_not_join() -> None:
    join = Join(JoinConfig(ttl_s=TTL))
    result = join.process([prediction("a", at=0), feedback("a", at=TTL + 1)], T0)
    assert result.examples == ()
    assert join.stats.out_of_ttl["churn"] == 1


def test_duplicates_and_conflicts_are_counted_not_joined_twice() -> None:
    join = Join()
    join.process([prediction("a"), prediction("a")], T0)
    join.process([prediction("a", event_id="other")], T0)
    assert join.stats.duplicates["churn"] == 1
    assert join.stats.conflicts["churn"] == 1
    assert join.stats.predictions["churn"] == 1
    # A replayed batch re-emits the same example (storage is idempotent).
    first = join.process([feedback("a")], T0).examples
    again = join.process([prediction("a")], T0).examples
    assert first == again
