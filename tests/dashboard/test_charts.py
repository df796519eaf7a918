"""Charts and values as a person reads them: versions in order, UTC on a 24-hour clock,
numbers with a sensible number of digits, labels printed like predictions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from dashboard import charts
from dashboard.queries import PredictionFilter, StreamQueries
from dashboard.views.feedback import _display, show
from streams.events import ClassOutput, Feedback, Prediction
from streams.store import EventStore
from tests.dashboard.conftest import NOW


def _scores(versions: list[int], start=NOW, step=timedelta(minutes=5)) -> pd.DataFrame:
    rows = [{"start": start + i * step, "model_version": v, "score": 0.6 + 0.01 * i,
             "metric": "accuracy", "examples": 100} for i, v in enumerate(versions)]
    frame = pd.DataFrame(rows)
    frame["start"] = pd.to_datetime(frame["start"], utc=True)
    return frame


def _marks() -> pd.DataFrame:
    return pd.DataFrame([{"at": NOW, "version": 2, "event": "promoted", "label": "v2",
                          "actor": "retrain", "reason": ""}])


def encodings(spec: dict) -> Iterator[tuple[str, dict]]:
    """Every (channel, field definition) of a Vega-Lite spec, layers and facets included."""
    if isinstance(spec, dict):
        for channel, definition in (spec.get("encoding") or {}).items():
            for item in definition if isinstance(definition, list) else [definition]:
                yield channel, item
        for value in spec.values():
            if isinstance(value, dict | list):
                yield from encodings(value)  # type: ignore[arg-type]
    elif isinstance(spec, list):
        for item in spec:
            yield from encodings(item)


def readable_problems(spec: dict) -> list[str]:
    """What would print badly: an unformatted number axis or legend ('0.600000'), a time
    axis or tooltip in the browser's zone or on a 12-hour clock, a continuous version scale."""
    problems = []
    for channel, item in encodings(spec):
        kind = item.get("type")
        if channel in ("x", "y") and kind == "quantitative" and "format" not in (
                item.get("axis") or {}):
            problems.append(f"{channel} {item.get('field')}: number axis without a format")
        if channel in ("x", "y") and kind == "temporal":
            axis = item.get("axis") or {}
            if (item.get("scale") or {}).get("type") != "utc":
                problems.append(f"{channel} {item.get('field')}: time axis not in UTC")
            if "%H" not in str(axis.get("format", "")) or "%I" in str(axis.get("format", "")):
                problems.append(f"{channel} {item.get('field')}: not a 24-hour clock")
        if channel == "color" and kind == "quantitative" and "format" not in (
                item.get("legend") or {}):
            problems.append(f"color {item.get('field')}: number legend without a format")
        if channel == "color" and "version" in str(item.get("field")) and kind != "nominal":
            problems.append(f"color {item.get('field')}: versions on a {kind} scale")
        if channel == "tooltip" and kind == "temporal":
            problems.append(f"tooltip {item.get('field')}: time in the browser's zone")
    return problems


def test_version_legend_is_categorical_and_in_numeric_order():
    spec = charts.score_chart(_scores([10, 2, 11, 1]), _marks()).to_dict()
    (color,) = [d for c, d in encodings(spec) if c == "color" and d.get("field") == "version"]
    assert color["type"] == "nominal"
    assert color["scale"]["domain"] == ["v1", "v2", "v10", "v11"]
    assert color["sort"] == ["v1", "v2", "v10", "v11"]


def test_time_axes_read_utc_on_a_24_hour_clock():
    spec = charts.score_chart(_scores([1, 1, 2], step=timedelta(minutes=20)),
                              _marks()).to_dict()
    xs = [d for c, d in encodings(spec) if c == "x"]
    assert {d["scale"]["type"] for d in xs} == {"utc"}
    assert {d["axis"]["format"] for d in xs} == {"%H:%M"}
    assert xs[0]["axis"]["title"] == "time (UTC)"
    # Within a few minutes the seconds show, or every label would read the same minute.
    short = charts.score_chart(_scores([1, 2], step=timedelta(seconds=40))).to_dict()
    assert [d["axis"]["format"] for c, d in encodings(short) if c == "x"] == ["%H:%M:%S"]
    # Over more than a day the date shows too.
    days = charts.score_chart(_scores([1, 2], step=timedelta(days=2))).to_dict()
    assert [d["axis"]["format"] for c, d in encodings(days) if c == "x"] == ["%m-%d %H:%M"]
    # Tooltips carry the moment as UTC text, 16:39 and not 04:39.
    late = charts.score_chart(_scores([1], start=pd.Timestamp("2026-01-05 16:39", tz="UTC")))
    (rows,) = late.to_dict()["datasets"].values()
    assert [row["time"] for row in rows] == ["2026-01-05 16:39:00"]


def test_every_chart_formats_its_numbers_and_times():
    cells = pd.DataFrame([{"window_id": "w1", "kind": "served", "window_end": NOW,
                           "column": "tenure", "method": "ks", "score": 0.6,
                           "threshold": 0.05, "drifted": True, "strength": 1.2}])
    windows = pd.DataFrame([{"window_id": "w1", "window_end": NOW, "drifted_share": 0.6,
                             "drift_detected": True, "rows": 500}])
    from dashboard.views.models import metrics_chart

    long = pd.DataFrame([{"version": 1, "status": "champion", "metric": "accuracy",
                          "value": 0.6, "source": "holdout"}])
    for chart in (charts.score_chart(_scores([1, 2]), _marks()), charts.drift_heatmap(cells),
                  charts.drifted_share_chart(windows, 0.5), metrics_chart(long)):
        assert readable_problems(chart.to_dict()) == []


def test_the_checker_catches_what_people_noticed():
    """The problems of the issue, written as Altair used to draw them, are all found."""
    import altair as alt

    old = alt.Chart(_scores([1, 10])).mark_line().encode(
        x="start:T", y="score:Q", color="model_version:Q",
        tooltip=[alt.Tooltip("start:T", format="%Y-%m-%d %H:%M")])
    assert sorted(readable_problems(old.to_dict())) == [
        "color model_version: number legend without a format",
        "color model_version: versions on a quantitative scale",
        "tooltip start: time in the browser's zone",
        "x start: not a 24-hour clock",
        "x start: time axis not in UTC",
        "y score: number axis without a format",
    ]


@pytest.mark.parametrize("values", [
    [0.6], [0.6, 0.6], [0.6664, 0.6667, 0.6665], [0.76, 0.9], [0.0, 2.0], [1234.5, 1900.0],
    [0.0, 0.0],
])
def test_number_axis_labels_differ_and_carry_no_needless_digits(values):
    scale, axis = charts.value_axis(pd.Series(values), "accuracy")
    low, high = scale.domain  # type: ignore[misc]
    assert high > low
    decimals = int(axis.format.split(".")[1].split("~")[0])  # type: ignore[union-attr]
    assert decimals <= 4  # never "0.600000"
    ticks = [f"{low + (high - low) * i / 10:.{decimals}f}" for i in range(11)]
    assert len(set(ticks)) == 11, ticks


@pytest.mark.parametrize(("value", "text"), [
    (None, ""), (float("nan"), ""), (0, "0"), (1.0, "1"), (np.float64(0.0), "0"),
    (np.int64(3), "3"), (0.25, "0.25"), ("stay", "stay"), (True, "true"), (103.5, "103.5"),
])
def test_labels_and_predictions_print_alike(value, text):
    assert show(value) == text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_integer_labels_stay_integers_beside_missing_ones(database):
    predictions = [
        Prediction(event_id=f"p{i}", request_id=f"r{i}", model="m", model_version=1,
                   features={"x": float(i)},
                   output=ClassOutput(label=i % 2, probabilities={"0": 0.5, "1": 0.5}),
                   timestamp=NOW - timedelta(seconds=10 - i))
        for i in range(4)
    ]
    store = EventStore(database, clock=lambda: NOW)
    store.add_predictions(predictions)
    store.add_feedback([Feedback(event_id="f0", request_id="r0", model="m", label=1,
                                 timestamp=NOW)])
    frame = StreamQueries(database, clock=lambda: NOW).predictions(PredictionFilter(model="m"))
    shown = _display(frame).set_index("request_id")
    assert list(shown.loc[["r0", "r1", "r2", "r3"], "predicted"]) == ["0", "1", "0", "1"]
    assert list(shown.loc[["r0", "r1", "r2", "r3"], "label"]) == ["1", "", "", ""]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_predictions_per_second_divide_by_the_span_that_has_data(database):
    # 100 predictions a second for the last two minutes, in a 15-minute look-back window.
    predictions = [
        Prediction(event_id=f"p{i}", request_id=f"r{i}", model="m", model_version=1,
                   features={"x": 1.0}, output=ClassOutput(label="a", probabilities={"a": 1.0}),
                   timestamp=NOW - timedelta(seconds=120) + timedelta(milliseconds=10 * i))
        for i in range(12_000)
    ]
    EventStore(database, clock=lambda: NOW).add_predictions(predictions)
    traffic = StreamQueries(database, clock=lambda: NOW).traffic(
        "m", window=timedelta(minutes=15))
    assert traffic.predictions == 12_000
    assert traffic.span_s == pytest.approx(120.0)
    assert traffic.per_second == pytest.approx(100.0)  # not 12,000 / 900 = 13.3
