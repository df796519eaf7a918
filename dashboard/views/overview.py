"""Overview: per model, the champion, traffic, label coverage, drift, requests, estimated beside
realised accuracy, and the score over time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import streamlit as st

from dashboard import charts, session
from dashboard.auth import User
from dashboard.context import Dashboard
from dashboard.drift_queries import EstimateStatus

TRAFFIC_WINDOW = timedelta(minutes=15)


def ago(when: datetime | None, now: datetime) -> str:
    """'3 min ago' style age of a moment."""
    if when is None:
        return "never"
    seconds = max(0.0, (now - when).total_seconds())
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172_800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86_400:.0f} days ago"


def span_text(seconds: float) -> str:
    """'45 s', '2.5 min': how long a rate was measured over."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


def score_frame(dash: Dashboard, model: str, kind: str | None) -> pd.DataFrame:
    """The monitor's windowed scores when it has any, else accuracy/MSE of labelled examples."""
    for windows in (dash.drift.performance(model), dash.registry.window_scores(model)):
        if not windows.empty:
            return windows
    return dash.streams.score_over_time(
        model, kind="value" if kind == "value" else "class",
        since=dash.clock() - timedelta(days=7),
    )


def estimate_metrics(cols: Sequence[Any], estimate: EstimateStatus) -> None:
    """Estimated accuracy (from calibrated confidences, no labels) beside realised accuracy."""
    cols[0].metric("Estimated accuracy", estimate.text,
                   help="Expected from the champion's calibrated confidences on the newest "
                   "served window, before any label (CBPE); 'no estimate' when the champion "
                   "has no calibration")
    if estimate.band:
        cols[0].caption(estimate.band)
    cols[1].metric("Realised accuracy",
                   "n/a" if estimate.realised is None else f"{estimate.realised:.0%}",
                   help="Accuracy of the newest labelled window")


def marks_frame(dash: Dashboard, model: str) -> pd.DataFrame:
    """Promotions and rollbacks from the registry, else when each version first answered."""
    marks = dash.registry.marks(model)
    if not marks.empty:
        return marks
    seen = dash.streams.versions_seen(model)
    return pd.DataFrame(
        [{"at": v.first_seen, "version": v.version, "event": "first seen",
          "label": f"v{v.version}", "actor": "", "reason": ""} for v in seen],
        columns=list(marks.columns),
    )


def _model(dash: Dashboard, model: str) -> None:
    now = dash.clock()
    traffic = dash.streams.traffic(model, window=TRAFFIC_WINDOW)
    champion = dash.registry.champion(model)
    drift = dash.drift.status(model)
    requests = dash.drift.open_requests(model)
    st.subheader(model)
    cols = st.columns(5)
    if champion is not None:
        cols[0].metric("Champion", f"v{champion.version}",
                       help=f"since {champion.champion_since:%Y-%m-%d %H:%M} UTC"
                       if champion.champion_since else None)
        cols[0].caption(f"since {ago(champion.champion_since, now)}")
    else:
        cols[0].metric("Champion", "none")
    cols[1].metric("Predictions/s", f"{traffic.per_second:.2f}",
                   help=f"{traffic.predictions} predictions in the last "
                   f"{span_text(traffic.span_s)}: since the first one of the last "
                   f"{TRAFFIC_WINDOW.total_seconds() / 60:.0f} min")
    cols[1].caption(f"last {ago(traffic.last_prediction, now)}")
    coverage = traffic.label_coverage
    cols[2].metric("Label coverage", "n/a" if coverage is None else f"{coverage:.0%}",
                   help="Share of the recent predictions that received a label")
    cols[3].metric("Drift", drift.status, help=drift.detail or None)
    if drift.window_end is not None:
        cols[3].caption(f"window ending {ago(drift.window_end, now)}")
    cols[4].metric("Open retrain requests", len(requests))
    if not requests.empty:
        cols[4].caption(str(requests.iloc[0]["reasons"]))
    estimate_metrics(st.columns(5), dash.drift.estimate(model))
    scores = score_frame(dash, model, traffic.kind)
    if scores.empty:
        st.caption("No labelled examples yet: the score chart appears once feedback arrives.")
    else:
        st.altair_chart(charts.score_chart(scores, marks_frame(dash, model)), width="stretch")


def render(dash: Dashboard, user: User | None) -> None:
    st.title("Overview")

    @session.auto_refresh(dash)
    def body() -> None:
        models = dash.all_models()
        if not models:
            st.info("No model has predictions or versions yet.")
            return
        for model in models:
            with st.container(border=True):
                _model(dash, model)
        st.caption(f"Updated {dash.clock():%Y-%m-%d %H:%M:%S} UTC")

    body()


if __name__ == "__main__":
    render(*session.page_context())
