"""The functions APScheduler runs, and the retrainer they run with.

APScheduler's SQLAlchemy job store pickles each job: its function by import path and its
arguments. So jobs hold only plain values (a model name, a request's event id) and call these
module-level functions, which find the process's :class:`~retrain.runner.Retrainer` bound
here by :func:`bind` when the retrain process starts.
"""

from __future__ import annotations

import logging
import threading

from retrain.runner import Retrainer, Trigger

log = logging.getLogger(__name__)

RUN_REQUEST = "retrain.jobs:run_request"
RUN_SCHEDULE = "retrain.jobs:run_schedule"
RUN_FOLLOWUP = "retrain.jobs:run_followup"

_lock = threading.Lock()
_retrainer: Retrainer | None = None


def bind(retrainer: Retrainer) -> None:
    global _retrainer
    with _lock:
        _retrainer = retrainer


def unbind() -> None:
    global _retrainer
    with _lock:
        _retrainer = None


def _bound() -> Retrainer | None:
    with _lock:
        if _retrainer is None:
            log.warning("a retrain job fired while no retrainer is bound; it is left for later")
        return _retrainer


def run_request(event_id: str) -> None:
    """Serve one RetrainRequested (at most once, whatever fires this job)."""
    retrainer = _bound()
    if retrainer is not None:
        retrainer.run_request(event_id)


def run_schedule(model: str) -> None:
    """A scheduled retraining of ``model``."""
    retrainer = _bound()
    if retrainer is not None:
        retrainer.run(model, Trigger("schedule"))


def run_followup(model: str) -> None:
    """A follow-up run of ``model`` after a drift, on the examples since it."""
    retrainer = _bound()
    if retrainer is not None:
        retrainer.run(model, Trigger("follow-up"))
