"""Models: versions side by side, lineage and decisions; promote and roll back (signed in)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

import altair as alt
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import streamlit as st

from dashboard import charts, session
from dashboard.actions import Outcome
from dashboard.auth import User
from dashboard.context import Dashboard
from retrain.registry import VersionInfo
from streams.errors import DriftloopError
from streams.lineage import Lineage
from streams.statuses import VersionStatus

_RESULT = "models_result"
_STATUS_COLOR = {
    VersionStatus.CHAMPION: "#2e7d32", VersionStatus.CANDIDATE: "#1565c0",
    VersionStatus.ARCHIVED: "#9e9e9e", VersionStatus.REJECTED: "#ef6c00",
    VersionStatus.FAILED: "#c62828", VersionStatus.REFUSED: "#6a1b9a",
}
STATUS_COLORS = alt.Scale(domain=[str(s) for s in _STATUS_COLOR],
                          range=list(_STATUS_COLOR.values()))


def metrics_chart(long: pd.DataFrame) -> alt.FacetChart:
    """One small bar chart per metric, a bar per version coloured by its status."""
    bars = (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("version:O", title="version"),
            y=alt.Y("value:Q", title=None, axis=alt.Axis(format=charts.SCORE_FORMAT)),
            color=alt.Color("status:N", scale=STATUS_COLORS),
            tooltip=["version:O", "status:N", "metric:N", alt.Tooltip("value:Q", format=".4f"),
                     "source:N"],
        )
        .properties(width=160, height=160)
    )
    chart = bars.facet(column=alt.Column("metric:N", title=None)).resolve_scale(y="independent")
    return cast(alt.FacetChart, chart)


def _ranges(lineage: Lineage) -> pd.DataFrame:
    data = lineage.data
    parts = {} if data is None else {
        "train": data.train, "validation": data.validation, "holdout": data.holdout}
    rows = [{"part": part, "rows": split.count, "from": split.from_, "to": split.to,
             "reviewer labels": split.reviewer_labels}
            for part, split in parts.items() if split is not None]
    return pd.DataFrame(rows, columns=["part", "rows", "from", "to", "reviewer labels"])


def _decision(evaluation: Mapping[str, Any]) -> pd.DataFrame:
    challenger = evaluation.get("challenger") or {}
    champion = evaluation.get("champion") or {}
    names = sorted({*challenger, *champion})
    return pd.DataFrame(
        {"metric": names,
         "this version": [challenger.get(n) for n in names],
         "champion then": [champion.get(n) for n in names]}
    )


def _lineage(info: VersionInfo) -> None:
    trigger = info.lineage.trigger
    with st.expander(f"v{info.version} · {info.status} · "
                     f"{info.created_at:%Y-%m-%d %H:%M} UTC"):
        cols = st.columns(3)
        cols[0].markdown(f"**Parent:** {f'v{info.parent_version}' if info.parent_version else '—'}")
        if trigger is not None:
            reasons = ", ".join(trigger.reasons) or "—"
            cols[1].markdown(f"**Trigger:** {trigger.kind} ({reasons})")
        cols[2].markdown(f"**Run:** {info.run_id if info.run_id is not None else '—'}")
        ranges = _ranges(info.lineage)
        if not ranges.empty:
            st.markdown("**Data it learned from and was judged on**")
            st.dataframe(ranges, hide_index=True)
        if info.evaluation:
            verdict = "promote" if info.evaluation.get("promote") else "keep the champion"
            st.markdown(f"**Decision:** {verdict} — {info.evaluation.get('reason', '')}")
            st.dataframe(_decision(info.evaluation), hide_index=True)
            problems = info.evaluation.get("problems") or []
            if problems:
                st.warning("; ".join(str(p) for p in problems))
        if info.note:
            st.caption(info.note)
        st.caption(f"artifact {info.artifact_uri or '—'} · sha256 {info.sha256 or '—'} · "
                   f"trainer {info.trainer} · code {info.code_version}")
        with st.popover("Hyperparameters"):
            st.code(json.dumps(dict(info.hyperparameters), indent=2, default=str), "json")


def _show_result() -> None:
    held = st.session_state.pop(_RESULT, None)
    if held is None:
        return
    kind, message = held
    (st.success if kind == "success" else st.error)(message)


def _done(outcome: Outcome, verb: str) -> None:
    event = outcome.event
    where = ("sent to the model-updates topic" if outcome.published
             else "recorded; the retrain process will publish it")
    st.session_state[_RESULT] = ("success", f"{verb} {event.model} v{event.version}: {where}.")


def form_key(kind: str, model: str, versions: list[VersionInfo]) -> str:
    """Widget keys that change with the champion: a change of champion empties the forms."""
    champion = next((v.version for v in versions if v.status == VersionStatus.CHAMPION), 0)
    return f"{kind}_{model}_{champion}"


def _promote_form(dash: Dashboard, user: User, model: str, versions: list[VersionInfo]) -> None:
    key = form_key("promote", model, versions)
    eligible = [v.version for v in reversed(versions)
                if v.status not in (VersionStatus.CHAMPION, VersionStatus.FAILED,
                                     VersionStatus.REFUSED)
                and v.artifact_uri and v.sha256]
    st.markdown("**Promote a version**")
    if not eligible:
        st.caption("No version with an artifact is waiting.")
        return
    version = st.selectbox("Version to promote", eligible, key=f"{key}_version",
                           format_func=lambda v: f"v{v}")
    reason = st.text_area("Reason (required)", key=f"{key}_reason")
    confirm = st.checkbox(f"Serving processes will swap {model} to this version",
                          key=f"{key}_confirm")
    if st.button("Promote", key=key, type="primary"):
        if not reason.strip() or not confirm:
            st.session_state[_RESULT] = ("error", "Give a reason and tick the confirmation.")
        else:
            try:
                _done(dash.actions.promote(user, model, int(version), reason), "Promoted")
            except DriftloopError as exc:
                st.session_state[_RESULT] = ("error", f"Not promoted: {exc}")
        st.rerun()


def _rollback_form(dash: Dashboard, user: User, model: str, versions: list[VersionInfo]) -> None:
    key = form_key("rollback", model, versions)
    champion = next((v for v in versions if v.status == VersionStatus.CHAMPION), None)
    st.markdown("**Roll back**")
    if champion is None:
        st.caption("There is no champion to roll back.")
        return
    former = sorted((v for v in versions if v.champion_since is not None
                     and v.status not in (VersionStatus.CHAMPION, VersionStatus.REFUSED)
                     and v.artifact_uri),
                    key=lambda v: v.champion_since or v.created_at, reverse=True)
    if not former:
        st.caption(f"v{champion.version} has no former champion to go back to.")
        return
    target = st.selectbox(f"Replace v{champion.version} with", [v.version for v in former],
                          key=f"{key}_version", format_func=lambda v: f"v{v}")
    reason = st.text_area("Reason (required)", key=f"{key}_reason")
    confirm = st.checkbox(f"v{champion.version} will be rejected and v{target} served",
                          key=f"{key}_confirm")
    if st.button("Roll back", key=key):
        if not reason.strip() or not confirm:
            st.session_state[_RESULT] = ("error", "Give a reason and tick the confirmation.")
        else:
            try:
                _done(dash.actions.rollback(user, model, reason, to_version=int(target)),
                      "Rolled back to")
            except DriftloopError as exc:
                st.session_state[_RESULT] = ("error", f"Not rolled back: {exc}")
        st.rerun()


def _summary(dash: Dashboard, model: str) -> None:
    @session.auto_refresh(dash)
    def body() -> None:
        versions = dash.registry.versions(model)
        champion = next((v for v in versions if v.status == VersionStatus.CHAMPION), None)
        cols = st.columns(3)
        cols[0].metric("Champion", f"v{champion.version}" if champion else "none")
        cols[1].metric("Versions", len(versions))
        cols[2].metric("Waiting", sum(v.status == VersionStatus.CANDIDATE for v in versions))
        long = dash.registry.metrics_long(model)
        if not long.empty:
            st.altair_chart(metrics_chart(long))
        st.dataframe(dash.registry.versions_frame(model), hide_index=True, key="versions_table")

    body()


def _audit(dash: Dashboard, model: str) -> None:
    audit = dash.registry.audit(model, limit=50)
    if not audit.empty:
        st.markdown("#### Promotions and rollbacks")
        st.dataframe(audit, hide_index=True)
    entries = dash.audit.recent(limit=200, model=model)
    with st.expander(f"Dashboard audit log ({len(entries)})"):
        st.dataframe(
            pd.DataFrame(
                [{"at": e.at, "actor": e.actor, "action": e.action, "target": e.target,
                  "reason": e.reason, "detail": json.dumps(dict(e.detail), default=str)}
                 for e in entries],
                columns=["at", "actor", "action", "target", "reason", "detail"],
            ),
            hide_index=True, key="dashboard_audit",
        )


def _model(dash: Dashboard, user: User | None, model: str) -> None:
    versions = dash.registry.versions(model)
    if not versions:
        st.info(f"{model} has no registered versions yet.")
        return
    _summary(dash, model)
    st.markdown("#### Lineage and decisions")
    for info in reversed(versions):
        _lineage(info)
    st.markdown("#### Change the champion")
    if user is None or not dash.access.can_act(user):
        st.info("Sign in to promote or roll back.")
    else:
        left, right = st.columns(2)
        with left:
            _promote_form(dash, user, model, versions)
        with right:
            _rollback_form(dash, user, model, versions)
    _audit(dash, model)


def render(dash: Dashboard, user: User | None) -> None:
    st.title("Models")
    _show_result()
    models = dash.all_models()
    if not models:
        st.info("No model is registered yet.")
        return
    model = st.selectbox("Model", models, key="models_model")
    _model(dash, user, str(model))


if __name__ == "__main__":
    render(*session.page_context())
