"""Estimated beside realised performance, as the Overview and Drift pages read it."""

from __future__ import annotations

from datetime import timedelta

from dashboard.drift_queries import NO_ESTIMATE, DriftQueries
from monitor.tables import DriftReportRow, WindowPerformanceRow
from tests.dashboard.conftest import NOW


def _served(window: str, minutes_ago: int, estimate: dict[str, float] | None) -> DriftReportRow:
    end = NOW - timedelta(minutes=minutes_ago)
    return DriftReportRow(
        event_id=f"e-{window}", window_id=window, model="old", model_version=1, kind="served",
        trigger="count", first_id=1, last_id=100, rows=100, window_start=end, window_end=end,
        status="skipped", drifted_share=None, drift_detected=None, columns=[], performance={},
        estimate=estimate, alarms=[], reference={}, created_at=end)


def test_a_champion_without_calibration_reads_no_estimate_never_a_number(database) -> None:
    queries = DriftQueries(database)
    assert queries.estimate("old").text == NO_ESTIMATE, "no window at all"
    with database.session() as session:
        session.add(_served("w0", 20, {"accuracy": 0.9, "accuracy_lower": 0.85,
                                       "accuracy_upper": 0.95, "f1": 0.88}))
        session.add(_served("w1", 10, None))  # the champion since has no calibration
        session.add(WindowPerformanceRow(
            window_id="l0", model="old", model_version=1, task="classification", rows=50,
            accuracy=0.8, f1=0.78, window_start=NOW, window_end=NOW, created_at=NOW))
    status = queries.estimate("old")
    assert (status.text, status.estimated, status.band) == (NO_ESTIMATE, None, "")
    assert status.realised == 0.8
    table = queries.estimates("old")
    assert list(table["performance"]) == ["realised", NO_ESTIMATE, "estimated"]
    assert table["accuracy"].isna().tolist() == [False, True, False]
