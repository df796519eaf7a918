"""Where a run's weights begin: the rule, the check of a start against the data, and the
origin a version's lineage records (read from manifests old and new)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from retrain.dataset import DatasetPlan, build_dataset
from retrain.start import StartChoice, checkpoint_folder, choose_start, mismatch
from streams.artifacts import MANIFEST, Manifest, load_artifact
from streams.errors import ArtifactError
from streams.lineage import Origin
from tests.retrain.helpers import agrawal, examples, fast_settings

#: An artifact written by driftloop before fine-tuning existed (no origin in its lineage).
OLD_ARTIFACT = Path(__file__).parent / "data" / "agrawal-v1"


@pytest.mark.parametrize(("policy", "trigger", "dated", "predates", "fine_tune", "why"), [
    ("refreshes", "schedule", False, False, True, "a schedule run refreshes"),
    ("refreshes", "follow-up", False, False, True, "a follow-up run refreshes"),
    ("refreshes", "refresh", False, False, True, "a refresh run refreshes"),
    ("refreshes", "request", False, False, False, "a request run trains from scratch"),
    ("refreshes", "manual", False, False, False, "a manual run trains from scratch"),
    ("refreshes", "request", True, False, False, "abrupt drift was dated"),
    ("refreshes", "follow-up", False, True, False, "learnt before the current concept"),
    ("unless-abrupt", "request", False, False, True, "a request run refreshes"),
    ("unless-abrupt", "manual", False, False, True, "a manual run refreshes"),
    ("unless-abrupt", "request", True, False, False, "abrupt drift was dated"),
    ("unless-abrupt", "schedule", False, True, False, "learnt before the current concept"),
    ("never", "schedule", False, False, False, "fine_tune is 'never'"),
])
def test_the_start_rule(policy, trigger, dated, predates, fine_tune, why) -> None:  # type: ignore[no-untyped-def]
    choice = choose_start(policy, trigger, dated_drift=dated, champion_predates=predates)
    assert choice.fine_tune is fine_tune
    assert why in choice.reason


def test_the_default_setting_fine_tunes_refreshes_only() -> None:
    policy = fast_settings().fine_tune
    assert choose_start(policy, "schedule") == StartChoice(
        True, "a schedule run refreshes the model it starts from")
    assert not choose_start(policy, "request").fine_tune


def _dataset(rows):  # type: ignore[no-untyped-def]
    return build_dataset("agrawal", examples(rows), DatasetPlan.from_settings(fast_settings()))


def test_a_start_fits_data_of_its_schema_and_classes() -> None:
    manifest = load_artifact(OLD_ARTIFACT).manifest
    assert mismatch(manifest, _dataset(agrawal(300, seed=9))) is None


def test_a_start_with_another_feature_schema_does_not_fit() -> None:
    manifest = load_artifact(OLD_ARTIFACT).manifest
    renamed = [({("years" if k == "age" else k): v for k, v in x.items()}, y)
               for x, y in agrawal(300)]
    why = mismatch(manifest, _dataset(renamed))
    assert why is not None
    assert "feature schema does not fit" in why
    assert "missing features ['age']" in why
    assert "unexpected features ['years']" in why

    retyped = [({**x, "car": f"model {x['car']}"}, y) for x, y in agrawal(300)]
    assert "feature 'car' must be numeric" in (mismatch(manifest, _dataset(retyped)) or "")


def test_a_start_without_the_datas_classes_does_not_fit() -> None:
    manifest = load_artifact(OLD_ARTIFACT).manifest
    three = [(x, 2 if i % 4 == 0 else y) for i, (x, y) in enumerate(agrawal(300))]
    assert mismatch(manifest, _dataset(three)) == "its classes [0, 1] do not hold the labels 2"
    spelled = [(x, "yes" if y else "no") for x, y in agrawal(300)]
    assert "do not hold the labels \"no\", \"yes\"" in (mismatch(manifest, _dataset(spelled)) or "")
    values = [(x, float(x["salary"]) / 1000) for x, _ in agrawal(300)]
    assert mismatch(manifest, _dataset(values)) == (
        "it is a classification model and the data is regression")


def test_an_old_manifest_loads_and_records_no_origin() -> None:
    artifact = load_artifact(OLD_ARTIFACT)
    assert artifact.manifest.version == 1
    assert artifact.manifest.lineage.origin is None
    assert artifact.manifest.lineage.parent_version is None
    assert artifact.manifest.lineage.run_id == 1


def test_an_origin_round_trips_through_a_manifest(tmp_path: Path) -> None:
    origin = Origin(mode="fine-tuned", reason="a schedule run refreshes", parent_version=3,
                    parent_sha256="ab" * 32)
    folder = tmp_path / "v4"
    shutil.copytree(OLD_ARTIFACT, folder)
    _rewrite_lineage(folder, {"origin": {**origin.model_dump(mode="json"), "from_the_future": 1}})
    loaded = load_artifact(folder).manifest.lineage.origin
    assert loaded == origin
    assert loaded.fell_back("no").mode == "fresh"  # type: ignore[union-attr]
    assert loaded.fell_back("no").parent_version == 3  # type: ignore[union-attr]


def test_a_malformed_origin_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "v2"
    shutil.copytree(OLD_ARTIFACT, folder)
    _rewrite_lineage(folder, {"origin": {"mode": "sideways"}})
    with pytest.raises(ArtifactError, match="invalid manifest .*: lineage.origin.mode"):
        load_artifact(folder)
    with pytest.raises(ValidationError, match="lineage.origin.mode"):
        Manifest.model_validate_json((folder / MANIFEST).read_text())


def test_a_checkpoint_is_named_by_its_folder_or_a_file_in_it() -> None:
    assert checkpoint_folder(OLD_ARTIFACT) == OLD_ARTIFACT
    assert checkpoint_folder(OLD_ARTIFACT / "weights.safetensors") == OLD_ARTIFACT
    assert checkpoint_folder(OLD_ARTIFACT / MANIFEST) == OLD_ARTIFACT


def test_origins_describe_themselves() -> None:
    fine = Origin(mode="fine-tuned", reason="a schedule run refreshes", parent_version=2)
    assert fine.describe() == "fine-tuned from v2 (a schedule run refreshes)"
    assert fine.fell_back("its classes [0, 1] do not hold the labels 2").describe() == (
        "trained from scratch instead of fine-tuning v2: its classes [0, 1] do not hold the "
        "labels 2")
    assert Origin(mode="fresh", reason="a manual run trains from scratch").describe() == (
        "trained from scratch (a manual run trains from scratch)")
    assert Origin(mode="fresh", fallback="there is nothing to start from").describe() == (
        "trained from scratch instead of fine-tuning: there is nothing to start from")


def _rewrite_lineage(folder: Path, extra: dict) -> None:  # type: ignore[type-arg]
    """Add to a manifest's lineage, keeping its digests valid (the folder's own copy)."""
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["lineage"].update(extra)
    (folder / MANIFEST).write_text(json.dumps(manifest))
