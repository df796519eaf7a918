"""Produce and consume throughput: raw kafka-python against driftloop's adapters.

    .venv/bin/python benchmarks/bench_streams.py [--broker tansu|kafka|both] [--messages N]

Each broker is started in a temporary folder (or reached at --bootstrap). In the same run
and on the same topic layout it measures:

* produce: a hand-written producer, ``json.dumps`` of a plain dict then
  ``KafkaProducer.send`` (acks=all, same batching), against ``Producer.send(event)``, which
  serialises the pydantic event;
* consume: a hand-written at-least-once consumer, ``poll`` then ``json.loads`` of every
  message then ``commit``, against ``ConsumerLoop``, which validates every event against the
  contract, hands batches to a handler, flushes and commits.

It prints messages/s for each and the adapter/raw ratio (goal: >= 0.9).
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from baselines import raw_consume_rate
from kafka import KafkaProducer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from driftloop.entry import settle_heap
from driftloop.local.brokers import broker_for
from streams.codec import Decoder, encode
from streams.consumer import Batch, ConsumerLoop
from streams.events import ClassOutput, Prediction
from streams.producer import Producer
from streams.settings import KafkaSettings, TopicSettings
from streams.topics import Topic, TopicNames, ensure_topics

console = Console()


def _events(n: int) -> list[Prediction]:
    now = datetime.now(UTC)
    return [
        Prediction(
            event_id=uuid.uuid4().hex, request_id=f"r{i}", model="bench", model_version=1,
            features={f"f{j}": float(i * j % 97) for j in range(10)} | {"plan": "pro"},
            output=ClassOutput(label="a", probabilities={"a": 0.7, "b": 0.3}),
            latency_ms=1.0, timestamp=now,
        )
        for i in range(n)
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _raw_produce(kafka: KafkaSettings, topic: str, documents: list[dict[str, object]]) -> float:
    producer = KafkaProducer(acks="all", linger_ms=kafka.linger_ms, batch_size=kafka.batch_size,
                             **kafka.client_config())
    start = time.perf_counter()
    for i, document in enumerate(documents):
        producer.send(topic, value=json.dumps(document).encode(), key=f"r{i}".encode())
    producer.flush()
    elapsed = time.perf_counter() - start
    producer.close()
    return len(documents) / elapsed


def _adapter_produce(kafka: KafkaSettings, topic: str, events: list[Prediction]) -> float:
    producer = Producer(kafka)
    start = time.perf_counter()
    for event in events:
        producer.send(topic, event, key=event.request_id)
    producer.flush()
    elapsed = time.perf_counter() - start
    producer.close()
    return len(events) / elapsed


def _raw_consume(kafka: KafkaSettings, topic: str, n: int) -> float:
    return raw_consume_rate(kafka, [topic], n)


def _adapter_consume(kafka: KafkaSettings, names: TopicNames, topic: str, n: int) -> float:
    handled = 0

    def handler(batch: Batch[Prediction]) -> None:
        nonlocal handled
        handled += len(batch)

    loop: ConsumerLoop[Prediction] = ConsumerLoop(
        kafka, topics=[topic], group_id=f"adapter-{uuid.uuid4().hex[:6]}",
        decoders={topic: Decoder(Prediction, max_bytes=kafka.max_message_bytes)},
        handler=handler, producer=Producer(kafka), dead_letter_topic=names(Topic.DEAD_LETTER),
    )
    start = None
    while loop.stats.consumed < n:
        if loop.run_once() and start is None:
            start = time.perf_counter()
    elapsed = time.perf_counter() - (start or time.perf_counter())
    loop.close()
    return n / elapsed


def bench(kind: str, bootstrap: str, n: int, rounds: int) -> list[tuple[str, float, float]]:
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    events = _events(n)
    documents = [json.loads(encode(e)) for e in events]
    # driftloop's processes freeze their startup heap before they consume; so does this one,
    # for both paths alike, once its fixtures are built.
    settle_heap()
    results: dict[str, list[float]] = {k: [] for k in ("rp", "ap", "rc", "ac")}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{kind}: {rounds} rounds of {n} messages", total=rounds * 4)
        for _ in range(rounds):
            names = TopicNames(f"bench{uuid.uuid4().hex[:8]}")
            ensure_topics(kafka, TopicSettings(prefix=names.prefix, partitions=3))
            raw_topic, adapter_topic = names(Topic.PREDICTIONS), names(Topic.REQUESTS)
            results["rp"].append(_raw_produce(kafka, raw_topic, documents))
            progress.advance(task)
            results["ap"].append(_adapter_produce(kafka, adapter_topic, events))
            progress.advance(task)
            results["rc"].append(_raw_consume(kafka, raw_topic, n))
            progress.advance(task)
            results["ac"].append(_adapter_consume(kafka, names, adapter_topic, n))
            progress.advance(task)
    best = {k: max(v) for k, v in results.items()}
    return [
        ("produce", best["rp"], best["ap"]),
        ("consume", best["rc"], best["ac"]),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=["tansu", "kafka", "both"], default="both")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    kinds = ["tansu", "kafka"] if args.broker == "both" else [args.broker]
    table = Table(title="driftloop adapters vs raw kafka-python (best of rounds)")
    for column in ("broker", "path", "raw msg/s", "adapter msg/s", "ratio"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            broker = broker_for(kind, Path(tmp) / kind, _free_port())
            with console.status(f"starting {kind}"):
                bootstrap = broker.start()
            version = broker.status().version or ""
            try:
                for path, raw, adapter in bench(kind, bootstrap, args.messages, args.rounds):
                    table.add_row(f"{kind} {version}", path, f"{raw:,.0f}", f"{adapter:,.0f}",
                                  f"{adapter / raw:.2f}")
            finally:
                broker.stop()
    console.print(table)


if __name__ == "__main__":
    main()
