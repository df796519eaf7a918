"""Monitor throughput against a raw consumer, and what one Evidently window costs.

    .venv/bin/python benchmarks/bench_monitor.py [--broker tansu|kafka] [--bootstrap HOST:PORT]
        [--pairs N] [--postgres URL] [--windows 1000,10000,50000]

A broker is started in a temporary folder (or reached at --bootstrap). N predictions and
their N feedback events (River's Agrawal stream, nine features) are produced once; then, in
the same run and on the same topics:

* raw: a hand-written kafka-python consumer of both topics (``poll``, ``json.loads``,
  ``commit``), the baseline;
* monitor: the real ``Monitor`` handler in a ``ConsumerLoop`` — decode, store predictions and
  feedback, join (with the store look-ups of misses), upsert labelled examples, windows,
  River detectors, policy, state commit — on a fresh SQLite file (and PostgreSQL with
  ``--postgres`` or DRIFTLOOP_TEST_POSTGRES_URL). Evidently reports are switched off here
  (they run in their own process in production); they are timed separately:
* the foundation's ``EventStore`` writes alone (predictions, feedback, labelled examples in
  batches, no Kafka), to show how much of the monitor's time is storage;
* one Evidently window (``monitor.evidently_drift.compare``: 11 columns against a 1,000-row
  reference) at each window size, against the baseline of running the bare two-sample tests
  (scipy's K-S or chi-square per column) on the same frames, and next to it the window's data
  quality (``monitor.quality.window_quality``: nulls, ranges, unseen categories), which the
  drift worker computes for every reported window too. ``--only windows`` skips the rest.

Sustained rates are events (messages) per second from the first polled batch to the last.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import socket
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from baselines import raw_consume_rate
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from river.datasets import synth
from sqlalchemy import create_engine, text

from driftloop.entry import settle_heap
from driftloop.local.brokers import broker_for
from driftloop.migrations import migrate_database
from monitor.drift_worker import DriftWorker
from monitor.evidently_drift import compare
from monitor.process import Monitor, build_loop
from monitor.quality import window_quality
from streams.db import Database
from streams.events import ClassOutput, Feedback, Prediction
from streams.producer import Producer
from streams.settings import KafkaSettings, MonitorSettings, Settings, TopicSettings
from streams.topics import Topic, TopicNames, ensure_topics

console = Console()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def agrawal(n: int, seed: int) -> list[tuple[dict[str, Any], int]]:
    stream = synth.Agrawal(classification_function=0, seed=seed)
    return [(dict(x), y) for x, y in itertools.islice(stream, n)]


def produce(kafka: KafkaSettings, names: TopicNames, pairs: int) -> None:
    noise = random.Random(1)
    producer = Producer(kafka)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"producing {pairs:,} predictions and feedback", total=pairs)
        for i, (x, y) in enumerate(agrawal(pairs, 3)):
            rid = f"r{i}"
            at = T0 + timedelta(milliseconds=10 * i)
            predicted = int(x["age"] < 40 or x["age"] >= 60)
            producer.send(names(Topic.PREDICTIONS), Prediction(
                event_id=f"p{i}", request_id=rid, model="agrawal", model_version=1, features=x,
                output=ClassOutput(label=predicted), timestamp=at), key=rid)
            label = 1 - y if noise.random() < 0.05 else y
            producer.send(names(Topic.FEEDBACK), Feedback(
                event_id=f"f{i}", request_id=rid, model="agrawal", label=label,
                timestamp=at + timedelta(seconds=30)), key=rid)
            if i % 2_000 == 0:
                producer.flush()
                progress.update(task, completed=i)
        producer.close()


def raw_rate(kafka: KafkaSettings, names: TopicNames, total: int) -> float:
    return raw_consume_rate(kafka, [names(Topic.PREDICTIONS), names(Topic.FEEDBACK)], total)


def monitor_rate(settings: Settings, url: str, total: int, label: str) -> float:
    db = migrate_database(Database(url))
    producer = Producer(settings.kafka)
    worker = DriftWorker(url, mode="thread", max_in_flight=1)
    monitor = Monitor.on(settings, db, producer, worker)
    loop = build_loop(settings, monitor, producer)
    start = None
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"monitor on {label}", total=total)
        while loop.stats.consumed < total:
            if loop.run_once() and start is None:
                start = time.perf_counter()
            progress.update(task, completed=loop.stats.consumed)
    elapsed = time.perf_counter() - (start or time.perf_counter())
    labelled = monitor.intake.join.stats.labelled["agrawal"]
    loop.close()
    worker.close()
    producer.close()
    db.dispose()
    if labelled != total // 2:
        console.print(f"[yellow]warning[/yellow]: {labelled} of {total // 2} labelled")
    return total / elapsed


def store_rate(url: str, pairs: int) -> float:
    """The foundation's EventStore writes alone (no Kafka), batch by batch as the monitor does."""
    from streams.store import EventStore, LabelledExample

    db = migrate_database(Database(url))
    store = EventStore(db)
    events = []
    for i, (x, y) in enumerate(agrawal(pairs, 3)):
        at = T0 + timedelta(milliseconds=10 * i)
        p = Prediction(event_id=f"p{i}", request_id=f"r{i}", model="agrawal", model_version=1,
                       features=x, output=ClassOutput(label=int(x["age"] < 40)), timestamp=at)
        f = Feedback(event_id=f"f{i}", request_id=f"r{i}", model="agrawal", label=y,
                     timestamp=at + timedelta(seconds=30))
        events.append((p, f))
    started = time.perf_counter()
    for start in range(0, pairs, 250):
        chunk = events[start:start + 250]
        store.add_predictions([p for p, _ in chunk])
        store.add_feedback([f for _, f in chunk])
        store.upsert_examples([LabelledExample.join(p, f) for p, f in chunk])
    elapsed = time.perf_counter() - started
    db.dispose()
    return 2 * pairs / elapsed


def bare_tests(reference: list[dict[str, Any]], current: list[dict[str, Any]]) -> None:
    """The baseline: scipy's two-sample test on each column, no report around it."""
    import numpy as np
    from scipy import stats

    for name in reference[0]:
        ref = [r[name] for r in reference]
        cur = [r[name] for r in current]
        if name in ("prediction", "label", "elevel"):
            keys = sorted(set(ref) | set(cur))
            observed = np.array([[ref.count(k) for k in keys], [cur.count(k) for k in keys]])
            stats.chi2_contingency(observed + 1)
        else:
            stats.ks_2samp(ref, cur)


def evidently_costs(sizes: list[int]) -> list[tuple[int, float, float, float]]:
    def rows(n: int, seed: int) -> list[dict[str, Any]]:
        out = []
        for x, y in agrawal(n, seed):
            row = dict(x)
            row["prediction"] = int(x["age"] < 40 or x["age"] >= 60)
            row["label"] = y
            out.append(row)
        return out

    reference = rows(1_000, 5)
    compare(reference, rows(200, 6))  # imports and caches, not timed
    results = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("Evidently windows", total=len(sizes))
        for size in sizes:
            current = rows(size, 7)
            started = time.perf_counter()
            bare_tests(reference, current)
            bare = time.perf_counter() - started
            started = time.perf_counter()
            compare(reference, current)
            report = time.perf_counter() - started
            started = time.perf_counter()
            window_quality(reference, current, margin=0.1, exclude=("prediction", "label"))
            quality = time.perf_counter() - started
            results.append((size, bare, report, quality))
            progress.advance(task)
    return results


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_database(server: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{server.rpartition('/')[0]}/{name}"


def bench_throughput(bootstrap: str, pairs: int, tmp: Path, postgres: str | None) -> Table:
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    names = TopicNames(f"bench{uuid.uuid4().hex[:8]}")
    topics = TopicSettings(prefix=names.prefix, partitions=3)
    ensure_topics(kafka, topics)
    produce(kafka, names, pairs)
    total = 2 * pairs
    # ``driftloop monitor`` freezes its startup heap before it consumes; this process stands
    # in for it, so it does the same before any path is measured.
    settle_heap()
    monitor = MonitorSettings(drift_kinds=(), drift_workers="thread")
    settings = Settings(home=tmp / "home", kafka=kafka, topics=topics, monitor=monitor)
    with console.status("raw consumer"):
        raw = raw_rate(kafka, names, total)
    table = Table(title=f"monitor vs raw consumer, {total:,} events (predictions + feedback)")
    for column in ("path", "events/s", "ratio to raw"):
        table.add_column(column, justify="right")
    table.add_row("raw kafka-python consume + json", f"{raw:,.0f}", "1.00")
    databases = [("SQLite", f"sqlite:///{tmp / 'bench.db'}")]
    if postgres:
        databases.append(("PostgreSQL", _postgres_database(postgres)))
    for label, url in databases:
        group = MonitorSettings(drift_kinds=(), drift_workers="thread",
                                group_id=f"monitor-{uuid.uuid4().hex[:6]}")
        rate = monitor_rate(settings.model_copy(update={"monitor": group}), url, total, label)
        table.add_row(f"monitor on {label}", f"{rate:,.0f}", f"{rate / raw:.2f}")
        second = url.replace("bench.db", "store.db") if label == "SQLite" else (
            _postgres_database(postgres or ""))
        with console.status(f"EventStore writes alone on {label}"):
            alone = store_rate(second, pairs)
        table.add_row(f"EventStore writes only (no Kafka), {label}", f"{alone:,.0f}",
                      f"{alone / raw:.2f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=["tansu", "kafka"], default="tansu")
    parser.add_argument("--bootstrap", help="Use a running broker instead of starting one.")
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--postgres", default=os.environ.get("DRIFTLOOP_TEST_POSTGRES_URL"))
    parser.add_argument("--windows", default="1000,10000,50000")
    parser.add_argument("--only", choices=["all", "windows"], default="all")
    args = parser.parse_args()
    if args.only == "all":
        with tempfile.TemporaryDirectory() as tmp:
            _throughput(args, Path(tmp))
    table = Table(title="one Evidently window (11 columns, 1,000-row reference)")
    for column in ("window rows", "bare tests s", "Evidently report s", "ratio",
                   "data quality s", "quality / report"):
        table.add_column(column, justify="right")
    for size, bare, report, quality in evidently_costs(
            [int(s) for s in args.windows.split(",")]):
        table.add_row(f"{size:,}", f"{bare:.3f}", f"{report:.3f}", f"{report / bare:.1f}",
                      f"{quality:.3f}", f"{quality / report:.2f}")
    console.print(table)


def _throughput(args: argparse.Namespace, tmp: Path) -> None:
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker = broker_for(args.broker, tmp / args.broker, _free_port())
        with console.status(f"starting {args.broker}"):
            bootstrap = broker.start()
    try:
        console.print(bench_throughput(bootstrap, args.pairs, tmp, args.postgres))
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
