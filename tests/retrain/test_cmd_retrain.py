"""``driftloop retrain --once`` and ``driftloop models ...`` as a person uses them."""

from __future__ import annotations

import getpass
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from driftloop.cli import app
from driftloop.migrations import migrate_database
from streams.artifacts import path_from_uri
from streams.db import Database
from streams.events import ModelPromoted, ModelRolledBack
from tests.conftest import BrokerInfo, Deployment
from tests.retrain.helpers import FAST, MODEL, agrawal, seed_store
from tests.retrain.process_helpers import model_updates


@pytest.fixture
def cli() -> Iterator[Callable[..., Result]]:
    """Invoke ``driftloop`` in this process, as the console script would, keeping our logging."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    runner = CliRunner()

    def invoke(env: dict[str, str], *args: str) -> Result:
        return runner.invoke(app, list(args), env=env)

    yield invoke
    root.handlers[:], root.level = handlers, level


def test_train_once_then_roll_back_and_promote_by_hand(
    tansu: BrokerInfo, deployment_factory, tmp_path: Path, cli  # type: ignore[no-untyped-def]
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    dep: Deployment = deployment_factory(tansu, database={"url": url})
    db = migrate_database(Database(url))
    after = seed_store(db, agrawal(600, function=0), prefix="a")
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("DRIFTLOOP_")}
    env.update({
        "DRIFTLOOP_HOME": str(tmp_path / "home"),
        "DRIFTLOOP_DATABASE__URL": url,
        "DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS": tansu.bootstrap,
        "DRIFTLOOP_TOPICS__PREFIX": dep.names.prefix,
        **{f"DRIFTLOOP_RETRAIN__{k.upper()}": str(v) for k, v in FAST.items()},
    })

    first = cli(env, "retrain", "--once", MODEL)
    assert first.exit_code == 0, first.output
    assert "succeeded promoted v1" in first.stdout
    seed_store(db, agrawal(800, function=2, seed=2), start=after, prefix="b")
    second = cli(env, "retrain", "--once", MODEL)
    assert "succeeded promoted v2" in second.stdout, second.output

    back = cli(env, "models", "rollback", MODEL, "--reason", "alerts in production",
                "--actor", "oncall")
    assert back.exit_code == 0, back.output
    assert f"{MODEL} rolled back from v2 to v1" in back.stdout
    again = cli(env, "models", "promote", MODEL, "2", "--reason", "false alarm")
    assert again.exit_code == 0, again.output
    assert f"{MODEL} v2 is the champion (was v1)" in again.stdout

    listing = cli(env, "models", "list")
    assert MODEL in listing.stdout
    assert "│ 2 " in listing.stdout.split(MODEL, 1)[1].splitlines()[0]
    shown = cli(env, "models", "show", MODEL)
    assert shown.exit_code == 0, shown.output
    assert "audit log" in shown.stdout
    doc = json.loads(cli(env, "models", "show", MODEL, "--json").stdout)
    assert [v["status"] for v in doc["versions"]] == ["archived", "champion"]
    assert [(a["action"], a["actor"], a["reason"]) for a in doc["audit"]][:2] == [
        ("promote", getpass.getuser(), "false alarm"),
        ("rollback", "oncall", "alerts in production")]
    assert [(r["trigger"], r["decision"]) for r in doc["runs"]] == [
        ("manual", "promoted"), ("manual", "promoted")]

    updates = model_updates(dep.settings, expect=4)
    assert [(type(u), u.version) for u in updates] == [
        (ModelPromoted, 1), (ModelPromoted, 2), (ModelRolledBack, 1), (ModelPromoted, 2)]
    assert updates[2].actor == "oncall"
    assert updates[2].reason == "alerts in production"

    # A tampered artifact is refused before anything changes.
    manifest = path_from_uri(updates[0].artifact_uri) / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"version": 1', '"version": 1 '))
    refused = cli(env, "models", "promote", MODEL, "1", "--reason", "try")
    assert refused.exit_code == 1
    assert "does not match" in refused.output
    # So is a rollback to it, named or by default, and the registry is left as it was.
    before = json.loads(cli(env, "models", "show", MODEL, "--json").stdout)
    for to in (["--to", "1"], []):
        back = cli(env, "models", "rollback", MODEL, *to, "--reason", "try")
        assert back.exit_code == 1, back.output
        assert f"{MODEL} v1 cannot become the champion" in back.output
        after = json.loads(cli(env, "models", "show", MODEL, "--json").stdout)
        assert (after["versions"], after["audit"]) == (before["versions"], before["audit"])
    assert len(model_updates(dep.settings, expect=5, timeout_s=1)) == 4
    db.dispose()
