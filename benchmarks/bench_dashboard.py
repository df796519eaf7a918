"""How long the dashboard's queries take on a large history, against a plain read of the table.

    .venv/bin/python benchmarks/bench_dashboard.py [--predictions N] [--postgres URL]

A fresh SQLite file (and, with ``--postgres`` or DRIFTLOOP_TEST_POSTGRES_URL, a fresh
PostgreSQL database on that server) gets N predictions of one model over seven days, labels
for 60% of them (5% of those corrected by a reviewer) and their labelled examples. Each query
of the Feedback and Overview pages is then timed (median of 5 runs) and printed with its ratio
to the baseline: ``SELECT`` of the newest 200 predictions of the model, the least any page
read costs.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text

from dashboard.queries import PredictionFilter, StreamQueries
from driftloop.migrations import migrate_database
from streams.db import Database
from streams.events import ClassOutput, Feedback, Prediction
from streams.store import EventStore, LabelledExample, PredictionRow

NOW = datetime(2026, 1, 8, tzinfo=UTC)
MODEL = "churn"
CHUNK = 5_000


def seed(db: Database, n: int) -> None:
    rng = random.Random(0)
    store = EventStore(db, clock=lambda: NOW)
    span = timedelta(days=7).total_seconds()
    for start in range(0, n, CHUNK):
        predictions, feedback, examples = [], [], []
        for i in range(start, min(n, start + CHUNK)):
            at = NOW - timedelta(seconds=span * (1 - i / n))
            label = rng.choice(["stay", "leave"])
            conf = rng.uniform(0.5, 1.0)
            other = "leave" if label == "stay" else "stay"
            p = Prediction(
                event_id=f"p{i}", request_id=f"r{i}", model=MODEL, model_version=1 + i * 3 // n,
                features={"tenure": rng.random(), "plan": "pro"},
                output=ClassOutput(label=label, probabilities={label: conf, other: 1 - conf}),
                timestamp=at,
            )
            predictions.append(p)
            if rng.random() < 0.6:
                truth = label if rng.random() < 0.8 else other
                f = Feedback(event_id=f"f{i}", request_id=p.request_id, model=MODEL,
                             label=truth, timestamp=at + timedelta(minutes=5))
                feedback.append(f)
                if rng.random() < 0.05:
                    f = Feedback(event_id=f"c{i}", request_id=p.request_id, model=MODEL,
                                 label=other, source="reviewer", reviewer="bench",
                                 timestamp=at + timedelta(minutes=10))
                    feedback.append(f)
                examples.append(LabelledExample.join(p, f))
        store.add_predictions(predictions)
        store.add_feedback(feedback)
        store.upsert_examples(examples)
        print(f"  seeded {min(n, start + CHUNK):,}/{n:,}", flush=True)


def timed(run: Callable[[], Any], reps: int = 5) -> float:
    run()  # warm the caches
    samples = []
    for _ in range(reps):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def bench(name: str, db: Database) -> None:
    queries = StreamQueries(db, clock=lambda: NOW)

    def baseline() -> None:
        stmt = (select(PredictionRow).where(PredictionRow.model == MODEL)
                .order_by(PredictionRow.timestamp.desc()).limit(200))
        with db.session() as session:
            list(session.execute(stmt).scalars())

    cases: dict[str, Callable[[], Any]] = {
        "feedback page, newest 200": lambda: queries.predictions(
            PredictionFilter(model=MODEL), limit=200),
        "feedback page, disagreements": lambda: queries.predictions(
            PredictionFilter(model=MODEL, label_state="disagree"), limit=200),
        "feedback page, no label, last day": lambda: queries.predictions(
            PredictionFilter(model=MODEL, label_state="unlabelled",
                             since=NOW - timedelta(days=1)), limit=200),
        "feedback page, confidence 0.5-0.6": lambda: queries.predictions(
            PredictionFilter(model=MODEL, min_confidence=0.5, max_confidence=0.6), limit=200),
        "overview traffic (15 min)": lambda: queries.traffic(MODEL),
        "overview versions seen": lambda: queries.versions_seen(MODEL),
        "overview accuracy, 7 days": lambda: queries.score_over_time(
            MODEL, since=NOW - timedelta(days=7)),
    }
    base = timed(baseline)
    print(f"\n{name}: baseline (newest 200 rows) {base * 1000:.1f} ms")
    for label, run in cases.items():
        seconds = timed(run)
        print(f"  {label:<36} {seconds * 1000:8.1f} ms  {seconds / base:6.1f}x baseline",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--predictions", type=int, default=50_000)
    parser.add_argument("--postgres", default=os.environ.get("DRIFTLOOP_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = migrate_database(Database(f"sqlite:///{Path(folder) / 'bench.db'}"))
        print(f"SQLite: seeding {args.predictions:,} predictions", flush=True)
        seed(db, args.predictions)
        bench("SQLite", db)
        db.dispose()
    if not args.postgres:
        print("\n(PostgreSQL skipped: pass --postgres URL)")
        return
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        db = migrate_database(Database(f"{args.postgres.rpartition('/')[0]}/{name}"))
        print(f"\nPostgreSQL: seeding {args.predictions:,} predictions", flush=True)
        seed(db, args.predictions)
        with db.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
        bench("PostgreSQL", db)
        db.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
