"""``driftloop bench adaptation``: the real system and the baselines over one scenario, as a
table and a PNG plot.

    driftloop bench adaptation --scenario abrupt
    driftloop bench adaptation --scenario gradual --length 10000 --method hat --method periodic
    driftloop bench adaptation --scenario abrupt --no-system      the baselines only

First the real system runs over the scenario (broker, database, serving, monitor and
retraining as separate processes, :mod:`driftloop.local.bench`) at the scenario's pace times
``--speed``; then every baseline runs prequentially over the same stream, with the same label
delay and feedback rate (see :mod:`driftloop.lab.prequential`). The table goes to stdout; the plot,
a JSON dump and a Markdown table go to ``--out-dir`` (default ``<home>/bench``) as
``adaptation-<scenario>.{png,json,md}``, rewritten after the real system and after each
baseline, so what was measured is kept whatever fails later. A method that fails (the real
system's run included) gets a row with its error and the others still run; the command then
exits with status 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from driftloop import logs
from driftloop.entry import fail, load_settings
from driftloop.lab.adaptation import (
    DEFAULT_TOLERANCE,
    DEFAULT_WINDOW,
    AdaptationReport,
    MethodResult,
    failed,
    run_adaptation,
)
from driftloop.lab.learners import Method, default_methods
from driftloop.lab.scenarios import Scenario, get_scenario
from streams.errors import DriftloopError
from streams.settings import Settings

# Wide enough for the table when stdout is not a terminal (rich would assume 80 columns).
out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)

bench_app = typer.Typer(help="Measure driftloop against baselines.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``bench`` (with ``bench adaptation``) to the ``driftloop`` command."""
    app.add_typer(bench_app, name="bench")


def run_baselines(
    settings: Settings,
    scenario: Scenario,
    *,
    methods: Sequence[str] = (),
    period: int = 2_000,
    window: int = DEFAULT_WINDOW,
    tolerance: float = DEFAULT_TOLERANCE,
    jobs: int = 1,
    console: Console = err,
    done: Callable[[MethodResult], None] | None = None,
) -> AdaptationReport:
    """Run the chosen baselines (all when ``methods`` is empty) with a progress bar;
    ``done`` is called with each result as it comes."""
    chosen = _choose(default_methods(settings.retrain, scenario, period=period), methods)
    events = scenario.length - scenario.warmup
    with Progress(TextColumn("{task.description:<42}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[note]}"), TimeElapsedColumn(), console=console,
                  transient=False) as bar:
        tasks = {m.key: bar.add_task(m.name, total=events, note="") for m in chosen}

        def progress(method: Method, n: int) -> None:
            bar.update(tasks[method.key], completed=n)

        def finished(result: MethodResult) -> None:
            bar.update(tasks[result.key], completed=events,
                       note=f"{headline(result)} in {result.seconds:.0f}s")
            if done is not None:
                done(result)

        return run_adaptation(scenario, chosen, window=window, tolerance=tolerance,
                              jobs=jobs, progress=progress, done=finished)


def headline(result: MethodResult) -> str:
    """"91.4%", "MAE 1.470" or "failed"."""
    if result.error is not None:
        return "failed"
    if result.task == "regression":
        return "MAE -" if result.mae is None else f"MAE {result.mae:.3f}"
    return "-" if result.accuracy is None else f"{100 * result.accuracy:.1f}%"


def _run_system(settings: Settings, scenario: Scenario, folder: Path, *, speed: float,
                broker: str, database: str | None, window: int, tolerance: float
                ) -> MethodResult:
    """The real system's run, with the demo's key moments on stderr; a run that fails gives
    a failed result (an interrupted one raises)."""
    import signal
    import threading

    from driftloop.local.bench import NAME, run_system

    workdir = (folder / f"system-{scenario.name}").resolve()
    logs.to_file(workdir / "bench.log", "INFO")
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT,
                                                                       signal.SIGTERM)}
    err.rule(f"the real system over {scenario.name}")
    try:
        outcome = run_system(settings, scenario, workdir=workdir, console=err,
                             broker=broker, database_url=database,  # type: ignore[arg-type]
                             speed=speed, window=window, tolerance=tolerance, stop=stop)
    except DriftloopError as exc:
        if stop.is_set():
            raise DriftloopError("interrupted") from exc
        err.print(f"the real system failed: {exc}", style="red")
        err.rule("baselines")
        return failed("driftloop", NAME, scenario, str(exc))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if stop.is_set():
        raise DriftloopError("interrupted")
    lost = f"; {outcome.unanswered:,} requests unanswered" if outcome.unanswered else ""
    cpu = outcome.result.train_cpu_s
    spent = "" if cpu is None else f"; retrain process CPU {cpu:.1f}s"
    err.print(f"real system: {len(outcome.run.predictions):,} predictions, detections at "
              f"{', '.join(f'{d:,}' for d in outcome.detections) or 'none'}; promotions "
              + ", ".join(f"v{v} at {i:,}" for i, v in outcome.promotions) + lost + spent)
    err.rule("baselines")
    return outcome.result


def _choose(available: list[Method], keys: Sequence[str]) -> list[Method]:
    if not keys:
        return available
    by_key = {m.key: m for m in available}
    unknown = [k for k in keys if k not in by_key]
    if unknown:
        raise typer.BadParameter(
            f"unknown method {', '.join(unknown)}; choose from {', '.join(by_key)}",
            param_hint="--method",
        )
    return [by_key[k] for k in keys]


def show(report: AdaptationReport, console: Console = out) -> None:
    """Print the report's table."""
    from driftloop.lab.report import caption, headers, legend, method_rows

    table = Table(title=f"adaptation: {report.scenario.name}", caption=caption(report),
                  caption_justify="left")
    for i, header in enumerate(headers(report)):
        table.add_column(header, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for result in report.results:
        rows = method_rows(result, system=result.key == "driftloop")
        for k, row in enumerate(rows):
            table.add_row(*row, end_section=k == len(rows) - 1)
    console.print(table)
    console.print(legend(report), style="dim")


def write(report: AdaptationReport, out_dir: Path) -> list[Path]:
    """Write the PNG plot, the JSON dump and the Markdown table; return their paths."""
    from driftloop.lab.plot import plot_accuracy
    from driftloop.lab.report import dumps, markdown

    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"adaptation-{report.scenario.name}"
    png = plot_accuracy(report, stem.with_suffix(".png"))
    data = stem.with_suffix(".json")
    data.write_text(dumps(report))
    table = stem.with_suffix(".md")
    table.write_text(markdown(report))
    return [png, data, table]


@bench_app.command("adaptation")
def adaptation(
    scenario: Annotated[str, typer.Option(help="Scenario name (driftloop scenarios list).")],
    length: Annotated[int | None, typer.Option(
        help="Resize the scenario to this many events (drift points scale along).")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    method: Annotated[list[str] | None, typer.Option(
        help="Run only these methods (initial, periodic, hat, arf, and logreg or, for a "
             "regression, linreg); repeatable.")] = None,
    period: Annotated[int, typer.Option(
        help="Events between two refits of the periodic-retraining baseline.")] = 2_000,
    window: Annotated[int, typer.Option(help="Events per accuracy window.")] = DEFAULT_WINDOW,
    tolerance: Annotated[float, typer.Option(
        help="Accuracy within this of the pre-drift level counts as recovered (a "
             "regression's MAE: at most this share above it).")] = (
        DEFAULT_TOLERANCE),
    jobs: Annotated[int, typer.Option(help="Methods run at once, in worker processes.")] = 1,
    out_dir: Annotated[Path | None, typer.Option(
        help="Where the PNG, JSON and Markdown go [default: <home>/bench].")] = None,
    system: Annotated[bool, typer.Option(
        help="Run the real system (broker, processes, database) too.")] = True,
    speed: Annotated[float, typer.Option(
        help="The real system's pace relative to the scenario's 100 events per second.")] = 1.0,
    broker: Annotated[str, typer.Option(
        help="The real system's broker: tansu, kafka or external.")] = "tansu",
    database: Annotated[str | None, typer.Option(
        help="The real system's database URL [default: SQLite in the working folder].")] = None,
) -> None:
    """The real system, online learners and retraining baselines over one scenario, with
    delayed labels."""
    settings = load_settings()
    if broker not in ("tansu", "kafka", "external"):
        raise typer.BadParameter("choose tansu, kafka or external", param_hint="--broker")
    try:
        chosen = get_scenario(scenario)
        if length is not None:
            chosen = chosen.resized(length)
        if seed is not None:
            chosen = chosen.reseeded(seed)
        # Refuse unknown methods before the real system's long run.
        _choose(default_methods(settings.retrain, chosen, period=period), method or ())
    except DriftloopError as exc:
        raise fail(exc) from exc
    folder = out_dir or settings.home / "bench"
    measured: list[MethodResult] = []

    def keep(result: MethodResult) -> None:
        """Write what was measured so far, so that a later failure loses nothing."""
        measured.append(result)
        write(AdaptationReport(chosen, window, tuple(measured)), folder)

    try:
        if system:
            keep(_run_system(settings, chosen, folder, speed=speed, broker=broker,
                             database=database, window=window, tolerance=tolerance))
        system_results = tuple(measured)
        baselines = run_baselines(settings, chosen, methods=method or (), period=period,
                                  window=window, tolerance=tolerance, jobs=jobs, done=keep)
    except DriftloopError as exc:
        raise fail(exc) from exc
    # In table order (worker processes finish in any order).
    report = AdaptationReport(chosen, window, (*system_results, *baselines.results))
    show(report)
    for path in write(report, folder):
        err.print(f"wrote {path}")
    broken = [r.name for r in report.results if r.error is not None]
    if broken:
        err.print(f"failed: {', '.join(broken)}", style="red")
        raise typer.Exit(1)
