from __future__ import annotations

import json

import pytest

from dashboard.audit import AuditLog
from dashboard.auth import Access, AccessDeniedError, User
from dashboard.corrections import (
    MAX_CSV_ROWS,
    Correction,
    CorrectionService,
    check,
    coerce_label,
    parse_csv,
)
from streams.client import Client
from streams.codec import Decoder
from streams.events import Feedback
from streams.topics import Topic
from tests.streams.kafka_helpers import read_all


@pytest.mark.parametrize(
    ("raw", "like", "expected"),
    [("leave", "stay", "leave"), (" 3 ", 1, 3), ("2.5", 1.0, 2.5), ("yes", True, True),
     ("0", False, False), ("7", None, "7"), (4, "x", 4)],
)
def test_labels_take_the_type_of_the_prediction(raw, like, expected):
    value = coerce_label(raw, like)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("raw", "like", "message"),
    [("", "stay", "empty"), ("cat", 1, "integer"), ("nan", 1.0, "finite"), ("maybe", True, "true"),
     (float("inf"), None, "finite")],
)
def test_impossible_labels_are_refused(raw, like, message):
    with pytest.raises(ValueError, match=message):
        coerce_label(raw, like)


def test_parse_csv_reads_rows_and_reports_problems():
    data = "\ufeffRequest_ID,label,model\nr1,leave,churn\n,stay,churn\nr3,stay,\n".encode()
    rows, problems = parse_csv(data, default_model="churn")
    assert [(r["request_id"], r["label"], r["model"], r["row"]) for r in rows] == [
        ("r1", "leave", "churn", "1"), ("r3", "stay", "churn", "3")]
    assert [(p.row, p.reason) for p in problems] == [(2, "empty request_id/model")]


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"request_id\nr1\n", "missing column(s): label"),
     (b"request_id,label\nr1,x\n", "add a model column"),
     (b"\xff\xfe\x00", "not UTF-8")],
)
def test_parse_csv_refuses_unusable_files(data, message):
    rows, problems = parse_csv(data)
    assert rows == []
    assert message in problems[0].reason


def test_parse_csv_stops_at_the_row_limit():
    body = "request_id,label\n" + "".join(f"r{i},x\n" for i in range(MAX_CSV_ROWS + 5))
    rows, problems = parse_csv(body.encode(), default_model="m")
    assert len(rows) == MAX_CSV_ROWS
    assert "only the first" in problems[-1].reason


def test_check_keeps_corrections_of_known_predictions():
    rows = [
        {"model": "m", "request_id": "a", "label": "2", "row": "1"},
        {"model": "m", "request_id": "b", "label": "x", "row": "2"},
        {"model": "m", "request_id": "zz", "label": "1", "row": "3"},
        {"model": "m", "request_id": "c", "label": "5", "row": "4"},
    ]
    parsed = check(rows, {("m", "a"): 1, ("m", "b"): 1, ("m", "c"): 1}, {("m", "a"): 1,
                                                                          ("m", "c"): 5})
    assert parsed.corrections == (Correction("m", "a", 2, previous=1),)
    assert [(p.row, p.request_id) for p in parsed.problems] == [(2, "b"), (3, "zz"), (4, "c")]
    assert "no prediction" in parsed.problems[1].reason
    assert parsed.problems[2].reason == "already has this label"


def test_audit_log_appends_and_lists_newest_first(database):
    ticks = iter(range(100))
    from datetime import UTC, datetime, timedelta
    base = datetime(2026, 1, 1, tzinfo=UTC)
    audit = AuditLog(database, clock=lambda: base + timedelta(seconds=next(ticks)))
    audit.record("alice", "correct_label", model="m", target="r1", detail={"label": "x"})
    audit.record("bob", "promote", model="m", target="3", reason="better")
    audit.record("alice", "sign_in")
    assert [e.action for e in audit.recent()] == ["sign_in", "promote", "correct_label"]
    assert [e.action for e in audit.recent(actor="alice")] == ["sign_in", "correct_label"]
    assert [e.actor for e in audit.recent(model="m", actions=("promote",))] == ["bob"]
    first = audit.recent(actions=("correct_label",))[0]
    assert (first.target, dict(first.detail), first.at) == ("r1", {"label": "x"}, base)


def _feedback_on_topic(dep, expect):
    messages = read_all(dep.broker.bootstrap, dep.names(Topic.FEEDBACK), expect=expect,
                        timeout_s=10 if expect else 2)
    decoder = Decoder(Feedback, max_bytes=1_000_000)
    return [decoder.decode(m.value) for m in messages]


def test_a_reviewer_correction_reaches_the_feedback_topic_and_the_audit_log(
    tansu, deployment_factory, database
):
    dep = deployment_factory(tansu, partitions=1)
    audit = AuditLog(database)
    with Client(dep.settings) as client:
        service = CorrectionService(client, audit, Access(open_viewing=True))
        sent = service.submit(User("alice"), [Correction("churn", "r7", "leave", "stay")],
                              via="form")
    events = _feedback_on_topic(dep, 1)
    assert len(events) == 1
    event = events[0]
    assert (event.model, event.request_id, event.label) == ("churn", "r7", "leave")
    assert (event.source, event.reviewer, event.event_id) == ("reviewer", "alice",
                                                              sent.event_ids[0])
    entry = audit.recent(actions=("correct_label",))[0]
    assert (entry.actor, entry.model, entry.target) == ("alice", "churn", "r7")
    assert json.loads(json.dumps(dict(entry.detail))) == {
        "label": "leave", "previous": "stay", "event_id": event.event_id, "via": "form"}


def test_an_unsigned_visitor_cannot_correct(tansu, deployment_factory, database):
    dep = deployment_factory(tansu, partitions=1)
    audit = AuditLog(database)
    with Client(dep.settings) as client:
        service = CorrectionService(client, audit, Access(open_viewing=True))
        with pytest.raises(AccessDeniedError):
            service.submit(None, [Correction("churn", "r7", "leave")], via="table")
    assert _feedback_on_topic(dep, 0) == []
    assert [e.action for e in audit.recent()] == ["refused"]
    assert audit.recent()[0].actor == "anonymous"
