"""Builders of predictions and feedback shared by the monitor tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from streams.events import ClassOutput, Feedback, Prediction, ValueOutput

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def prediction(
    rid: str,
    *,
    model: str = "churn",
    at: float = 0.0,
    label: Any = "stay",
    value: float | None = None,
    features: dict[str, Any] | None = None,
    version: int = 1,
    event_id: str | None = None,
) -> Prediction:
    output = ValueOutput(value=value) if value is not None else ClassOutput(label=label)
    return Prediction(
        event_id=event_id or f"p-{model}-{rid}", request_id=rid, model=model,
        model_version=version, features=features or {"x": 1.0, "plan": "pro"}, output=output,
        timestamp=T0 + timedelta(seconds=at),
    )


def feedback(
    rid: str,
    label: Any = "stay",
    *,
    model: str = "churn",
    at: float = 10.0,
    source: str = "app",
    event_id: str | None = None,
) -> Feedback:
    return Feedback(
        event_id=event_id or f"f-{model}-{rid}-{source}-{at}", request_id=rid, model=model,
        label=label, source=source, reviewer="ann" if source == "reviewer" else None,
        timestamp=T0 + timedelta(seconds=at),
    )
