"""``driftloop retrain`` (the retraining process) and ``driftloop models ...`` (the registry).

    driftloop retrain                      run the scheduler and the drift-topic consumer
    driftloop retrain --once MODEL         train one challenger now, decide, and exit
    driftloop models list                  every model, its champion and version count
    driftloop models show MODEL            versions, metrics, recent runs and the audit log
    driftloop models promote MODEL VERSION --reason WHY
    driftloop models rollback MODEL [--to VERSION] --reason WHY
"""

from __future__ import annotations

import getpass
import json
import signal
import threading
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from driftloop.entry import fail, load_settings, settle_heap
from streams.errors import DriftloopError
from streams.settings import Settings
from streams.statuses import RunStatus

out = Console()
err = Console(stderr=True)

models_app = typer.Typer(help="Inspect the model registry; promote and roll back by hand.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("retrain")(retrain)
    app.add_typer(models_app, name="models")


def _actor(actor: str | None) -> str:
    return actor or getpass.getuser()


def retrain(
    once: Annotated[str | None, typer.Option(
        help="Train one challenger of this model now, decide, publish and exit.")] = None,
) -> None:
    """Run retraining: scheduled and drift-triggered jobs, promotion, automatic rollback."""
    from driftloop.migrations import migrate, migrate_when_reachable
    from streams.backoff import Stopped

    settings = load_settings()
    try:
        if once is not None:
            migrate(settings)
            _once(settings, once)
            return
        from retrain.process import run_retrain

        stop = threading.Event()

        def _stop(signum: int, _frame: Any) -> None:
            err.print(f"stopping retrain ({signal.Signals(signum).name})")
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        migrate_when_reachable(settings, stop)
        settle_heap()
        run_retrain(settings, stop=stop,
                    on_ready=lambda: err.print("retrain running; Ctrl-C stops it"))
    except Stopped:
        return
    except DriftloopError as exc:
        raise fail(exc) from exc


def _once(settings: Settings, model: str) -> None:
    from retrain.mlp import MLPTrainer
    from retrain.publisher import UpdatePublisher
    from retrain.registry import Registry
    from retrain.runner import Retrainer, Trigger
    from retrain.runs import RunStore
    from retrain.search import OptunaSearcher
    from retrain.trainer import load_trainer
    from streams.db import Database
    from streams.producer import Producer
    from streams.store import EventStore
    from streams.topics import Topic, TopicNames

    db = Database(settings.database_url)
    registry = Registry(db)
    trainer = (MLPTrainer(settings.retrain, show_progress=True)
               if settings.retrain.trainer == "retrain.mlp:MLPTrainer"
               else load_trainer(settings.retrain.trainer, settings.retrain))
    with Producer(settings.kafka, client_id=f"{settings.kafka.client_id}-models") as producer:
        publisher = UpdatePublisher(registry, producer,
                                    TopicNames(settings.topics.prefix)(Topic.MODEL_UPDATES))
        retrainer = Retrainer(settings.retrain, artifacts=settings.artifacts,
                              store=EventStore(db), registry=registry, runs=RunStore(db),
                              trainer=trainer, trainer_name=settings.retrain.trainer,
                              on_change=publisher.publish_pending,
                              search=OptunaSearcher(settings.database_url))
        outcome = retrainer.run(model, Trigger("manual"))
    db.dispose()
    version = f" v{outcome.version}" if outcome.version is not None else ""
    out.print(f"run {outcome.run_id}: {outcome.status} {outcome.decision or ''}{version}"
              f" - {outcome.reason}", soft_wrap=True)
    if outcome.status != RunStatus.SUCCEEDED:
        raise typer.Exit(1)


def _registry(settings: Settings) -> Any:
    from retrain.registry import Registry
    from streams.db import Database

    return Registry(Database(settings.database_url))


@models_app.command("list")
def models_list() -> None:
    """Every registered model with its champion."""
    settings = load_settings()
    try:
        summaries = _registry(settings).models()
    except DriftloopError as exc:
        raise fail(exc) from exc
    table = Table("model", "task", "champion", "versions", "latest")
    for m in summaries:
        table.add_row(m.name, m.task or "", str(m.champion or "-"), str(m.versions),
                      str(m.latest or "-"))
    out.print(table)


def _fmt(metrics: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, int | float))


@models_app.command("show")
def models_show(
    model: str,
    runs: Annotated[int, typer.Option(help="How many recent runs to list.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """A model's versions, recent runs and audit log."""
    from retrain.runs import RunStore

    settings = load_settings()
    registry = _registry(settings)
    try:
        versions = registry.versions(model)
        audit = registry.audit(model, limit=20)
        recent = RunStore(registry.db).runs(model, limit=runs)
    except DriftloopError as exc:
        raise fail(exc) from exc
    if not versions and not recent:
        err.print(f"[red]no such model:[/red] {model}")
        raise typer.Exit(1)
    if as_json:
        doc = {"versions": [v.__dict__ for v in versions], "audit": [a.__dict__ for a in audit],
               "runs": [r.__dict__ for r in recent]}
        out.print_json(json.dumps(doc, default=str))
        return
    table = Table("version", "status", "validation", "holdout decision", "created", "sha256",
                  title=f"{model}: versions")
    for v in versions:
        table.add_row(str(v.version), v.status, _fmt(dict(v.metrics)),
                      str(v.evaluation.get("reason", v.note))[:80],
                      v.created_at.isoformat(timespec="seconds"), (v.sha256 or "")[:12])
    out.print(table)
    table = Table("run", "trigger", "status", "decision", "version", "device", "seconds",
                  "error", title="recent runs")
    for r in recent:
        table.add_row(str(r.id), r.trigger, r.status, r.decision or "", str(r.version or ""),
                      r.device or "", f"{r.seconds:.1f}" if r.seconds is not None else "",
                      (r.error or "")[:60])
    out.print(table)
    table = Table("at", "action", "version", "from", "actor", "reason", "published",
                  title="audit log")
    for a in audit:
        table.add_row(a.at.isoformat(timespec="seconds"), a.action, str(a.version),
                      str(a.from_version or ""), a.actor, a.reason[:80],
                      "yes" if a.published_at else "pending")
    out.print(table)


def _publish(settings: Settings, registry: Any) -> None:
    from retrain.publisher import UpdatePublisher
    from streams.producer import Producer
    from streams.topics import Topic, TopicNames

    try:
        with Producer(settings.kafka, client_id=f"{settings.kafka.client_id}-models") as p:
            UpdatePublisher(registry, p, TopicNames(settings.topics.prefix)(Topic.MODEL_UPDATES)
                            ).publish_pending()
    except DriftloopError as exc:
        err.print(f"[yellow]recorded, not yet published[/yellow] ({exc}); the retrain process "
                  "publishes it when it next runs")


@models_app.command("promote")
def models_promote(
    model: str,
    version: int,
    reason: Annotated[str, typer.Option(help="Why; kept in the audit log.")],
    actor: Annotated[str | None, typer.Option(help="Who; defaults to the OS user.")] = None,
) -> None:
    """Make VERSION the champion of MODEL (its artifact is verified first)."""
    settings = load_settings()
    registry = _registry(settings)
    try:
        event = registry.promote(model, version, actor=_actor(actor), reason=reason)
    except DriftloopError as exc:
        raise fail(exc) from exc
    _publish(settings, registry)
    out.print(f"{model} v{event.version} is the champion (was v{event.previous_version})",
              soft_wrap=True)


@models_app.command("rollback")
def models_rollback(
    model: str,
    reason: Annotated[str, typer.Option(help="Why; kept in the audit log.")],
    to: Annotated[int | None, typer.Option(help="Version to restore; default: the previous "
                                                "champion.")] = None,
    actor: Annotated[str | None, typer.Option(help="Who; defaults to the OS user.")] = None,
) -> None:
    """Restore the previous champion of MODEL (its artifact is verified first); the current one
    is marked rejected."""
    settings = load_settings()
    registry = _registry(settings)
    try:
        event = registry.rollback(model, actor=_actor(actor), reason=reason, to_version=to)
    except DriftloopError as exc:
        raise fail(exc) from exc
    _publish(settings, registry)
    out.print(f"{model} rolled back from v{event.from_version} to v{event.version}",
              soft_wrap=True)
