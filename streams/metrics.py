"""Prometheus counters shared by every consuming process, and the /metrics endpoint."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, start_http_server

EVENTS_CONSUMED = Counter(
    "driftloop_events_consumed_total", "Messages polled from Kafka.", ["topic"]
)
DEAD_LETTERS = Counter(
    "driftloop_dead_letters_total", "Messages sent to the dead-letter topic.", ["topic", "reason"]
)
DEGRADED = Gauge(
    "driftloop_degraded",
    "1 while a component retries a broker or database outage, else 0.",
    ["component"],
)


def serve_metrics(port: int) -> None:
    """Expose the process's metrics on http://0.0.0.0:port/metrics (no-op when port is 0)."""
    if port:
        start_http_server(port)
