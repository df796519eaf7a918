"""The on-disk model artifact shared by retraining (writes) and serving (reads).

An artifact is a folder::

    <artifact_dir>/<model>/v<version>/
        manifest.json         what the model is and how to feed it (below)
        weights.safetensors   the tensors of the network, by parameter name

``manifest.json`` holds the model name and version, the task (classification or
regression), the architecture and its hyperparameters, the feature schema with the fitted
preprocessing (means and standard deviations of numeric features, category lists of
categorical ones), the label encoding (class order) or target scaling, validation metrics,
a classifier's calibration with its estimate bands (optional: older artifacts have none),
its lineage (where the data came from, why the run happened, how the weights began: see
:mod:`streams.lineage`), and the sha256 of every other file. The sha256 of
``manifest.json`` itself is the artifact's digest: it is what the registry records and what
``ModelPromoted`` carries, and since the manifest names the digest of every file, it covers
the whole artifact.

Weights are safetensors: loading never unpickles anything. :func:`load_artifact` verifies the
digest, every file's digest and the manifest's schema, and raises ``ArtifactError`` on any
mismatch. Preprocessing is plain numpy and lives here too, so serving and training cannot
disagree on how a feature dict becomes a row of the input matrix.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_serializer
from safetensors.numpy import load_file, save_file

from streams.calibration import Calibration
from streams.errors import ArtifactError, SchemaError
from streams.lineage import Lineage
from streams.scores import Task

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"

Matrix = npt.NDArray[np.float32]

_CATEGORY_TYPES = frozenset({str, int, bool, type(None)})
_BOOLEAN_TYPES = frozenset({bool})
_NUMBER_TYPES = frozenset({int, float})
_NONE = type(None)
_NULL = frozenset({_NONE})


class FeatureSpec(BaseModel):
    """One input feature and its fitted preprocessing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: Literal["numeric", "boolean", "categorical"]
    mean: float = 0.0
    std: float = 1.0
    categories: tuple[str, ...] = ()
    indicator: bool = Field(
        False, description="A numeric or boolean feature gets a 0/1 column saying it was null "
                           "(fitted when the training rows had nulls in it)."
    )
    missing_share: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of the training rows where it was null."
    )
    low: float | None = Field(None, description="Smallest value in training (numeric only).")
    high: float | None = Field(None, description="Largest value in training (numeric only).")
    unseen_share: float = Field(
        0.0, ge=0.0, le=1.0,
        description="Share of the training rows whose category is not one of ``categories`` "
                    "(categories beyond ``max_categories``; nulls not counted).",
    )

    @property
    def width(self) -> int:
        if self.kind == "categorical":
            return len(self.categories)
        return 2 if self.indicator else 1


class Architecture(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="'mlp', or an import path 'module:Class' of an nn.Module.")
    params: dict[str, Any] = Field(default_factory=dict)


class Manifest(BaseModel):
    """Everything needed to rebuild, verify and feed a model."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    format_version: Literal[1] = 1
    model: str
    version: int = Field(ge=1)
    task: Task
    architecture: Architecture
    features: tuple[FeatureSpec, ...] = Field(min_length=1)
    classes: tuple[Any, ...] = Field(default=(), description="Class order of the outputs.")
    target_mean: float = 0.0
    target_std: float = 1.0
    metrics: dict[str, float] = Field(default_factory=dict)
    calibration: Calibration | None = Field(
        None, description="A classifier's calibration and estimate bands (see "
                          ":mod:`streams.calibration`); None for older artifacts and regressors."
    )
    trainer: str = ""
    created_at: datetime | None = None
    lineage: Lineage = Field(default_factory=Lineage)
    files: dict[str, str] = Field(default_factory=dict, description="File name -> sha256.")

    @field_serializer("lineage")
    def _lineage_record(self, lineage: Lineage) -> dict[str, JsonValue]:
        return lineage.record()

    @property
    def input_width(self) -> int:
        return sum(f.width for f in self.features)

    @property
    def output_width(self) -> int:
        return len(self.classes) if self.task == "classification" else 1


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Artifact:
    """A verified artifact: its manifest, tensors, folder and digest."""

    manifest: Manifest
    tensors: dict[str, npt.NDArray[Any]]
    path: Path
    sha256: str

    @property
    def uri(self) -> str:
        return self.path.resolve().as_uri()


def artifact_path(root: Path, model: str, version: int) -> Path:
    return root / model / f"v{version}"


def write_artifact(
    path: Path, manifest: Manifest, tensors: Mapping[str, npt.NDArray[Any]]
) -> Artifact:
    """Write weights then the manifest (last, atomically), and return the artifact."""
    path.mkdir(parents=True, exist_ok=True)
    weights = path / WEIGHTS
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(weights))
    final = manifest.model_copy(update={"files": {WEIGHTS: sha256_file(weights)}})
    tmp = path / f".{MANIFEST}.tmp"
    tmp.write_text(final.model_dump_json(indent=2))
    os.replace(tmp, path / MANIFEST)
    return Artifact(final, dict(tensors), path, sha256_file(path / MANIFEST))


def path_from_uri(uri: str) -> Path:
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(uri).path))
    if "://" in uri:
        raise ArtifactError(f"unsupported artifact URI scheme: {uri}")
    return Path(uri)


def load_artifact(location: Path | str, *, expected_sha256: str | None = None) -> Artifact:
    """Load and verify an artifact; any missing file, bad digest or bad schema is refused."""
    path = path_from_uri(location) if isinstance(location, str) else location
    manifest_file = path / MANIFEST
    if not manifest_file.is_file():
        raise ArtifactError(f"no {MANIFEST} in {path}")
    digest = sha256_file(manifest_file)
    if expected_sha256 is not None and digest != expected_sha256:
        raise ArtifactError(
            f"manifest digest {digest[:12]}… does not match the expected {expected_sha256[:12]}…"
        )
    try:
        manifest = Manifest.model_validate_json(manifest_file.read_bytes())
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ArtifactError(f"invalid manifest in {path}: {where}: {error['msg']}") from exc
    if WEIGHTS not in manifest.files:
        raise ArtifactError(f"manifest in {path} does not list {WEIGHTS}")
    for name, want in manifest.files.items():
        file = path / name
        if not file.is_file():
            raise ArtifactError(f"{name} is missing from {path}")
        if sha256_file(file) != want:
            raise ArtifactError(f"{name} in {path} does not match its sha256 in the manifest")
    try:
        tensors = load_file(str(path / WEIGHTS))
    except Exception as exc:  # safetensors raises its own untyped errors on corrupt files
        raise ArtifactError(f"unreadable weights in {path}: {exc}") from exc
    return Artifact(manifest, tensors, path, digest)


class Preprocessor:
    """Turns feature dicts into the model's input matrix, refusing anything it cannot encode.

    Numeric and boolean features are standardised with the fitted mean and std; categorical
    ones become one-hot columns, an unseen category all zeros. A null (the contract allows
    one for any feature) is imputed: a numeric or boolean one with the training mean (0 once
    standardised), followed by a 1 in its indicator column when the training rows had nulls
    in that feature; a categorical one is all zeros. A missing or extra feature, a value of
    the wrong type, or a non-finite number raises ``SchemaError``.

    Fitting also records what training saw, for the monitor's data-quality checks: each
    feature's share of nulls, a numeric feature's range and the share of categories left out.
    """

    def __init__(self, features: Sequence[FeatureSpec]) -> None:
        self.features = tuple(features)
        self._names = frozenset(f.name for f in self.features)
        self._index = [
            {c: i for i, c in enumerate(f.categories)} for f in self.features
        ]
        self.width = sum(f.width for f in self.features)

    @classmethod
    def fit(
        cls, rows: Sequence[Mapping[str, Any]], *, max_categories: int = 50
    ) -> Preprocessor:
        """Infer each feature's kind from the rows and fit its scaling or categories."""
        if not rows:
            raise SchemaError("cannot fit preprocessing on no rows")
        specs: list[FeatureSpec] = []
        for name in sorted(rows[0]):
            values = [row.get(name) for row in rows]
            present = [v for v in values if v is not None]
            missing = 1.0 - len(present) / len(values)
            if present and all(isinstance(v, bool) for v in present):
                nums = np.array([float(v) for v in present])
                specs.append(FeatureSpec(name=name, kind="boolean", mean=float(nums.mean()),
                                         std=float(nums.std()) or 1.0, indicator=missing > 0,
                                         missing_share=missing))
            elif present and all(isinstance(v, int | float) and not isinstance(v, bool)
                                 for v in present):
                nums = np.array(present, dtype=np.float64)
                if not np.isfinite(nums).all():
                    raise SchemaError(f"feature {name!r} is not finite in the training rows")
                specs.append(FeatureSpec(name=name, kind="numeric", mean=float(nums.mean()),
                                         std=float(nums.std()) or 1.0, indicator=missing > 0,
                                         missing_share=missing, low=float(nums.min()),
                                         high=float(nums.max())))
            else:
                counts: dict[str, int] = {}
                for v in present:
                    counts[str(v)] = counts.get(str(v), 0) + 1
                top = sorted(counts, key=lambda c: (-counts[c], c))[:max_categories]
                kept = sum(counts[c] for c in top)
                specs.append(FeatureSpec(
                    name=name, kind="categorical", categories=tuple(sorted(top)),
                    missing_share=missing,
                    unseen_share=(len(present) - kept) / len(values),
                ))
        return cls(specs)

    def check(self, features: Mapping[str, Any]) -> None:
        """Raise SchemaError if one feature dict cannot be encoded."""
        self._encode_into(features, np.zeros(self.width, dtype=np.float32))

    def transform(self, rows: Sequence[Mapping[str, Any]]) -> Matrix:
        """Encode many rows column by column; any bad row raises as ``check`` would."""
        out = np.zeros((len(rows), self.width), dtype=np.float32)
        if not rows:
            return out
        names = self._names
        if any(row.keys() != names for row in rows):
            return self._transform_rows(rows)
        col = 0
        for spec, index in zip(self.features, self._index, strict=True):
            values = [row[spec.name] for row in rows]
            kinds = {type(v) for v in values}
            if spec.kind == "categorical":
                if not kinds <= _CATEGORY_TYPES:
                    return self._transform_rows(rows)
                hits = [-1 if v is None else index.get(v if type(v) is str else str(v), -1)
                        for v in values]
                picked = np.asarray(hits)
                found = np.nonzero(picked >= 0)[0]
                out[found, col + picked[found]] = 1.0
                col += spec.width
                continue
            allowed = _BOOLEAN_TYPES if spec.kind == "boolean" else _NUMBER_TYPES
            if not kinds <= allowed | _NULL:
                return self._transform_rows(rows)
            if _NONE in kinds:
                nulls = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
                numbers = np.asarray([spec.mean if v is None else v for v in values],
                                     dtype=np.float64)
            else:
                nulls = None
                numbers = np.asarray(values, dtype=np.float64)
            if not np.isfinite(numbers).all():
                return self._transform_rows(rows)
            out[:, col] = (numbers - spec.mean) / spec.std
            if spec.indicator and nulls is not None:
                out[:, col + 1] = nulls
            col += spec.width
        return out

    def _transform_rows(self, rows: Sequence[Mapping[str, Any]]) -> Matrix:
        out = np.zeros((len(rows), self.width), dtype=np.float32)
        for i, row in enumerate(rows):
            self._encode_into(row, out[i])
        return out

    def _encode_into(self, row: Mapping[str, Any], out: Matrix) -> None:
        if row.keys() != self._names:
            missing = sorted(self._names - row.keys())
            extra = sorted(row.keys() - self._names)
            parts = []
            if missing:
                parts.append(f"missing features {missing}")
            if extra:
                parts.append(f"unexpected features {extra}")
            raise SchemaError("; ".join(parts))
        col = 0
        for spec, index in zip(self.features, self._index, strict=True):
            value = row[spec.name]
            if spec.kind == "categorical":
                if value is not None and not isinstance(value, str | int | bool):
                    raise SchemaError(f"feature {spec.name!r} must be a category, got {value!r}")
                hit = index.get(str(value)) if value is not None else None
                if hit is not None:
                    out[col + hit] = 1.0
                col += spec.width
                continue
            if value is None:
                out[col] = 0.0  # the training mean, standardised
                if spec.indicator:
                    out[col + 1] = 1.0
                col += spec.width
                continue
            if isinstance(value, bool) != (spec.kind == "boolean") or not isinstance(
                value, int | float
            ):
                raise SchemaError(f"feature {spec.name!r} must be {spec.kind}, got {value!r}")
            number = float(value)
            if not math.isfinite(number):
                raise SchemaError(f"feature {spec.name!r} is not finite")
            out[col] = (number - spec.mean) / spec.std
            col += spec.width
