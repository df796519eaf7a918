"""Prometheus metrics of the monitor process (exposed by ``streams.metrics.serve_metrics``).

Messages that cannot be decoded at all are counted by ``driftloop_dead_letters_total`` in
:mod:`streams.metrics`; the metrics here cover what the monitor itself decides.
"""

from __future__ import annotations

from collections import Counter as Tally
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from monitor.join import Join

EVENTS = Counter(
    "driftloop_monitor_events_total",
    "Predictions and feedback handled, by outcome (stored, duplicate, rejected).",
    ["kind", "outcome"],
)
JOIN_MATCHES = Counter(
    "driftloop_monitor_join_matches_total",
    "Feedback joined with its prediction (corrections included).",
    ["model"],
)
JOIN_EXPIRED = Counter(
    "driftloop_monitor_join_expired_total",
    "Predictions (unlabelled) or feedback (unmatched) that left the join after the TTL.",
    ["model", "side"],
)
JOIN_PENDING = Gauge(
    "driftloop_monitor_join_pending",
    "Predictions waiting for a label, or feedback waiting for its prediction, in memory.",
    ["side"],
)
LABEL_COVERAGE = Gauge(
    "driftloop_monitor_label_coverage",
    "Share of settled predictions that got a label before they expired.",
    ["model"],
)
LABEL_LATENCY = Histogram(
    "driftloop_monitor_label_latency_seconds",
    "Feedback timestamp minus prediction timestamp, at a prediction's first label.",
    ["model"],
    buckets=(1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600),
)
CONSUMER_LAG = Gauge(
    "driftloop_monitor_consumer_lag",
    "Messages waiting in the partitions this monitor owns.",
    ["topic"],
)
WINDOWS = Counter(
    "driftloop_monitor_windows_total",
    "Closed windows by kind and by what became of their drift report.",
    ["model", "kind", "status"],
)
DRIFTED_SHARE = Gauge(
    "driftloop_monitor_drifted_share",
    "Share of drifted columns in the latest reported window.",
    ["model", "kind"],
)
ESTIMATED = Gauge(
    "driftloop_monitor_estimated_score",
    "Score of the latest served window estimated from calibrated confidences (no labels).",
    ["model", "metric"],
)
ESTIMATED_LOWER = Gauge(
    "driftloop_monitor_estimated_score_lower",
    "Lower edge of the band the estimated score of the latest served window is judged by.",
    ["model", "metric"],
)
QUALITY_VIOLATED = Gauge(
    "driftloop_monitor_quality_violated_columns",
    "Features whose nulls, out-of-range numbers or unseen categories broke the margin in the "
    "latest reported window.",
    ["model", "kind"],
)
DRIFT_BACKLOG = Gauge(
    "driftloop_monitor_drift_backlog", "Closed windows waiting for (or in) a drift report."
)
ERROR_RATE = Gauge(
    "driftloop_monitor_error_rate", "ADWIN's estimate of the current error rate.", ["model"]
)
ALARMS = Counter(
    "driftloop_monitor_alarms_total", "Concept-drift detector alarms.", ["model", "detector"]
)
RETRAIN_REQUESTS = Counter(
    "driftloop_monitor_retrain_requests_total", "RetrainRequested events emitted.", ["model"]
)


class JoinExporter:
    """Turns the join's cumulative statistics into the counters and gauges above."""

    def __init__(self) -> None:
        self._exported: dict[str, Tally[str]] = {}

    def export(self, join: Join) -> None:
        stats = join.stats
        for model in stats.predictions.keys() | stats.feedback.keys():
            coverage = stats.coverage(model)
            if coverage is not None:
                LABEL_COVERAGE.labels(model=model).set(coverage)
        for name, tally, side in (
            ("matches", stats.matches, None),
            ("expired_predictions", stats.expired_predictions, "predictions"),
            ("expired_feedback", stats.expired_feedback, "feedback"),
        ):
            seen = self._exported.setdefault(name, Tally())
            for model, value in tally.items():
                if value > seen[model]:
                    if side is None:
                        JOIN_MATCHES.labels(model=model).inc(value - seen[model])
                    else:
                        JOIN_EXPIRED.labels(model=model, side=side).inc(value - seen[model])
                    seen[model] = value
        JOIN_PENDING.labels(side="predictions").set(join.pending_predictions)
        JOIN_PENDING.labels(side="feedback").set(join.pending_feedback)
