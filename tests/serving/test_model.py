"""Loading a served model: verification, outputs, and the single reference a swap replaces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from serving.model import ModelHolder, load_model
from streams.artifacts import MANIFEST, WEIGHTS
from streams.errors import ArtifactError
from streams.events import ClassOutput, ValueOutput
from streams.nn import pick_device
from tests.serving.artifacts import CLASSES, make_artifact, row

CPU = pick_device("cpu")


def test_classifier_outputs_a_class_and_probabilities_that_sum_to_one(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path, 3)
    model = load_model(artifact.uri, device=CPU, expected_sha256=artifact.sha256)
    assert (model.name, model.version, model.sha256) == ("churn", 3, artifact.sha256)
    outputs = model.outputs(model.scores(model.encode([row(i) for i in range(20)])))
    assert len(outputs) == 20
    for out in outputs:
        assert isinstance(out, ClassOutput)
        assert set(out.probabilities) == set(CLASSES)
        assert sum(out.probabilities.values()) == pytest.approx(1.0)
        assert out.label == max(out.probabilities, key=out.probabilities.__getitem__)
    assert len({o.label for o in outputs}) >= 1


def test_regressor_values_are_brought_back_to_the_target_scale(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path, 1, task="regression", target=(100.0, 10.0))
    model = load_model(artifact.path, device=CPU)
    x = model.encode([row(i) for i in range(5)])
    raw = model.module(__import__("torch").from_numpy(x)).detach().numpy().reshape(-1)
    outputs = model.outputs(model.scores(x))
    assert all(isinstance(o, ValueOutput) for o in outputs)
    values = np.array([o.value for o in outputs])  # type: ignore[union-attr]
    np.testing.assert_allclose(values, raw * 10.0 + 100.0, rtol=1e-5)


def test_a_digest_other_than_the_promoted_one_is_refused(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path, 1)
    with pytest.raises(ArtifactError, match="does not match the expected"):
        load_model(artifact.uri, device=CPU, expected_sha256="0" * 64)


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path, 1)
    weights = artifact.path / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match its sha256"):
        load_model(artifact.uri, device=CPU)


def test_a_manifest_whose_architecture_does_not_fit_the_weights_is_refused(
    tmp_path: Path,
) -> None:
    artifact = make_artifact(tmp_path, 1)
    manifest = json.loads((artifact.path / MANIFEST).read_text())
    manifest["architecture"]["params"]["hidden"] = [16]
    (artifact.path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="do not fit"):
        load_model(artifact.uri, device=CPU)


def test_unknown_hyperparameters_are_refused_not_crashed_on(tmp_path: Path) -> None:
    artifact = make_artifact(tmp_path, 1)
    manifest = json.loads((artifact.path / MANIFEST).read_text())
    manifest["architecture"]["params"]["depth"] = 3
    (artifact.path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="cannot build"):
        load_model(artifact.uri, device=CPU)


def test_the_holder_swaps_one_reference_and_wakes_waiters(tmp_path: Path) -> None:
    holder = ModelHolder()
    assert holder.wait(0.01) is None
    first = load_model(make_artifact(tmp_path, 1).uri, device=CPU)
    second = load_model(make_artifact(tmp_path, 2).uri, device=CPU)
    assert holder.swap(first) is None
    assert holder.wait(0.0) is first
    assert holder.swap(second) is first
    assert holder.current is second
