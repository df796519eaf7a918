"""Calibration on the validation split and the estimate it gives (CBPE), on seeded streams.

The served model is overconfident (its softmax is sharper than the truth), the usual case for
a network; calibration has to correct that before the mean confidence means accuracy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monitor.champion import ChampionProfile, from_manifest
from monitor.estimate import calibrate, window_estimate
from monitor.windows import WindowConfig, WindowRow, Windows
from retrain.calibrate import MIN_ROWS, fit_calibration
from retrain.dataset import DatasetPlan, build_dataset
from retrain.mlp import MLPTrainer
from retrain.trainer import TrainingJob
from streams.artifacts import load_artifact
from streams.calibration import Calibration, Estimate, Expectation, estimate
from tests.monitor.events import T0
from tests.retrain.helpers import agrawal, examples, fast_settings


def _stream(rng: np.random.Generator, rows: int, *, spread: float = 1.0
            ) -> tuple[np.ndarray, np.ndarray]:
    """Served probabilities (n, 2) of an overconfident model, and the true classes."""
    x = rng.normal(0.0, spread, rows)
    truth = 1.0 / (1.0 + np.exp(-2.0 * x))
    labels = (rng.random(rows) < truth).astype(np.int64)
    served = 1.0 / (1.0 + np.exp(-5.0 * x))
    return np.column_stack([1.0 - served, served]), labels


def _accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((probabilities.argmax(axis=1) == labels).mean())


@pytest.fixture
def calibration() -> Calibration:
    p, y = _stream(np.random.default_rng(1), 3000)
    fitted = fit_calibration(p, y, ("0", "1"), chunk_rows=500)
    assert fitted is not None
    return fitted


def test_the_calibration_is_json_numbers_and_round_trips(calibration: Calibration) -> None:
    back = Calibration.model_validate_json(calibration.model_dump_json())
    assert back == calibration
    assert set(back.bands) == {"accuracy", "f1"}
    assert all(b.chunk_rows == 500 and b.chunks == 200 and b.std > 0
               for b in back.bands.values())


def test_on_a_stationary_stream_the_estimate_stays_in_its_band_near_the_realised_accuracy(
    calibration: Calibration,
) -> None:
    rng = np.random.default_rng(2)
    gaps = []
    for _ in range(20):
        p, y = _stream(rng, 500)
        window = estimate(calibration, p)
        accuracy = calibration.bands["accuracy"]
        assert accuracy.lower(500) <= window["accuracy"] <= accuracy.upper(500)
        gaps.append(window["accuracy"] - _accuracy(p, y))
    assert abs(float(np.mean(gaps))) < 0.01
    assert float(np.max(np.abs(gaps))) < 0.06
    # Uncalibrated, the mean served confidence overstates accuracy by far.
    p, y = _stream(rng, 5000)
    assert float(p.max(axis=1).mean()) - _accuracy(p, y) > 0.08


def test_a_covariate_shift_towards_low_confidence_drops_the_estimate_below_its_band(
    calibration: Calibration,
) -> None:
    p, y = _stream(np.random.default_rng(3), 500, spread=0.3)
    window = estimate(calibration, p)
    assert window["accuracy"] < calibration.bands["accuracy"].lower(500)
    assert window["f1"] < calibration.bands["f1"].lower(500)
    assert abs(window["accuracy"] - _accuracy(p, y)) < 0.06


def test_a_smaller_window_gets_a_wider_band(calibration: Calibration) -> None:
    band = calibration.bands["accuracy"]
    n, m = band.reference_rows, band.chunk_rows
    assert n == calibration.rows, "the mean's own spread is that of the validation rows"
    assert band.spread(50) == pytest.approx(3 * band.std * np.sqrt(m / 50 + m / n))
    assert band.spread(50) > band.spread(500)
    assert band.lower(m) == pytest.approx(band.mean - 3 * band.std * np.sqrt(1 + m / n))
    old = band.model_copy(update={"reference_rows": None})  # a band written before
    assert old.spread(50) == pytest.approx(old.spread(500) * np.sqrt(10))


def test_row_by_row_sums_equal_the_block_sums_and_survive_a_restart(
    calibration: Calibration,
) -> None:
    p, _ = _stream(np.random.default_rng(4), 300)
    calibrated = calibration.apply(p)
    served = p.argmax(axis=1)
    block = Expectation(2).update(calibrated, served)
    rows = Expectation(2)
    for row, best in zip(calibrated.tolist(), served.tolist(), strict=True):
        rows = Expectation.from_state(rows.add(row, best).state())
    assert rows.metrics() == pytest.approx(block.metrics())
    found = Estimate.of(calibration, rows)
    assert found is not None
    assert found.rows == 300
    assert set(found.record()) == {"accuracy", "f1", "accuracy_lower", "accuracy_upper",
                                   "f1_lower", "f1_upper"}


def test_expected_f1_is_the_macro_f1_of_the_expected_confusion() -> None:
    # Two rows served as class 1 with calibrated p(1) = 0.8, one served as 0 with p(0) = 0.6.
    sums = Expectation(2).update(np.array([[0.2, 0.8], [0.2, 0.8], [0.6, 0.4]]),
                                 np.array([1, 1, 0]))
    tp1, predicted1, truth1 = 1.6, 2.0, 2.0
    tp0, predicted0, truth0 = 0.6, 1.0, 1.0
    f1 = (2 * tp0 / (predicted0 + truth0) + 2 * tp1 / (predicted1 + truth1)) / 2
    assert sums.metrics() == pytest.approx({"accuracy": 2.2 / 3, "f1": f1})


def test_too_few_rows_or_one_class_give_no_calibration() -> None:
    p, y = _stream(np.random.default_rng(5), MIN_ROWS - 1)
    assert fit_calibration(p, y, ("0", "1")) is None
    p, _ = _stream(np.random.default_rng(5), 500)
    assert fit_calibration(p, np.zeros(500, dtype=np.int64), ("0", "1")) is None


# -- in the manifest ----------------------------------------------------------------------

OLD_ARTIFACT = Path(__file__).parent / "data" / "agrawal-v1"


def test_the_trainer_keeps_the_calibration_in_the_manifest(tmp_path: Path) -> None:
    data = build_dataset("agrawal", examples(agrawal(1500, function=2)),
                         DatasetPlan.from_settings(fast_settings()))
    artifact = MLPTrainer(fast_settings(estimate_chunk_rows=100)).fit(
        TrainingJob(data, 2, tmp_path / "v2"))

    manifest = load_artifact(artifact.uri, expected_sha256=artifact.sha256).manifest
    assert manifest.calibration is not None
    assert manifest.calibration.classes == ("0", "1")
    assert manifest.calibration.rows == len(data.validation)
    band = manifest.calibration.bands["accuracy"]
    assert band.chunk_rows == min(100, len(data.validation) // 4)
    # The band's centre is the realised validation accuracy (isotonic keeps the mean).
    assert band.mean == pytest.approx(manifest.metrics["accuracy"], abs=0.02)
    profile = from_manifest(manifest, 2)
    assert ChampionProfile.from_dict(profile.as_dict()) == profile
    assert profile.calibration == manifest.calibration


def test_an_artifact_from_before_calibration_loads_and_gives_no_estimate() -> None:
    manifest = load_artifact(OLD_ARTIFACT).manifest
    assert manifest.calibration is None
    profile = ChampionProfile.from_dict(from_manifest(manifest, 1).as_dict())
    assert profile.calibration is None
    window = Windows("served", WindowConfig(size=2, reference_rows=0))
    for i in range(2):
        window.update(WindowRow(i, "agrawal", 1, T0), T0)
    [closed] = window.drain()
    assert window_estimate(profile.calibration, 1, closed) is None


def test_no_estimate_for_a_window_of_another_version(calibration: Calibration) -> None:
    p, _ = _stream(np.random.default_rng(6), 40)
    windows = Windows("served", WindowConfig(size=40, reference_rows=0))
    outputs = [{"kind": "class", "label": int(r.argmax()),
                "probabilities": {"0": float(r[0]), "1": float(r[1])}} for r in p]
    for i, row in enumerate(calibrate(calibration, outputs)):
        windows.update(WindowRow(i, "m", 3, T0, calibrated=row), T0)
    [closed] = windows.drain()
    found = window_estimate(calibration, 3, closed)
    assert found is not None
    assert found.metrics == pytest.approx(estimate(calibration, p))
    assert window_estimate(calibration, 4, closed) is None
    assert calibrate(calibration, [None, {"kind": "class", "label": 1}]) == [None, None]


def test_three_classes_estimate_accuracy_and_macro_f1_close_to_the_realised() -> None:
    rng = np.random.default_rng(7)

    def stream(rows: int) -> tuple[np.ndarray, np.ndarray]:
        logits = rng.normal(0.0, 1.5, (rows, 3))
        truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        labels = np.array([rng.choice(3, p=p) for p in truth])
        sharp = np.exp(2 * logits) / np.exp(2 * logits).sum(axis=1, keepdims=True)
        return sharp, labels

    p, y = stream(3000)
    fitted = fit_calibration(p, y, ("a", "b", "c"))
    assert fitted is not None
    p, y = stream(2000)
    found = estimate(fitted, p)
    served = p.argmax(axis=1)
    f1s = []
    for c in range(3):
        tp = float(((served == c) & (y == c)).sum())
        f1s.append(2 * tp / float((served == c).sum() + (y == c).sum()))
    assert found["accuracy"] == pytest.approx(_accuracy(p, y), abs=0.03)
    assert found["f1"] == pytest.approx(float(np.mean(f1s)), abs=0.03)
