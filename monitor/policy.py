"""When to ask for retraining (pure: the clock is injected, nothing is sent from here).

The policy watches, per model, the signals the monitor derives from traffic and asks for a
new challenger when one of five things happens:

* ``detector:<name>`` — a River detector fired on the model's error stream;
* ``data_drift`` — ``drift_windows`` consecutive windows of one kind (served or labelled)
  had a drifted-column share above ``drift_share_threshold``;
* ``data_quality`` — a window (with at least ``min_window_rows`` rows) had a feature whose
  nulls, out-of-range numbers or unseen categories broke the quality margin
  (:mod:`monitor.quality`);
* ``performance`` — a labelled window of the champion's version (with at least
  ``min_window_rows`` rows) scored ``performance_margin`` below the champion's validation
  score: an absolute margin for scores in [0, 1] (accuracy, F1, ...), a relative one for
  errors (MSE, MAE, RMSE: above ``score * (1 + margin)``);
* ``gradual_drift`` — the errors of the champion's labelled windows (1 - score, or the
  regression error itself) rose significantly and persistently above its validation error, as
  a slow drift makes it creep up window after window (:mod:`monitor.trend`, whose state is
  kept here and starts over with each new champion).
* ``estimated_performance`` — ``estimate_windows`` consecutive served windows of the
  champion's version (with at least ``min_window_rows`` rows each) had an estimated score
  (:mod:`monitor.estimate`: accuracy or F1 expected from calibrated confidences, no labels
  needed) below its reference band's lower edge, so retraining can start before the labels
  of the drop arrive.

A reason stays pending, with its evidence, until a request can be made. A request is made
only if (1) no request of the model is open, (2) the last one is at least ``cooldown_s`` old,
and (3) at least ``min_fresh_labels`` labelled examples arrived since the last request or the
last champion change. An open request closes when a ``ModelPromoted`` for a newer version
than the champion it was made against arrives (the retraining produced a new champion), or
after ``request_timeout_s`` (the retraining failed, or its challenger lost). A champion change
also drops the pending evidence: it was about the old model.

``update(signal) -> self``; ``requested`` is the request the last update produced, if any,
and ``closed`` the open requests it closed, with why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from monitor.trend import TrendConfig, TrendDetector
from streams.clock import Clock
from streams.scores import higher_is_better
from streams.settings import MonitorSettings

MAX_ALARMS = 20


@dataclass(frozen=True)
class PolicyConfig:
    drift_share_threshold: float = 0.5
    drift_windows: int = 2
    performance_margin: float = 0.05
    cooldown_s: float = 600.0
    min_fresh_labels: int = 200
    request_timeout_s: float = 21_600.0
    min_window_rows: int = 30
    estimate_windows: int = 2
    trend: TrendConfig = field(default_factory=TrendConfig)

    @classmethod
    def from_settings(cls, settings: MonitorSettings) -> PolicyConfig:
        return cls(
            drift_share_threshold=settings.drift_share_threshold,
            drift_windows=settings.drift_windows,
            performance_margin=settings.performance_margin, cooldown_s=settings.cooldown_s,
            min_fresh_labels=settings.min_fresh_labels,
            request_timeout_s=settings.request_timeout_s,
            min_window_rows=settings.min_window_rows,
            estimate_windows=settings.estimate_windows,
            trend=TrendConfig.from_settings(settings),
        )


# -- signals ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelsArrived:
    model: str
    count: int


@dataclass(frozen=True)
class DetectorFired:
    model: str
    detector: str
    index: int
    example_id: int
    window_id: str | None = None


@dataclass(frozen=True)
class WindowDrift:
    model: str
    window_id: str
    kind: str
    drifted_share: float
    rows: int


@dataclass(frozen=True)
class QualityViolated:
    model: str
    window_id: str
    kind: str
    columns: tuple[str, ...]
    rows: int


@dataclass(frozen=True)
class WindowScore:
    model: str
    window_id: str
    version: int
    metrics: dict[str, float]
    rows: int


@dataclass(frozen=True)
class WindowEstimate:
    """A served window's estimated scores and the lower edges of their bands."""

    model: str
    window_id: str
    version: int
    metrics: dict[str, float]
    lower: dict[str, float]
    rows: int


@dataclass(frozen=True)
class ChampionChanged:
    model: str
    version: int
    metric: str | None = None
    score: float | None = None


Signal = (LabelsArrived | DetectorFired | WindowDrift | QualityViolated | WindowScore
          | WindowEstimate | ChampionChanged)


@dataclass(frozen=True)
class RetrainDecision:
    """A request to make: the monitor turns it into a ``RetrainRequested`` event."""

    event_id: str
    model: str
    champion_version: int | None
    reasons: tuple[str, ...]
    evidence: dict[str, Any]
    at: datetime


@dataclass
class _Model:
    champion_version: int | None = None
    champion_metric: str | None = None
    champion_score: float | None = None
    fresh_labels: int = 0
    alarms: list[dict[str, Any]] = field(default_factory=list)
    streaks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    performance: dict[str, Any] | None = None
    quality: dict[str, Any] | None = None
    trend: dict[str, Any] = field(default_factory=dict)
    gradual: dict[str, Any] | None = None
    estimate: dict[str, Any] | None = None
    estimate_streak: list[dict[str, Any]] = field(default_factory=list)
    last_request_at: str | None = None
    open_request: dict[str, Any] | None = None
    requests: int = 0
    suppressed: int = 0


class RetrainPolicy:
    """Per-model retrain decisions; see the module docstring."""

    def __init__(self, config: PolicyConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._models: dict[str, _Model] = {}
        self._requested: RetrainDecision | None = None
        self._closed: list[tuple[str, str]] = []

    @property
    def requested(self) -> RetrainDecision | None:
        """The request the last update produced, if any."""
        return self._requested

    @property
    def closed(self) -> tuple[tuple[str, str], ...]:
        """(event id, reason) of the requests the last update closed."""
        return tuple(self._closed)

    def champion_version(self, model: str) -> int | None:
        state = self._models.get(model)
        return state.champion_version if state else None

    def open_request(self, model: str) -> dict[str, Any] | None:
        state = self._models.get(model)
        return dict(state.open_request) if state and state.open_request else None

    def pending_reasons(self, model: str) -> tuple[str, ...]:
        state = self._models.get(model)
        return self._reasons(state) if state else ()

    def update(self, signal: Signal) -> RetrainPolicy:
        self._requested = None
        self._closed = []
        now = self._clock()
        state = self._models.setdefault(signal.model, _Model())
        if isinstance(signal, ChampionChanged):
            self._champion(state, signal)
        elif isinstance(signal, LabelsArrived):
            state.fresh_labels += signal.count
        elif isinstance(signal, DetectorFired):
            state.alarms = [*state.alarms, {
                "detector": signal.detector, "index": signal.index,
                "example_id": signal.example_id, "window_id": signal.window_id,
            }][-MAX_ALARMS:]
        elif isinstance(signal, WindowDrift):
            self._drift(state, signal)
        elif isinstance(signal, QualityViolated):
            if signal.rows >= self.config.min_window_rows:
                state.quality = {"window_id": signal.window_id, "kind": signal.kind,
                                 "columns": list(signal.columns)}
        elif isinstance(signal, WindowEstimate):
            self._estimate(state, signal)
        else:
            self._score(state, signal)
        self._requested = self._decide(signal.model, state, now)
        return self

    # -- rules -----------------------------------------------------------------------------

    def _champion(self, state: _Model, signal: ChampionChanged) -> None:
        request = state.open_request
        if request is not None and (
            request.get("champion_version") is None
            or signal.version > int(request["champion_version"])
        ):
            self._closed.append((request["event_id"], f"promoted v{signal.version}"))
            state.open_request = None
        if signal.version != state.champion_version:
            state.alarms, state.streaks, state.performance = [], {}, None
            state.quality = state.estimate = None
            state.estimate_streak = []
            state.trend, state.gradual = {}, None
            state.fresh_labels = 0
        state.champion_version = signal.version
        state.champion_metric, state.champion_score = signal.metric, signal.score

    def _drift(self, state: _Model, signal: WindowDrift) -> None:
        if signal.rows < self.config.min_window_rows:
            return
        streak = state.streaks.get(signal.kind, [])
        if signal.drifted_share > self.config.drift_share_threshold:
            entry = {"window_id": signal.window_id, "drifted_share": signal.drifted_share}
            streak = [*streak, entry][-self.config.drift_windows:]
        else:
            streak = []
        state.streaks[signal.kind] = streak

    def _score(self, state: _Model, signal: WindowScore) -> None:
        metric, champion = state.champion_metric, state.champion_score
        if (
            signal.rows < self.config.min_window_rows
            or metric is None
            or champion is None
            or metric not in signal.metrics
            or (state.champion_version is not None and signal.version != state.champion_version)
        ):
            return
        value = signal.metrics[metric]
        margin = self.config.performance_margin
        if higher_is_better(metric):
            worse = value < champion - margin
        else:
            worse = value > champion * (1.0 + margin)
        if worse:
            state.performance = {
                "window_id": signal.window_id, "metric": metric, "value": value,
                "champion": champion, "margin": margin,
            }
        self._trend(state, signal.window_id, metric, value, champion)

    def _trend(self, state: _Model, window_id: str, metric: str, value: float,
               champion: float) -> None:
        """Feed the window's error (1 - score, or the error itself) to the trend detector."""
        relative = not higher_is_better(metric)
        reference = champion if relative else 1.0 - champion
        error = value if relative else 1.0 - value
        detector = TrendDetector.restore(self.config.trend, reference, state.trend,
                                         relative=relative).update(error, window_id)
        state.trend = detector.state()
        if detector.alarm is not None:
            state.gradual = {"metric": metric, **detector.alarm.as_dict()}

    def _estimate(self, state: _Model, signal: WindowEstimate) -> None:
        if signal.rows < self.config.min_window_rows or (
            state.champion_version is not None and signal.version != state.champion_version
        ):
            return
        below = [{"window_id": signal.window_id, "metric": metric, "value": value,
                  "lower": lower}
                 for metric, lower in signal.lower.items()
                 if (value := signal.metrics.get(metric)) is not None and value < lower]
        if not below:
            state.estimate_streak = []
            return
        state.estimate_streak = [*state.estimate_streak, below[0]][-self.config.estimate_windows:]
        if len(state.estimate_streak) >= self.config.estimate_windows:
            state.estimate = {**below[0], "windows": [e["window_id"]
                                                      for e in state.estimate_streak]}

    def _reasons(self, state: _Model) -> tuple[str, ...]:
        reasons = [f"detector:{d}" for d in dict.fromkeys(a["detector"] for a in state.alarms)]
        if any(len(s) >= self.config.drift_windows for s in state.streaks.values()):
            reasons.append("data_drift")
        if state.quality is not None:
            reasons.append("data_quality")
        if state.performance is not None:
            reasons.append("performance")
        if state.gradual is not None:
            reasons.append("gradual_drift")
        if state.estimate is not None:
            reasons.append("estimated_performance")
        return tuple(reasons)

    def _decide(self, model: str, state: _Model, now: datetime) -> RetrainDecision | None:
        reasons = self._reasons(state)
        if not reasons:
            return None
        request = state.open_request
        if request is not None:
            opened = datetime.fromisoformat(request["at"])
            if now - opened < timedelta(seconds=self.config.request_timeout_s):
                state.suppressed += 1
                return None
            self._closed.append((request["event_id"], "timeout"))
            state.open_request = None
        if state.last_request_at is not None:
            last = datetime.fromisoformat(state.last_request_at)
            if now - last < timedelta(seconds=self.config.cooldown_s):
                state.suppressed += 1
                return None
        if state.fresh_labels < self.config.min_fresh_labels:
            state.suppressed += 1
            return None
        evidence = self._evidence(state)
        state.requests += 1
        event_id = f"retrain.{model}.{now:%Y%m%dT%H%M%S}.{state.requests}"
        decision = RetrainDecision(event_id, model, state.champion_version, reasons, evidence,
                                   now)
        state.open_request = {"event_id": event_id, "at": now.isoformat(),
                              "champion_version": state.champion_version}
        state.last_request_at = now.isoformat()
        state.fresh_labels = 0
        state.alarms, state.streaks, state.performance = [], {}, None
        state.quality = state.gradual = state.estimate = None
        state.estimate_streak = []
        return decision

    def _evidence(self, state: _Model) -> dict[str, Any]:
        drifted = [e for s in state.streaks.values() if len(s) >= self.config.drift_windows
                   for e in s]
        windows = [a["window_id"] for a in state.alarms if a.get("window_id")]
        windows += [e["window_id"] for e in drifted]
        if state.quality is not None:
            windows.append(state.quality["window_id"])
        if state.performance is not None:
            windows.append(state.performance["window_id"])
        if state.gradual is not None:
            windows.append(state.gradual["window_id"])
        if state.estimate is not None:
            windows += state.estimate.get("windows", [state.estimate["window_id"]])
        evidence: dict[str, Any] = {
            "windows": list(dict.fromkeys(windows)),
            "fresh_labels": state.fresh_labels,
        }
        if state.alarms:
            evidence["detectors"] = list(state.alarms)
        if drifted:
            evidence["drift_windows"] = drifted
        if state.quality is not None:
            evidence["data_quality"] = dict(state.quality)
        if state.performance is not None:
            evidence["performance"] = dict(state.performance)
        if state.gradual is not None:
            evidence["gradual_drift"] = dict(state.gradual)
        if state.estimate is not None:
            evidence["estimated_performance"] = dict(state.estimate)
        return evidence

    # -- persistence -----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {model: vars(s).copy() for model, s in self._models.items()}

    @classmethod
    def from_state(
        cls, config: PolicyConfig, clock: Clock, state: dict[str, Any]
    ) -> RetrainPolicy:
        policy = cls(config, clock)
        for model, fields in state.items():
            policy._models[model] = _Model(**fields)
        return policy
