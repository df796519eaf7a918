"""``driftloop demo``: the whole loop locally, on a drifting scenario (:mod:`driftloop.local.demo`).

    driftloop demo                                   Tansu, SQLite, the abrupt scenario
    driftloop demo --scenario gradual --speed 4      four times the scenario's pace
    driftloop demo --broker kafka --database postgresql+psycopg://u:pw@host/db
    driftloop demo --length 6000 --no-dashboard      a short run without the dashboard
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from driftloop import logs
from driftloop.entry import console, load_settings, stop_on_signals
from driftloop.lab.scenarios import SCENARIOS


class DemoBroker(StrEnum):
    tansu = "tansu"
    kafka = "kafka"
    external = "external"


def demo(
    scenario: Annotated[str, typer.Option(
        help=f"Drifting scenario: {', '.join(SCENARIOS)}.")] = "abrupt",
    broker: Annotated[DemoBroker, typer.Option(
        help="tansu (embedded), kafka (local Apache Kafka) or external (the cluster in "
             "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS).")] = DemoBroker.tansu,
    database: Annotated[str | None, typer.Option(
        help="Database URL, e.g. postgresql+psycopg://user:pw@host/db [default: SQLite in "
             "the working folder].")] = None,
    speed: Annotated[float, typer.Option(
        help="Pace relative to the scenario's 100 events per second.")] = 1.0,
    length: Annotated[int | None, typer.Option(
        help="Resize the scenario to this many events (drift points scale along).")] = None,
    dashboard: Annotated[bool, typer.Option(help="Start the dashboard.")] = True,
    workdir: Annotated[Path | None, typer.Option(
        help="Working folder, reset at each run [default: <home>/demo].")] = None,
    exit_when_done: Annotated[bool, typer.Option(
        help="Stop when the stream is over instead of waiting for Ctrl-C.")] = False,
) -> None:
    """Run the whole loop locally: broker, database, serving, monitor, retraining, dashboard,
    and a simulated app streaming a drifting scenario."""
    from driftloop.local.demo import DemoOptions, run_demo

    settings = load_settings()
    if scenario not in SCENARIOS:
        raise typer.BadParameter(f"unknown scenario {scenario!r}; choose from "
                                 f"{', '.join(SCENARIOS)}", param_hint="--scenario")
    if speed <= 0:
        raise typer.BadParameter("must be positive", param_hint="--speed")
    folder = (workdir or settings.home / "demo").resolve()
    logs.to_file(folder / "demo.log", settings.log_level if "log_level" in
                settings.model_fields_set else "INFO")
    stop = stop_on_signals("stopping everything")
    options = DemoOptions(scenario=scenario, broker=broker.value, database_url=database,
                          speed=speed, length=length, dashboard=dashboard, workdir=folder,
                          exit_when_done=exit_when_done)
    raise typer.Exit(run_demo(settings, options, console=console, stop=stop))


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the ``driftloop`` command."""
    app.command("demo")(demo)
