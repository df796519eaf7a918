"""The registry on SQLite and PostgreSQL: one champion by constraint, promotion, rollback, audit."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import update

from retrain.registry import Registry
from retrain.runs import INTERRUPTED, RunStore
from retrain.tables import RegistryVersionRow
from streams.db import Database
from streams.errors import RegistryError, StoreError
from streams.events import RetrainRequested
from tests.retrain.helpers import T0

SHA = "ab" * 32


def _version(registry: Registry, model: str = "m", *, artifact: bool = True) -> int:
    version = registry.create_version(model, trainer="t", hyperparameters={"h": 1},
                                      code_version="test")
    if artifact:
        registry.attach_artifact(model, version, artifact_uri=f"file:///a/{model}/v{version}",
                                 sha256=SHA, metrics={"accuracy": 0.5}, lineage={"n": version})
    return version


def test_the_database_refuses_a_second_champion(database: Database) -> None:
    registry = Registry(database)
    registry.promote("m", _version(registry), actor="me", reason="first")
    second = _version(registry)
    with pytest.raises(StoreError), database.session() as session:
        session.execute(update(RegistryVersionRow)
                        .where(RegistryVersionRow.version == second)
                        .values(status="champion"))
    assert registry.champion("m").version == 1  # type: ignore[union-attr]
    # Another model may have its own champion.
    registry.promote("n", _version(registry, "n"), actor="me", reason="first")
    assert registry.champion("n").version == 1  # type: ignore[union-attr]


def test_promotion_archives_the_old_champion_and_writes_the_event_to_publish(
    database: Database,
) -> None:
    registry = Registry(database)
    v1, v2 = _version(registry), _version(registry)
    first = registry.promote("m", v1, actor="alice", reason="first one")
    event = registry.promote("m", v2, actor="bob", reason="better")
    assert (event.version, event.previous_version, event.sha256) == (2, 1, SHA)
    assert event.artifact_uri == "file:///a/m/v2"
    assert [v.status for v in registry.versions("m")] == ["archived", "champion"]
    audit = registry.audit("m")
    assert [(a.action, a.version, a.from_version, a.actor, a.reason) for a in audit] == [
        ("promote", 2, 1, "bob", "better"), ("promote", 1, None, "alice", "first one")]
    pending = registry.unpublished()
    assert [p.event["event_id"] for p in pending] == [first.event_id, event.event_id]
    registry.mark_published([pending[0].id])
    assert [p.event["event_id"] for p in registry.unpublished()] == [event.event_id]


def test_what_cannot_be_promoted(database: Database) -> None:
    registry = Registry(database)
    bare = _version(registry, artifact=False)
    with pytest.raises(RegistryError, match="no usable artifact"):
        registry.promote("m", bare, actor="me", reason="x")
    failed = _version(registry)
    registry.fail("m", failed, note="boom")
    with pytest.raises(RegistryError, match="no usable artifact"):
        registry.promote("m", failed, actor="me", reason="x")
    with pytest.raises(RegistryError, match="no version 9"):
        registry.promote("m", 9, actor="me", reason="x")
    with pytest.raises(RegistryError, match="unknown model"):
        registry.promote("nope", 1, actor="me", reason="x")
    good = _version(registry)
    registry.promote("m", good, actor="me", reason="x")
    with pytest.raises(RegistryError, match="already the champion"):
        registry.promote("m", good, actor="me", reason="again")
    assert registry.unpublished()[-1].version == good
    assert len(registry.unpublished()) == 1


def test_rollback_restores_the_previous_champion_each_time(database: Database) -> None:
    registry = Registry(database)
    for _ in range(3):
        registry.promote("m", _version(registry), actor="ci", reason="new")
    back = registry.rollback("m", actor="oncall", reason="worse in production")
    assert (back.version, back.from_version) == (2, 3)
    assert [v.status for v in registry.versions("m")] == ["archived", "champion", "rejected"]
    again = registry.rollback("m", actor="oncall", reason="still bad")
    assert (again.version, again.from_version) == (1, 2)
    with pytest.raises(RegistryError, match="no former champion"):
        registry.rollback("m", actor="oncall", reason="nothing left")
    explicit = registry.rollback("m", actor="oncall", reason="v3 after all", to_version=3)
    assert (explicit.version, explicit.from_version) == (3, 1)
    assert registry.audit("m", limit=1)[0].action == "rollback"
    assert registry.audit("m", limit=1)[0].event["type"] == "model_rolled_back"


def test_racing_promotions_leave_exactly_one_champion(database: Database) -> None:
    registry = Registry(database)
    registry.promote("m", _version(registry), actor="ci", reason="first")
    versions = [_version(registry) for _ in range(4)]
    errors: list[Exception] = []

    def promote(v: int) -> None:
        try:
            registry.promote("m", v, actor="ci", reason="race")
        except (RegistryError, StoreError) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = [v.status for v in registry.versions("m")]
    assert statuses.count("champion") == 1
    promoted = [a for a in registry.audit("m") if a.reason == "race"]
    assert len(promoted) == 4 - len(errors)
    assert registry.champion("m").version == promoted[0].version  # type: ignore[union-attr]


def test_one_run_per_model_at_a_time(database: Database) -> None:
    runs = RunStore(database)
    first = runs.start("m", "schedule")
    assert first.skipped is None
    second = runs.start("m", "request", "req-1")
    assert second.skipped is not None
    assert f"run {first.run_id}" in second.skipped
    assert runs.run(second.run_id).status == "skipped"
    assert runs.start("other", "schedule").skipped is None
    runs.finish(first.run_id, status="succeeded", decision="rejected", device="cpu")
    assert runs.start("m", "schedule").skipped is None


def test_recovery_fails_runs_and_candidates_left_by_a_dead_process(database: Database) -> None:
    runs, registry = RunStore(database), Registry(database)
    started = runs.start("m", "schedule")
    registry.create_version("m", trainer="t", hyperparameters={}, code_version="x",
                            run_id=started.run_id)
    recovered = runs.recover()
    assert [r.id for r in recovered] == [started.run_id]
    assert registry.fail_candidates([started.run_id], note=INTERRUPTED) == 1
    assert runs.run(started.run_id).status == "failed"
    assert runs.run(started.run_id).error == INTERRUPTED
    assert registry.version("m", 1).status == "failed"


def test_a_request_is_stored_once_and_claimed_once(database: Database) -> None:
    runs = RunStore(database)
    event = RetrainRequested(event_id="e1", model="m", reasons=("drift",), timestamp=T0)
    assert runs.record_request(event) is True
    assert runs.record_request(event) is False
    assert [r.event_id for r in runs.pending_requests()] == ["e1"]
    claimed = runs.claim_request("e1")
    assert claimed is not None
    assert claimed.reasons == ("drift",)
    assert runs.claim_request("e1") is None
    assert runs.claim_request("unknown") is None
    assert runs.pending_requests() == []


def test_models_summarise_champion_and_versions(database: Database) -> None:
    registry = Registry(database)
    registry.promote("m", _version(registry), actor="ci", reason="first")
    _version(registry)
    registry.ensure_model("n", "regression")
    assert [(s.name, s.task, s.champion, s.versions, s.latest) for s in registry.models()] == [
        ("m", None, 1, 2, 2), ("n", "regression", None, 0, None)]
