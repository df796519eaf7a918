"""Altair charts of the loop: scores over time with promotions, drift heatmaps, drift shares.

Each function takes the DataFrames the query layer returns and gives back a chart (never
draws), so the charts can be checked without a browser.
"""

from __future__ import annotations

from typing import cast

import altair as alt
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

_EVENT_COLORS = alt.Scale(
    domain=["promoted", "rolled back", "first seen"], range=["#2e7d32", "#c62828", "#757575"]
)


def score_chart(scores: pd.DataFrame, marks: pd.DataFrame | None = None) -> alt.LayerChart:
    """A model's windowed score per version over time, with promotions as vertical rules.

    ``scores`` has ``start``, ``model_version``, ``score``, ``metric``, ``examples``; ``marks``
    has ``at``, ``version``, ``event`` ('promoted', 'rolled back' or 'first seen'), ``label``.
    """
    metric = str(scores["metric"].iloc[0]) if not scores.empty else "score"
    data = scores.assign(version=scores["model_version"].astype(str))
    line = (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("start:T", title="time (UTC)"),
            y=alt.Y("score:Q", title=metric, scale=alt.Scale(zero=False)),
            color=alt.Color("version:N", title="version"),
            tooltip=[
                alt.Tooltip("start:T", format="%Y-%m-%d %H:%M"), "version:N",
                alt.Tooltip("score:Q", format=".3f"), "examples:Q",
            ],
        )
    )
    layers: list[alt.Chart] = [line]
    if marks is not None and not marks.empty:
        rules = (
            alt.Chart(marks)
            .mark_rule(strokeDash=[4, 3], strokeWidth=2)
            .encode(
                x="at:T",
                color=alt.Color("event:N", scale=_EVENT_COLORS, title="event"),
                tooltip=[alt.Tooltip("at:T", format="%Y-%m-%d %H:%M:%S"), "event:N", "label:N"],
            )
        )
        text = (
            alt.Chart(marks)
            .mark_text(align="left", dx=3, dy=-6, fontSize=11)
            .encode(x="at:T", y=alt.value(8), text="label:N")
        )
        layers += [rules, text]
    chart = alt.layer(*layers).resolve_scale(color="independent").properties(height=280)
    return cast(alt.LayerChart, chart)


def drift_heatmap(cells: pd.DataFrame) -> alt.LayerChart:
    """Per-feature drift over windows: one row per feature, one column per window.

    ``cells`` has ``window_end``, ``window_id``, ``column``, ``method``, ``score``,
    ``threshold``, ``drifted`` and ``strength`` (1 at the method's threshold, above is drift;
    see :func:`dashboard.drift_queries.strength`). Drifted cells carry a dot.
    """
    data = cells.assign(window=_window_labels(cells["window_end"]))
    order = list(dict.fromkeys(data.sort_values("window_end")["window"]))
    base = alt.Chart(data).encode(
        x=alt.X("window:O", title="window end (UTC)", sort=order,
                axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("column:N", title="feature"),
    )
    cells_layer = base.mark_rect(stroke="white", strokeWidth=0.5).encode(
        color=alt.Color(
            "strength:Q", title="drift (1 = threshold)",
            scale=alt.Scale(domain=[0, 1, 2], range=["#e8f5e9", "#fff59d", "#c62828"],
                            clamp=True),
        ),
        tooltip=[
            "column:N", "window_id:N", alt.Tooltip("window_end:T", format="%Y-%m-%d %H:%M:%S"),
            "method:N", alt.Tooltip("score:Q", format=".4g"),
            alt.Tooltip("threshold:Q", format=".3g"), alt.Tooltip("strength:Q", format=".2f"),
            "drifted:N",
        ],
    )
    flags = base.transform_filter(alt.datum.drifted).mark_text(text="●", fontSize=9,
                                                               color="black")
    # A step per feature: a fixed total height would be eaten by the window labels.
    return cast(alt.LayerChart, (cells_layer + flags).properties(height=alt.Step(30)))


def drifted_share_chart(windows: pd.DataFrame, threshold: float) -> alt.LayerChart:
    """Share of drifted features per window (same columns as the heatmap), red when the
    window counted as drifted, with the threshold as a dashed rule."""
    data = windows.assign(window=_window_labels(windows["window_end"]))
    bars = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("window:O", title="window end (UTC)", sort=list(data["window"]),
                    axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("drifted_share:Q", title="drifted share", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color(
                "drift_detected:N", title="drift",
                scale=alt.Scale(domain=[False, True], range=["#90a4ae", "#d84315"]),
            ),
            tooltip=["window_id:N", alt.Tooltip("window_end:T", format="%Y-%m-%d %H:%M:%S"),
                     alt.Tooltip("drifted_share:Q", format=".2f"), "rows:Q"],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"threshold": [threshold]}))
        .mark_rule(strokeDash=[4, 3])
        .encode(y="threshold:Q")
    )
    return cast(alt.LayerChart, alt.layer(bars, rule).properties(height=200))


def _window_labels(ends: pd.Series) -> pd.Series:
    return pd.to_datetime(ends, utc=True).dt.strftime("%m-%d %H:%M:%S")
