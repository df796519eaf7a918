"""Evidently's own HTML of a drift report, from the full snapshot the monitor stored.

The only module of the dashboard that imports Evidently.
"""

from __future__ import annotations

import logging

from streams.errors import DriftloopError

log = logging.getLogger(__name__)


class ReportRenderError(DriftloopError):
    """A stored Evidently snapshot could not be loaded or rendered."""


def report_html(full_snapshot: str) -> str:
    """The standalone HTML page of a report saved with ``Snapshot.dumps()``."""
    from evidently.core.report import Snapshot

    try:
        return str(Snapshot.loads(full_snapshot).get_html_str(as_iframe=False))
    except Exception as exc:  # Evidently raises many kinds; any of them means "unreadable".
        log.warning("cannot render an Evidently snapshot: %s", exc)
        raise ReportRenderError(f"the stored report cannot be rendered: {exc}") from exc
