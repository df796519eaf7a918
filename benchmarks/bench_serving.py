"""Serving throughput against raw kafka-python, output gaps during hot swaps, swap latency.

    .venv/bin/python benchmarks/bench_serving.py [--broker tansu|kafka] [--messages N]
        [--rate R] [--swaps K]

A broker of the chosen kind (Tansu by default) is started in a temporary folder. In one run:

1. **ceiling**: N pre-encoded requests are consumed by a raw ``KafkaConsumer`` and copied to
   another topic by a raw ``KafkaProducer`` (flush, then commit, after every poll): messages/s
   with no model and no decoding.
2. **serving**: the same N requests are answered by :class:`serving.process.ServingProcess`
   with an MLP (decode, validate, preprocess, one forward pass per batch, encode, produce,
   flush, commit): predictions/s, and its ratio to the ceiling (goal >= 0.8).
3. **swap gaps**: a ``driftloop serve`` subprocess answers a steady stream of R requests/s.
   The gaps between consecutive predictions (their Kafka timestamps, set when the server
   sends them) are measured for a while without a swap (p99), then K new versions are
   promoted one after another: the longest gap in the second after each promotion, against
   that p99 (goal <= 2x). As a control, the longest gap in one-second windows without a swap
   is printed too: a maximum over a window is naturally above a p99.
4. **promotion to first new-version prediction**: for each swap, the time from sending
   ``ModelPromoted`` to the first prediction made by the new version (goal <= 1 s).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from driftloop.entry import settle_heap
from driftloop.local.brokers import broker_for
from serving.process import ServingProcess
from streams.artifacts import Architecture, Artifact, Manifest, Preprocessor, write_artifact
from streams.codec import encode
from streams.events import InferenceRequest, ModelPromoted, new_event_id
from streams.nn import module_for, state_to_numpy
from streams.producer import Producer
from streams.settings import KafkaSettings, ServingSettings, Settings, TopicSettings
from streams.topics import Topic, TopicNames, ensure_topics

console = Console(width=110)
MODEL = "bench"
ROOT = Path(__file__).resolve().parents[1]
PLANS = ("free", "pro", "team", "enterprise")
WINDOW_MS = 1000  # a swap's window: from the promotion on, this long


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _row(i: int) -> dict[str, Any]:
    return {f"f{j}": float((i * (j + 3)) % 97) / 10.0 for j in range(10)} | {
        "plan": PLANS[i % len(PLANS)]}


def _payloads(n: int, start: int = 0) -> list[tuple[bytes, bytes]]:
    now = datetime.now(UTC)
    out = []
    for i in range(start, start + n):
        rid = f"r{i}"
        event = InferenceRequest(request_id=rid, model=MODEL, features=_row(i), timestamp=now)
        out.append((rid.encode(), encode(event)))
    return out


def _artifact(root: Path, version: int) -> Artifact:
    pre = Preprocessor.fit([_row(i) for i in range(200)])
    manifest = Manifest(model=MODEL, version=version, task="classification",
                        architecture=Architecture(name="mlp", params={"hidden": [64, 64]}),
                        features=pre.features, classes=("no", "yes"))
    torch.manual_seed(version)
    return write_artifact(root / MODEL / f"v{version}", manifest,
                          state_to_numpy(module_for(manifest)))


def _promotion(artifact: Artifact) -> ModelPromoted:
    return ModelPromoted(event_id=new_event_id(), model=MODEL, version=artifact.manifest.version,
                         artifact_uri=artifact.uri, sha256=artifact.sha256,
                         timestamp=datetime.now(UTC))


def _preload(kafka: KafkaSettings, topic: str, payloads: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(acks="all", linger_ms=20, batch_size=262_144,
                             **kafka.client_config())
    for key, value in payloads:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


# -- 1. the ceiling -------------------------------------------------------------------------


def raw_copy(kafka: KafkaSettings, source: str, target: str, n: int, batch: int,
             fetch_max_wait_ms: int) -> float:
    """Consume ``n`` messages and produce each to ``target``; flush and commit every poll.

    It polls batches as large as serving's and fetches with serving's fetch wait, so the
    ratio compares the work done per message, not consumer settings.
    """
    consumer = KafkaConsumer(source, group_id=f"raw-{uuid.uuid4().hex[:6]}",
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             max_poll_records=batch, fetch_max_wait_ms=fetch_max_wait_ms,
                             **kafka.client_config())
    producer = KafkaProducer(acks="all", linger_ms=kafka.linger_ms, batch_size=kafka.batch_size,
                             **kafka.client_config())
    consumer.partitions_for_topic(source)
    seen, start = 0, None
    while seen < n:
        polled = consumer.poll(timeout_ms=kafka.poll_timeout_ms, max_records=batch)
        if not polled:
            continue
        if start is None:
            start = time.perf_counter()
        for messages in polled.values():
            for msg in messages:
                producer.send(target, key=msg.key, value=msg.value)
            seen += len(messages)
        producer.flush()
        consumer.commit()
    elapsed = time.perf_counter() - (start or time.perf_counter())
    consumer.close()
    producer.close()
    return n / elapsed


# -- 2. serving throughput ------------------------------------------------------------------


def serving_throughput(settings: Settings, artifact: Artifact, n: int) -> float:
    process = ServingProcess(settings, model=MODEL, artifact=artifact.path,
                             instance="bench-throughput")
    thread = threading.Thread(target=process.run, daemon=True)
    thread.start()
    start = None
    try:
        while process.stats.handled < n:
            if start is None and process.stats.batches:
                start = time.perf_counter()
            time.sleep(0.001)
            if not thread.is_alive():
                raise RuntimeError("the serving process died")
        elapsed = time.perf_counter() - (start or time.perf_counter())
    finally:
        process.stop()
        thread.join(30)
    return n / elapsed


# -- 3 and 4. swaps under a steady stream ---------------------------------------------------


class Outputs:
    """Reads the predictions topic from a thread: (kafka timestamp ms, model version)."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self._consumer = KafkaConsumer(group_id=None, enable_auto_commit=False,
                                       auto_offset_reset="earliest", **kafka.client_config())
        parts = [TopicPartition(topic, p) for p in self._consumer.partitions_for_topic(topic)]
        self._consumer.assign(parts)
        self._consumer.seek_to_beginning(*parts)
        self.items: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for messages in self._consumer.poll(timeout_ms=100).values():
                for msg in messages:
                    version = json.loads(msg.value)["model_version"]
                    self.items.append((msg.timestamp, version))
        self._consumer.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


class Stream:
    """Sends requests at a steady rate from a thread."""

    def __init__(self, kafka: KafkaSettings, topic: str, rate: int) -> None:
        self._producer = KafkaProducer(acks="all", linger_ms=kafka.linger_ms,
                                       **kafka.client_config())
        self._topic, self._rate = topic, rate
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.monotonic()
        pool = _payloads(2000)
        while not self._stop.is_set():
            due = int((time.monotonic() - start) * self._rate)
            while self.sent < due:
                _, value = pool[self.sent % len(pool)]
                key = f"s{self.sent}".encode()
                self._producer.send(self._topic, key=key, value=value)
                self.sent += 1
            time.sleep(0.002)
        self._producer.flush()
        self._producer.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def _gaps(stamps: list[int]) -> np.ndarray[Any, Any]:
    ordered = np.sort(np.array(stamps, dtype=np.int64))
    return np.diff(ordered) if len(ordered) > 1 else np.zeros(1)


@dataclass(frozen=True)
class SwapResult:
    p99: float  # p99 of the gaps between outputs while nothing is swapped (ms)
    longest: list[float]  # the longest gap in the window of each swap (ms)
    control: list[float]  # the longest gap in windows as long without a swap (ms)
    first_new: list[float]  # promotion to the first prediction of the new version (s)


def swaps(kafka: KafkaSettings, prefix: str, home: Path, artifacts: list[Artifact], rate: int,
          steady_s: float, progress: Progress) -> SwapResult:
    names = TopicNames(prefix)
    publisher = Producer(kafka)
    publisher.send(names(Topic.MODEL_UPDATES), _promotion(artifacts[0]), key=MODEL)
    publisher.flush()
    env = {**os.environ, "DRIFTLOOP_HOME": str(home),
           "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "DRIFTLOOP_TOPICS__PREFIX": prefix, "DRIFTLOOP_KAFKA__SESSION_TIMEOUT_MS": "6000"}
    server = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "driftloop.cli", "serve", "--model", MODEL],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    outputs = Outputs(kafka, names(Topic.PREDICTIONS))
    stream = Stream(kafka, names(Topic.REQUESTS), rate)
    task = progress.add_task("swaps under a steady stream", total=len(artifacts) + 1)
    try:
        deadline = time.monotonic() + 60
        while not outputs.items and time.monotonic() < deadline:
            time.sleep(0.05)
        if not outputs.items:
            raise RuntimeError("the server never answered")
        time.sleep(1.0)  # let the stream settle
        steady_from = int(time.time() * 1000)
        time.sleep(steady_s)
        steady_to = int(time.time() * 1000)
        progress.advance(task)
        promoted_at: list[int] = []
        for artifact in artifacts[1:]:
            promoted_at.append(int(time.time() * 1000))
            publisher.send(names(Topic.MODEL_UPDATES), _promotion(artifact), key=MODEL)
            publisher.flush()
            version = artifact.manifest.version
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(v == version
                                                         for _, v in outputs.items[-5000:]):
                time.sleep(0.01)
            time.sleep(1.5)
            progress.advance(task)
    finally:
        stream.stop()
        time.sleep(0.5)
        outputs.stop()
        server.terminate()
        server.wait(30)
        publisher.close()
    items = list(outputs.items)
    steady = _gaps([t for t, _ in items if steady_from <= t <= steady_to])
    control = [
        float(_gaps([t for t, _ in items if start <= t < start + WINDOW_MS]).max())
        for start in range(steady_from, steady_to - WINDOW_MS + 1, WINDOW_MS)
    ]
    longest, first_new = [], []
    for artifact, at in zip(artifacts[1:], promoted_at, strict=True):
        version = artifact.manifest.version
        new = [t for t, v in items if v == version]
        if not new:
            raise RuntimeError(f"v{version} never answered")
        first_new.append((min(new) - at) / 1000.0)
        longest.append(float(_gaps([t for t, _ in items if at <= t < at + WINDOW_MS]).max()))
    return SwapResult(float(np.percentile(steady, 99)), longest, control, first_new)


def throughput(kafka: KafkaSettings, tmp: Path, artifact: Artifact, n: int, rounds: int,
               progress: Progress) -> tuple[float, float]:
    """Best of ``rounds`` for the raw copy loop and for serving, on fresh topics each round."""
    serving = ServingSettings()
    ceilings, served = [], []
    task = progress.add_task(f"throughput: {rounds} rounds of {n} requests", total=rounds * 2)
    payloads = _payloads(n)
    # ``driftloop serve`` freezes its startup heap before it consumes; this process stands
    # in for it, so it does the same once its fixtures exist (both paths are measured after).
    settle_heap()
    for _ in range(rounds):
        names = TopicNames(f"bench{uuid.uuid4().hex[:8]}")
        topics = TopicSettings(prefix=names.prefix, partitions=3)
        ensure_topics(kafka, topics)
        _preload(kafka, names(Topic.REQUESTS), payloads)
        ceilings.append(raw_copy(kafka, names(Topic.REQUESTS), names(Topic.FEEDBACK), n,
                                 serving.max_batch, serving.fetch_max_wait_ms))
        progress.advance(task)
        settings = Settings(home=tmp / "home", kafka=kafka, topics=topics, serving=serving)
        served.append(serving_throughput(settings, artifact, n))
        progress.advance(task)
    return max(ceilings), max(served)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=["tansu", "kafka"], default="tansu")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (best kept)")
    parser.add_argument("--rate", type=int, default=1000, help="requests/s during the swaps")
    parser.add_argument("--swaps", type=int, default=5)
    parser.add_argument("--steady", type=float, default=5.0, help="seconds without a swap")
    parser.add_argument("--only", choices=["all", "throughput", "swaps"], default="all")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        broker = broker_for(args.broker, tmp / "broker", _free_port())
        with console.status(f"starting {args.broker}"):
            bootstrap = broker.start()
        version = broker.status().version or ""
        try:
            kafka = KafkaSettings(bootstrap_servers=bootstrap, session_timeout_ms=6000)
            artifacts = [_artifact(tmp / "artifacts", v) for v in range(1, args.swaps + 2)]
            with Progress(console=console, transient=True) as progress:
                if args.only in ("all", "throughput"):
                    ceiling, served = throughput(kafka, tmp, artifacts[0], args.messages,
                                                 args.rounds, progress)
                if args.only in ("all", "swaps"):
                    prefix = f"swap{uuid.uuid4().hex[:8]}"
                    ensure_topics(kafka, TopicSettings(prefix=prefix, partitions=3))
                    swap = swaps(kafka, prefix, tmp / "home", artifacts, args.rate,
                                 args.steady, progress)
        finally:
            broker.stop()

    table = Table(title=f"serving on {args.broker} {version}: MLP 14->64->64->2 on {device}")
    for column in ("measure", "value", "baseline", "ratio", "goal"):
        table.add_column(column, justify="right")
    if args.only in ("all", "throughput"):
        table.add_row(f"raw consume+produce, best of {args.rounds}", f"{ceiling:,.0f} msg/s",
                      "", "", "")
        table.add_row(f"serving, best of {args.rounds}", f"{served:,.0f} pred/s",
                      f"{ceiling:,.0f} msg/s", f"{served / ceiling:.2f}", ">= 0.8")
    if args.only in ("all", "swaps"):
        worst, control = max(swap.longest), max(swap.control)
        table.add_row(f"longest output gap, {WINDOW_MS} ms after each of {len(swap.longest)} "
                      "promotions", f"{worst:.0f} ms", f"p99 gap {swap.p99:.0f} ms",
                      f"{worst / max(swap.p99, 1.0):.2f}", "<= 2")
        table.add_row("  same, in windows without a swap (control)", f"{control:.0f} ms",
                      f"p99 gap {swap.p99:.0f} ms", f"{control / max(swap.p99, 1.0):.2f}", "")
        table.add_row("  per swap", " ".join(f"{g:.0f}" for g in swap.longest) + " ms",
                      "", "", "")
        table.add_row("  per control window", " ".join(f"{g:.0f}" for g in swap.control)
                      + " ms", "", "", "")
        table.add_row("promotion -> first new-version prediction", f"{max(swap.first_new):.3f} s",
                      f"median {float(np.median(swap.first_new)):.3f} s", "", "<= 1 s")
    console.print(table)


if __name__ == "__main__":
    main()
