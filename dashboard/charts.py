"""Altair charts of the loop: scores over time with promotions, drift heatmaps, drift shares.

Each function takes the DataFrames the query layer returns and gives back a chart (never
draws), so the charts can be checked without a browser.
"""

from __future__ import annotations

import math
from typing import Any, cast

import altair as alt
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

_EVENT_COLORS = alt.Scale(
    domain=["promoted", "rolled back", "first seen"], range=["#2e7d32", "#c62828", "#757575"]
)


def version_label(version: Any) -> str:
    """'v3' for a version number; 'unknown' when there is none."""
    if version is None or pd.isna(version) or int(version) < 0:
        return "unknown"
    return f"v{int(version)}"


def utc_text(times: pd.Series, fmt: str = "%Y-%m-%d %H:%M:%S") -> pd.Series:
    """Moments as UTC text on a 24-hour clock (what tooltips show)."""
    return pd.to_datetime(times, utc=True).dt.strftime(fmt)


def utc_axis(times: pd.Series, title: str = "time (UTC)") -> alt.Axis:
    """A time axis that reads in UTC on a 24-hour clock: hours and minutes within a day,
    with the date when the data spans more (Vega-Lite's default is a 12-hour clock with no
    am/pm, in the browser's time zone)."""
    stamps = pd.to_datetime(times, utc=True)
    span = stamps.max() - stamps.min() if not stamps.empty else pd.Timedelta(0)
    if span > pd.Timedelta(hours=20):
        fmt = "%m-%d %H:%M"
    elif span >= pd.Timedelta(minutes=10):
        fmt = "%H:%M"
    else:  # ticks a few seconds or minutes apart would all read the same minute
        fmt = "%H:%M:%S"
    return alt.Axis(title=title, format=fmt, labelOverlap=True)


#: Number axes without a span to size them: at most three significant digits (0.6, 0.85).
SCORE_FORMAT = ",.3~r"


def value_axis(values: pd.Series, title: str) -> tuple[alt.Scale, alt.Axis]:
    """A number axis whose labels differ and carry no digits beyond the data's own.

    A flat or nearly flat series (one window, or scores equal to the fourth digit) would get
    a zero-width domain and labels such as "0.600000" or "0.667 0.667 0.667"; the domain is
    widened to at least 2 % of the values' size, and the labels show as many decimals as a
    tenth of the domain needs, trailing zeros trimmed.
    """
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    if numbers.empty:
        return alt.Scale(zero=False), alt.Axis(title=title, format=SCORE_FORMAT)
    low, high = float(numbers.min()), float(numbers.max())
    least = max(abs(low), abs(high)) * 0.02 or 0.02
    if high - low < least:
        middle = (low + high) / 2
        low, high = middle - least / 2, middle + least / 2
    decimals = max(0, math.ceil(-math.log10((high - low) / 10)))
    return (alt.Scale(domain=[low, high], zero=False, nice=True),
            alt.Axis(title=title, format=f",.{decimals}~f"))


def score_chart(scores: pd.DataFrame, marks: pd.DataFrame | None = None) -> alt.LayerChart:
    """A model's windowed score per version over time, with promotions as vertical rules.

    ``scores`` has ``start``, ``model_version``, ``score``, ``metric``, ``examples``; ``marks``
    has ``at``, ``version``, ``event`` ('promoted', 'rolled back' or 'first seen'), ``label``.
    Versions are categories (one colour each) listed in numeric order: v1, v2, v10.
    """
    metric = str(scores["metric"].iloc[0]) if not scores.empty else "score"
    # Aware UTC moments reach the browser with their offset, whatever its time zone.
    data = scores.assign(start=pd.to_datetime(scores["start"], utc=True),
                         version=scores["model_version"].map(version_label),
                         time=utc_text(scores["start"]))
    order = sorted(set(data["version"]),
                   key=lambda v: (v == "unknown", int(v[1:]) if v != "unknown" else 0))
    times = pd.concat([scores["start"], marks["at"]] if marks is not None and not marks.empty
                      else [scores["start"]])
    x_scale, x_axis = alt.Scale(type="utc"), utc_axis(times)
    y_scale, y_axis = value_axis(data["score"], metric)
    line = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("start:T", axis=x_axis, scale=x_scale),
            y=alt.Y("score:Q", scale=y_scale, axis=y_axis),
            color=alt.Color("version:N", title="version", sort=order,
                            scale=alt.Scale(domain=order)),
            tooltip=[
                alt.Tooltip("time:N", title="time (UTC)"), "version:N",
                alt.Tooltip("score:Q", format=".3f"), "examples:Q",
            ],
        )
    )
    layers: list[alt.Chart] = [line]
    if marks is not None and not marks.empty:
        marked = marks.assign(at=pd.to_datetime(marks["at"], utc=True),
                              time=utc_text(marks["at"]))
        rules = (
            alt.Chart(marked)
            .mark_rule(strokeDash=[4, 3], strokeWidth=2)
            .encode(
                x=alt.X("at:T", axis=x_axis, scale=x_scale),
                color=alt.Color("event:N", scale=_EVENT_COLORS, title="event"),
                tooltip=[alt.Tooltip("time:N", title="time (UTC)"), "event:N", "label:N"],
            )
        )
        text = (
            alt.Chart(marked)
            .mark_text(align="left", dx=3, dy=-6, fontSize=11)
            .encode(x=alt.X("at:T", axis=x_axis, scale=x_scale), y=alt.value(8),
                    text="label:N")
        )
        layers += [rules, text]
    chart = alt.layer(*layers).resolve_scale(color="independent").properties(height=280)
    return cast(alt.LayerChart, chart)


def _feature_grid(rows: pd.DataFrame) -> alt.Chart:
    """Features down, windows across (in time order), for rows with ``window_end`` and
    ``column``; each row also gets ``end``, its window's end as UTC text for tooltips."""
    data = rows.assign(window=_window_labels(rows["window_end"]),
                       end=utc_text(rows["window_end"]))
    order = list(dict.fromkeys(data.sort_values("window_end")["window"]))
    return alt.Chart(data).encode(
        x=alt.X("window:O", title="window end (UTC)", sort=order,
                axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("column:N", title="feature"),
    )


def drift_heatmap(cells: pd.DataFrame) -> alt.LayerChart:
    """Per-feature drift over windows: one row per feature, one column per window.

    ``cells`` has ``window_end``, ``window_id``, ``column``, ``method``, ``score``,
    ``threshold``, ``drifted`` and ``strength`` (1 at the method's threshold, above is drift;
    see :func:`dashboard.drift_queries.strength`). Drifted cells carry a dot.
    """
    base = _feature_grid(cells)
    cells_layer = base.mark_rect(stroke="white", strokeWidth=0.5).encode(
        color=alt.Color(
            "strength:Q", title="drift (1 = threshold)", legend=alt.Legend(format=".2~f"),
            scale=alt.Scale(domain=[0, 1, 2], range=["#e8f5e9", "#fff59d", "#c62828"],
                            clamp=True),
        ),
        tooltip=[
            "column:N", "window_id:N", alt.Tooltip("end:N", title="window end (UTC)"),
            "method:N", alt.Tooltip("score:Q", format=".4g"),
            alt.Tooltip("threshold:Q", format=".3g"), alt.Tooltip("strength:Q", format=".2f"),
            "drifted:N",
        ],
    )
    flags = base.transform_filter(alt.datum.drifted).mark_text(text="●", fontSize=9,
                                                               color="black")
    # A step per feature: a fixed total height would be eaten by the window labels.
    return cast(alt.LayerChart, (cells_layer + flags).properties(height=alt.Step(30)))


def missing_heatmap(quality: pd.DataFrame) -> alt.LayerChart:
    """Share of nulls per feature over windows (columns of ``DriftQueries.quality``); features
    whose quality was violated in a window (nulls, out-of-range numbers or unseen categories
    past the margin) carry a dot."""
    base = _feature_grid(quality)
    cells = base.mark_rect(stroke="white", strokeWidth=0.5).encode(
        color=alt.Color("missing:Q", title="null share", legend=alt.Legend(format=".0%"),
                        scale=alt.Scale(domain=[0, 1], range=["#f5f5f5", "#1565c0"])),
        tooltip=[
            "column:N", "window_id:N", alt.Tooltip("end:N", title="window end (UTC)"),
            alt.Tooltip("missing:Q", title="null share", format=".1%"),
            alt.Tooltip("reference_missing:Q", title="null share in reference", format=".1%"),
            alt.Tooltip("out_of_range:Q", title="out of range", format=".1%"),
            alt.Tooltip("unseen:Q", title="unseen categories", format=".1%"),
            "violated:N",
        ],
    )
    flags = base.transform_filter(alt.datum.violated).mark_text(text="●", fontSize=9,
                                                                color="#c62828")
    return cast(alt.LayerChart, (cells + flags).properties(height=alt.Step(30)))


def drifted_share_chart(windows: pd.DataFrame, threshold: float) -> alt.LayerChart:
    """Share of drifted features per window (same columns as the heatmap), red when the
    window counted as drifted, with the threshold as a dashed rule."""
    data = windows.assign(window=_window_labels(windows["window_end"]),
                          end=utc_text(windows["window_end"]))
    bars = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("window:O", title="window end (UTC)", sort=list(data["window"]),
                    axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("drifted_share:Q", title="drifted share", scale=alt.Scale(domain=[0, 1]),
                    axis=alt.Axis(format=".0%")),
            color=alt.Color(
                "drift_detected:N", title="drift",
                scale=alt.Scale(domain=[False, True], range=["#90a4ae", "#d84315"]),
            ),
            tooltip=["window_id:N", alt.Tooltip("end:N", title="window end (UTC)"),
                     alt.Tooltip("drifted_share:Q", format=".0%"), "rows:Q"],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"threshold": [threshold]}))
        .mark_rule(strokeDash=[4, 3])
        .encode(y=alt.Y("threshold:Q", axis=alt.Axis(format=".0%")))
    )
    return cast(alt.LayerChart, alt.layer(bars, rule).properties(height=200))


def _window_labels(ends: pd.Series) -> pd.Series:
    return pd.to_datetime(ends, utc=True).dt.strftime("%m-%d %H:%M:%S")
