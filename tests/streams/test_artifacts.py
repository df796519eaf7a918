from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.artifacts import (
    Architecture,
    Manifest,
    Preprocessor,
    artifact_path,
    load_artifact,
    write_artifact,
)
from streams.errors import ArtifactError, SchemaError
from streams.nn import load_module, module_for, pick_device, state_to_numpy

ROWS = [
    {"age": 30, "plan": "pro", "active": True, "spend": 10.5},
    {"age": 50, "plan": "free", "active": False, "spend": 0.0},
    {"age": 40, "plan": "pro", "active": True, "spend": 99.0},
]


def _artifact(tmp_path: Path) -> tuple[Path, Manifest]:
    pre = Preprocessor.fit(ROWS)
    manifest = Manifest(model="churn", version=1, task="classification",
                        architecture=Architecture(name="mlp", params={"hidden": [8]}),
                        features=pre.features, classes=("stay", "leave"))
    torch.manual_seed(0)
    module = module_for(manifest)
    path = artifact_path(tmp_path, "churn", 1)
    write_artifact(path, manifest, state_to_numpy(module))
    return path, manifest


def test_preprocessing_standardises_and_one_hot_encodes() -> None:
    pre = Preprocessor.fit(ROWS)
    assert [(f.name, f.kind) for f in pre.features] == [
        ("active", "boolean"), ("age", "numeric"), ("plan", "categorical"), ("spend", "numeric")]
    x = pre.transform([{"age": 40, "plan": "free", "active": True, "spend": 1.0},
                       {"age": 40, "plan": "enterprise", "active": True, "spend": 1.0}])
    assert x.shape == (2, 5)
    assert x[0, 1] == pytest.approx(0.0)  # age at its mean
    assert list(x[0, 2:4]) == [1.0, 0.0]  # 'free' sorts before 'pro'
    assert list(x[1, 2:4]) == [0.0, 0.0]  # unseen category


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ({"age": 1, "plan": "pro", "active": True}, "missing features \\['spend'\\]"),
        ({"age": 1, "plan": "pro", "active": True, "spend": 1, "x": 2}, "unexpected features"),
        ({"age": "old", "plan": "pro", "active": True, "spend": 1}, "'age' must be numeric"),
        ({"age": 1, "plan": "pro", "active": 1, "spend": 1}, "'active' must be boolean"),
        ({"age": float("nan"), "plan": "pro", "active": True, "spend": 1}, "not finite"),
        ({"age": [1], "plan": "pro", "active": True, "spend": 1}, "must be numeric"),
    ],
)
def test_bad_features_are_refused(row: dict[str, object], words: str) -> None:
    with pytest.raises(SchemaError, match=words):
        Preprocessor.fit(ROWS).check(row)


def test_a_null_is_imputed_with_the_training_mean() -> None:
    pre = Preprocessor.fit(ROWS)  # no nulls in training: no indicator columns
    assert pre.width == 5
    x = pre.transform([{"age": None, "plan": None, "active": None, "spend": 10.5}])
    assert list(x[0, :4]) == [0.0, 0.0, 0.0, 0.0]  # active and age at their means, plan none
    assert x[0, 4] == pytest.approx((10.5 - np.mean([10.5, 0.0, 99.0])) / np.std([10.5, 0, 99]))


def test_nulls_in_training_add_an_indicator_column_and_are_recorded() -> None:
    rows = [*ROWS, {"age": None, "plan": None, "active": True, "spend": 5.0}]
    pre = Preprocessor.fit(rows)
    age = next(f for f in pre.features if f.name == "age")
    assert (age.indicator, age.missing_share, age.low, age.high) == (True, 0.25, 30.0, 50.0)
    assert age.mean == pytest.approx(40.0)  # of the present values
    plan = next(f for f in pre.features if f.name == "plan")
    assert (plan.indicator, plan.missing_share, plan.width) == (False, 0.25, 2)
    spend = next(f for f in pre.features if f.name == "spend")
    assert (spend.indicator, spend.missing_share, spend.low, spend.high) == (False, 0.0, 0, 99)
    assert [f.width for f in pre.features] == [1, 2, 2, 1]  # active, age (+ indicator), plan..
    x = pre.transform([{"age": None, "plan": "pro", "active": True, "spend": 5.0},
                       {"age": 40, "plan": "pro", "active": True, "spend": 5.0}])
    assert list(x[:, 1:3].ravel()) == [0.0, 1.0, 0.0, 0.0]  # imputed, flagged; present, not


def test_categories_beyond_the_limit_are_counted_as_unseen_in_training() -> None:
    rows = [{"plan": p} for p in ["a", "a", "a", "b", "b", "c", None, None]]
    (plan,) = Preprocessor.fit(rows, max_categories=2).features
    assert plan.categories == ("a", "b")
    assert (plan.missing_share, plan.unseen_share) == (0.25, 0.125)


def test_manifests_written_before_missing_values_load_as_before() -> None:
    doc = {"name": "age", "kind": "numeric", "mean": 1.0, "std": 2.0}
    (spec,) = Preprocessor.fit([{"age": 1.0}]).features
    old = type(spec).model_validate(doc)
    assert (old.indicator, old.width, old.missing_share, old.low) == (False, 1, 0.0, None)


def test_artifact_round_trips_to_the_same_outputs(tmp_path: Path) -> None:
    path, manifest = _artifact(tmp_path)
    loaded = load_artifact(path)
    assert loaded.manifest.classes == ("stay", "leave")
    module = load_module(loaded, pick_device("cpu"))
    verified = load_artifact(loaded.uri, expected_sha256=loaded.sha256)
    again = load_module(verified, pick_device("cpu"))
    x = torch.from_numpy(Preprocessor(manifest.features).transform(ROWS))
    with torch.inference_mode():
        assert torch.equal(module(x), again(x))
        assert module(x).shape == (3, 2)


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    path, _ = _artifact(tmp_path)
    weights = path / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match its sha256"):
        load_artifact(path)


def test_edited_manifest_is_refused_by_digest(tmp_path: Path) -> None:
    path, _ = _artifact(tmp_path)
    digest = load_artifact(path).sha256
    doc = json.loads((path / "manifest.json").read_text())
    doc["classes"] = ["leave", "stay"]
    (path / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="does not match the expected"):
        load_artifact(path, expected_sha256=digest)


def test_manifest_of_the_wrong_schema_is_refused(tmp_path: Path) -> None:
    path, _ = _artifact(tmp_path)
    doc = json.loads((path / "manifest.json").read_text())
    doc["format_version"] = 9
    (path / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="invalid manifest"):
        load_artifact(path)


def test_weights_that_do_not_fit_the_architecture_are_refused(tmp_path: Path) -> None:
    path, manifest = _artifact(tmp_path)
    wrong = {k: np.zeros((1,), dtype=np.float32) for k in state_to_numpy(module_for(manifest))}
    write_artifact(path, manifest, wrong)
    with pytest.raises(ArtifactError, match="do not fit"):
        load_module(load_artifact(path), pick_device("cpu"))


def test_missing_artifact_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no manifest.json"):
        load_artifact(tmp_path / "nowhere")


row_values = st.fixed_dictionaries({
    "age": st.none() | st.integers(-1000, 1000) | st.floats(-1e6, 1e6),
    "plan": st.none() | st.sampled_from(["pro", "free", "None", "other"]) | st.integers(0, 3),
    "active": st.none() | st.booleans(),
    "spend": st.none() | st.floats(-1e6, 1e6),
})


@settings(max_examples=100, deadline=None)
@given(st.lists(row_values, min_size=1, max_size=20))
def test_batch_encoding_equals_row_by_row_encoding(rows: list[dict[str, object]]) -> None:
    # age and active were null in training (indicator columns), spend was not.
    pre = Preprocessor.fit([*ROWS, {"age": None, "plan": "None", "active": None, "spend": 1.0}])
    batch = pre.transform(rows)
    one_by_one = np.stack([pre.transform([row])[0] for row in rows])
    assert np.array_equal(batch, one_by_one)
    assert np.array_equal(batch, pre._transform_rows(rows))


def test_one_bad_row_in_a_batch_is_named() -> None:
    pre = Preprocessor.fit(ROWS)
    rows = [*ROWS, {"age": 1, "plan": "pro", "active": True, "spend": float("inf")}]
    with pytest.raises(SchemaError, match="'spend' is not finite"):
        pre.transform(rows)
