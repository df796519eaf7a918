"""monitor: joins predictions with delayed feedback, watches drift, asks for retraining.

Pure cores: :mod:`~monitor.join`, :mod:`~monitor.windows`, :mod:`~monitor.performance`,
:mod:`~monitor.policy` and its slow-drift detector :mod:`~monitor.trend`. Adapters:
:mod:`~monitor.detectors` (River), :mod:`~monitor.evidently_drift` (Evidently),
:mod:`~monitor.store` and :mod:`~monitor.tables` (SQL), :mod:`~monitor.drift_worker` and
:mod:`~monitor.report_queue` (reports off the consuming thread), :mod:`~monitor.champion`
(artifact manifests). The process: :mod:`~monitor.handler`
and :mod:`~monitor.process` (``run_monitor``).
"""
