"""Jobs: retraining schedules, running and past runs (status, device, duration, metrics, log),
the challenger-pool studies of runs that searched, and retrain requests."""

from __future__ import annotations

import streamlit as st

from dashboard import session
from dashboard.auth import User
from dashboard.context import Dashboard
from streams.statuses import RunStatus

ALL_MODELS = "All models"
_RUNS = {"duration_s": st.column_config.NumberColumn("duration (s)", format="%.1f")}
_STUDIES = {"run_id": st.column_config.NumberColumn("run", format="%d"),
            "best_value": st.column_config.NumberColumn("best (validation)", format="%.4g"),
            "best_trial": st.column_config.NumberColumn("best trial", format="%d"),
            "best_params": st.column_config.TextColumn("best hyperparameters")}


def render(dash: Dashboard, user: User | None) -> None:
    st.title("Jobs")
    choice = st.selectbox("Model", [ALL_MODELS, *dash.all_models()], key="jobs_model")
    model = None if choice == ALL_MODELS else str(choice)

    @session.auto_refresh(dash)
    def body() -> None:
        st.subheader("Schedules")
        schedules = dash.jobs.schedules(dash.settings)
        if model is not None:
            schedules = schedules[(schedules["model"] == model) | schedules["model"].isna()]
        if schedules.empty:
            st.caption("No retraining is scheduled (retrain.schedule_interval_s, "
                       "retrain.schedule_cron or retrain.schedules).")
        else:
            st.dataframe(schedules, hide_index=True, column_config={
                "next_run": st.column_config.DatetimeColumn("next run (UTC)",
                                                            format="YYYY-MM-DD HH:mm:ss")})
        runs = dash.jobs.runs(model, limit=200)
        running = runs[runs["status"] == RunStatus.RUNNING]
        st.subheader(f"Running ({len(running)})")
        if running.empty:
            st.caption("Nothing is training right now.")
        else:
            st.dataframe(running, hide_index=True, key="running_runs", column_config=_RUNS)
        st.subheader("Runs")
        if runs.empty:
            st.caption("No run yet.")
        else:
            st.dataframe(runs, hide_index=True, key="all_runs", column_config=_RUNS)
        studies = dash.jobs.studies(model, limit=100)
        st.subheader("Challenger searches")
        if studies.empty:
            st.caption("No run has searched a pool of candidates (retrain.search.trials is 1, "
                       "or no run trained from scratch since it was raised).")
        else:
            st.dataframe(studies, hide_index=True, key="studies", column_config=_STUDIES)
        requests = dash.jobs.requests(model, limit=100)
        st.subheader("Retrain requests")
        if requests.empty:
            st.caption("The monitor has not asked for retraining.")
        else:
            st.dataframe(requests, hide_index=True, key="requests")
        st.caption(f"Updated {dash.clock():%Y-%m-%d %H:%M:%S} UTC")

    body()
    runs = dash.jobs.runs(model, limit=200)
    if not runs.empty:
        st.subheader("Run log")
        labels = {
            int(r.id): f"run {r.id} · {r.model} · {r.status} · {r.started_at:%Y-%m-%d %H:%M}"
            for r in runs.itertuples()
        }
        run_id: int | None = st.selectbox("Run", list(labels), key="jobs_run",
                                          format_func=labels.__getitem__)
        if run_id is None:
            return
        run = dash.jobs.run(run_id)
        if run.error:
            st.error(run.error)
        st.code(run.log or "(empty log)", language=None)


if __name__ == "__main__":
    render(*session.page_context())
