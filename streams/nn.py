"""The torch side of an artifact: build its network, load its weights, pick the device.

Kept apart from :mod:`streams.artifacts` so that only processes that run models import torch.
Built-in architecture ``mlp``: ``Linear -> ReLU -> Dropout`` per hidden width, then a linear
head (one output per class, or one value). Any other name is an import path
``module:Class`` of an ``nn.Module`` whose constructor takes ``in_features``,
``out_features`` and the manifest's params.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import torch
from torch import nn

from streams.artifacts import Architecture, Artifact, Manifest
from streams.errors import ArtifactError


def pick_device(preferred: str | None = None) -> torch.device:
    """``cuda`` when a GPU is present (unless told otherwise), else ``cpu``."""
    if preferred:
        return torch.device(preferred)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class MLP(nn.Module):
    def __init__(
        self, in_features: int, out_features: int, hidden: tuple[int, ...] | list[int] = (64, 64),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]


def build_module(architecture: Architecture, in_features: int, out_features: int) -> nn.Module:
    params = dict(architecture.params)
    if architecture.name == "mlp":
        return MLP(in_features, out_features, **params)
    module_name, _, attr = architecture.name.partition(":")
    try:
        cls: Any = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ArtifactError(f"unknown architecture {architecture.name!r}") from exc
    module = cls(in_features=in_features, out_features=out_features, **params)
    if not isinstance(module, nn.Module):
        raise ArtifactError(f"{architecture.name!r} did not build an nn.Module")
    return module


def module_for(manifest: Manifest) -> nn.Module:
    return build_module(manifest.architecture, manifest.input_width, manifest.output_width)


def state_to_numpy(module: nn.Module) -> dict[str, np.ndarray[Any, Any]]:
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def load_module(artifact: Artifact, device: torch.device) -> nn.Module:
    """Rebuild the artifact's network with its weights, in eval mode, on ``device``."""
    module = module_for(artifact.manifest)
    state = {k: torch.from_numpy(np.array(v)) for k, v in artifact.tensors.items()}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ArtifactError(f"weights do not fit the architecture: {exc}") from exc
    return module.to(device).eval()
