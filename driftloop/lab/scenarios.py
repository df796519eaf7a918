"""Named, seeded drifting streams built from River's synthetic generators.

A scenario is a finite stream of labelled examples numbered from 0, with its drift points
known in advance. The first ``warmup`` examples are the initial training set (every one of
them labelled); the rest are what the simulated production app sends as inference requests.
For those, the true label reaches driftloop ``label_delay`` events after the request, and only
for the ``feedback_rate`` share of requests drawn (seeded) to get one; the
:attr:`Example.feedback` flag says which. The same seed gives the same examples, flags and
drift points, so the real system and the baselines see the very same stream.

``abrupt``       Agrawal, the classification function switches 6 -> 0 -> 2 between two events
                 (6 first: the MLP learns it from a few hundred examples, so even a short
                 resized run starts from a good model).
``gradual``      River's ConceptDriftStream from Agrawal function 1 to 8: the share of the
                 new concept follows a sigmoid of the given width around the drift point.
``incremental``  Hyperplane whose weights rotate steadily over a span (mag_change), then rest.
``covariate``    Agrawal function 2 throughout, so the labelling function never changes; the
                 population moves instead: before the drift point most customers are under 40,
                 after it most are over 60 (seeded rejection sampling on age). A model that saw
                 few older customers must extrapolate.
``recurring``    STAGGER concepts A ("small and red") and B ("green or circle") alternate, so
                 the first concept comes back twice.
``sea``          SEA concepts (1 when x0 + x1 > a threshold), the threshold going 8 -> 9 -> 7 -> 9.5
                 at three points, with 10% of labels flipped throughout.
``rbf``          Random RBF with 50 Gaussian centroids, 25 of which move all the time
                 (RandomRBFDrift): the class regions drift continuously from the first event.
``led``          A seven-segment display, 10 classes (the digit), 17 irrelevant bits and 10% of
                 segments flipped; at each of two points some relevant segments swap places
                 with irrelevant bits (LEDDrift with more drifting segments).
``friedman``     Regression: Friedman's function of 10 uniform inputs (5 relevant); at the first
                 drift the relevant inputs trade places (global recurring abrupt drift), at
                 the second the first function comes back.
``rotating``     Hyperplane whose 5 drifting weights move with every event, from the first one
                 to the last (the direction of each reverses now and then): no event is
                 free of drift.

Feature values are JSON-friendly (numbers and strings with string keys). Agrawal's ``car``
and ``zipcode`` are categories and are sent as strings (``car7``, ``zip3``); STAGGER's three
attributes are sent as their names (``small``, ``red``, ``circle``); River's numbered inputs
are sent as ``x0``, ``x1``, ... Classes are integers from 0 (0 or 1 but for ``led``'s ten
digits); ``friedman``'s labels are floats, and its :attr:`Scenario.task` says so. A drift that
lasts the whole stream (``rbf``, ``rotating``) is declared as an incremental drift from the
end of the warm-up to the last event; the warm-up drifts too.
River is imported only here and in the modules that adapt River learners.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from streams.errors import ConfigError
from streams.scores import Task

FeatureValue = int | float | str | bool
Features = Mapping[str, FeatureValue]
#: A class (an integer from 0) or, for a regression scenario, a quantity.
Label = int | float
Raw = Iterator[tuple[dict[str, FeatureValue], Label]]
DriftKind = Literal["abrupt", "gradual", "incremental", "covariate", "recurring"]


@dataclass(frozen=True)
class Example:
    """One event of a scenario: what the app sees, the truth, and whether it is ever told."""

    index: int
    features: Features
    label: Label
    feedback: bool


@dataclass(frozen=True)
class DriftPoint:
    """Where the stream changes: ``start`` to ``end`` (equal for an abrupt change)."""

    index: int
    kind: DriftKind
    width: int = 0
    note: str = ""

    @property
    def start(self) -> int:
        """The first event that may come from the new concept or population."""
        if self.kind == "gradual":
            return self.index - self.width // 2
        return self.index

    @property
    def end(self) -> int:
        """The first event after which the change is (nearly) complete."""
        if self.kind == "gradual":
            return self.index + self.width // 2
        return self.index + self.width

    def scaled(self, factor: float) -> DriftPoint:
        return replace(self, index=round(self.index * factor), width=round(self.width * factor))


Source = Callable[["Scenario"], Raw]


@dataclass(frozen=True)
class Scenario:
    """A named drifting stream; see the module docstring for the catalogue."""

    name: str
    description: str
    generator: str
    seed: int
    length: int
    warmup: int
    drifts: tuple[DriftPoint, ...]
    label_delay: int
    feedback_rate: float
    source: Source = field(repr=False, compare=False)
    events_per_second: float = 100.0
    task: Task = "classification"
    classes: int = 2
    """How many classes (labels 0 to ``classes - 1``); 0 for a regression scenario."""

    def __post_init__(self) -> None:
        if (self.task == "regression") != (self.classes == 0) or self.classes == 1:
            raise ConfigError(f"{self.name}: a classification has 2 or more classes, "
                              "a regression none")
        if not 0 < self.warmup < self.length:
            raise ConfigError(f"{self.name}: warm-up must be within the stream")
        if not 0 < self.feedback_rate <= 1:
            raise ConfigError(f"{self.name}: feedback rate must be in (0, 1]")
        if self.label_delay < 0:
            raise ConfigError(f"{self.name}: label delay must not be negative")
        if self.events_per_second <= 0:
            raise ConfigError(f"{self.name}: events per second must be positive")
        starts = [d.start for d in self.drifts]
        if starts != sorted(starts) or any(
            not self.warmup <= d.start <= d.end <= self.length for d in self.drifts
        ):
            raise ConfigError(f"{self.name}: drift points must be ordered, after the warm-up")

    def examples(self) -> Iterator[Example]:
        """Every example, warm-up first, the same for the same seed."""
        feedback = random.Random(self.seed * 1_000_003 + 17)  # noqa: S311 - simulation, not crypto
        raw = itertools.islice(self.source(self), self.length)
        for index, (features, label) in enumerate(raw):
            told = feedback.random() < self.feedback_rate
            yield Example(index, features, label, index < self.warmup or told)

    def warmup_examples(self) -> list[Example]:
        """The initial training set: the first ``warmup`` examples, all labelled."""
        return list(itertools.islice(self.examples(), self.warmup))

    def stream(self) -> Iterator[Example]:
        """What the production app sends after the warm-up."""
        return itertools.islice(self.examples(), self.warmup, None)

    def resized(
        self, length: int, *, warmup: int | None = None, label_delay: int | None = None
    ) -> Scenario:
        """The same scenario over ``length`` events, drift points and spans scaled to fit."""
        factor = length / self.length
        drifts = tuple(d.scaled(factor) for d in self.drifts)
        # A drift that lasts to the end still ends there after rounding.
        drifts = tuple(replace(d, width=d.width - (d.end - length))
                       if d.kind != "gradual" and d.end > length else d for d in drifts)
        return replace(
            self,
            length=length,
            warmup=warmup if warmup is not None else round(self.warmup * factor),
            label_delay=label_delay if label_delay is not None else round(
                self.label_delay * min(1.0, factor)
            ),
            drifts=drifts,
        )

    def reseeded(self, seed: int) -> Scenario:
        return replace(self, seed=seed)

    def with_feedback(
        self, *, label_delay: int | None = None, feedback_rate: float | None = None
    ) -> Scenario:
        return replace(
            self,
            label_delay=self.label_delay if label_delay is None else label_delay,
            feedback_rate=self.feedback_rate if feedback_rate is None else feedback_rate,
        )


# -- sources ---------------------------------------------------------------------------------


def _agrawal_features(x: Mapping[str, Any]) -> dict[str, FeatureValue]:
    return {
        "salary": float(x["salary"]),
        "commission": float(x["commission"]),
        "age": int(x["age"]),
        "elevel": int(x["elevel"]),
        "car": f"car{x['car']}",
        "zipcode": f"zip{x['zipcode']}",
        "hvalue": float(x["hvalue"]),
        "hyears": int(x["hyears"]),
        "loan": float(x["loan"]),
    }


def _agrawal(function: int, seed: int) -> Raw:
    from river.datasets import synth

    for x, y in synth.Agrawal(classification_function=function, seed=seed):
        yield _agrawal_features(x), int(y)


def _switching(streams: Iterable[Raw], starts: Iterable[int]) -> Raw:
    """The first stream until ``starts[0]``, the second until ``starts[1]``, and so on."""
    index = 0
    for stream, end in itertools.zip_longest(streams, starts):
        if stream is None:
            return
        while end is None or index < end:
            yield next(stream)
            index += 1


ABRUPT_FUNCTIONS = (6, 0, 2)


def _abrupt_source(s: Scenario) -> Raw:
    streams = (_agrawal(f, s.seed + k) for k, f in enumerate(ABRUPT_FUNCTIONS))
    return _switching(streams, [d.start for d in s.drifts])


GRADUAL_FUNCTIONS = (1, 8)


def _gradual_source(s: Scenario) -> Raw:
    from river.datasets import synth

    drift = s.drifts[0]
    before, after = GRADUAL_FUNCTIONS
    stream = synth.ConceptDriftStream(
        stream=synth.Agrawal(classification_function=before, seed=s.seed),
        drift_stream=synth.Agrawal(classification_function=after, seed=s.seed + 1),
        # River counts samples from 1: the sigmoid is centred on our 0-based index.
        position=drift.index + 1,
        width=max(1, drift.width),
        seed=s.seed,
    )
    for x, y in stream:
        yield _agrawal_features(x), int(y)


HYPERPLANE_FEATURES = 10
HYPERPLANE_DRIFTING = 3
#: How much each drifting weight grows over the whole drift (initial weights are in [0, 1)).
HYPERPLANE_TOTAL_CHANGE = 3.0


def _incremental_source(s: Scenario) -> Raw:
    from river.datasets import synth

    drift = s.drifts[0]
    plane = synth.Hyperplane(
        seed=s.seed, n_features=HYPERPLANE_FEATURES, n_drift_features=HYPERPLANE_DRIFTING,
        mag_change=0.0, sigma=0.0, noise_percentage=0.05,
    )
    step = HYPERPLANE_TOTAL_CHANGE / max(1, drift.width)
    samples = iter(plane)
    for index in itertools.count():
        # River moves the weights after drawing each sample, reading mag_change every time.
        plane.mag_change = step if drift.start <= index < drift.end else 0.0
        x, y = next(samples)
        yield {f"x{i}": float(v) for i, v in x.items()}, int(y)


COVARIATE_FUNCTION = 2


def _age_weight(age: int, older: bool) -> float:
    """Keep-probability by age band: young customers first, older ones after the shift."""
    band = 0 if age < 40 else 1 if age < 60 else 2
    weights = (0.05, 0.3, 1.0) if older else (1.0, 0.3, 0.05)
    return weights[band]


def _covariate_source(s: Scenario) -> Raw:
    keep = random.Random(s.seed + 991)  # noqa: S311
    shift = s.drifts[0].start
    index = 0
    for features, label in _agrawal(COVARIATE_FUNCTION, s.seed):
        if keep.random() < _age_weight(int(features["age"]), older=index >= shift):
            yield features, label
            index += 1


STAGGER_NAMES = {
    "size": ("small", "medium", "large"),
    "color": ("red", "blue", "green"),
    "shape": ("circle", "square", "triangle"),
}
RECURRING_FUNCTIONS = (0, 1)


def _stagger(function: int, seed: int) -> Raw:
    from river.datasets import synth

    for x, y in synth.STAGGER(classification_function=function, seed=seed,
                              balance_classes=True):
        yield {k: STAGGER_NAMES[k][int(v)] for k, v in x.items()}, int(y)


def _recurring_source(s: Scenario) -> Raw:
    streams = (
        _stagger(RECURRING_FUNCTIONS[k % 2], s.seed + k) for k in range(len(s.drifts) + 1)
    )
    return _switching(streams, [d.start for d in s.drifts])


def _numbered(x: Mapping[Any, Any]) -> dict[str, FeatureValue]:
    """River's numbered inputs as ``x0``, ``x1``, ... (floats)."""
    return {f"x{k}": float(v) for k, v in x.items()}


#: SEA's four thresholds on x0 + x1, in River's order: 8, 9, 7, 9.5.
SEA_VARIANTS = (0, 1, 2, 3)
SEA_NOISE = 0.1


def _sea(variant: int, seed: int) -> Raw:
    from river.datasets import synth

    for x, y in synth.SEA(variant=variant, noise=SEA_NOISE, seed=seed):
        yield _numbered(x), int(y)


def _sea_source(s: Scenario) -> Raw:
    streams = (_sea(v, s.seed + k) for k, v in enumerate(SEA_VARIANTS))
    return _switching(streams, [d.start for d in s.drifts])


RBF_CENTROIDS = 50
RBF_DRIFTING = 25
#: How far a drifting centroid moves per event (the inputs span the unit hypercube).
RBF_SPEED = 0.0001


def _rbf_source(s: Scenario) -> Raw:
    from river.datasets import synth

    stream = synth.RandomRBFDrift(
        seed_model=s.seed, seed_sample=s.seed + 1, n_classes=s.classes, n_features=10,
        n_centroids=RBF_CENTROIDS, change_speed=RBF_SPEED, n_drift_centroids=RBF_DRIFTING,
    )
    for x, y in stream:
        yield _numbered(x), int(y)


#: Segments swapped with irrelevant bits in each of LED's concepts (0: the plain display).
LED_DRIFTING = (0, 4, 7)
LED_NOISE = 0.1


def _led(drifting: int, seed: int) -> Raw:
    from river.datasets import synth

    stream = synth.LEDDrift(seed=seed, noise_percentage=LED_NOISE, irrelevant_features=True,
                            n_drift_features=drifting)
    for x, y in stream:
        yield {f"x{k}": int(v) for k, v in x.items()}, int(y)


def _led_source(s: Scenario) -> Raw:
    streams = (_led(n, s.seed + k) for k, n in enumerate(LED_DRIFTING))
    return _switching(streams, [d.start for d in s.drifts])


def _friedman_source(s: Scenario) -> Raw:
    from river.datasets import synth

    first, second = (d.start for d in s.drifts)
    # Global recurring abrupt drift: River counts from 0, as the drift points do.
    stream = synth.FriedmanDrift(drift_type="gra", position=(first, second), seed=s.seed)
    for x, y in stream:
        yield _numbered(x), float(y)


ROTATING_DRIFTING = 5
#: How much each drifting weight moves per event.
ROTATING_STEP = 0.001
#: River's ``sigma``: a weight's direction reverses when ``0.01 + random() <= sigma``, so
#: 0.011 reverses it with probability 0.001 per event (legs of about 1,000 events).
ROTATING_REVERSAL = 0.011


def _rotating_source(s: Scenario) -> Raw:
    from river.datasets import synth

    plane = synth.Hyperplane(
        seed=s.seed, n_features=HYPERPLANE_FEATURES, n_drift_features=ROTATING_DRIFTING,
        mag_change=ROTATING_STEP, sigma=ROTATING_REVERSAL, noise_percentage=0.05,
    )
    for x, y in plane:
        yield _numbered(x), int(y)


# -- the catalogue ---------------------------------------------------------------------------


def _catalogue() -> dict[str, Scenario]:
    scenarios = [
        Scenario(
            name="abrupt",
            description="The rule that decides the label changes all at once, twice.",
            generator="Agrawal, classification function 6 -> 0 -> 2",
            seed=7, length=30_000, warmup=3_000,
            drifts=(
                DriftPoint(12_000, "abrupt", note="Agrawal function 6 -> 0"),
                DriftPoint(21_000, "abrupt", note="Agrawal function 0 -> 2"),
            ),
            label_delay=500, feedback_rate=0.6, source=_abrupt_source,
        ),
        Scenario(
            name="gradual",
            description="A new rule takes over little by little: old and new concepts mix.",
            generator="ConceptDriftStream(Agrawal function 1 -> 8), sigmoid width 6,000",
            seed=11, length=30_000, warmup=3_000,
            drifts=(DriftPoint(15_000, "gradual", width=6_000, note="Agrawal function 1 -> 8"),),
            label_delay=1_000, feedback_rate=0.5, source=_gradual_source,
        ),
        Scenario(
            name="incremental",
            description="The decision boundary rotates steadily for a while, then rests.",
            generator="Hyperplane, 10 features, 3 drifting weights (+3.0 each over the drift)",
            seed=3, length=30_000, warmup=3_000,
            drifts=(DriftPoint(10_000, "incremental", width=10_000,
                               note="hyperplane rotates until 20,000"),),
            label_delay=300, feedback_rate=0.3, source=_incremental_source,
        ),
        Scenario(
            name="covariate",
            description="Only the population moves (young -> old customers); the labelling "
                        "function stays the same.",
            generator="Agrawal function 2, age-weighted sampling flips at the drift",
            seed=5, length=30_000, warmup=3_000,
            drifts=(DriftPoint(12_000, "covariate", note="mostly under 40 -> mostly over 60"),),
            label_delay=500, feedback_rate=0.6, source=_covariate_source,
        ),
        Scenario(
            name="recurring",
            description="Two concepts take turns: the first one comes back.",
            generator="STAGGER concept A (small and red) <-> B (green or circle), balanced",
            seed=13, length=30_000, warmup=3_000,
            drifts=(
                DriftPoint(9_000, "recurring", note="concept A -> B"),
                DriftPoint(16_000, "recurring", note="concept B -> A (returns)"),
                DriftPoint(23_000, "recurring", note="concept A -> B (returns)"),
            ),
            label_delay=300, feedback_rate=0.5, source=_recurring_source,
        ),
        Scenario(
            name="sea",
            description="A noisy threshold moves all at once, three times; 10% of labels "
                        "are wrong throughout.",
            generator="SEA, label x0 + x1 > threshold: 8 -> 9 -> 7 -> 9.5, 10% noise",
            seed=17, length=30_000, warmup=3_000,
            drifts=(
                DriftPoint(9_000, "abrupt", note="threshold 8 -> 9"),
                DriftPoint(16_000, "abrupt", note="threshold 9 -> 7"),
                DriftPoint(23_000, "abrupt", note="threshold 7 -> 9.5"),
            ),
            label_delay=500, feedback_rate=0.6, source=_sea_source,
        ),
        Scenario(
            name="rbf",
            description="Class regions around moving centroids drift with every event.",
            generator="RandomRBFDrift, 10 features, 50 centroids (25 moving, speed 0.0001)",
            seed=19, length=30_000, warmup=3_000,
            drifts=(DriftPoint(3_000, "incremental", width=27_000,
                               note="centroids move from the first event to the last"),),
            label_delay=300, feedback_rate=0.5, source=_rbf_source,
        ),
        Scenario(
            name="led",
            description="Ten digits on a noisy seven-segment display; twice, some segments "
                        "are suddenly wired to other inputs.",
            generator="LEDDrift, 24 bits (17 irrelevant), 10% noise, drifting segments "
                      "0 -> 4 -> 7",
            seed=23, length=30_000, warmup=3_000,
            drifts=(
                DriftPoint(12_000, "abrupt", note="4 segments swap with irrelevant bits"),
                DriftPoint(21_000, "abrupt", note="7 segments swap with irrelevant bits"),
            ),
            label_delay=500, feedback_rate=0.6, source=_led_source, classes=10,
        ),
        Scenario(
            name="friedman",
            description="Regression: the function of the inputs changes all at once, then "
                        "comes back.",
            generator="FriedmanDrift, global recurring abrupt, 10 features (5 relevant)",
            seed=29, length=30_000, warmup=3_000,
            drifts=(
                DriftPoint(12_000, "abrupt", note="the relevant inputs trade places"),
                DriftPoint(21_000, "recurring", note="the first function returns"),
            ),
            label_delay=500, feedback_rate=0.6, source=_friedman_source,
            task="regression", classes=0,
        ),
        Scenario(
            name="rotating",
            description="The decision boundary rotates with every event, from first to last.",
            generator="Hyperplane, 10 features, 5 drifting weights (0.001 per event, "
                      "reversing with probability 0.001), 5% noise",
            seed=31, length=30_000, warmup=3_000,
            drifts=(DriftPoint(3_000, "incremental", width=27_000,
                               note="rotates from the first event to the last"),),
            label_delay=300, feedback_rate=0.5, source=_rotating_source,
        ),
    ]
    return {s.name: s for s in scenarios}


SCENARIOS: dict[str, Scenario] = _catalogue()


def get_scenario(name: str) -> Scenario:
    """The named scenario; ``ConfigError`` naming the known ones otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise ConfigError(f"unknown scenario {name!r}; known: {known}") from None
