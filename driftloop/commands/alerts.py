"""``driftloop alerts``: rule-based notifications through Apprise (see :mod:`monitor.alerts`)."""

from __future__ import annotations

import typer

from driftloop.entry import console, fail, load_settings, stop_on_signals
from streams.errors import DriftloopError


def alerts() -> None:
    """Tell people (Slack, e-mail, webhooks) about drift, data quality, promotions, rollbacks,
    refused swaps and dead-letter spikes, by the rules in alerts.rules."""
    from monitor.alerts import run_alerts

    settings = load_settings()
    stop = stop_on_signals("finishing the current batch")
    targets = len(settings.alerts.urls)
    console.print(f"alerting on {settings.topics.prefix}.* with {len(settings.alerts.rules)} "
                  f"rules to {targets} target{'s' if targets != 1 else ''}"
                  + ("" if targets else " (logged only: alerts.urls is empty)"))
    try:
        stats = run_alerts(settings, stop=stop)
    except DriftloopError as exc:
        raise fail(exc) from exc
    console.print(f"stopped after {stats.handled} events")


def register(app: typer.Typer) -> None:
    """Add ``alerts`` to the ``driftloop`` command."""
    app.command("alerts")(alerts)
