"""Feedback: browse recent predictions, correct labels in place, in a form or from a CSV."""

from __future__ import annotations

import json
import math
import numbers
from datetime import timedelta
from typing import Any

import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import streamlit as st

from dashboard import session
from dashboard.auth import AccessDeniedError, User
from dashboard.context import Dashboard
from dashboard.corrections import Problem, Sent, check, parse_csv
from dashboard.queries import LABEL_STATES, PredictionFilter
from streams.errors import DriftloopError

ALL_MODELS = "All models"
PERIODS: dict[str, timedelta | None] = {
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "All time": None,
}
LABEL_STATE_NAMES = {
    "all": "All", "unlabelled": "No label yet", "labelled": "Labelled",
    "disagree": "Label disagrees with the prediction", "agree": "Label agrees",
}
_SNAPSHOT = "feedback_snapshot"
_EDITOR = "feedback_editor"
_RESULT = "feedback_result"
_RESET = "feedback_reset"


def show(value: Any) -> str:
    """A label or prediction as people read it: text as it is, a whole number without '.0'
    (so a label 1.0 reads like the prediction 1), and '' for none (None or NaN)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return ""
        if number.is_integer() and abs(number) < 1e15:
            return str(int(number))
        return repr(number)
    return json.dumps(value, default=str)


def _filters(dash: Dashboard) -> tuple[PredictionFilter, int]:
    models = dash.models
    cols = st.columns([2, 2, 2, 2, 3, 1])
    # One model by default: its newest predictions come straight from the (model, time) index.
    choice = cols[0].selectbox("Model", [ALL_MODELS, *models], key="fb_model",
                               index=1 if models else 0)
    model = None if choice == ALL_MODELS else str(choice)
    versions = dash.streams.versions(model) if model else []
    picked = cols[1].multiselect("Versions", versions, key="fb_versions", disabled=not model)
    period = cols[2].selectbox("Time", list(PERIODS), index=1, key="fb_period")
    state = cols[3].selectbox(
        "Label", LABEL_STATES, format_func=LABEL_STATE_NAMES.__getitem__, key="fb_label_state"
    )
    low, high = cols[4].slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.05, key="fb_confidence")
    limit = int(cols[5].number_input("Rows", 10, 5000, 200, 10, key="fb_limit"))
    span = PERIODS[str(period)]
    where = PredictionFilter(
        model=model,
        versions=tuple(int(v) for v in picked),
        min_confidence=low if low > 0 else None,
        max_confidence=high if high < 1 else None,
        since=dash.clock() - span if span is not None else None,
        label_state=state,
    )
    return where, limit


def _snapshot(dash: Dashboard, where: PredictionFilter, limit: int) -> pd.DataFrame:
    """The table being edited; kept still until the filters change or Reload is pressed."""
    key = (where.model, where.versions, where.min_confidence, where.max_confidence,
           str(st.session_state.get("fb_period")), where.label_state, limit)
    held = st.session_state.get(_SNAPSHOT)
    if held is None or held[0] != key:
        frame = dash.streams.predictions(where, limit=limit)
        st.session_state[_SNAPSHOT] = (key, frame)
        st.session_state.pop(_EDITOR, None)
        return frame
    return held[1]


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    view = pd.DataFrame(
        {
            "time": frame["timestamp"],
            "model": frame["model"],
            "version": frame["model_version"],
            "request_id": frame["request_id"],
            "predicted": frame["predicted"].map(show),
            "confidence": frame["confidence"],
            "label": frame["label"].map(show),
            "source": frame["label_source"].fillna(""),
            "reviewer": frame["reviewer"].fillna(""),
            "disagrees": frame["disagrees"],
            "features": frame["features"].map(lambda f: json.dumps(f, sort_keys=True)),
        }
    )
    return view


_COLUMNS = {
    "time": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "confidence": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0,
                                                  format="%.2f"),
    "disagrees": st.column_config.CheckboxColumn("disagrees"),
    "correction": st.column_config.TextColumn("correction ✎", help="Type the right label"),
}


def _send(dash: Dashboard, user: User | None, rows: list[dict[str, Any]], frame: pd.DataFrame,
          via: str) -> None:
    predicted = {(r.model, r.request_id): r.predicted for r in frame.itertuples()}
    current = {(r.model, r.request_id): r.label for r in frame.itertuples()}
    missing = [r for r in rows if (r["model"], r["request_id"]) not in predicted]
    for model in {r["model"] for r in missing}:
        ids = [r["request_id"] for r in missing if r["model"] == model]
        for request_id, (value, label) in dash.streams.current(model, ids).items():
            predicted[(model, request_id)] = value
            current[(model, request_id)] = label
    parsed = check(rows, predicted, current)
    try:
        sent = dash.corrections().submit(user, parsed.corrections, via=via)
    except AccessDeniedError as exc:
        st.session_state[_RESULT] = ("error", str(exc), parsed.problems)
        return
    except DriftloopError as exc:
        st.session_state[_RESULT] = ("error", f"Not sent: {exc}", parsed.problems)
        return
    st.session_state[_RESULT] = ("success", _summary(sent), parsed.problems)
    st.session_state[_RESET] = True


def _summary(sent: Sent) -> str:
    n = len(sent.corrections)
    if n == 0:
        return "Nothing to send."
    return (f"Sent {n} correction{'s' if n != 1 else ''} to the feedback topic; they appear "
            "in the table once the monitor has stored them.")


def _result() -> None:
    held = st.session_state.pop(_RESULT, None)
    if held is None:
        return
    kind, message, problems = held
    (st.success if kind == "success" else st.error)(message)
    _problems(problems)


def _problems(problems: tuple[Problem, ...], key: str = "problems") -> None:
    if problems:
        st.warning(f"{len(problems)} row(s) not sent:")
        st.dataframe(pd.DataFrame([p.__dict__ for p in problems]), hide_index=True, key=key)


def _editable_table(dash: Dashboard, user: User, frame: pd.DataFrame) -> None:
    view = _display(frame).assign(correction="")
    order = ["time", "model", "version", "request_id", "predicted", "confidence", "label",
             "correction", "source", "reviewer", "disagrees", "features"]
    edited = st.data_editor(
        view, key=_EDITOR, hide_index=True, width="stretch", column_config=_COLUMNS,
        disabled=[c for c in view.columns if c != "correction"], column_order=order,
    )
    changed = edited[edited["correction"].fillna("").astype(str).str.strip() != ""]
    label = f"Send {len(changed)} correction{'s' if len(changed) != 1 else ''}"
    if st.button(label, key="send_table", type="primary", disabled=changed.empty):
        rows = [{"model": r.model, "request_id": r.request_id, "label": r.correction}
                for r in changed.itertuples()]
        _send(dash, user, rows, frame, "table")
        st.rerun()


def _single_form(dash: Dashboard, user: User, frame: pd.DataFrame) -> None:
    with st.expander("Correct one prediction", expanded=True):
        choices = [f"{r.model}/{r.request_id}" for r in frame.itertuples()]
        with st.form("single_correction", clear_on_submit=True):
            target = st.selectbox("Prediction (model/request id)", choices, key="single_target",
                                  index=None, placeholder="Choose or type a request id")
            label = st.text_input("Right label", key="single_label")
            submitted = st.form_submit_button("Send correction", type="primary")
        if submitted:
            if not target or not label.strip():
                st.session_state[_RESULT] = ("error", "Choose a prediction and type a label.", ())
            else:
                model, request_id = str(target).split("/", 1)
                _send(dash, user, [{"model": model, "request_id": request_id, "label": label}],
                      frame, "form")
            st.rerun()


def _csv_upload(dash: Dashboard, user: User, frame: pd.DataFrame, model: str | None) -> None:
    with st.expander("Upload a CSV of corrections"):
        st.caption("Columns: request_id, label and (unless a model is chosen above) model.")
        generation = int(st.session_state.get("csv_generation", 0))
        upload = st.file_uploader("Corrections CSV", type=["csv"], key=f"csv_{generation}")
        if upload is None:
            return
        rows, problems = parse_csv(upload.getvalue(), default_model=model)
        st.write(f"{len(rows)} row(s) read from {upload.name}.")
        _problems(tuple(problems), key="csv_problems")
        if rows and st.button(f"Send {len(rows)} correction(s) from the CSV", key="send_csv"):
            _send(dash, user, rows, frame, "csv")
            st.session_state["csv_generation"] = generation + 1
            st.rerun()


def _pending(dash: Dashboard, user: User) -> None:
    @session.auto_refresh(dash)
    def body() -> None:
        entries = dash.audit.recent(limit=50, actor=user.name, actions=("correct_label",))
        if not entries:
            return
        stored = dash.streams.stored_feedback([str(e.detail.get("event_id")) for e in entries])
        st.subheader("Your recent corrections")
        st.dataframe(
            pd.DataFrame(
                {
                    "sent": [e.at for e in entries],
                    "model": [e.model for e in entries],
                    "request_id": [e.target for e in entries],
                    "label": [show(e.detail.get("label")) for e in entries],
                    "replaces": [show(e.detail.get("previous")) for e in entries],
                    "status": ["stored" if e.detail.get("event_id") in stored
                               else "waiting for the monitor" for e in entries],
                }
            ),
            hide_index=True, key="pending_corrections",
        )

    body()


def render(dash: Dashboard, user: User | None) -> None:
    st.title("Feedback")
    if st.session_state.pop(_RESET, False):
        st.session_state.pop(_SNAPSHOT, None)
        st.session_state.pop(_EDITOR, None)
    where, limit = _filters(dash)
    if st.button("Reload", key="fb_reload"):
        st.session_state.pop(_SNAPSHOT, None)
    frame = _snapshot(dash, where, limit)
    _result()
    st.caption(f"{len(frame)} prediction(s), newest first.")
    can_act = dash.access.can_act(user)
    if user is None or not can_act:
        st.info("Sign in to correct labels.")
        st.dataframe(_display(frame), key="predictions", hide_index=True, column_config=_COLUMNS)
        return
    _editable_table(dash, user, frame)
    _single_form(dash, user, frame)
    _csv_upload(dash, user, frame, where.model)
    _pending(dash, user)


if __name__ == "__main__":
    render(*session.page_context())
