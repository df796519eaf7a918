"""Drift: per-feature drift over windows, drifted share, detector alarms, estimated beside
realised performance, full Evidently reports.

A window's full report is Evidently's own HTML page, rendered from the snapshot the monitor
stored, and shown in an iframe that runs its scripts: it is trusted because only driftloop's
monitor writes ``monitor_drift_reports`` (Evidently renders the data values it contains as
text, through React).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import streamlit as st

from dashboard import charts, session
from dashboard.auth import User
from dashboard.context import Dashboard
from dashboard.drift_queries import summary_metrics
from dashboard.evidently_report import ReportRenderError, report_html
from dashboard.views.overview import estimate_metrics

KIND_NAMES = {"served": "Served traffic (features and predictions)",
              "labelled": "Labelled examples (with the label)"}
WINDOWS = 60


def _report(dash: Dashboard, model: str, kind: str | None) -> None:
    reports = dash.drift.reports(model, kind=kind, limit=WINDOWS)
    done = reports[reports["has_report"]].iloc[::-1]
    st.subheader("Open a window's report")
    if done.empty:
        st.caption("No window has an Evidently report yet.")
        return
    labels = {
        str(r.window_id): f"{r.window_end:%Y-%m-%d %H:%M:%S} · v{r.model_version} · "
        f"{r.rows} rows · {'drift' if r.drift_detected else 'stable'}"
        for r in done.itertuples()
    }
    window_id = st.selectbox("Window", list(labels), format_func=labels.__getitem__,
                             key=f"drift_window_{model}")
    if window_id is None or not st.toggle("Show the report", key=f"drift_show_{model}"):
        return
    full, summary = dash.drift.snapshot(str(window_id))
    if full:
        try:
            html = report_html(full)
        except ReportRenderError as exc:
            st.error(str(exc))
        else:
            st.download_button("Download the report (HTML)", html,
                               file_name=f"{model}-{window_id}.html", mime="text/html",
                               key="drift_download")
            # Evidently's page, made by our own monitor from our own data (see module doc).
            st.iframe(html, height=900)
            return
    if summary:
        st.caption("Only the report's results were kept for this window (no rendered widgets).")
        parsed = json.loads(summary)
        st.dataframe(summary_metrics(parsed), hide_index=True, key="drift_summary")
        with st.expander("Raw results"):
            st.json(parsed, expanded=False)


def _quality(quality: pd.DataFrame) -> None:
    st.markdown("**Data quality**: nulls per feature (● a feature's nulls, out-of-range "
                "numbers or unseen categories went past the margin)")
    if quality.empty:
        st.caption("No window's data quality has been measured yet.")
        return
    st.altair_chart(charts.missing_heatmap(quality), width="stretch")
    latest = quality[quality["window_id"] == quality.iloc[-1]["window_id"]]
    violated = latest[latest["violated"]]
    if not violated.empty:
        st.warning("In the latest window: " + "; ".join(
            f"{r.column} ({_quality_text(r)})" for r in violated.itertuples()))
    with st.expander("Data quality of the latest window"):
        st.dataframe(latest.drop(columns=["window_id", "kind", "window_end"]), hide_index=True,
                     key="drift_quality", column_config={
                         name: st.column_config.NumberColumn(format="percent")
                         for name in ("missing", "reference_missing", "out_of_range", "unseen")
                     })


def _quality_text(row: Any) -> str:
    parts = [f"{row.missing:.0%} null, {row.reference_missing:.0%} in the reference"]
    if pd.notna(row.out_of_range):
        parts.append(f"{row.out_of_range:.0%} out of range")
    if pd.notna(row.unseen):
        parts.append(f"{row.unseen:.0%} unseen categories")
    return ", ".join(parts)


def _model(dash: Dashboard, model: str, kind: str | None) -> None:
    threshold = dash.settings.monitor.drift_share_threshold

    @session.auto_refresh(dash)
    def body() -> None:
        status = dash.drift.status(model)
        reports = dash.drift.reports(model, kind=kind, limit=WINDOWS)
        alarms = dash.drift.alarms(model)
        finished = reports[reports["status"] == "done"]
        cols = st.columns(4)
        cols[0].metric("Latest verdict", status.status, help=status.detail or None)
        last_share = finished["drifted_share"].iloc[-1] if not finished.empty else None
        cols[1].metric("Drifted share", "n/a" if last_share is None else f"{last_share:.0%}")
        cols[2].metric("Drifted windows", f"{int(finished['drift_detected'].sum())}"
                       f" / {len(finished)}")
        cols[3].metric("Detector alarms", len(alarms))
        cells = dash.drift.cells(model, kind=kind, limit=WINDOWS)
        if cells.empty:
            st.info("No drift report has finished for this model yet.")
        else:
            st.markdown("**Per-feature drift** (colour: score against the method's threshold; "
                        "● drifted)")
            st.altair_chart(charts.drift_heatmap(cells), width="stretch")
            st.markdown("**Share of drifted features per window**")
            st.altair_chart(charts.drifted_share_chart(finished, threshold), width="stretch")
        _quality(dash.drift.quality(model, kind=kind, limit=WINDOWS))
        with st.expander(f"Windows ({len(reports)})"):
            st.dataframe(reports.iloc[::-1], hide_index=True, key="drift_windows")
        st.markdown("**Detector alarms**")
        if alarms.empty:
            st.caption("No River detector has fired.")
        else:
            st.dataframe(alarms, hide_index=True, key="drift_alarms")
        st.markdown("**Estimated performance** (from calibrated confidences, before labels) "
                    "beside realised performance (labelled windows)")
        estimate_metrics(st.columns(4), dash.drift.estimate(model))
        estimates = dash.drift.estimates(model, limit=WINDOWS)
        if not estimates.empty:
            with st.expander("Estimated and realised performance per window"):
                st.dataframe(estimates, hide_index=True, key="drift_estimates")
        scores = dash.drift.scores_table(model)
        if not scores.empty:
            with st.expander("Window performance"):
                st.dataframe(scores, hide_index=True, key="drift_scores")

    body()
    _report(dash, model, kind)


def render(dash: Dashboard, user: User | None) -> None:
    st.title("Drift")
    models = dash.all_models()
    if not models:
        st.info("No model yet.")
        return
    cols = st.columns([2, 3])
    model = str(cols[0].selectbox("Model", models, key="drift_model"))
    kinds = dash.drift.kinds(model)
    kind = None
    if len(kinds) > 1:
        kind = cols[1].radio("Windows of", kinds, horizontal=True, key="drift_kind",
                             format_func=lambda k: KIND_NAMES.get(k, k))
    elif kinds:
        kind = kinds[0]
        cols[1].caption(KIND_NAMES.get(kind, kind))
    _model(dash, model, kind)


if __name__ == "__main__":
    render(*session.page_context())
