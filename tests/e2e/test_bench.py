"""``driftloop bench adaptation`` runs the real system (broker, processes, database) over the
scenario and puts it in the same table, data and plot as the baselines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from driftloop.lab.plot import COLORS


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_real_system_is_measured_like_the_baselines(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env["DRIFTLOOP_HOME"] = str(tmp_path / "home")
    result = subprocess.run(
        [sys.executable, "-m", "driftloop.cli", "bench", "adaptation", "--scenario", "abrupt",
         "--length", "6000", "--speed", "2", "--method", "initial", "--method", "logreg",
         "--window", "300",
         "--out-dir", str(tmp_path / "out")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "driftloop (drift-triggered retraining)" in result.stdout
    data = json.loads((tmp_path / "out" / "adaptation-abrupt.json").read_text())
    system, initial, logreg = data["results"]
    assert (system["key"], initial["key"], logreg["key"]) == ("driftloop", "initial", "logreg")
    assert len(system["windows"]) == len(logreg["windows"]) == 18  # every event answered
    first = system["drifts"][0]
    assert first["detection"] is not None, system
    assert first["new_model"] is not None, system
    assert first["detection"] <= first["new_model"]
    assert system["fits"] >= 2
    # Judged against the model that was never retrained, measured in the same run: after the
    # first drift the loop's new model settles well above it.
    stale = initial["drifts"][0]
    assert stale["new_model"] is None
    assert first["after"] > stale["after"] + 0.15, (first, stale)
    image = Image.open(tmp_path / "out" / "adaptation-abrupt.png").convert("RGB")
    assert COLORS["driftloop"] in {c for _, c in image.getcolors(maxcolors=1 << 20)}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_regression_scenario_is_scored_by_mae_through_the_real_system(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env["DRIFTLOOP_HOME"] = str(tmp_path / "home")
    result = subprocess.run(
        [sys.executable, "-m", "driftloop.cli", "bench", "adaptation", "--scenario", "friedman",
         "--length", "5000", "--speed", "2", "--method", "initial", "--method", "linreg",
         "--window", "250", "--out-dir", str(tmp_path / "out")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "MAE over the stream" in result.stderr
    assert "accuracy nan%" not in result.stderr
    data = json.loads((tmp_path / "out" / "adaptation-friedman.json").read_text())
    assert data["score"] == "MAE"
    system, initial, linear = data["results"]
    assert [r["key"] for r in data["results"]] == ["driftloop", "initial", "linreg"]
    for row in (system, initial, linear):
        assert row["error"] is None, row
        assert row["accuracy"] is None
        assert 0 < row["mae"] <= row["rmse"]
        assert row["train_cpu_s_per_1k_events"] is not None
        assert len(row["windows"]) == 18  # every event answered
    assert system["train_cpu_s"] > 0  # the retrain process's CPU time
    assert initial["train_cpu_s"] == 0.0
    # Friedman's noise alone gives an MAE of 0.8; a model that knows nothing, about 4.
    assert system["mae"] < 3.5
    table = (tmp_path / "out" / "adaptation-friedman.md").read_text()
    assert "| method | MAE | RMSE |" in table
