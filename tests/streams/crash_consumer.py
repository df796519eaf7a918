"""A consuming process for the crash test: stores predictions, optionally stalls mid-batch.

    python -m tests.streams.crash_consumer BOOTSTRAP PREFIX DB_URL MARKER [--stall]

With --stall it stores the first half of its first batch, touches MARKER and then hangs,
so the test can SIGKILL it after part of a batch is stored but before offsets are committed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from streams.codec import Decoder
from streams.consumer import Batch, ConsumerLoop
from streams.db import Database
from streams.events import Prediction
from streams.producer import Producer
from streams.settings import KafkaSettings
from streams.store import EventStore
from streams.topics import Topic, TopicNames


def main() -> None:
    bootstrap, prefix, url, marker = sys.argv[1:5]
    stall = "--stall" in sys.argv
    kafka = KafkaSettings(bootstrap_servers=bootstrap, max_poll_records=50, poll_timeout_ms=100,
                          session_timeout_ms=3000)
    names = TopicNames(prefix)
    store = EventStore(Database(url))
    seen = Path(marker).with_suffix(".seen")

    def handle(batch: Batch[Prediction]) -> None:
        events = [r.event for r in batch.records]
        with seen.open("a") as f:
            f.write("".join(f"{e.request_id}\n" for e in events))
        if stall:
            store.add_predictions(events[: len(events) // 2])
            Path(marker).touch()
            time.sleep(600)
        store.add_predictions(events)

    topic = names(Topic.PREDICTIONS)
    loop: ConsumerLoop[Prediction] = ConsumerLoop(
        kafka, topics=[topic], group_id=f"{prefix}-store",
        decoders={topic: Decoder(Prediction, max_bytes=kafka.max_message_bytes)},
        handler=handle, producer=Producer(kafka), dead_letter_topic=names(Topic.DEAD_LETTER),
    )
    # Run until 3 s pass with nothing new after the first records (or 120 s in all).
    started, last = time.monotonic(), None
    while time.monotonic() - started < 120:
        if loop.run_once():
            last = time.monotonic()
        elif last is not None and time.monotonic() - last > 3:
            break
    loop.close()


if __name__ == "__main__":
    main()
