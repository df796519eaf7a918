"""The states a model version, a retraining run and a retraining request can be in.

The retraining stage writes them to the registry's tables, the dashboard and the local stack
read them back; the members are strings (``StrEnum``), so they compare equal to what a row
holds and are stored as their plain value.

A version is born ``candidate`` and ends in one of: ``champion`` (served; at most one per
model, the database refuses a second), ``archived`` (a former champion, which a rollback or a
reuse may crown again), ``rejected`` (lost the gate, or was rolled back from), ``failed``
(training or its artifact broke) or ``refused`` (no serving process could load it).
"""

from __future__ import annotations

from enum import StrEnum


class VersionStatus(StrEnum):
    CANDIDATE = "candidate"
    CHAMPION = "champion"
    REJECTED = "rejected"
    ARCHIVED = "archived"
    FAILED = "failed"
    REFUSED = "refused"


class RunStatus(StrEnum):
    """A retraining run: ``running`` until it ``succeeded`` (whatever the gate decided),
    ``failed``, or was ``skipped`` before training (too few examples, another run going)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class RequestStatus(StrEnum):
    """A retraining request the retrain stage received: ``pending`` until a run takes it
    (``running``), then ``done``, ``failed`` or ``skipped`` as that run ended."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"

    @classmethod
    def after(cls, run: RunStatus) -> RequestStatus:
        """What a request becomes when the run that took it ends as ``run``."""
        return {RunStatus.SUCCEEDED: cls.DONE, RunStatus.FAILED: cls.FAILED,
                RunStatus.SKIPPED: cls.SKIPPED}[run]
