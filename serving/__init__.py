"""Serving: a Kafka-consuming model server that hot-swaps promoted models.

``driftloop serve --model NAME`` (:func:`serving.process.run_serving`) consumes the requests
topic in micro-batches, answers each request with one ``Prediction`` (keyed by request id,
with a deterministic event id so a replay after a crash is deduplicated downstream), and
dead-letters bad requests with the reason. A background thread follows the model-updates
topic and swaps in every newer promoted version (or any rollback) after verifying its
artifact and running a canary batch; a refused version is reported as ``SwapFailed``.

Modules, in the order a request meets them:

* :mod:`serving.process`   wiring: wait for a champion, then the consumer loop
* :mod:`serving.handler`   the loop's batch handler: predict, send, reject, observe
* :mod:`serving.predictor` many requests, one forward pass, one outcome each
* :mod:`serving.model`     a loaded, verified model and the one reference a swap replaces
* :mod:`serving.updates`   the model-updates follower (catch-up on start, then follow)
* :mod:`serving.swap`      which version to serve, and the verified swap itself
* :mod:`serving.canary`    the batch a new model must pass before it serves
* :mod:`serving.metrics`   Prometheus counters and gauges

Apps that serve their own model skip all of this and log predictions with the SDK
(``streams.client.Client.log_prediction``); the rest of the loop reads both alike.
"""
