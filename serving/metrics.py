"""Prometheus metrics of the serving process (exposed by ``streams.metrics.serve_metrics``).

Messages that cannot be decoded at all are counted by ``driftloop_dead_letters_total`` in
:mod:`streams.metrics`; the counters here cover what the serving process itself decides.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "driftloop_serving_requests_total", "Inference requests handed to the predictor.", ["model"]
)
PREDICTIONS = Counter(
    "driftloop_serving_predictions_total", "Predictions produced.", ["model"]
)
REJECTED = Counter(
    "driftloop_serving_dead_letters_total",
    "Requests the predictor dead-lettered (unknown model, bad features).",
    ["model", "reason"],
)
BATCH_SIZE = Histogram(
    "driftloop_serving_batch_size",
    "Requests per forward pass.",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
LATENCY = Histogram(
    "driftloop_serving_latency_seconds",
    "From the request's Kafka timestamp to its prediction being sent.",
    ["model"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
INFERENCE = Histogram(
    "driftloop_serving_inference_seconds",
    "Preprocessing plus the forward pass of one batch.",
    ["model"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
VERSION = Gauge(
    "driftloop_serving_model_version", "Version of the model being served (0: none).", ["model"]
)
CONSUMER_LAG = Gauge(
    "driftloop_serving_consumer_lag",
    "Requests waiting in the partitions this process owns.",
    ["model"],
)
SWAPS = Counter(
    "driftloop_serving_swaps_total",
    "Model loads, by outcome (swapped, failed).",
    ["model", "outcome"],
)
