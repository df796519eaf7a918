from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from retrain.mlp import MLPTrainer
from retrain.registry import Registry
from retrain.runner import Retrainer
from retrain.runs import RunStore
from retrain.search import Searcher
from retrain.trainer import load_trainer
from streams.db import Database
from streams.store import EventStore
from tests.retrain.helpers import fast_settings


@pytest.fixture
def retrainer_factory(database: Database, tmp_path: Path) -> Callable[..., Retrainer]:
    """A Retrainer on the test database; ``trainer`` is an import path, settings override FAST."""

    def make(trainer: str = "retrain.mlp:MLPTrainer", *, searcher: Searcher | None = None,
             **overrides: Any) -> Retrainer:
        settings = fast_settings(trainer=trainer, **overrides)
        return Retrainer(
            settings, artifacts=tmp_path / "artifacts", store=EventStore(database),
            registry=Registry(database), runs=RunStore(database),
            trainer=MLPTrainer(settings) if trainer == "retrain.mlp:MLPTrainer"
            else load_trainer(trainer, settings),
            trainer_name=trainer, version_of_code="test", search=searcher,
        )

    return make
