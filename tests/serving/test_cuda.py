"""Serving on CUDA: the batch predictor and a hot swap give what the CPU gives.
Skipped where torch sees no CUDA device."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import torch

from serving.canary import CanaryError, RecentRequests
from serving.model import ModelHolder, load_model
from serving.predictor import predict_batch
from serving.swap import Swapper
from streams.errors import EventError
from streams.events import ClassOutput, InferenceRequest, Prediction, ValueOutput
from tests.serving.artifacts import make_artifact, row

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")
CPU = torch.device("cpu")
NOW = datetime(2026, 1, 1, tzinfo=UTC)
BAD = {7: {"x": "high", "y": 0.0, "plan": "pro"}, 150: {"x": 1.0, "plan": "pro"}}


def _requests(n: int) -> list[InferenceRequest]:
    return [InferenceRequest(request_id=f"r{i}", model="churn",
                             features=BAD.get(i, row(i)), timestamp=NOW)
            for i in range(n)]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_batch_predictor_answers_on_cuda_as_on_the_cpu(tmp_path: Path, task: str) -> None:
    artifact = make_artifact(tmp_path, 2, task=task, hidden=(32, 32), target=(100.0, 10.0))
    on_gpu = load_model(artifact.uri, device=CUDA, expected_sha256=artifact.sha256)
    on_cpu = load_model(artifact.uri, device=CPU, expected_sha256=artifact.sha256)
    assert {p.device.type for p in on_gpu.module.parameters()} == {"cuda"}
    requests = _requests(300)
    gpu = predict_batch(on_gpu, requests, now=NOW)
    cpu = predict_batch(on_cpu, requests, now=NOW)

    assert [i for i, o in enumerate(gpu) if isinstance(o, EventError)] == sorted(BAD)
    for g, c in zip(gpu, cpu, strict=True):
        if isinstance(c, EventError):
            assert type(g) is type(c)
            continue
        assert isinstance(g, Prediction)
        assert isinstance(c, Prediction)
        assert (g.event_id, g.model_version) == (c.event_id, c.model_version)
        if task == "classification":
            assert isinstance(g.output, ClassOutput)
            assert isinstance(c.output, ClassOutput)
            assert g.output.label == c.output.label
            assert g.output.probabilities.keys() == c.output.probabilities.keys()
            np.testing.assert_allclose(list(g.output.probabilities.values()),
                                       list(c.output.probabilities.values()),
                                       rtol=1e-5, atol=1e-6)
        else:
            assert isinstance(g.output, ValueOutput)
            assert isinstance(c.output, ValueOutput)
            assert g.output.value == pytest.approx(c.output.value, rel=1e-5, abs=1e-4)


def test_a_swap_on_cuda_serves_from_the_gpu_and_refuses_a_broken_model(tmp_path: Path) -> None:
    holder = ModelHolder()
    recent = RecentRequests(16)
    recent.extend([row(i) for i in range(16)])
    swapper = Swapper("churn", holder, recent, device=CUDA)
    served = swapper.swap_to_path(make_artifact(tmp_path, 1).path)
    assert holder.current is served
    assert served.device.type == "cuda"
    assert {p.device.type for p in served.module.parameters()} == {"cuda"}

    with pytest.raises(CanaryError, match="non-finite"):
        swapper.swap_to_path(make_artifact(tmp_path, 2, nan=True).path)
    assert holder.current is served
    outcomes = predict_batch(served, _requests(5), now=NOW)
    assert all(isinstance(o, Prediction) and o.model_version == 1 for o in outcomes)
