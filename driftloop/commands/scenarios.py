"""``driftloop scenarios``: the named drifting streams the demo and the benchmark use.

    driftloop scenarios list               name, generator, drift points, delay, feedback rate
    driftloop scenarios show NAME --head 5  the details and the first examples of one
"""

from __future__ import annotations

import itertools
import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from driftloop.entry import fail
from driftloop.lab.scenarios import SCENARIOS, Example, Scenario, get_scenario
from streams.errors import DriftloopError

out = Console(width=None if sys.stdout.isatty() else 160)

scenarios_app = typer.Typer(help="The named drifting streams (River generators).",
                            no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``scenarios`` (``list``, ``show``) to the ``driftloop`` command."""
    app.add_typer(scenarios_app, name="scenarios")


def _drifts(scenario: Scenario) -> str:
    parts = []
    for d in scenario.drifts:
        span = f" (width {d.width:,})" if d.width else ""
        parts.append(f"{d.index:,} {d.kind}{span}: {d.note}")
    return "\n".join(parts)


@scenarios_app.command("list")
def list_scenarios() -> None:
    """Every scenario with its drift points, label delay and feedback rate."""
    table = Table(title="driftloop scenarios", show_lines=True)
    for name, justify in (("name", "left"), ("what happens", "left"), ("generator", "left"),
                          ("events", "right"), ("warm-up", "right"), ("drift points", "left"),
                          ("label delay", "right"), ("feedback", "right"), ("seed", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for s in SCENARIOS.values():
        table.add_row(s.name, s.description, s.generator, f"{s.length:,}", f"{s.warmup:,}",
                      _drifts(s), f"{s.label_delay:,} events", f"{100 * s.feedback_rate:.0f}%",
                      str(s.seed))
    out.print(table)


@scenarios_app.command("show")
def show_scenario(
    name: Annotated[str, typer.Argument(help="Scenario name.")],
    head: Annotated[int, typer.Option(help="How many of the first examples to print.")] = 5,
) -> None:
    """One scenario's details and its first examples, as the app would send them."""
    try:
        s = get_scenario(name)
    except DriftloopError as exc:
        raise fail(exc) from exc
    out.print(f"[bold]{s.name}[/bold]: {s.description}")
    out.print(f"generator: {s.generator}; seed {s.seed}; {s.length:,} events "
              f"({s.warmup:,} warm-up) at {s.events_per_second:g} per second")
    out.print(f"labels arrive {s.label_delay:,} events late for "
              f"{100 * s.feedback_rate:.0f}% of requests")
    out.print("drift points:\n" + _drifts(s))
    for example in _first(s, head):
        out.print(json.dumps({"index": example.index, "features": dict(example.features),
                              "label": example.label, "feedback": example.feedback}),
                  soft_wrap=True, highlight=False, markup=False)


def _first(scenario: Scenario, n: int) -> list[Example]:
    return list(itertools.islice(scenario.examples(), max(0, n)))

