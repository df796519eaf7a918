from __future__ import annotations

import pytest

from streams.statuses import RequestStatus, RunStatus, VersionStatus


def test_statuses_are_the_strings_rows_hold() -> None:
    assert VersionStatus.CHAMPION == "champion"
    assert VersionStatus("archived") is VersionStatus.ARCHIVED
    assert f"{RunStatus.SUCCEEDED}" == "succeeded"
    with pytest.raises(ValueError, match="promoted"):
        VersionStatus("promoted")


@pytest.mark.parametrize(("run", "ends_as"), [
    (RunStatus.SUCCEEDED, RequestStatus.DONE),
    (RunStatus.FAILED, RequestStatus.FAILED),
    (RunStatus.SKIPPED, RequestStatus.SKIPPED),
])
def test_a_request_ends_as_the_run_that_took_it(run: RunStatus, ends_as: RequestStatus) -> None:
    assert RequestStatus.after(run) is ends_as


def test_a_running_run_does_not_end_a_request() -> None:
    with pytest.raises(KeyError):
        RequestStatus.after(RunStatus.RUNNING)
