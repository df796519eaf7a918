"""The registry on SQLite and PostgreSQL: one champion by constraint, promotion, rollback, audit,
verified artifacts, and refused swaps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import JSON, column, table, update

from retrain.registry import SWAP_CLOCK_SKEW, Registry
from retrain.runs import INTERRUPTED, RunStore
from retrain.tables import RegistryVersionRow
from streams.db import Database
from streams.errors import ArtifactError, RegistryError, StoreError
from streams.events import RetrainRequested, SwapFailed
from streams.lineage import Lineage
from tests.retrain.helpers import T0, attach_artifact, tamper


@pytest.fixture
def registry(database: Database) -> Registry:
    return Registry(database)


@pytest.fixture
def new_version(registry: Registry, tmp_path: Path) -> Callable[..., int]:
    """Create the next version of a model, with a real artifact unless ``artifact=False``."""

    def make(model: str = "m", *, artifact: bool = True) -> int:
        version = registry.create_version(model, trainer="t", hyperparameters={"h": 1},
                                          code_version="test")
        if artifact:
            attach_artifact(registry, tmp_path / "artifacts", model, version,
                            metrics={"accuracy": 0.5}, lineage={"n": version})
        return version

    return make


def test_the_database_refuses_a_second_champion(
    database: Database, registry: Registry, new_version: Callable[..., int]
) -> None:
    registry.promote("m", new_version(), actor="me", reason="first")
    second = new_version()
    with pytest.raises(StoreError), database.session() as session:
        session.execute(update(RegistryVersionRow)
                        .where(RegistryVersionRow.version == second)
                        .values(status="champion"))
    assert registry.champion("m").version == 1  # type: ignore[union-attr]
    # Another model may have its own champion.
    registry.promote("n", new_version("n"), actor="me", reason="first")
    assert registry.champion("n").version == 1  # type: ignore[union-attr]


def test_promotion_archives_the_old_champion_and_writes_the_event_to_publish(
    registry: Registry, new_version: Callable[..., int]
) -> None:
    v1, v2 = new_version(), new_version()
    first = registry.promote("m", v1, actor="alice", reason="first one")
    event = registry.promote("m", v2, actor="bob", reason="better")
    assert (event.version, event.previous_version) == (2, 1)
    assert (event.artifact_uri, event.sha256) == (registry.version("m", 2).artifact_uri,
                                                  registry.version("m", 2).sha256)
    assert [v.status for v in registry.versions("m")] == ["archived", "champion"]
    audit = registry.audit("m")
    assert [(a.action, a.version, a.from_version, a.actor, a.reason) for a in audit] == [
        ("promote", 2, 1, "bob", "better"), ("promote", 1, None, "alice", "first one")]
    pending = registry.unpublished()
    assert [p.event["event_id"] for p in pending] == [first.event_id, event.event_id]
    registry.mark_published([pending[0].id])
    assert [p.event["event_id"] for p in registry.unpublished()] == [event.event_id]


def test_what_cannot_be_promoted(
    registry: Registry, new_version: Callable[..., int]
) -> None:
    bare = new_version(artifact=False)
    with pytest.raises(RegistryError, match="no usable artifact"):
        registry.promote("m", bare, actor="me", reason="x")
    failed = new_version()
    registry.fail("m", failed, note="boom")
    with pytest.raises(RegistryError, match="no usable artifact"):
        registry.promote("m", failed, actor="me", reason="x")
    with pytest.raises(RegistryError, match="no version 9"):
        registry.promote("m", 9, actor="me", reason="x")
    with pytest.raises(RegistryError, match="unknown model"):
        registry.promote("nope", 1, actor="me", reason="x")
    good = new_version()
    registry.promote("m", good, actor="me", reason="x")
    with pytest.raises(RegistryError, match="already the champion"):
        registry.promote("m", good, actor="me", reason="again")
    assert registry.unpublished()[-1].version == good
    assert len(registry.unpublished()) == 1


def test_rollback_restores_the_previous_champion_each_time(
    registry: Registry, new_version: Callable[..., int]
) -> None:
    for _ in range(3):
        registry.promote("m", new_version(), actor="ci", reason="new")
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


def test_racing_promotions_leave_exactly_one_champion(
    registry: Registry, new_version: Callable[..., int]
) -> None:
    registry.promote("m", new_version(), actor="ci", reason="first")
    versions = [new_version() for _ in range(4)]
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


def test_models_summarise_champion_and_versions(
    registry: Registry, new_version: Callable[..., int]
) -> None:
    registry.promote("m", new_version(), actor="ci", reason="first")
    new_version()
    registry.ensure_model("n", "regression")
    assert [(s.name, s.task, s.champion, s.versions, s.latest) for s in registry.models()] == [
        ("m", None, 1, 2, 2), ("n", "regression", None, 0, None)]


def test_a_versions_lineage_is_stored_typed_and_a_corrupt_one_is_refused(
    registry: Registry, database: Database
) -> None:
    lineage = Lineage.of({"data": {"from": T0.isoformat(), "to": T0.isoformat()},
                          "trigger": {"kind": "manual"}, "a_newer_writers_key": [1]})
    version = registry.create_version("m", trainer="t", hyperparameters={}, code_version="test",
                                      lineage=lineage)
    assert registry.version("m", version).lineage == lineage
    assert registry.version("m", version).lineage.learnt_until == T0

    raw = table("registry_versions", column("lineage", JSON))  # as another writer sees it
    with database.session() as session:
        session.execute(update(raw).values(lineage={"data": {"from": "not a time"}}))
    with pytest.raises(ArtifactError, match="invalid lineage at data.from"):
        registry.version("m", version)


def _snapshot(registry: Registry) -> tuple[list, list]:
    """Everything a change could touch: every version row and every audit row."""
    return registry.versions("m"), registry.audit("m")


def test_a_tampered_artifact_never_becomes_the_champion(
    registry: Registry, new_version: Callable[..., int]
) -> None:
    v1, v2, v3 = new_version(), new_version(), new_version()
    registry.promote("m", v1, actor="ci", reason="first")
    registry.promote("m", v2, actor="ci", reason="better")
    for version in (v1, v3):
        tamper(registry.version("m", version).artifact_uri)
    before = _snapshot(registry)

    for change in (
        lambda: registry.promote("m", v3, actor="alice", reason="by hand"),
        lambda: registry.rollback("m", actor="oncall", reason="to the previous one"),
        lambda: registry.rollback("m", actor="oncall", reason="to v1", to_version=v1),
    ):
        with pytest.raises(RegistryError, match="failed verification.*nothing was changed"):
            change()
        assert _snapshot(registry) == before
    assert registry.champion("m").version == v2  # type: ignore[union-attr]


def test_an_artifact_of_another_version_is_refused(
    registry: Registry, new_version: Callable[..., int]
) -> None:
    v1, v2 = new_version(), new_version(artifact=False)
    one = registry.version("m", v1)
    registry.attach_artifact("m", v2, artifact_uri=one.artifact_uri or "", sha256=one.sha256 or "",
                             metrics={}, lineage=Lineage())
    with pytest.raises(RegistryError, match="holds m v1"):
        registry.promote("m", v2, actor="ci", reason="copied")
    assert registry.champion("m") is None
    assert registry.audit("m") == []


def _swap_failed(
    version: int, *, at: datetime | None = None, instance: str = "serve-1"
) -> SwapFailed:
    """What a serving process publishes when it refuses ``version`` (now, unless ``at``)."""
    return SwapFailed(event_id=f"sf-{version}-{instance}", model="m", version=version,
                      instance=instance, error="canary produced NaN",
                      timestamp=at or datetime.now(UTC))


def test_a_refused_swap_restores_the_version_serving_kept(
    registry: Registry, new_version: Callable[..., int]
) -> None:
    v1, v2 = new_version(), new_version()
    registry.promote("m", v1, actor="ci", reason="first")
    registry.promote("m", v2, actor="ci", reason="better")

    event = registry.refused(_swap_failed(v2))

    assert event is not None
    assert (event.version, event.from_version, event.actor) == (v1, v2, "serving:serve-1")
    assert event.reason == "serving refused v2: canary produced NaN"
    assert registry.champion("m").version == v1  # type: ignore[union-attr]
    assert [v.status for v in registry.versions("m")] == ["champion", "refused"]
    assert registry.version("m", v2).note == "serving refused v2: canary produced NaN"
    last = registry.audit("m", limit=1)[0]
    assert (last.action, last.version, last.from_version) == ("rollback", v1, v2)
    assert last.event == event.model_dump(mode="json")
    assert registry.unpublished()[-1].event["event_id"] == event.event_id
    # A second serving process refusing the same version, or a replay, changes nothing.
    before = _snapshot(registry)
    assert registry.refused(_swap_failed(v2, instance="serve-2")) is None
    assert registry.refused(_swap_failed(v2)) is None
    assert _snapshot(registry) == before
    # A refused version is never picked by a plain rollback.
    v3 = new_version()
    registry.promote("m", v3, actor="ci", reason="newer")
    assert registry.rollback("m", actor="oncall", reason="back").version == v1
    # ... nor made champion again, by hand or otherwise.
    with pytest.raises(RegistryError, match="m v2 cannot become the champion: serving refused"):
        registry.rollback("m", actor="oncall", reason="try v2", to_version=v2)


def test_a_refusal_older_than_the_crowning_is_a_replay(
    registry: Registry, new_version: Callable[..., int]
) -> None:
    v1, v2 = new_version(), new_version()
    registry.promote("m", v1, actor="ci", reason="first")
    registry.promote("m", v2, actor="ci", reason="better")
    since = registry.version("m", v2).champion_since
    assert since is not None
    before = _snapshot(registry)
    assert registry.refused(_swap_failed(v2, at=since - SWAP_CLOCK_SKEW * 2)) is None
    assert registry.refused(_swap_failed(v1)) is None, "v1 is not the champion"
    assert _snapshot(registry) == before


def test_a_refused_first_champion_leaves_no_champion(
    registry: Registry, new_version: Callable[..., int]
) -> None:
    v1 = new_version()
    registry.promote("m", v1, actor="ci", reason="first")
    audit = registry.audit("m")
    assert registry.refused(_swap_failed(v1)) is None
    assert registry.champion("m") is None
    assert registry.version("m", v1).status == "refused"
    assert registry.audit("m") == audit


def test_a_refused_swap_whose_kept_version_fails_verification_leaves_no_champion(
    registry: Registry, new_version: Callable[..., int]
) -> None:
    v1, v2 = new_version(), new_version()
    registry.promote("m", v1, actor="ci", reason="first")
    registry.promote("m", v2, actor="ci", reason="better")
    tamper(registry.version("m", v1).artifact_uri)
    assert registry.refused(_swap_failed(v2)) is None
    assert [v.status for v in registry.versions("m")] == ["archived", "refused"]
