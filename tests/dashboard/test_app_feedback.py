"""The Feedback page under AppTest: browsing, filters, and corrections sent to Kafka."""

from __future__ import annotations

import functools

import pytest
from pydantic import SecretStr

import dashboard.context
from dashboard.audit import AuditLog
from dashboard.auth import hash_password
from dashboard.signin import SignInDesk
from streams.codec import Decoder
from streams.events import Feedback
from streams.settings import DashboardSettings, DatabaseSettings, Settings
from streams.topics import Topic
from tests.dashboard import apptest
from tests.dashboard.seed import CHURN, CHURN_N, PRICE, churn_predicted, seed_streams
from tests.streams.kafka_helpers import read_all

ALICE = ("alice", "wonderland")


def _settings(base: Settings, database, **dashboard) -> Settings:
    users = {ALICE[0]: SecretStr(hash_password(ALICE[1], iterations=1_000))}
    return base.model_copy(update={
        "database": DatabaseSettings(url=SecretStr(database.url)),
        "dashboard": DashboardSettings(users=users, refresh_s=0, **dashboard),
    })


@pytest.fixture
def live(database, live_now):
    """Seeded so that everything is within the default 'Last 24 hours'."""
    return seed_streams(database, live_now)


@pytest.fixture
def offline(tmp_path, live, database):
    """Settings with no broker needed (viewing only)."""
    return _settings(Settings(home=tmp_path / "home"), database)


@pytest.fixture
def online(memory_broker, deployment_factory, live, database):
    dep = deployment_factory(memory_broker, partitions=1)
    return dep, _settings(dep.settings, database)


def _sent(dep, expect):
    messages = read_all(dep.broker.bootstrap, dep.names(Topic.FEEDBACK), expect=expect,
                        timeout_s=10 if expect else 2)
    decoder = Decoder(Feedback, max_bytes=1_000_000)
    return [decoder.decode(m.value) for m in messages]


def test_a_visitor_browses_but_cannot_correct(monkeypatch, offline):
    at = apptest.start(monkeypatch, offline, page="feedback")
    assert "Sign in to correct labels." in apptest.texts(at)
    # The first model is shown, newest first.
    table = apptest.table(at, "request_id", "features")
    assert list(table["request_id"]) == [f"c{i:03d}" for i in reversed(range(CHURN_N))]
    at.selectbox(key="fb_model").select("All models").run()
    table = apptest.table(at, "request_id", "features")
    assert len(table) == CHURN_N + 10
    # The last churn and price predictions are both a minute old.
    assert set(table["request_id"][:2]) == {f"c{CHURN_N - 1:03d}", "p009"}
    assert len(at.data_editor) == 0
    assert not [b for b in at.button if b.label.startswith("Send")]
    assert len(at.file_uploader) == 0
    assert "single_target" not in [s.key for s in at.selectbox]


def test_filters_select_disagreements_of_one_model(monkeypatch, offline, live):
    at = apptest.start(monkeypatch, offline, page="feedback")
    at.selectbox(key="fb_model").select(CHURN).run()
    at.selectbox(key="fb_label_state").select("disagree").run()
    table = apptest.table(at, "request_id", "features")
    expected = {f"c{i:03d}" for i in range(CHURN_N)
                if live.churn_label(i) not in (None, churn_predicted(i))}
    assert set(table["request_id"]) == expected
    assert table["disagrees"].all()
    at.selectbox(key="fb_model").select(PRICE).run()
    at.selectbox(key="fb_label_state").select("unlabelled").run()
    assert apptest.table(at, "request_id", "features").empty
    assert "0 prediction(s)" in apptest.texts(at)


def test_wrong_password_does_not_sign_in(monkeypatch, offline, database):
    at = apptest.start(monkeypatch, offline, page="feedback", user=("alice", "nope"))
    assert "Wrong user name or password." in apptest.texts(at)
    assert len(at.data_editor) == 0
    assert [e.action for e in AuditLog(database).recent()] == ["sign_in_failed"]


def test_guessing_locks_the_sign_in_even_for_the_right_password(monkeypatch, offline, database):
    # The desk's clock stands still: on the monotonic clock a slow machine takes so long per
    # attempt that a short lock can expire between guesses (test_signin.py covers the timing).
    monkeypatch.setattr(dashboard.context, "SignInDesk",
                        functools.partial(SignInDesk, clock=lambda: 1_000.0))
    at = apptest.start(monkeypatch, offline, page="feedback")
    for i in range(20):
        apptest.sign_in(at, "alice", f"guess{i}")
    apptest.sign_in(at, *ALICE)
    assert "Too many failed sign-ins: try again in" in apptest.texts(at)
    assert "Signed in as" not in apptest.texts(at)
    assert len(at.data_editor) == 0
    failed = [e for e in AuditLog(database).recent(limit=100) if e.action == "sign_in_failed"]
    assert len(failed) == 20  # 21 refusals, at most 20 audit rows a minute
    assert {e.reason for e in failed} == {"wrong user name or password", "locked"}


def test_signed_in_reviewer_corrects_a_row_in_place(monkeypatch, online, database):
    dep, settings = online
    at = apptest.start(monkeypatch, settings, page="feedback", user=ALICE)
    assert "Signed in as **alice**" in apptest.texts(at)
    at.selectbox(key="fb_model").select(CHURN).run()
    editor = at.data_editor(key="feedback_editor")
    first = editor.value.iloc[0]
    assert first["request_id"] == f"c{CHURN_N - 1:03d}"
    at.session_state["feedback_editor"] = {
        "edited_rows": {0: {"correction": "stay"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    send = at.button(key="send_table")
    assert send.label == "Send 1 correction"
    send.click().run()
    assert not at.exception
    assert "Sent 1 correction" in apptest.texts(at)
    (event,) = _sent(dep, 1)
    assert (event.model, event.request_id, event.label) == (CHURN, first["request_id"], "stay")
    assert (event.source, event.reviewer) == ("reviewer", "alice")
    actions = [(e.action, e.target) for e in AuditLog(database).recent()]
    assert actions == [("correct_label", first["request_id"]), ("sign_in", None)]
    # Until the monitor stores it, the correction is listed as waiting.
    pending = apptest.table(at, "status")
    assert list(pending["status"]) == ["waiting for the monitor"]


def test_signed_in_reviewer_corrects_one_prediction_with_the_form(monkeypatch, online):
    dep, settings = online
    at = apptest.start(monkeypatch, settings, page="feedback", user=ALICE)
    at.selectbox(key="single_target").select(f"{CHURN}/c010")
    at.text_input(key="single_label").input("stay")
    [b for b in at.form_submit_button if b.label == "Send correction"][0].click().run()
    assert "Sent 1 correction" in apptest.texts(at)
    (event,) = _sent(dep, 1)
    assert (event.request_id, event.label, event.reviewer) == ("c010", "stay", "alice")


def test_a_correction_that_changes_nothing_is_not_sent(monkeypatch, online):
    dep, settings = online
    at = apptest.start(monkeypatch, settings, page="feedback", user=ALICE)
    # c010 already has the label "leave" from the app.
    at.selectbox(key="single_target").select(f"{CHURN}/c010")
    at.text_input(key="single_label").input("leave")
    [b for b in at.form_submit_button if b.label == "Send correction"][0].click().run()
    assert "Nothing to send." in apptest.texts(at)
    assert list(apptest.table(at, "reason")["reason"]) == ["already has this label"]
    assert _sent(dep, 0) == []


def test_signed_in_reviewer_uploads_a_csv(monkeypatch, online):
    dep, settings = online
    at = apptest.start(monkeypatch, settings, page="feedback", user=ALICE)
    at.selectbox(key="fb_model").select(CHURN).run()
    csv = b"request_id,label\nc001,leave\nc002,stay\nnope,stay\n"
    at.file_uploader(key="csv_0").upload("fix.csv", csv, "text/csv").run()
    assert "3 row(s) read from fix.csv." in apptest.texts(at)
    at.button(key="send_csv").click().run()
    assert not at.exception
    text = apptest.texts(at)
    assert "Sent 2 corrections" in text
    assert "1 row(s) not sent" in text
    events = _sent(dep, 2)
    assert sorted((e.request_id, e.label) for e in events) == [("c001", "leave"),
                                                               ("c002", "stay")]
