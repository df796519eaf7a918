"""``driftloop monitor``: join, drift, retrain requests (see :mod:`monitor.process`)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer
from rich.console import Console

from driftloop import logs
from streams.errors import DriftloopError
from streams.settings import Settings

console = Console(stderr=True)


def _settings() -> Settings:
    try:
        settings = Settings()
    except ValueError as exc:
        console.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc
    logs.configure(settings.log_level)
    return settings


def monitor() -> None:
    """Join predictions with feedback, watch drift, and ask for retraining when it matters."""
    from driftloop.stack import migrate
    from monitor.process import run_monitor

    settings = _settings()
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        console.print(f"received {signal.Signals(signum).name}, finishing the current batch")
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    console.print(f"monitoring {settings.topics.prefix}.* on {settings.kafka.bootstrap_servers}"
                  f" into {settings.database_url.split('@')[-1]}")
    try:
        db = migrate(settings)
        stats = run_monitor(settings, db=db, stop=stop)
    except DriftloopError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"stopped after {stats.handled} events "
                  f"({sum(stats.dead_lettered.values())} dead-lettered)")


def register(app: typer.Typer) -> None:
    """Add ``monitor`` to the ``driftloop`` command."""
    app.command("monitor")(monitor)


def main() -> None:
    """``python -m driftloop.cmd_monitor monitor``, for when the CLI is not wired yet."""
    app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
    register(app)

    @app.callback()
    def _root() -> None:
        """driftloop monitor."""

    app()


if __name__ == "__main__":
    main()
