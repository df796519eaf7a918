"""Which promoted version to serve, the canary, and a swap that keeps the old model on failure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from serving.canary import CanaryError, RecentRequests, run_canary, synthetic_rows
from serving.model import ModelHolder, load_model
from serving.swap import Champion, Swapper, history, settle, wanted
from streams.artifacts import Preprocessor
from streams.errors import ArtifactError
from streams.nn import pick_device
from tests.serving.artifacts import make_artifact, promoted, rolled_back, row

CPU = pick_device("cpu")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _champion(version: int, sha: str = "a", *, rollback: bool = False, at: int = 0) -> Champion:
    return Champion("churn", version, f"file:///v{version}", sha * 64 if len(sha) == 1 else sha,
                    rollback, T0 + timedelta(seconds=at))


@pytest.fixture
def swapper() -> Swapper:
    return Swapper("churn", ModelHolder(), RecentRequests(8), device=CPU)


def test_promotions_only_move_forward_and_rollbacks_go_anywhere(tmp_path: Path) -> None:
    serving = load_model(make_artifact(tmp_path, 5).uri, device=CPU)
    digest = serving.sha256
    assert wanted(None, _champion(1))
    assert wanted(serving, _champion(6))
    assert not wanted(serving, _champion(4))
    assert not wanted(serving, _champion(5, digest))
    assert wanted(serving, _champion(5, "b")), "same version, other artifact: the registry wins"
    assert wanted(serving, _champion(4, rollback=True))
    assert not wanted(serving, _champion(5, digest, rollback=True))


def test_a_run_of_events_settles_on_where_it_leads() -> None:
    v2 = _champion(2)
    assert settle(None, [_champion(1)]) == _champion(1)
    assert settle(v2, []) is None
    assert settle(v2, [_champion(4), _champion(3)]) == _champion(4), "a stale one comes late"
    assert settle(v2, [_champion(3), _champion(2, rollback=True)]) is None, "back where it was"
    assert settle(v2, [_champion(3), _champion(1, rollback=True)]) == _champion(
        1, rollback=True)


def test_the_swapper_only_follows_its_own_model(swapper: Swapper) -> None:
    other = Champion("fraud", 1, "file:///x", "a" * 64, False, T0)
    assert swapper.next([other]) is None
    assert swapper.next([other, _champion(1)]) == _champion(1)


def test_history_orders_by_event_time_keeping_log_order_on_ties() -> None:
    a, b, c = _champion(1, at=5), _champion(2, at=1), _champion(3, at=5)
    assert history([a, b, c]) == [b, a, c]


def test_champion_is_read_from_promotions_and_rollbacks(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path, 2)
    up = Champion.of(promoted(artifact))
    back = Champion.of(rolled_back(artifact, from_version=3))
    assert up is not None
    assert back is not None
    assert (up.version, up.uri, up.sha256, up.rollback) == (2, artifact.uri, artifact.sha256,
                                                            False)
    assert back.rollback
    assert Champion.of(object()) is None


def test_a_swap_replaces_the_reference_only_after_verification(
    tmp_path: Path, swapper: Swapper
) -> None:
    v1, v2 = make_artifact(tmp_path, 1), make_artifact(tmp_path, 2)
    first = swapper.swap_to(Champion.of(promoted(v1)))  # type: ignore[arg-type]
    assert swapper.holder.current is first
    assert first.version == 1
    tampered = replace(Champion.of(promoted(v2)), sha256="f" * 64)  # type: ignore[type-var]
    with pytest.raises(ArtifactError, match="does not match the expected"):
        swapper.swap_to(tampered)
    assert swapper.holder.current is first
    mislabelled = replace(Champion.of(promoted(v2)), version=7)  # type: ignore[type-var]
    with pytest.raises(ArtifactError, match="holds v2, the event promoted v7"):
        swapper.swap_to(mislabelled)
    other = make_artifact(tmp_path, 3, model="fraud")
    with pytest.raises(ArtifactError, match="for model 'fraud'"):
        swapper.swap_to(replace(Champion.of(promoted(other)), model="churn"))  # type: ignore[type-var]
    assert swapper.holder.current is first
    assert swapper.swap_to(Champion.of(promoted(v2))).version == 2  # type: ignore[arg-type]


def test_a_model_with_non_finite_outputs_fails_its_canary(
    tmp_path: Path, swapper: Swapper
) -> None:
    good = swapper.swap_to_path(make_artifact(tmp_path, 1).path)
    with pytest.raises(CanaryError, match="non-finite"):
        swapper.swap_to(Champion.of(promoted(make_artifact(tmp_path, 2, nan=True))))  # type: ignore[arg-type]
    assert swapper.holder.current is good


def test_the_canary_uses_recent_traffic_and_refuses_a_schema_that_does_not_fit(
    tmp_path: Path,
) -> None:
    current = load_model(make_artifact(tmp_path, 1).uri, device=CPU)
    narrower = Preprocessor([f for f in current.preprocessor.features if f.name != "y"])
    candidate = load_model(make_artifact(tmp_path, 2, pre=narrower).uri, device=CPU)
    recent = [row(i) for i in range(10)]
    assert run_canary(load_model(make_artifact(tmp_path, 3).uri, device=CPU), current,
                      recent) == 10
    with pytest.raises(CanaryError, match="rejects 10 of 10 recent requests"):
        run_canary(candidate, current, recent)
    # Traffic already moved to the new schema: the current model rejects it, the new one fits.
    moved = [{k: v for k, v in r.items() if k != "y"} for r in recent]
    assert run_canary(candidate, current, moved) == 10


def test_without_traffic_the_canary_is_synthetic_and_covers_every_category(
    tmp_path: Path,
) -> None:
    model = load_model(make_artifact(tmp_path, 1).uri, device=CPU)
    rows = synthetic_rows(model.manifest.features)
    assert {r["plan"] for r in rows} == {"free", "pro", "team"}
    assert all(model.accepts(r) for r in rows)
    assert run_canary(model, None, []) == len(rows)


def test_recent_requests_keep_only_the_newest() -> None:
    recent = RecentRequests(3)
    recent.extend([{"i": i} for i in range(5)])
    recent.extend([{"i": 5}])
    assert recent.snapshot() == [{"i": 3}, {"i": 4}, {"i": 5}]
