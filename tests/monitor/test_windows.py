"""Count- and time-based windows: what closes when, and a state that resumes exactly."""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.performance import Outcome
from monitor.windows import Calibrated, ClosedWindow, WindowConfig, WindowRow, Windows
from tests.monitor.events import T0


def row(i: int, model: str = "m", version: int = 1, outcome: Outcome | None = None) -> WindowRow:
    return WindowRow(i, model, version, T0 + timedelta(seconds=i), outcome)


def feed(windows: Windows, rows: list[WindowRow], at: float = 0.0) -> list[ClosedWindow]:
    for r in rows:
        windows.update(r, T0 + timedelta(seconds=at))
    return windows.drain()


def test_count_windows_start_after_the_reference_rows() -> None:
    windows = Windows("served", WindowConfig(size=3, reference_rows=2, min_rows=2))
    closed = feed(windows, [row(i) for i in range(1, 10)])
    assert [(w.window_id, w.first_id, w.last_id, w.rows) for w in closed] == [
        ("m.served.v1.0", 3, 5, 3), ("m.served.v1.1", 6, 8, 3)]
    assert all(w.trigger == "count" for w in closed)
    assert (closed[0].start, closed[0].end) == (T0 + timedelta(seconds=3),
                                                T0 + timedelta(seconds=5))
    assert windows.open_windows == 1


def test_versions_and_models_never_share_a_window() -> None:
    windows = Windows("served", WindowConfig(size=2, reference_rows=0, min_rows=2))
    closed = feed(windows, [row(1, version=1), row(2, version=2), row(3, version=1),
                            row(4, model="n"), row(5, version=2), row(6, model="n")])
    assert [(w.window_id, w.first_id, w.last_id) for w in closed] == [
        ("m.served.v1.0", 1, 3), ("m.served.v2.1", 2, 5), ("n.served.v1.0", 4, 6)]


def test_time_closes_a_window_once_it_holds_enough_rows() -> None:
    windows = Windows("served", WindowConfig(size=100, seconds=60, reference_rows=0,
                                             min_rows=3))
    feed(windows, [row(1), row(2)], at=0)
    assert windows.tick(T0 + timedelta(seconds=61)).drain() == [], "too few rows yet"
    feed(windows, [row(3)], at=62)
    closed = windows.tick(T0 + timedelta(seconds=63)).drain()
    assert [(w.first_id, w.last_id, w.trigger) for w in closed] == [(1, 3, "time")]
    feed(windows, [row(4)], at=64)
    assert windows.tick(T0 + timedelta(seconds=100)).drain() == [], "the new one is young"


def test_labelled_windows_carry_their_performance() -> None:
    windows = Windows("labelled", WindowConfig(size=4, reference_rows=0, min_rows=2))
    outcomes = [Outcome("classification", "a", "a"), Outcome("classification", "a", "b"),
                Outcome("classification", "b", "b"), Outcome("classification", "b", "b")]
    closed = feed(windows, [row(i, outcome=o) for i, o in enumerate(outcomes, 1)])
    assert closed[0].performance["accuracy"] == 0.75
    assert closed[0].task == "classification"


def test_a_model_without_reference_rows_windows_at_once() -> None:
    windows = Windows("served", WindowConfig(size=2, reference_rows=5, min_rows=2))
    windows.set_reference_rows("m", 0)
    assert len(feed(windows, [row(1), row(2)])) == 1
    assert windows.last_window == "m.served.v1.0"


events = st.lists(
    st.tuples(st.sampled_from(["m", "n"]), st.integers(1, 2), st.integers(0, 50),
              st.booleans()),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(events=events, cuts=st.sets(st.integers(0, 60)))
def test_saving_and_restoring_state_anywhere_changes_nothing(
    events: list[tuple[str, int, int, bool]], cuts: set[int]
) -> None:
    config = WindowConfig(size=4, seconds=30, reference_rows=3, min_rows=2)

    def run(restore_at: set[int]) -> list[ClosedWindow]:
        windows = Windows("labelled", config)
        closed: list[ClosedWindow] = []
        now = T0
        for i, (model, version, dt, hit) in enumerate(events):
            if i in restore_at:
                state = json.loads(json.dumps(windows.state()))
                windows = Windows.from_state("labelled", config, state)
            now += timedelta(seconds=dt)
            outcome = Outcome("classification", 1, 1 if hit else 0)
            windows.update(row(i + 1, model, version, outcome), now).tick(now)
            closed += windows.drain()
        return closed

    assert run(cuts) == run(set())


def test_served_windows_sum_calibrated_rows_across_a_restart() -> None:
    rows = [WindowRow(i, "m", 1, T0, calibrated=Calibrated((0.2, 0.8) if i % 2 else (0.7, 0.3),
                                                           i % 2)) for i in range(4)]
    config = WindowConfig(size=4, reference_rows=0)
    straight = feed(Windows("served", config), rows)
    first = Windows("served", config)
    feed(first, rows[:2])
    resumed = Windows.from_state("served", config, json.loads(json.dumps(first.state())))
    (window,) = feed(resumed, rows[2:])
    assert window.expectation is not None
    assert window.expectation == straight[0].expectation
    assert window.expectation.metrics()["accuracy"] == (0.7 + 0.8) / 2
    (plain,) = feed(Windows("served", config), [row(i) for i in range(4)])
    assert plain.expectation is None, "rows without calibration: no estimate"
