from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrain.dataset import DatasetPlan, Example, build_dataset, infer_task
from streams.errors import TrainingError
from streams.lineage import ConceptLineage
from tests.retrain.helpers import T0


def _examples(n: int, *, labels: list[object] | None = None) -> list[Example]:
    classes = labels or [0, 1]
    return [Example(f"r{i}", {"x": float(i), "c": "k"}, classes[i % len(classes)],
                    T0 + timedelta(seconds=i)) for i in range(n)]


def test_holdout_is_the_newest_slice_and_nothing_from_it_is_trained_on() -> None:
    plan = DatasetPlan(recent_examples=100, older_share=0.0, holdout_share=0.2,
                       validation_share=0.25, min_examples=10)
    ds = build_dataset("m", list(reversed(_examples(100))), plan)
    assert [e.request_id for e in ds.holdout.examples] == [f"r{i}" for i in range(80, 100)]
    assert [e.request_id for e in ds.validation.examples] == [f"r{i}" for i in range(60, 80)]
    assert [e.request_id for e in ds.train.examples] == [f"r{i}" for i in range(60)]
    holdout = ds.lineage().holdout
    assert holdout is not None
    assert (holdout.count, holdout.from_) == (20, T0 + timedelta(seconds=80))
    assert ds.lineage().to == T0 + timedelta(seconds=79), "the span learnt ends before it"


def test_older_share_samples_older_examples_into_training_only() -> None:
    plan = DatasetPlan(recent_examples=100, older_share=0.5, holdout_share=0.2,
                       validation_share=0.25, min_examples=10, seed=3)
    ds = build_dataset("m", _examples(400), plan)
    older = [e for e in ds.train.examples if int(e.request_id[1:]) < 300]
    assert ds.older_sampled == len(older) == 60  # half of the training split
    assert len(ds.train) == 120
    again = build_dataset("m", _examples(400), plan)
    assert again.train == ds.train, "the sample is seeded"


def test_too_few_examples_fail_the_run() -> None:
    with pytest.raises(TrainingError, match="9 usable labelled examples, at least 10"):
        build_dataset("m", _examples(9), DatasetPlan(min_examples=10))


def test_unlabelled_and_old_schema_examples_are_skipped_and_counted() -> None:
    rows = _examples(50)
    rows[3] = Example("r3", {"x": 1.0, "c": "k"}, None, rows[3].timestamp)
    rows[4] = Example("r4", {"x": 1.0}, 1, rows[4].timestamp)
    ds = build_dataset("m", rows, DatasetPlan(min_examples=10))
    assert ds.skipped_unlabelled == 1
    assert ds.skipped_schema == 1
    assert len(ds.train) + len(ds.validation) + len(ds.holdout) == 48


def test_a_single_class_cannot_train() -> None:
    with pytest.raises(TrainingError, match="single class"):
        build_dataset("m", _examples(50, labels=["yes"]), DatasetPlan(min_examples=10))


def test_task_inference() -> None:
    assert infer_task(["a", "b"]) == "classification"
    assert infer_task([True, False]) == "classification"
    assert infer_task([0, 1, 2]) == "classification"
    assert infer_task(list(range(100))) == "regression"
    assert infer_task([0.5, 1.5]) == "regression"


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(20, 300),
    recent=st.integers(5, 400),
    older_share=st.floats(0, 1),
    holdout_share=st.floats(0.05, 0.9),
    validation_share=st.floats(0.05, 0.9),
    seed=st.integers(0, 5),
    shuffle=st.randoms(use_true_random=False),
)
def test_splits_never_overlap_and_training_is_older_than_the_holdout(
    n: int, recent: int, older_share: float, holdout_share: float, validation_share: float,
    seed: int, shuffle: object,
) -> None:
    rows = _examples(n)
    shuffle.shuffle(rows)  # type: ignore[attr-defined]
    plan = DatasetPlan(recent_examples=recent, older_share=older_share,
                       holdout_share=holdout_share, validation_share=validation_share,
                       min_examples=1, seed=seed)
    try:
        ds = build_dataset("m", rows, plan)
    except TrainingError:
        return  # too small a recent window for three splits, or one class in training
    ids = [set(e.request_id for e in s.examples) for s in (ds.train, ds.validation, ds.holdout)]
    assert not (ids[0] & ids[1])
    assert not (ids[0] & ids[2])
    assert not (ids[1] & ids[2])
    assert len(ds.holdout) >= 1
    assert len(ds.validation) >= 1
    newest_trained = max(e.timestamp for e in (*ds.train.examples, *ds.validation.examples))
    assert newest_trained < min(e.timestamp for e in ds.holdout.examples)
    assert max(e.timestamp for e in ds.train.examples) < min(
        e.timestamp for e in ds.validation.examples)


def test_after_a_drift_recent_examples_come_from_the_new_concept_only() -> None:
    rows = _examples(1000)
    since = rows[700].timestamp
    plan = DatasetPlan(recent_examples=500, older_share=0.5, holdout_share=0.2,
                       validation_share=0.25, min_examples=200, drift_older_share=0.0)
    ds = build_dataset("m", rows, plan, since=since)
    trained = [*ds.train.examples, *ds.validation.examples, *ds.holdout.examples]
    assert min(e.timestamp for e in trained) == since
    assert [e.request_id for e in ds.holdout.examples] == [f"r{i}" for i in range(940, 1000)]
    assert ds.older_sampled == 0
    assert ds.lineage().concept == ConceptLineage(since=since, available=300, examples=300,
                                                  used=True)
    assert ds.lineage().from_ == since
    assert ds.lineage().to == rows[939].timestamp

    # Some older examples when asked for.
    mixed = build_dataset("m", rows, DatasetPlan(
        recent_examples=500, holdout_share=0.2, validation_share=0.25, min_examples=200,
        drift_older_share=0.25), since=since)
    assert mixed.older_sampled == round(len(mixed.train) * 0.25)
    assert all(e.timestamp < since for e in mixed.train.examples[: mixed.older_sampled])


def test_too_few_examples_since_the_drift_fall_back_to_the_usual_split() -> None:
    rows = _examples(1000)
    plan = DatasetPlan(recent_examples=500, older_share=0.0, min_examples=200)
    ds = build_dataset("m", rows, plan, since=rows[900].timestamp)
    assert len(ds.train) + len(ds.validation) + len(ds.holdout) == 500
    concept = ds.lineage().concept
    assert concept is not None
    assert (concept.used, concept.available, concept.examples) == (False, 100, 0)
