"""The event contract: what apps and driftloop's processes put on Kafka.

Each event is a frozen pydantic model serialised as one JSON object. Every event carries
``type`` (its name, so mixed topics can be decoded) and ``schema_version`` (bumped on any
change a reader would notice). ``driftloop schema`` publishes the JSON Schema of each one so
apps in any language can produce them.

Features are a flat mapping of name to number, string, boolean or null. Numbers must be
finite: NaN and infinity are rejected, never silently replaced.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

SCHEMA_VERSION = 1

Identifier = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s]+$")]
ModelName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")]
FeatureValue = StrictBool | StrictInt | StrictFloat | StrictStr | None


def _features_to_json(features: dict[str, FeatureValue]) -> dict[str, Any]:
    return features


# Validated value by value against the union above; written out as the plain mapping it
# already is (already checked when it was built), which serialises 4x faster than walking
# the union for every value.
Features = Annotated[
    dict[Annotated[str, Field(min_length=1)], FeatureValue],
    Field(min_length=1),
    PlainSerializer(_features_to_json, return_type=dict[str, Any], when_used="json"),
]
Label = StrictBool | StrictInt | StrictFloat | StrictStr


def new_event_id() -> str:
    return uuid.uuid4().hex


class Event(BaseModel):
    """Base of every event on the wire."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    schema_version: Literal[1] = 1


class InferenceRequest(Event):
    """An app asks driftloop's serving process for a prediction."""

    type: Literal["inference_request"] = "inference_request"
    request_id: Identifier
    model: ModelName
    features: Features
    timestamp: AwareDatetime


class ClassOutput(BaseModel):
    """A classifier's answer: the chosen class and the probability of every class."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: Literal["class"] = "class"
    label: Label
    probabilities: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(default_factory=dict)


class ValueOutput(BaseModel):
    """A regressor's answer."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    kind: Literal["value"] = "value"
    value: float


Output = Annotated[ClassOutput | ValueOutput, Field(discriminator="kind")]


class Prediction(Event):
    """One model output, produced by driftloop's serving or logged by an app that serves itself."""

    type: Literal["prediction"] = "prediction"
    event_id: Identifier
    request_id: Identifier
    model: ModelName
    model_version: Annotated[int, Field(ge=0)]
    features: Features
    output: Output
    latency_ms: Annotated[float, Field(ge=0.0)] = 0.0
    timestamp: AwareDatetime


class Feedback(Event):
    """The true label for a request, from the app or a human reviewer.

    A later feedback for the same (model, request_id) is a correction: it overrides the
    earlier label; a reviewer's label overrides the app's whatever their order.
    """

    type: Literal["feedback"] = "feedback"
    event_id: Identifier
    request_id: Identifier
    model: ModelName
    label: Label
    source: Literal["app", "reviewer"] = "app"
    reviewer: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    timestamp: AwareDatetime

    @model_validator(mode="after")
    def _reviewer_named(self) -> Feedback:
        if self.source == "reviewer" and self.reviewer is None:
            raise ValueError("feedback from a reviewer must name the reviewer")
        return self


class ColumnDrift(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    column: str
    method: str
    score: float
    threshold: float
    drifted: bool


class DriftReport(Event):
    """The drift and performance of one closed window of a model's traffic."""

    type: Literal["drift_report"] = "drift_report"
    event_id: Identifier
    model: ModelName
    model_version: int | None = None
    window_id: Identifier
    window_start: AwareDatetime
    window_end: AwareDatetime
    rows: Annotated[int, Field(ge=0)]
    drifted_share: Annotated[float, Field(ge=0.0, le=1.0)]
    drift_detected: bool
    columns: tuple[ColumnDrift, ...] = ()
    performance: dict[str, float] = Field(default_factory=dict)
    alarms: tuple[str, ...] = Field(default=(), description="River detectors that fired.")
    timestamp: AwareDatetime


class RetrainRequested(Event):
    """The monitor asks for a new challenger, with why and the windows that show it."""

    type: Literal["retrain_requested"] = "retrain_requested"
    event_id: Identifier
    model: ModelName
    champion_version: int | None = None
    reasons: tuple[str, ...] = Field(min_length=1)
    evidence: dict[str, Any] = Field(default_factory=dict)
    timestamp: AwareDatetime


class ModelPromoted(Event):
    """A version became its model's champion; serving processes swap to it."""

    type: Literal["model_promoted"] = "model_promoted"
    event_id: Identifier
    model: ModelName
    version: Annotated[int, Field(ge=1)]
    previous_version: int | None = None
    artifact_uri: str
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    actor: str = "driftloop"
    reason: str = ""
    timestamp: AwareDatetime


class ModelRolledBack(Event):
    """A former champion was restored; serving processes swap back to it."""

    type: Literal["model_rolled_back"] = "model_rolled_back"
    event_id: Identifier
    model: ModelName
    version: Annotated[int, Field(ge=1)]
    from_version: Annotated[int, Field(ge=1)]
    artifact_uri: str
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    actor: str = "driftloop"
    reason: str = ""
    timestamp: AwareDatetime


class SwapFailed(Event):
    """A serving process refused a new model (bad artifact or failed canary) and kept the old."""

    type: Literal["swap_failed"] = "swap_failed"
    event_id: Identifier
    model: ModelName
    version: int
    instance: str
    error: str
    timestamp: AwareDatetime


ModelUpdate = Annotated[
    ModelPromoted | ModelRolledBack | SwapFailed, Field(discriminator="type")
]
DriftEvent = Annotated[DriftReport | RetrainRequested, Field(discriminator="type")]

ALL_EVENTS: tuple[type[Event], ...] = (
    InferenceRequest,
    Prediction,
    Feedback,
    DriftReport,
    RetrainRequested,
    ModelPromoted,
    ModelRolledBack,
    SwapFailed,
)

