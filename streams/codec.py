"""Bytes to events and back, with every way an event can be bad turned into an EventError.

Decoding is the only gate between the wire and the rest of driftloop: a payload that is
too large, not JSON, not an object, of an unknown schema version, of the wrong shape,
carrying NaN or infinity, or naming a model this deployment does not serve is refused here
with a readable reason, so the consumer can dead-letter it and go on.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError

from streams.errors import (
    DecodeError,
    EventError,
    PayloadTooLargeError,
    SchemaError,
    UnknownModelError,
)
from streams.events import SCHEMA_VERSION, Event

E = TypeVar("E")


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a valid number")


def encode(event: Event) -> bytes:
    return event.model_dump_json().encode("utf-8")


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "event"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - 5
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


class Decoder(Generic[E]):
    """Turns one topic's payloads into events of type ``E`` (a model or a tagged union)."""

    def __init__(
        self,
        event_type: Any,
        *,
        max_bytes: int,
        models: Collection[str] = (),
    ) -> None:
        self._adapter: TypeAdapter[E] = TypeAdapter(event_type)
        # The compiled validator itself: TypeAdapter.validate_json adds a Python frame per
        # call, a tenth of the cost of validating a small event.
        self._validate_json = self._adapter.validator.validate_json
        self._max_bytes = max_bytes
        self._models = frozenset(models)

    def decode(self, payload: bytes | None) -> E:
        if payload is None:
            raise DecodeError("empty message (null value)")
        if len(payload) > self._max_bytes:
            raise PayloadTooLargeError(
                f"payload of {len(payload)} bytes is over the {self._max_bytes}-byte limit"
            )
        try:
            event: E = self._validate_json(payload)
        except ValidationError as exc:
            raise self._explain(payload, exc) from exc
        if self._models:
            model = getattr(event, "model", None)
            if model not in self._models:
                raise UnknownModelError(f"unknown model {model!r}")
        return event

    def _explain(self, payload: bytes, exc: ValidationError) -> EventError:
        """The clearest reason a payload was refused (only bad payloads pay for this).

        Never raises: a payload nested too deeply for any parser is refused by the validator
        itself (``json_invalid``) before anything here parses it again.
        """
        errors = exc.errors(include_url=False)
        first = errors[0] if errors else None
        if first is not None and first["type"] == "json_invalid":
            return DecodeError(f"not valid JSON: {first['msg'].removeprefix('Invalid JSON: ')}")
        try:
            data = json.loads(payload, parse_constant=_refuse_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as parse_error:
            return DecodeError(f"not valid JSON: {parse_error}")
        if not isinstance(data, dict):
            return DecodeError(f"expected a JSON object, got {type(data).__name__}")
        version = data.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION or isinstance(version, bool):
            return SchemaError(
                f"unsupported schema_version {version!r}; this driftloop reads {SCHEMA_VERSION}"
            )
        return SchemaError(_describe(exc))
