"""``driftloop monitor``: join, drift, retrain requests (see :mod:`monitor.process`)."""

from __future__ import annotations

import typer

from driftloop.entry import console, fail, load_settings, settle_heap, stop_on_signals
from streams.errors import DriftloopError


def monitor() -> None:
    """Join predictions with feedback, watch drift, and ask for retraining when it matters."""
    from driftloop.migrations import migrate_when_reachable
    from monitor.process import run_monitor
    from streams.backoff import Stopped

    settings = load_settings()
    stop = stop_on_signals("finishing the current batch")
    console.print(f"monitoring {settings.topics.prefix}.* on {settings.kafka.bootstrap_servers}"
                  f" into {settings.database_url.split('@')[-1]}")
    try:
        db = migrate_when_reachable(settings, stop)
        settle_heap()
        stats = run_monitor(settings, db=db, stop=stop)
    except Stopped:
        return
    except DriftloopError as exc:
        raise fail(exc) from exc
    console.print(f"stopped after {stats.handled} events "
                  f"({sum(stats.dead_lettered.values())} dead-lettered)")


def register(app: typer.Typer) -> None:
    """Add ``monitor`` to the ``driftloop`` command."""
    app.command("monitor")(monitor)

