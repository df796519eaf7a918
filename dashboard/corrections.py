"""Label corrections by reviewers: parse them, check them, send them as Feedback events.

A correction becomes a ``Feedback`` event with ``source="reviewer"`` and the reviewer's name,
sent to the feedback topic with :meth:`streams.client.Client.log_feedback`. The monitor stores
it like any other feedback; a reviewer's label beats the app's whatever their order. Each sent
correction is written to the audit log once Kafka acknowledged it.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dashboard.audit import AuditEntry, AuditLog
from dashboard.auth import Access, User
from streams.errors import DriftloopError

log = logging.getLogger(__name__)

MAX_CSV_BYTES = 5_000_000
MAX_CSV_ROWS = 10_000


class FeedbackSink(Protocol):
    """Where corrections go; :class:`streams.client.Client` is the real one."""

    def log_feedback(
        self, model: str, request_id: str, label: Any, *, source: str = ...,
        reviewer: str | None = ...,
    ) -> str: ...

    def flush(self, timeout_s: float | None = None) -> int: ...


@dataclass(frozen=True)
class Correction:
    """The right label for one prediction, and the label it replaces (if any)."""

    model: str
    request_id: str
    label: Any
    previous: Any = None


@dataclass(frozen=True)
class Problem:
    """A correction that was not sent: which row (1-based, CSV header excluded) and why."""

    row: int
    request_id: str
    reason: str


@dataclass(frozen=True)
class Parsed:
    corrections: tuple[Correction, ...]
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class Sent:
    corrections: tuple[Correction, ...]
    event_ids: tuple[str, ...]
    problems: tuple[Problem, ...] = field(default=())


def coerce_label(raw: Any, like: Any) -> Any:
    """``raw`` as a label of the same type as ``like`` (the model's prediction).

    Strings typed in a form or read from a CSV become a bool, int or float when the model
    predicts one; raises ``ValueError`` when that is impossible.
    """
    if not isinstance(raw, str):
        if isinstance(raw, float) and not math.isfinite(raw):
            raise ValueError("a label must be a finite number")
        return raw
    text = raw.strip()
    if not text:
        raise ValueError("the label is empty")
    if isinstance(like, bool):
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"{text!r} is not true or false")
    if isinstance(like, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer like the model's classes") from None
    if isinstance(like, float):
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError("a label must be a finite number")
        return value
    return text


def parse_csv(data: bytes, *, default_model: str | None = None) -> tuple[list[dict[str, str]],
                                                                          list[Problem]]:
    """Rows of a corrections CSV: columns ``request_id``, ``label`` and optionally ``model``."""
    if len(data) > MAX_CSV_BYTES:
        return [], [Problem(0, "", f"the file is over {MAX_CSV_BYTES // 1_000_000} MB")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [Problem(0, "", "the file is not UTF-8 text")]
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = {"request_id", "label"} - set(header)
    if missing:
        return [], [Problem(0, "", f"missing column(s): {', '.join(sorted(missing))}")]
    if "model" not in header and default_model is None:
        return [], [Problem(0, "", "add a model column or choose a model first")]
    rows: list[dict[str, str]] = []
    problems: list[Problem] = []
    for number, raw in enumerate(reader, start=1):
        if number > MAX_CSV_ROWS:
            problems.append(Problem(number, "", f"only the first {MAX_CSV_ROWS} rows are read"))
            break
        row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        row.setdefault("model", default_model or "")
        if not row.get("model"):
            row["model"] = default_model or ""
        if not row["request_id"] or not row["model"]:
            problems.append(Problem(number, row.get("request_id", ""), "empty request_id/model"))
            continue
        row["row"] = str(number)
        rows.append(row)
    return rows, problems


def check(
    rows: Sequence[Mapping[str, Any]],
    predicted: Mapping[tuple[str, str], Any],
    current: Mapping[tuple[str, str], Any] | None = None,
) -> Parsed:
    """Turn raw rows into corrections of existing predictions, typed like their prediction.

    ``predicted`` maps (model, request_id) to the model's output for every known prediction;
    ``current`` to the label a prediction has now (to record what a correction replaces).
    """
    current = current or {}
    corrections: list[Correction] = []
    problems: list[Problem] = []
    for index, row in enumerate(rows, start=1):
        number = int(row.get("row", index))
        key = (str(row["model"]), str(row["request_id"]))
        if key not in predicted:
            problems.append(Problem(number, key[1], f"no prediction of {key[0]} with this id"))
            continue
        try:
            label = coerce_label(row["label"], predicted[key])
        except ValueError as exc:
            problems.append(Problem(number, key[1], str(exc)))
            continue
        previous = current.get(key)
        if previous is not None and previous == label:
            problems.append(Problem(number, key[1], "already has this label"))
            continue
        corrections.append(Correction(key[0], key[1], label, previous))
    return Parsed(tuple(corrections), tuple(problems))


class CorrectionService:
    """Sends corrections for a signed-in reviewer and records them in the audit log."""

    def __init__(
        self, sink: FeedbackSink, audit: AuditLog, access: Access, *, flush_timeout_s: float = 30.0
    ) -> None:
        self._sink = sink
        self._audit = audit
        self._access = access
        self._flush_timeout_s = flush_timeout_s
        # Streamlit serves each browser session from its own thread; one producer is shared.
        self._lock = threading.Lock()

    def submit(self, user: User | None, corrections: Sequence[Correction], *, via: str) -> Sent:
        """Send every correction and wait for Kafka's acknowledgement, then audit them.

        Raises :class:`dashboard.auth.AccessDeniedError` when nobody is signed in (the refusal
        is audited too) and a ``DriftloopError`` when the events could not be sent.
        """
        if user is None:
            self._audit.record("anonymous", "refused", reason="correct labels without signing in",
                               detail={"corrections": len(corrections), "via": via})
        reviewer = self._access.require_actor(user, "correct labels")
        if not corrections:
            return Sent((), ())
        with self._lock:
            try:
                ids = tuple(
                    self._sink.log_feedback(
                        c.model, c.request_id, c.label, source="reviewer", reviewer=reviewer.name
                    )
                    for c in corrections
                )
                self._sink.flush(self._flush_timeout_s)
            except DriftloopError:
                log.exception("corrections were not sent", extra={"reviewer": reviewer.name})
                raise
        at = self._audit.now()
        self._audit.record_many(
            [
                AuditEntry(
                    at, reviewer.name, "correct_label", c.model, c.request_id,
                    detail={"label": c.label, "previous": c.previous, "event_id": event_id,
                            "via": via},
                )
                for c, event_id in zip(corrections, ids, strict=True)
            ]
        )
        log.info("corrections sent", extra={"reviewer": reviewer.name, "count": len(ids)})
        return Sent(tuple(corrections), ids)
