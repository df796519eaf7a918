"""Count- and time-based windows over a model's stream of stored rows (pure).

A window is a run of consecutive stored rows (by their store id) of one model and one model
version: versions never mix, so a new champion's traffic is judged on its own. It closes when
it holds ``size`` rows, or when it has been open ``seconds`` (by the injected clock) and holds
at least ``min_rows``. The first ``reference_rows`` rows of each model are not windowed: they
are the reference window until the champion's lineage names its training data (the caller
then sets ``reference_rows`` to 0).

Two instances run in the monitor: ``served`` over predictions as they are stored (data drift
of the features and the prediction, labels or not), and ``labelled`` over labelled examples as
they are first joined (drift including the label, and performance).

A served row of a calibrated champion carries its calibrated probabilities and served class
(:class:`Calibrated`); the window sums them (:class:`streams.calibration.Expectation`) so that
its performance can be estimated at close, before any label (:mod:`monitor.estimate`).

A closed window is only a description (id range, bounds, performance); its rows are read back
from the store by whoever runs the drift report, so nothing but counters is held here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from monitor.performance import Outcome, Performance
from streams.calibration import Expectation
from streams.settings import MonitorSettings

Kind = Literal["served", "labelled"]
Trigger = Literal["count", "time"]


@dataclass(frozen=True)
class WindowConfig:
    size: int = 500
    seconds: float = 300.0
    min_rows: int = 30
    reference_rows: int = 1000

    @classmethod
    def from_settings(cls, settings: MonitorSettings) -> WindowConfig:
        return cls(size=settings.window_size, seconds=settings.window_seconds,
                   min_rows=settings.min_window_rows, reference_rows=settings.reference_size)


@dataclass(frozen=True)
class Calibrated:
    """A served row's calibrated probabilities (class order) and the class it was served as."""

    probabilities: tuple[float, ...]
    served: int


@dataclass(frozen=True)
class WindowRow:
    """One stored row entering a window."""

    id: int
    model: str
    version: int
    timestamp: datetime
    outcome: Outcome | None = None
    calibrated: Calibrated | None = None


@dataclass(frozen=True)
class ClosedWindow:
    window_id: str
    model: str
    version: int
    kind: Kind
    seq: int
    first_id: int
    last_id: int
    rows: int
    start: datetime
    end: datetime
    trigger: Trigger
    performance: dict[str, float]
    task: str | None
    expectation: Expectation | None = None
    estimate: dict[str, float] | None = field(default=None, compare=False)
    """Set by the monitor at close: the estimated scores and their band (see
    :meth:`streams.calibration.Estimate.record`); None: no estimate."""


@dataclass
class _Open:
    seq: int
    opened_at: datetime
    first_id: int
    last_id: int
    start: datetime
    end: datetime
    rows: int = 0
    performance: Performance = field(default_factory=Performance)
    expectation: Expectation | None = None

    def state(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "opened_at": self.opened_at.isoformat(),
            "first_id": self.first_id, "last_id": self.last_id,
            "start": self.start.isoformat(), "end": self.end.isoformat(), "rows": self.rows,
            "performance": self.performance.state(),
            "expectation": None if self.expectation is None else self.expectation.state(),
        }

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> _Open:
        return cls(
            seq=int(s["seq"]), opened_at=datetime.fromisoformat(s["opened_at"]),
            first_id=int(s["first_id"]), last_id=int(s["last_id"]),
            start=datetime.fromisoformat(s["start"]), end=datetime.fromisoformat(s["end"]),
            rows=int(s["rows"]), performance=Performance.from_state(s["performance"]),
            expectation=None if not s.get("expectation")
            else Expectation.from_state(s["expectation"]),
        )


def window_id(model: str, kind: Kind, version: int, seq: int) -> str:
    return f"{model}.{kind}.v{version}.{seq}"


class Windows:
    """The open windows of one kind, every model; ``update(row, now) -> self``."""

    def __init__(self, kind: Kind, config: WindowConfig | None = None) -> None:
        self.kind: Kind = kind
        self.config = config or WindowConfig()
        self._open: dict[tuple[str, int], _Open] = {}
        self._seen: dict[str, int] = {}
        self._seq: dict[str, int] = {}
        self._reference_rows: dict[str, int] = {}
        self._closed: list[ClosedWindow] = []
        self._last_window: str | None = None

    @property
    def last_window(self) -> str | None:
        """The id of the window the last updated row went into (None: a reference row)."""
        return self._last_window

    def seen(self, model: str) -> int:
        """Rows of ``model`` seen, the reference ones included."""
        return self._seen.get(model, 0)

    def reference_rows(self, model: str) -> int:
        return self._reference_rows.get(model, self.config.reference_rows)

    def set_reference_rows(self, model: str, rows: int) -> Windows:
        """How many first rows of ``model`` form its reference (0 once lineage names one)."""
        self._reference_rows[model] = rows
        return self

    def update(self, row: WindowRow, now: datetime) -> Windows:
        seen = self._seen.get(row.model, 0)
        self._seen[row.model] = seen + 1
        self._last_window = None
        if seen < self.reference_rows(row.model):
            return self
        key = (row.model, row.version)
        window = self._open.get(key)
        if window is None:
            seq = self._seq.get(row.model, 0)
            self._seq[row.model] = seq + 1
            window = self._open[key] = _Open(seq, now, row.id, row.id, row.timestamp,
                                             row.timestamp)
        window.rows += 1
        window.last_id = row.id
        window.start = min(window.start, row.timestamp)
        window.end = max(window.end, row.timestamp)
        if row.outcome is not None:
            window.performance.update(row.outcome)
        if row.calibrated is not None:
            probabilities = row.calibrated.probabilities
            if window.expectation is None:
                window.expectation = Expectation(len(probabilities))
            if window.expectation.classes == len(probabilities):
                window.expectation.add(probabilities, row.calibrated.served)
        self._last_window = window_id(row.model, self.kind, row.version, window.seq)
        if window.rows >= self.config.size:
            self._close(key, "count")
        return self

    def tick(self, now: datetime) -> Windows:
        """Close the windows that are old enough and hold enough rows."""
        for key, window in list(self._open.items()):
            age = (now - window.opened_at).total_seconds()
            if age >= self.config.seconds and window.rows >= self.config.min_rows:
                self._close(key, "time")
        return self

    def drain(self) -> list[ClosedWindow]:
        """The windows closed since the last drain, oldest first."""
        closed, self._closed = self._closed, []
        return closed

    @property
    def open_windows(self) -> int:
        return len(self._open)

    def _close(self, key: tuple[str, int], trigger: Trigger) -> None:
        window = self._open.pop(key)
        model, version = key
        self._closed.append(ClosedWindow(
            window_id=window_id(model, self.kind, version, window.seq), model=model,
            version=version, kind=self.kind, seq=window.seq, first_id=window.first_id,
            last_id=window.last_id, rows=window.rows, start=window.start, end=window.end,
            trigger=trigger, performance=window.performance.metrics(),
            task=window.performance.task, expectation=window.expectation,
        ))

    # -- persistence -----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything needed to continue exactly (closed windows must be drained first)."""
        return {
            "seen": dict(self._seen), "seq": dict(self._seq),
            "reference_rows": dict(self._reference_rows),
            "open": [[m, v, w.state()] for (m, v), w in self._open.items()],
        }

    @classmethod
    def from_state(
        cls, kind: Kind, config: WindowConfig, state: dict[str, Any]
    ) -> Windows:
        windows = cls(kind, config)
        windows._seen = {k: int(v) for k, v in state.get("seen", {}).items()}
        windows._seq = {k: int(v) for k, v in state.get("seq", {}).items()}
        windows._reference_rows = {
            k: int(v) for k, v in state.get("reference_rows", {}).items()
        }
        for model, version, s in state.get("open", []):
            windows._open[(model, int(version))] = _Open.from_state(s)
        return windows
