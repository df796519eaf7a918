from __future__ import annotations

from datetime import timedelta

import pytest

from dashboard.queries import PredictionFilter, StreamQueries
from tests.dashboard.conftest import NOW
from tests.dashboard.seed import (
    CHURN,
    CHURN_N,
    CORRECTED,
    LABELLED_N,
    PRICE,
    churn_confidence,
    churn_predicted,
)


@pytest.fixture
def seeded(shared_seeded):
    return shared_seeded


@pytest.fixture
def queries(seeded):
    return StreamQueries(seeded.db, clock=lambda: NOW)


def test_models_and_versions(queries):
    assert queries.models() == [CHURN, PRICE]
    assert queries.versions(CHURN) == [1, 2]
    assert queries.versions("nobody") == []


def test_predictions_newest_first_with_their_current_label(queries, seeded):
    frame = queries.predictions(PredictionFilter(model=CHURN), limit=1000)
    assert list(frame["request_id"]) == [f"c{i:03d}" for i in reversed(range(CHURN_N))]
    by_id = frame.set_index("request_id")
    for i in range(CHURN_N):
        row = by_id.loc[f"c{i:03d}"]
        assert row["predicted"] == churn_predicted(i)
        assert row["label"] == seeded.churn_label(i) or (row["label"] is None
                                                         and seeded.churn_label(i) is None)
    # The reviewer's label wins over the app's, though the app's came later.
    corrected = by_id.loc[CORRECTED]
    assert (corrected["label"], corrected["label_source"], corrected["reviewer"]) == (
        "stay", "reviewer", "bob")
    assert by_id.loc["c000"]["label_source"] == "app"


def test_limit_keeps_the_newest(queries):
    frame = queries.predictions(PredictionFilter(model=CHURN), limit=5)
    assert list(frame["request_id"]) == ["c039", "c038", "c037", "c036", "c035"]


@pytest.mark.parametrize("state", ["unlabelled", "labelled", "disagree", "agree"])
def test_label_state_filters(queries, seeded, state):
    frame = queries.predictions(PredictionFilter(model=CHURN, label_state=state), limit=1000)
    expected = set()
    for i in range(CHURN_N):
        label = seeded.churn_label(i)
        keep = {
            "unlabelled": label is None,
            "labelled": label is not None,
            "disagree": label is not None and label != churn_predicted(i),
            "agree": label is not None and label == churn_predicted(i),
        }[state]
        if keep:
            expected.add(f"c{i:03d}")
    assert set(frame["request_id"]) == expected
    assert expected  # every state selects something in the seed
    if state == "disagree":
        assert frame["disagrees"].all()
    elif state in ("agree", "unlabelled"):
        assert not frame["disagrees"].any()


def test_version_confidence_and_time_filters(queries):
    where = PredictionFilter(model=CHURN, versions=(2,), min_confidence=0.7, max_confidence=0.9,
                             since=NOW - timedelta(minutes=15))
    frame = queries.predictions(where, limit=1000)
    expected = {
        f"c{i:03d}" for i in range(20, CHURN_N)
        if 0.7 <= churn_confidence(i) <= 0.9 and CHURN_N - i <= 15
    }
    assert set(frame["request_id"]) == expected
    assert expected


def test_all_models_and_one_request(queries):
    assert len(queries.predictions(PredictionFilter(), limit=1000)) == CHURN_N + 10
    one = queries.predictions(PredictionFilter(model=PRICE, request_id="p003"))
    assert list(one["request_id"]) == ["p003"]
    assert one.iloc[0]["predicted"] == 103.0
    assert one.iloc[0]["confidence"] is None or one["confidence"].isna().all()


def test_traffic_counts_recent_predictions_and_label_coverage(queries):
    churn = queries.traffic(CHURN, window=timedelta(minutes=15))
    # Predictions 25..39 are at most 15 minutes old; 25..29 of them have a label.
    assert churn.predictions == 15
    assert churn.labelled == 5
    assert churn.label_coverage == pytest.approx(5 / 15)
    assert churn.per_second == pytest.approx(15 / 900)
    assert churn.kind == "class"
    assert churn.last_prediction == NOW - timedelta(minutes=1)
    price = queries.traffic(PRICE)
    assert (price.kind, price.label_coverage) == ("value", 1.0)
    assert queries.traffic("nobody").label_coverage is None


def test_versions_seen(queries):
    seen = queries.versions_seen(CHURN)
    assert [(v.version, v.predictions) for v in seen] == [(1, 20), (2, 20)]
    assert seen[1].first_seen == NOW - timedelta(minutes=CHURN_N - 20)
    assert seen[0].last_seen.tzinfo is not None


def test_accuracy_over_time(queries, seeded):
    frame = queries.score_over_time(CHURN, bucket=timedelta(minutes=10))
    assert set(frame["metric"]) == {"accuracy"}
    assert frame["examples"].sum() == LABELLED_N
    right = sum(seeded.churn_label(i) == churn_predicted(i) for i in range(LABELLED_N))
    weighted = (frame["score"] * frame["examples"]).sum()
    assert weighted == pytest.approx(right)
    assert frame["start"].is_monotonic_increasing


def test_mse_over_time(queries):
    frame = queries.score_over_time(PRICE, bucket=timedelta(hours=1), kind="value")
    # Odd requests are off by 2.0, even ones exact: MSE 2.0 over the 10 examples.
    assert (frame["score"] * frame["examples"]).sum() / frame["examples"].sum() == (
        pytest.approx(2.0))
    assert set(frame["metric"]) == {"mse"}


def test_stored_feedback_and_current_labels(queries):
    assert queries.stored_feedback(["fc000", "rc004", "nope"]) == {"fc000", "rc004"}
    # c002 was predicted "stay" and labelled "leave"; c004 was corrected by a reviewer.
    assert queries.current(CHURN, ["c002", CORRECTED, "c035", "zzz"]) == {
        "c002": ("stay", "leave"), CORRECTED: ("stay", "stay"), "c035": ("stay", None)}
    history = queries.feedback_history(CHURN, CORRECTED)
    assert list(history["source"]) == ["reviewer", "app"]
