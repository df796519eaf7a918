"""Overview, Drift, Models and Jobs under AppTest on a seeded database; promote and roll back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from dashboard.audit import AuditLog
from dashboard.auth import hash_password
from retrain.registry import Registry
from streams.codec import Decoder
from streams.events import ModelUpdate, SwapFailed
from streams.settings import (
    DashboardSettings,
    DatabaseSettings,
    MonitorSettings,
    RetrainSettings,
    Settings,
)
from streams.topics import Topic
from tests.dashboard import apptest
from tests.dashboard.seed import (
    CHURN,
    DRIFT_FROM,
    ESTIMATE_NOW,
    MONITOR_WINDOWS,
    PRICE,
    QUALITY_FROM,
    seed_monitor,
    seed_retraining,
    seed_schedules,
    seed_streams,
)
from tests.retrain.helpers import tamper
from tests.serving.artifacts import make_artifact
from tests.streams.kafka_helpers import read_all

ALICE = ("alice", "wonderland")


@pytest.fixture
def seeded_all(database, live_now):
    seed_streams(database, live_now)
    seed_retraining(database, live_now)
    seed_monitor(database, live_now)
    seed_schedules(database, {CHURN: 3600})
    return database


def _settings(base: Settings, database, *, open_viewing: bool = True) -> Settings:
    users = {ALICE[0]: SecretStr(hash_password(ALICE[1], iterations=1_000))}
    return base.model_copy(update={
        "database": DatabaseSettings(url=SecretStr(database.url)),
        "dashboard": DashboardSettings(users=users, refresh_s=0, open_viewing=open_viewing),
        "retrain": RetrainSettings(schedules={CHURN: 3600}),
        "monitor": MonitorSettings(drift_share_threshold=0.3),
    })


@pytest.fixture
def offline(tmp_path, seeded_all, database):
    return _settings(Settings(home=tmp_path / "home"), database)


@pytest.fixture
def online(memory_broker, deployment_factory, seeded_all, database):
    dep = deployment_factory(memory_broker, partitions=1)
    return dep, _settings(dep.settings, database)


def test_every_page_renders(monkeypatch, offline):
    at = apptest.start(monkeypatch, offline)
    for page in apptest.PAGES:
        apptest.open_page(at, page)
        assert [t.value for t in at.title] == [page.capitalize()]
        assert not at.error


def test_no_chart_on_any_page_prints_raw_numbers_or_local_times(monkeypatch, offline):
    from tests.dashboard.test_charts import readable_problems

    at = apptest.start(monkeypatch, offline)
    seen = 0
    for page in apptest.PAGES:
        apptest.open_page(at, page)
        for spec, _data in apptest.charts(at):
            seen += 1
            assert readable_problems(spec) == [], page
    assert seen >= 4  # overview (2 models), drift (2), models (1)


def test_overview_shows_each_model(monkeypatch, offline):
    at = apptest.start(monkeypatch, offline)
    assert [s.value for s in at.subheader] == [CHURN, PRICE]
    shown = apptest.metrics(at)
    churn, price = shown[:7], shown[7:]
    assert churn[0] == ("Champion", "v2")
    # 15 predictions in the last 15 minutes, 5 of them labelled.
    assert churn[1] == ("Predictions/s", "0.02")
    assert churn[2] == ("Label coverage", "33%")
    assert churn[4] == ("Open retrain requests", "1")
    assert price[0] == ("Champion", "none")
    assert price[2] == ("Label coverage", "100%")
    assert price[4] == ("Open retrain requests", "0")
    assert churn[3] == ("Drift", "drift")
    assert price[3] == ("Drift", "no report")
    # Estimated accuracy (calibrated confidences, no labels) beside the realised one; price's
    # champion has no calibration, so no number is made up for it.
    realised = f"{0.9 - 0.02 * (MONITOR_WINDOWS - 1):.0%}"
    assert churn[5:] == [("Estimated accuracy", f"{ESTIMATE_NOW:.0%}"),
                         ("Realised accuracy", realised)]
    assert price[5:] == [("Estimated accuracy", "no estimate"), ("Realised accuracy", "n/a")]
    assert "band 84%–96% · below the band" in [c.value for c in at.caption]
    (churn_chart, churn_data), (price_chart, price_data) = apptest.charts(at)
    scores, marks = churn_data
    # The monitor's windowed accuracy, with both promotions marked.
    assert list(scores["score"].round(2)) == [round(0.9 - 0.02 * w, 2)
                                              for w in range(MONITOR_WINDOWS)]
    assert set(scores["version"]) == {"v2"}
    assert list(marks["label"]) == ["v1", "v2"]
    assert set(marks["event"]) == {"promoted"}
    # No monitor or registry history for price: its MSE comes from labelled examples.
    assert set(price_data[0]["metric"]) == {"mse"}


def test_drift_shows_features_over_windows_alarms_and_a_full_report(monkeypatch, offline):
    at = apptest.start(monkeypatch, offline, page="drift")
    at.selectbox(key="drift_model").select(CHURN).run()
    assert apptest.metrics(at) == [
        ("Latest verdict", "drift"), ("Drifted share", "33%"),
        ("Drifted windows", f"{MONITOR_WINDOWS - DRIFT_FROM} / {MONITOR_WINDOWS}"),
        ("Detector alarms", "1"),
        ("Estimated accuracy", f"{ESTIMATE_NOW:.0%}"),
        ("Realised accuracy", f"{0.9 - 0.02 * (MONITOR_WINDOWS - 1):.0%}"),
    ]
    estimates = apptest.table(at, "accuracy_lower")
    assert list(estimates["performance"][:3]) == ["estimated", "estimated", "realised"]
    assert estimates["accuracy"].iloc[0] == ESTIMATE_NOW
    (heatmap, (cells,)), (shares, (windows, _rule)), (nulls, (quality,)) = apptest.charts(at)
    assert len(cells) == 3 * MONITOR_WINDOWS
    drifted = cells[cells["drifted"]]
    assert set(drifted["column"]) == {"tenure"}
    assert len(drifted) == MONITOR_WINDOWS - DRIFT_FROM
    assert (cells[cells["drifted"]]["strength"] > 1).all()
    assert (cells[~cells["drifted"]]["strength"] < 1).all()
    assert list(windows["drift_detected"]) == [w >= DRIFT_FROM for w in range(MONITOR_WINDOWS)]
    # Data quality: the windows that measured it, plan's nulls flagged in the latest.
    assert len(quality) == 2 * (MONITOR_WINDOWS - QUALITY_FROM)
    assert quality[quality["violated"]][["column", "missing"]].values.tolist() == [["plan", 0.4]]
    warned = [w.value for w in at.warning]
    assert warned == ["In the latest window: plan (40% null, 2% in the reference, "
                      "0% unseen categories)"]
    latest = apptest.table(at, "reference_missing")
    assert list(latest["column"]) == ["tenure", "plan"]
    alarms = apptest.table(at, "detector", "error_rate")
    assert list(alarms["detector"]) == ["adwin"]
    # The newest finished window has Evidently's own report.
    at.toggle(key=f"drift_show_{CHURN}").set_value(True).run()
    assert not at.exception
    assert at.download_button[0].label == "Download the report (HTML)"
    (frame,) = at.get("iframe")
    page = frame.proto.srcdoc
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "tenure" in page
    assert "root_metric_" in page


def test_models_lists_versions_with_lineage_and_decisions(monkeypatch, offline):
    at = apptest.start(monkeypatch, offline, page="models")
    at.selectbox(key="models_model").select(CHURN).run()
    versions = apptest.table(at, "version", "status", "decision")
    assert list(versions["version"]) == [4, 3, 2, 1]
    assert list(versions["status"]) == ["candidate", "rejected", "champion", "archived"]
    assert list(versions["holdout accuracy"][1:]) == [0.84, 0.86, 0.80]
    assert list(versions["trigger"]) == ["manual", "schedule", "request", "manual"]
    assert versions.iloc[2]["reasons"] == "data_drift"
    assert list(versions["train_rows"]) == [800] * 4
    expanders = [e.label for e in at.expander]
    assert expanders[0].startswith("v4 · candidate")
    text = apptest.texts(at)
    assert "**Decision:** keep the champion — does not beat the champion" in text
    assert "**Parent:** v1" in text
    ((spec, (long,)),) = apptest.charts(at)
    assert set(long["metric"]) == {"accuracy", "f1"}
    assert "Sign in to promote or roll back." in text
    assert not [b for b in at.button if b.label in ("Promote", "Roll back")]


def _updates(dep, expect):
    messages = read_all(dep.broker.bootstrap, dep.names(Topic.MODEL_UPDATES), expect=expect,
                        timeout_s=10 if expect else 2)
    decoder = Decoder(ModelUpdate, max_bytes=1_000_000)
    return [decoder.decode(m.value) for m in messages]


def test_a_tampered_artifact_is_not_promoted_and_the_page_says_why(
    monkeypatch, online, database, tmp_path
):
    dep, settings = online
    registry = Registry(database)
    v4 = registry.version(CHURN, 4)
    copy = make_artifact(tmp_path / "copy", 4, model=CHURN)  # the seeded one stays intact
    registry.attach_artifact(CHURN, 4, artifact_uri=copy.uri, sha256=copy.sha256,
                             metrics=dict(v4.metrics), lineage=v4.lineage)
    tamper(copy.uri)
    versions, audit = registry.versions(CHURN), registry.audit(CHURN)
    at = apptest.start(monkeypatch, settings, page="models", user=ALICE)
    at.selectbox(key="models_model").select(CHURN).run()
    promote = f"promote_{CHURN}_2"
    at.selectbox(key=f"{promote}_version").select(4)
    at.checkbox(key=f"{promote}_confirm").check()
    at.text_area(key=f"{promote}_reason").input("v4 looks better on fresh data")
    at.button(key=promote).click().run()
    assert not at.exception
    assert ("Not promoted: churn v4 cannot become the champion: its artifact failed "
            "verification") in apptest.texts(at)
    assert (registry.versions(CHURN), registry.audit(CHURN)) == (versions, audit)
    assert _updates(dep, 0) == []


def test_a_version_serving_refused_is_shown_and_never_offered_again(
    monkeypatch, offline, database
):
    registry = Registry(database)
    back = registry.refused(SwapFailed(
        event_id="sf-1", model=CHURN, version=2, instance="serve-1",
        error="canary: non-finite outputs", timestamp=datetime.now(UTC)))
    assert (back.version, back.from_version) == (1, 2)  # type: ignore[union-attr]
    at = apptest.start(monkeypatch, offline, page="models", user=ALICE)
    at.selectbox(key="models_model").select(CHURN).run()
    assert not at.exception
    assert any(e.label.startswith("v2 · refused") for e in at.expander)
    assert 2 not in at.selectbox(key=f"promote_{CHURN}_1_version").options
    assert "v1 has no former champion to go back to." in apptest.texts(at)


def test_signed_in_user_promotes_then_rolls_back(monkeypatch, online, database):
    dep, settings = online
    at = apptest.start(monkeypatch, settings, page="models", user=ALICE)
    at.selectbox(key="models_model").select(CHURN).run()
    # Without a reason nothing happens; the form keeps what was typed.
    promote = f"promote_{CHURN}_2"  # the forms' keys name the champion they act on
    at.selectbox(key=f"{promote}_version").select(4)
    at.checkbox(key=f"{promote}_confirm").check()
    at.button(key=promote).click().run()
    assert "Give a reason and tick the confirmation." in apptest.texts(at)
    registry = Registry(database)
    assert registry.champion(CHURN).version == 2
    assert at.checkbox(key=f"{promote}_confirm").value
    at.text_area(key=f"{promote}_reason").input("v4 looks better on fresh data")
    at.button(key=promote).click().run()
    assert not at.exception
    assert "Promoted churn v4: sent to the model-updates topic." in apptest.texts(at)
    assert registry.champion(CHURN).version == 4
    (promoted,) = _updates(dep, 1)
    assert (promoted.type, promoted.version, promoted.previous_version) == (
        "model_promoted", 4, 2)
    assert (promoted.actor, promoted.reason) == ("alice", "v4 looks better on fresh data")

    # The forms start empty for the new champion.
    rollback = f"rollback_{CHURN}_4"
    assert at.text_area(key=f"promote_{CHURN}_4_reason").value == ""
    assert not at.checkbox(key=f"promote_{CHURN}_4_confirm").value
    assert at.selectbox(key=f"{rollback}_version").value == 2  # the latest former champion
    at.text_area(key=f"{rollback}_reason").input("complaints from support")
    at.checkbox(key=f"{rollback}_confirm").check()
    at.button(key=rollback).click().run()
    assert "Rolled back to churn v2" in apptest.texts(at)
    assert registry.champion(CHURN).version == 2
    rolled = _updates(dep, 2)[1]
    assert (rolled.type, rolled.version, rolled.from_version, rolled.actor) == (
        "model_rolled_back", 2, 4, "alice")
    actions = [(e.action, e.target, e.reason) for e in AuditLog(database).recent()
               if e.action in ("promote", "rollback")]
    assert actions == [("rollback", "2", "complaints from support"),
                       ("promote", "4", "v4 looks better on fresh data")]
    audit = apptest.table(at, "action", "actor", "published")
    assert list(audit["action"][:2]) == ["rollback", "promote"]
    assert audit["published"][:2].all()
    mine = apptest.table(at, "action", "actor", "detail")
    assert list(mine["action"]) == ["rollback", "promote"]
    assert set(mine["actor"]) == {"alice"}


def test_jobs_show_schedules_runs_requests_and_logs(monkeypatch, offline):
    at = apptest.start(monkeypatch, offline, page="jobs")
    schedules = apptest.table(at, "job", "next_run")
    assert list(schedules["job"]) == [f"schedule:{CHURN}"]
    assert schedules.iloc[0]["every"] == "1 h"
    assert schedules["next_run"].notna().all()
    running = apptest.table(at, "duration_s", "device")
    assert list(running["status"]) == ["running"]
    runs = [t.value for t in at.dataframe if "device" in t.value.columns][1]
    assert len(runs) == 5
    assert list(runs["status"]) == ["running", "failed", "succeeded", "succeeded", "succeeded"]
    assert list(runs["device"][2:]) == ["cpu"] * 3
    assert list(runs["duration_s"][2:]) == [300.0] * 3
    requests = apptest.table(at, "reasons", "event_id")
    assert list(requests["status"]) == ["pending", "done"]
    # The newest run's log is shown; the failed run shows its error.
    at.selectbox(key="jobs_run").select(4).run()
    assert at.error[0].value == "TrainingError: loss is NaN"
    at.selectbox(key="jobs_run").select(2).run()
    assert "training churn v2" in at.code[0].value


def test_closed_viewing_needs_a_sign_in(monkeypatch, tmp_path, seeded_all, database):
    settings = _settings(Settings(home=tmp_path / "home"), database, open_viewing=False)
    at = apptest.start(monkeypatch, settings)
    assert "Sign in (in the sidebar) to view the dashboard." in apptest.texts(at)
    assert not at.metric
    assert not at.dataframe
    apptest.sign_in(at, *ALICE)
    assert [t.value for t in at.title] == ["Overview"]
    assert ("Champion", "v2") in apptest.metrics(at)


def test_single_sign_on_is_offered_when_configured(monkeypatch, offline):
    settings = offline.model_copy(update={"dashboard": offline.dashboard.model_copy(
        update={"oidc_provider": "default", "users": {}})})
    at = apptest.start(monkeypatch, settings, page="models")
    assert [b.label for b in at.sidebar.button] == ["Sign in with single sign-on"]
    assert len(at.sidebar.text_input) == 0
    assert "Sign in to promote or roll back." in apptest.texts(at)


def test_without_any_user_the_dashboard_is_read_only(monkeypatch, offline):
    settings = offline.model_copy(update={"dashboard": offline.dashboard.model_copy(
        update={"users": {}})})
    at = apptest.start(monkeypatch, settings, page="feedback")
    assert "No users are configured: the dashboard is read-only." in apptest.texts(at)
    assert len(at.data_editor) == 0


def test_jobs_show_each_study_with_its_trials_and_winner(monkeypatch, offline, database):
    from retrain.search import OptunaSearcher, Plan
    from retrain.space import Candidate

    def objective(candidate: Candidate, number: int) -> float:
        if number == 1:
            raise RuntimeError("candidate crashed")
        return 0.9 if number == 0 else 0.7

    plan = Plan(model=CHURN, run_id=7, metric="accuracy", trials=3, timeout_s=60, seed=0,
                train_rows=400, first=Candidate(3e-3, (64, 64)))
    OptunaSearcher(database.url).search(plan, objective, lambda: False)
    other = Plan(model=PRICE, run_id=8, metric="mse", trials=1, timeout_s=60, seed=0,
                 train_rows=400, first=Candidate(3e-3, (64, 64)))
    OptunaSearcher(database.url).search(other, lambda c, n: 2.5, lambda: False)

    at = apptest.start(monkeypatch, offline, page="jobs")
    studies = apptest.table(at, "study", "best_params")
    assert list(studies["study"]) == [f"{PRICE}/run-8", f"{CHURN}/run-7"]
    churn = studies.iloc[1]
    assert (churn["model"], churn["run_id"], churn["metric"]) == (CHURN, 7, "accuracy")
    assert (churn["complete"], churn["failed"], churn["pruned"]) == (2, 1, 0)
    assert (churn["best_value"], churn["best_trial"]) == (0.9, 0)
    assert "learning_rate 0.003" in churn["best_params"]
    assert "hidden [64, 64]" in churn["best_params"]
    at.selectbox(key="jobs_model").select(CHURN).run()
    assert list(apptest.table(at, "study", "best_params")["study"]) == [f"{CHURN}/run-7"]


def test_jobs_say_when_no_run_searched(monkeypatch, offline):
    at = apptest.start(monkeypatch, offline, page="jobs")
    assert "No run has searched a pool of candidates" in apptest.texts(at)
