"""The event contract: what apps and driftloop's processes put on Kafka.

Each event is a frozen pydantic model serialised as one JSON object. Every event carries
``type`` (its name, so mixed topics can be decoded) and ``schema_version`` (bumped on any
change a reader would notice). ``driftloop schema`` publishes the JSON Schema of each one so
apps in any language can produce them, and the schema means exactly what the system accepts
(``tests/streams/test_conformance.py`` holds both to that):

* **strict types**: no string is read as a number, no boolean as an integer; an integer may be
  written as a number with no fractional part (``3.0``), as JSON Schema allows;
* **bounded numbers**: numbers are finite doubles. In features and labels an integer within
  the signed 64-bit range stays an integer; one outside it is read as the double it is (JSON
  Schema makes no difference between ``2**64`` and ``1.8446744073709552e19``), and one beyond
  the largest double is refused. Versions and counts fit a signed 32-bit integer, like the
  database columns;
* **timestamps** are RFC 3339 strings with a ``T`` and an offset (``Z`` or ``+hh:mm``), at most
  microseconds, in the years 1970 to 2199;
* **ids** are 1 to 200 characters with no whitespace or control character; model names are
  1 to 100 of ``A-Z a-z 0-9 _ . -``.

Features are a flat mapping of name to number, string, boolean or null. Numbers must be
finite: NaN and infinity are rejected, never silently replaced.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    StrictBool,
    StrictStr,
    model_validator,
)
from pydantic_core import core_schema

from streams.labels import LabelSource

SCHEMA_VERSION = 1

INT32_MAX = 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FLOAT_MAX = 1.7976931348623157e308


def _pattern(body: str, **constraints: Any) -> Any:
    """A string field matching ``^body$`` in the validator and in the published schema.

    The schema's pattern ends in a negative lookahead instead of ``$``: validators that use
    Python's ``re.search`` let ``$`` match before a final newline; ECMA-262 and the validator
    here do not. The lookahead reads the same everywhere.
    """
    return Field(pattern=f"^{body}$",
                 json_schema_extra={"pattern": f"^{body}(?![\\s\\S])"}, **constraints)


# No whitespace and no control character, by either reading of \s (ECMA-262's or Python's).
_ID_CHARS = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]+"
Identifier = Annotated[str, _pattern(_ID_CHARS, min_length=1, max_length=200)]
ModelName = Annotated[str, _pattern(r"[A-Za-z0-9_.\-]+", min_length=1, max_length=100)]
Sha256 = Annotated[str, _pattern(r"[0-9a-f]{64}")]

_TIMESTAMP = (
    r"(19[7-9][0-9]|2[01][0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)
_TIMESTAMP_RE = re.compile(_TIMESTAMP)
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _timestamp(value: object) -> datetime:
    """The Python side of :class:`_Timestamp` (events built in code, rows read back)."""
    if isinstance(value, str):
        if not _TIMESTAMP_RE.fullmatch(value):
            raise ValueError(
                "timestamp must be RFC 3339 with 'T' and an offset, years 1970-2199, "
                "e.g. 2026-05-01T10:00:00Z"
            )
        return datetime.fromisoformat(value)  # may still refuse a day like 02-30
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamp must carry a time zone")
        if not _EARLIEST.year <= value.year < _LATEST.year:
            raise ValueError("timestamp must be in the years 1970-2199")
        return value
    raise ValueError("timestamp must be an RFC 3339 string")


class _Timestamp:
    """An aware datetime; on the wire a string of the timestamp pattern.

    JSON is checked against the pattern and parsed by pydantic-core itself (no Python call
    per event: decoding is the consumers' hot path); values built in Python go through
    :func:`_timestamp`.
    """

    @classmethod
    def __get_pydantic_core_schema__(
        cls, _source: Any, _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        parsed = core_schema.datetime_schema(tz_constraint="aware", strict=False)
        wire = core_schema.chain_schema([
            core_schema.str_schema(pattern=f"^{_TIMESTAMP}$", strict=True), parsed])
        return core_schema.json_or_python_schema(
            json_schema=core_schema.custom_error_schema(
                wire, custom_error_type="timestamp", custom_error_message=(
                    "Input should be an RFC 3339 timestamp with 'T' and an offset, a real "
                    "date in the years 1970-2199, e.g. 2026-05-01T10:00:00Z")),
            python_schema=core_schema.no_info_before_validator_function(_timestamp, parsed),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, _core: core_schema.CoreSchema, _handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {"type": "string", "format": "date-time",
                "pattern": f"^{_TIMESTAMP}(?![\\s\\S])"}


class _Integer:
    """An integer in ``[ge, le]``; also written as a number with no fractional part (``3.0``),
    which JSON Schema counts as an integer. Never a string or a boolean. Checked by
    pydantic-core alone."""

    def __init__(self, ge: int, le: int) -> None:
        self.ge, self.le = ge, le

    def __get_pydantic_core_schema__(
        self, _source: Any, _handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        exact = core_schema.int_schema(strict=True, ge=self.ge, le=self.le)
        whole = core_schema.chain_schema([
            core_schema.float_schema(strict=True, multiple_of=1.0, allow_inf_nan=False),
            core_schema.int_schema(strict=False, ge=self.ge, le=self.le)])
        return core_schema.union_schema([exact, whole], custom_error_type="integer_range",
                                        custom_error_message=(
                                            f"Input should be an integer from {self.ge} to "
                                            f"{self.le}"))

    def __get_pydantic_json_schema__(
        self, _core: core_schema.CoreSchema, _handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.ge, "maximum": self.le}


Timestamp = Annotated[datetime, _Timestamp]
Version = Annotated[int, _Integer(0, INT32_MAX)]
Count = Annotated[int, _Integer(0, INT32_MAX)]
PositiveVersion = Annotated[int, _Integer(1, INT32_MAX)]
Int64 = Annotated[int, Field(strict=True, ge=INT64_MIN, le=INT64_MAX)]
Number = Annotated[float, Field(strict=True, ge=-FLOAT_MAX, le=FLOAT_MAX)]
FeatureValue = StrictBool | Int64 | Number | StrictStr | None


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
Label = StrictBool | Int64 | Number | StrictStr


class _SchemaVersion(_Integer):
    def __get_pydantic_json_schema__(
        self, _core: core_schema.CoreSchema, _handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {"type": "integer", "const": SCHEMA_VERSION}


SchemaVersion = Annotated[int, _SchemaVersion(SCHEMA_VERSION, SCHEMA_VERSION)]


def new_event_id() -> str:
    return uuid.uuid4().hex


class Event(BaseModel):
    """Base of every event on the wire.

    ``type`` may be left out on a topic that carries one kind of event (requests, predictions,
    feedback); on a topic that mixes kinds (drift, model-updates) it is required, as the
    topic's published schema says.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)

    schema_version: SchemaVersion = 1


class InferenceRequest(Event):
    """An app asks driftloop's serving process for a prediction."""

    type: Literal["inference_request"] = "inference_request"
    request_id: Identifier
    model: ModelName
    features: Features
    timestamp: Timestamp


def _kind_required(schema: dict[str, Any]) -> None:
    """On the wire ``kind`` picks the output's shape, so it is required there (not in Python)."""
    schema["required"] = sorted({*schema.get("required", ()), "kind"})


class ClassOutput(BaseModel):
    """A classifier's answer: the chosen class and the probability of every class."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True,
                              json_schema_extra=_kind_required)

    kind: Literal["class"] = "class"
    label: Label
    probabilities: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(default_factory=dict)


class ValueOutput(BaseModel):
    """A regressor's answer."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True,
                              json_schema_extra=_kind_required)

    kind: Literal["value"] = "value"
    value: Number


Output = Annotated[ClassOutput | ValueOutput, Field(discriminator="kind")]


class Prediction(Event):
    """One model output, produced by driftloop's serving or logged by an app that serves itself."""

    type: Literal["prediction"] = "prediction"
    event_id: Identifier
    request_id: Identifier
    model: ModelName
    model_version: Version
    features: Features
    output: Output
    latency_ms: Annotated[float, Field(ge=0.0, le=FLOAT_MAX)] = 0.0
    timestamp: Timestamp


def _reviewer_named_in_schema(schema: dict[str, Any]) -> None:
    """The schema's form of ``Feedback._reviewer_named``."""
    schema["if"] = {"properties": {"source": {"const": "reviewer"}}, "required": ["source"]}
    schema["then"] = {"properties": {"reviewer": {"type": "string"}}, "required": ["reviewer"]}


class Feedback(Event):
    """The true label for a request, from the app or a human reviewer.

    A later feedback for the same (model, request_id) is a correction: it overrides the
    earlier label; a reviewer's label overrides the app's whatever their order.
    """

    model_config = ConfigDict(json_schema_extra=_reviewer_named_in_schema)

    type: Literal["feedback"] = "feedback"
    event_id: Identifier
    request_id: Identifier
    model: ModelName
    label: Label
    source: LabelSource = "app"
    reviewer: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    timestamp: Timestamp

    @model_validator(mode="after")
    def _reviewer_named(self) -> Feedback:
        if self.source == "reviewer" and self.reviewer is None:
            raise ValueError("feedback from a reviewer must name the reviewer")
        return self


class ColumnDrift(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)

    column: str
    method: str
    score: Number
    threshold: Number
    drifted: bool


Share = Annotated[float, Field(strict=True, ge=0.0, le=1.0)]


class ColumnQuality(BaseModel):
    """The data quality of one feature in a window, against the window's reference rows."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)

    column: str
    missing: Share = Field(description="Share of the window's rows where it is null.")
    reference_missing: Share = Field(description="The same share in the reference rows.")
    out_of_range: Share | None = Field(
        None, description="Numeric: share of rows outside the reference's range (else null)."
    )
    unseen: Share | None = Field(
        None, description="Categorical: share of rows with a category the reference lacks."
    )
    violated: bool = False


class DriftReport(Event):
    """The drift and performance of one closed window of a model's traffic."""

    type: Literal["drift_report"] = "drift_report"
    event_id: Identifier
    model: ModelName
    model_version: Version | None = None
    window_id: Identifier
    window_start: Timestamp
    window_end: Timestamp
    rows: Count
    drifted_share: Annotated[float, Field(ge=0.0, le=1.0)]
    drift_detected: bool
    columns: tuple[ColumnDrift, ...] = ()
    quality: tuple[ColumnQuality, ...] = Field(
        default=(), description="Missing, out-of-range and unseen rates per feature."
    )
    performance: dict[str, Number] = Field(default_factory=dict)
    alarms: tuple[str, ...] = Field(default=(), description="River detectors that fired.")
    timestamp: Timestamp


class RetrainRequested(Event):
    """The monitor asks for a new challenger, with why and the windows that show it."""

    type: Literal["retrain_requested"] = "retrain_requested"
    event_id: Identifier
    model: ModelName
    champion_version: Version | None = None
    reasons: tuple[str, ...] = Field(min_length=1)
    evidence: dict[str, Any] = Field(default_factory=dict)
    timestamp: Timestamp


class ModelPromoted(Event):
    """A version became its model's champion; serving processes swap to it."""

    type: Literal["model_promoted"] = "model_promoted"
    event_id: Identifier
    model: ModelName
    version: PositiveVersion
    previous_version: Version | None = None
    artifact_uri: str
    sha256: Sha256
    actor: str = "driftloop"
    reason: str = ""
    timestamp: Timestamp


class ModelRolledBack(Event):
    """A former champion was restored; serving processes swap back to it."""

    type: Literal["model_rolled_back"] = "model_rolled_back"
    event_id: Identifier
    model: ModelName
    version: PositiveVersion
    from_version: PositiveVersion
    artifact_uri: str
    sha256: Sha256
    actor: str = "driftloop"
    reason: str = ""
    timestamp: Timestamp


class SwapFailed(Event):
    """A serving process refused a new model (bad artifact or failed canary) and kept the old."""

    type: Literal["swap_failed"] = "swap_failed"
    event_id: Identifier
    model: ModelName
    version: Version
    instance: str
    error: str
    timestamp: Timestamp


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

