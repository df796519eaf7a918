"""The ``driftloop`` command: one subcommand per process, each builds settings and wires.

Every subcommand lives in :mod:`driftloop.commands`; this module only gathers them.
"""

from __future__ import annotations

import typer

from driftloop.commands import (
    alerts,
    bench,
    broker,
    dashboard,
    db,
    demo,
    monitor,
    retrain,
    scenarios,
    schema,
    serving,
    topics,
)

app = typer.Typer(
    help="driftloop keeps production ML models accurate over Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# The help lists commands, then groups, each in the order they are registered here.
schema.register(app)
broker.register(app)
topics.register(app)
db.register(app)
serving.register(app)
monitor.register(app)
retrain.register(app)
alerts.register(app)
dashboard.register(app)
scenarios.register(app)
bench.register(app)
demo.register(app)

if __name__ == "__main__":
    app()
