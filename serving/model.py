"""A verified, loaded model ready to score, and the one reference the batch loop reads.

:func:`load_model` turns an artifact (a folder or a ``file://`` URI, see
:mod:`streams.artifacts`) into a :class:`ServedModel`: the manifest is verified against the
expected digest, the network is rebuilt with its weights on the chosen device, and the
fitted preprocessing comes with it. A served model is never changed in place; a hot swap
builds a new one and replaces the single reference held by :class:`ModelHolder`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from streams.artifacts import Manifest, Matrix, Preprocessor, load_artifact
from streams.errors import ArtifactError, SchemaError
from streams.events import ClassOutput, ValueOutput
from streams.nn import load_module

log = logging.getLogger(__name__)

Scores = npt.NDArray[np.float64]
Output = ClassOutput | ValueOutput


@dataclass(frozen=True)
class ServedModel:
    """One model version, loaded and verified: preprocessing, network and output decoding."""

    manifest: Manifest
    sha256: str
    uri: str
    module: nn.Module
    preprocessor: Preprocessor
    device: torch.device

    @property
    def name(self) -> str:
        return self.manifest.model

    @property
    def version(self) -> int:
        return self.manifest.version

    @property
    def classification(self) -> bool:
        return self.manifest.task == "classification"

    def accepts(self, features: Mapping[str, Any]) -> bool:
        try:
            self.preprocessor.check(features)
        except SchemaError:
            return False
        return True

    def encode(self, rows: Sequence[Mapping[str, Any]]) -> Matrix:
        """The input matrix of ``rows``; raises SchemaError if any row cannot be encoded."""
        return self.preprocessor.transform(rows)

    def scores(self, x: Matrix) -> Scores:
        """One forward pass: class probabilities ``(n, classes)`` or values ``(n,)``."""
        with torch.inference_mode():
            raw = self.module(torch.from_numpy(x).to(self.device))
            if self.classification:
                raw = torch.softmax(raw.double(), dim=1)
            out: Scores = raw.double().cpu().numpy()
        if self.classification:
            return out
        values: Scores = out.reshape(-1) * self.manifest.target_std + self.manifest.target_mean
        return values

    def outputs(self, scores: Scores) -> list[Output | None]:
        """Turn scores into the wire's outputs (chosen class with every probability, or value).

        A row whose scores are not finite gives None (the event contract refuses NaN).
        """
        finite = cast(list[bool], np.isfinite(scores.reshape(len(scores), -1)).all(axis=1).tolist())
        if not self.classification:
            return [ValueOutput(value=v) if ok else None
                    for v, ok in zip(scores.tolist(), finite, strict=True)]
        classes = self.manifest.classes
        keys = [str(c) for c in classes]
        best = np.nan_to_num(scores).argmax(axis=1).tolist()
        rows = np.clip(scores, 0.0, 1.0).tolist()
        return [
            ClassOutput(label=classes[b], probabilities=dict(zip(keys, row, strict=True)))
            if ok else None
            for b, row, ok in zip(best, rows, finite, strict=True)
        ]


def load_model(
    location: str | Path, *, device: torch.device, expected_sha256: str | None = None
) -> ServedModel:
    """Load, verify and place one artifact; any mismatch raises ``ArtifactError``."""
    artifact = load_artifact(location, expected_sha256=expected_sha256)
    manifest = artifact.manifest
    if manifest.task == "classification" and len(manifest.classes) < 2:
        raise ArtifactError(f"classifier {manifest.model} v{manifest.version} has < 2 classes")
    try:
        module = load_module(artifact, device)
    except (TypeError, ValueError, RuntimeError) as exc:  # bad hyperparameters in the manifest
        raise ArtifactError(
            f"cannot build {manifest.model} v{manifest.version} from its manifest: {exc}"
        ) from exc
    return ServedModel(
        manifest=manifest,
        sha256=artifact.sha256,
        uri=artifact.uri,
        module=module,
        preprocessor=Preprocessor(manifest.features),
        device=device,
    )


class ModelHolder:
    """The single reference to the model being served; swapping it is the hot swap.

    The batch loop reads :attr:`current` once per batch, so a swap always falls between two
    batches. Readers that start before any model exists can :meth:`wait` for the first one.
    """

    def __init__(self) -> None:
        self._current: ServedModel | None = None
        self._ready = threading.Event()

    @property
    def current(self) -> ServedModel | None:
        return self._current

    def swap(self, model: ServedModel) -> ServedModel | None:
        """Serve ``model`` from the next batch on; return the model it replaces."""
        previous, self._current = self._current, model
        self._ready.set()
        return previous

    def wait(self, timeout_s: float) -> ServedModel | None:
        """Block until a model is being served or ``timeout_s`` passed; return it (or None)."""
        self._ready.wait(timeout_s)
        return self._current
