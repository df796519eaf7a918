"""``driftloop dashboard``: the Streamlit dashboard (see :mod:`dashboard.process`).

``driftloop dashboard`` migrates the database and serves the dashboard on
``dashboard.port``; ``driftloop dashboard hash-password`` prints a hash for
``dashboard.users``.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from driftloop.entry import console, fail, load_settings, stop_on_signals
from streams.errors import DriftloopError

dashboard_app = typer.Typer(
    help="The Streamlit dashboard: drift, models, jobs and label corrections.",
    invoke_without_command=True,
)



@dashboard_app.callback()
def dashboard(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(help="Port (default: dashboard.port).")] = None,
    address: Annotated[
        str | None, typer.Option(help="Listen address (default: dashboard.address).")
    ] = None,
) -> None:
    """Serve the dashboard until interrupted."""
    if ctx.invoked_subcommand is not None:
        return
    from dashboard.process import run_dashboard
    from driftloop.migrations import migrate_when_reachable
    from streams.backoff import Stopped

    settings = load_settings()
    overrides = {k: v for k, v in (("port", port), ("address", address)) if v is not None}
    if overrides:
        settings = settings.model_copy(
            update={"dashboard": settings.dashboard.model_copy(update=overrides)}
        )
    stop = stop_on_signals("stopping the dashboard")
    try:
        migrate_when_reachable(settings, stop).dispose()
    except Stopped:
        return
    except DriftloopError as exc:
        raise fail(exc) from exc
    config = settings.dashboard
    console.print(f"dashboard on [bold]http://{config.address}:{config.port}[/bold] "
                  f"(database {settings.database_url.split('://', 1)[0]}, "
                  f"{len(config.users)} user(s), viewing "
                  f"{'open' if config.open_viewing else 'signed-in only'})")
    try:
        code = run_dashboard(settings, environ=os.environ, stop=stop)
    except DriftloopError as exc:
        raise fail(exc) from exc
    raise typer.Exit(code)


@dashboard_app.command("hash-password")
def hash_password_command(
    iterations: Annotated[int, typer.Option(help="PBKDF2 iterations.")] = 600_000,
) -> None:
    """Ask for a password and print its hash, for DRIFTLOOP_DASHBOARD__USERS."""
    from dashboard.auth import hash_password

    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        hashed = hash_password(password, iterations=iterations)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    typer.echo(hashed)


def register(app: typer.Typer) -> None:
    """Add ``dashboard`` (and ``dashboard hash-password``) to the ``driftloop`` command."""
    app.add_typer(dashboard_app, name="dashboard")
