"""A version's lineage: typed, stored as JSON, and every lineage driftloop wrote still loads."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from streams.artifacts import (
    MANIFEST,
    Architecture,
    Manifest,
    Preprocessor,
    artifact_path,
    load_artifact,
    write_artifact,
)
from streams.errors import ArtifactError
from streams.lineage import (
    ConceptFinding,
    ConceptLineage,
    DataLineage,
    Lineage,
    Origin,
    Span,
    SplitLineage,
    TrainingLineage,
    TriggerLineage,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)

#: An artifact written by driftloop before fine-tuning existed (no origin in its lineage).
OLD_ARTIFACT = Path(__file__).parents[1] / "retrain" / "data" / "agrawal-v1"

#: The lineage of a drift run as the runner, the dataset and the MLP trainer wrote it while it
#: was built as nested dicts (before :mod:`streams.lineage`): ISO strings, nulls, every key.
DICT_LINEAGE: dict[str, Any] = {
    "data": {
        "from": "2024-01-01T00:00:00+00:00",
        "to": "2024-01-01T00:10:00+00:00",
        "concept": {
            "since": "2024-01-01T00:05:00+00:00",
            "available": 400,
            "examples": 380,
            "used": True,
            "found_by": {"since": "2024-01-01T00:05:00+00:00", "source": "change_point",
                         "z": 7.31, "error_before": 0.1012, "error_after": 0.4771},
        },
        "source": "labelled_examples",
        "task": "classification",
        "train": {"count": 300, "from": "2024-01-01T00:00:00+00:00",
                  "to": "2024-01-01T00:08:00+00:00", "reviewer_labels": 2},
        "validation": {"count": 80, "from": "2024-01-01T00:08:01+00:00",
                       "to": "2024-01-01T00:10:00+00:00", "reviewer_labels": 0},
        "holdout": {"count": 100, "from": "2024-01-01T00:10:01+00:00",
                    "to": "2024-01-01T00:12:00+00:00", "reviewer_labels": 0},
        "older_sampled": 0,
        "skipped_unlabelled": 3,
        "skipped_schema": 0,
        "features": ["age", "salary"],
    },
    "trigger": {"kind": "request", "request_id": "req-7", "reasons": ["drift"],
                "evidence": {"detectors": [{"name": "adwin", "example_id": 412}]}},
    "parent_version": 2,
    "code_version": "0.1.0+503af95abcde",
    "run_id": 9,
    "origin": {"mode": "fresh", "reason": "an abrupt drift was dated: the champion's knowledge "
                                          "is wrong", "parent_version": None, "checkpoint": None,
               "parent_sha256": None, "fallback": None},
    "training": {"device": "cpu", "learning_rate": 0.003, "epochs_run": 12, "best_epoch": 9,
                 "seconds": 1.234, "rows": 300},
}


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def built() -> Lineage:
    """A lineage built the way the runner and the trainer build one."""
    data = DataLineage(
        from_=at(0), to=at(10), source="labelled_examples", task="regression",
        train=SplitLineage(count=30, from_=at(0), to=at(8), reviewer_labels=1),
        validation=SplitLineage(count=8, from_=at(8), to=at(10)),
        holdout=SplitLineage(count=10, from_=at(10), to=at(12)),
        concept=ConceptLineage(since=at(0), available=48, examples=48, used=True),
        features=("x",),
    )
    data = data.model_copy(update={"concept": data.concept.model_copy(  # type: ignore[union-attr]
        update={"found_by": ConceptFinding(since=at(0), source="change_point", z=6.0)})})
    lineage = Lineage(data=data, trigger=TriggerLineage(kind="manual"), parent_version=1,
                      code_version="test", run_id=4)
    return lineage.model_copy(update={
        "origin": Origin(mode="fine-tuned", reason="a schedule run refreshes", parent_version=1),
        "training": TrainingLineage(device="cpu", epochs_run=3, start_val_loss=0.5)})


def save(root: Path, lineage: Lineage) -> Path:
    """Write a small artifact with ``lineage`` as retraining does; return its folder."""
    pre = Preprocessor.fit([{"x": 1.0}, {"x": 2.0}])
    manifest = Manifest(model="m", version=1, task="regression",
                        architecture=Architecture(name="mlp"), features=pre.features,
                        lineage=lineage)
    path = artifact_path(root, "m", 1)
    write_artifact(path, manifest, {"w": np.zeros(2, dtype=np.float32)})
    return path


def store_lineage(folder: Path, raw: object) -> None:
    """Replace the manifest's lineage with ``raw`` JSON (the weights' digest stays valid)."""
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["lineage"] = raw
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_a_lineage_round_trips_through_a_manifest(tmp_path: Path) -> None:
    lineage = built()
    folder = save(tmp_path, lineage)
    assert load_artifact(folder).manifest.lineage == lineage
    assert Lineage.of(lineage.record()) == lineage

    stored = json.loads((folder / MANIFEST).read_text())["lineage"]
    assert stored["data"]["from"] == "2024-01-01T00:00:00Z", "JSON says 'from', not 'from_'"
    assert "from_" not in stored["data"]
    assert "request_id" not in stored["trigger"], "no nulls are stored"


def test_the_readers_name_what_the_version_learnt_and_saw() -> None:
    lineage = built()
    assert lineage.training_range == Span(at(0), at(10))
    assert lineage.learnt_until == at(10)
    assert lineage.seen_until == at(12), "the holdout counts as seen, not as learnt"
    assert lineage.concept_since == at(0)
    assert Lineage().training_range is None
    assert (Lineage().learnt_until, Lineage().seen_until, Lineage().concept_since) == (
        None, None, None)


def test_a_lineage_written_as_dicts_before_it_was_typed_still_loads(tmp_path: Path) -> None:
    folder = save(tmp_path, Lineage())
    store_lineage(folder, DICT_LINEAGE)
    lineage = load_artifact(folder).manifest.lineage

    assert lineage.training_range == Span(at(0), at(10))
    assert lineage.learnt_until == at(10)
    assert lineage.seen_until == at(12)
    assert lineage.concept_since == at(5)
    assert lineage.concept is not None
    assert (lineage.concept.examples, lineage.concept.available) == (380, 400)
    assert lineage.concept.found_by == ConceptFinding(
        since=at(5), source="change_point", z=7.31, error_before=0.1012, error_after=0.4771)
    assert (lineage.parent_version, lineage.run_id) == (2, 9)
    assert lineage.trigger == TriggerLineage(
        kind="request", request_id="req-7", reasons=("drift",),
        evidence={"detectors": [{"name": "adwin", "example_id": 412}]})
    assert lineage.origin is not None
    assert (lineage.origin.mode, lineage.origin.parent_version) == ("fresh", None)
    assert lineage.training == TrainingLineage(device="cpu", learning_rate=0.003, epochs_run=12,
                                               best_epoch=9, seconds=1.234, rows=300)
    assert lineage.data is not None
    assert lineage.data.holdout == SplitLineage(count=100, from_=at(10) + timedelta(seconds=1),
                                                to=at(12))


def test_the_oldest_artifact_loads_with_its_span_and_no_origin() -> None:
    lineage = load_artifact(OLD_ARTIFACT).manifest.lineage
    assert lineage.training_range == Span(T0, T0 + timedelta(minutes=3, seconds=44))
    assert lineage.seen_until == T0 + timedelta(minutes=4, seconds=59)
    assert lineage.origin is None
    assert lineage.concept is None
    assert (lineage.parent_version, lineage.run_id) == (None, 1)
    assert lineage.training is not None
    assert lineage.training.learning_rate is None, "written before the trainer noted it"


def test_a_lineage_without_the_learnt_span_reads_it_from_its_splits() -> None:
    # Written before ``data.from``/``to`` were recorded: only the splits name times.
    raw = {k: v for k, v in DICT_LINEAGE["data"].items() if k not in {"from", "to", "concept"}}
    lineage = Lineage.of({"data": raw})
    assert lineage.training_range == Span(at(0), at(10))
    assert lineage.seen_until == at(12)
    assert lineage.concept_since is None


def test_missing_sections_are_none() -> None:
    lineage = Lineage.of({"trigger": {"kind": "schedule"}})
    assert (lineage.data, lineage.origin, lineage.training, lineage.parent_version) == (
        None, None, None, None)
    assert Lineage.of(None) == Lineage.of({}) == Lineage()


def test_unknown_keys_are_kept_and_written_back(tmp_path: Path) -> None:
    raw = {**DICT_LINEAGE, "from_the_future": {"x": 1},
           "data": {**DICT_LINEAGE["data"], "weights": "by recency"},
           "training": {**DICT_LINEAGE["training"], "trees": 200},
           "origin": {**DICT_LINEAGE["origin"], "warm_start": True}}
    folder = save(tmp_path, Lineage())
    store_lineage(folder, raw)
    lineage = load_artifact(folder).manifest.lineage
    assert lineage.learnt_until == at(10)
    record = lineage.record()
    assert record["from_the_future"] == {"x": 1}
    assert record["data"]["weights"] == "by recency"  # type: ignore[call-overload, index]
    assert record["training"]["trees"] == 200  # type: ignore[call-overload, index]
    assert "warm_start" not in record["origin"], "an origin ignores what it does not know"
    # A trainer adds its own notes the same way.
    noted = lineage.model_copy(update={"notes": "gradient boosted"})
    assert Lineage.of(noted.record()).model_extra == {"from_the_future": {"x": 1},
                                                      "notes": "gradient boosted"}


def test_a_time_without_an_offset_is_utc() -> None:
    lineage = Lineage.of({"data": {"from": "2024-01-01T00:00:00", "to": "2024-01-01T00:10:00Z"}})
    assert lineage.training_range == Span(at(0), at(10))
    assert lineage.training_range.start.tzinfo is not None  # type: ignore[union-attr]


@pytest.mark.parametrize(("data", "where"), [
    ({"from": "yesterday", "to": "2024-01-01T00:10:00Z"}, "data.from"),
    ({"from": "2024-01-01T00:10:00Z", "to": "2024-01-01T00:00:00Z"}, "data: .*before"),
    ({"holdout": {"count": "many"}}, "data.holdout.count"),
    ({"concept": {"since": "the drift"}}, "data.concept.since"),
    ("all of it", "data"),
])
def test_a_malformed_lineage_is_an_artifact_error(tmp_path: Path, data: object,
                                                  where: str) -> None:
    with pytest.raises(ArtifactError, match=f"invalid lineage at {where}"):
        Lineage.of({"data": data})
    folder = save(tmp_path, Lineage())
    store_lineage(folder, {"data": data})
    with pytest.raises(ArtifactError, match=f"invalid manifest in .*: lineage.{where}"):
        load_artifact(folder)


def test_a_malformed_origin_is_an_artifact_error(tmp_path: Path) -> None:
    folder = tmp_path / "v1"
    shutil.copytree(OLD_ARTIFACT, folder)
    raw = json.loads((folder / MANIFEST).read_text())["lineage"]
    store_lineage(folder, {**raw, "origin": {"mode": "sideways"}})
    with pytest.raises(ArtifactError, match="lineage.origin.mode"):
        load_artifact(folder)
