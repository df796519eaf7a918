"""The adaptation lab: drifting scenarios, a simulated app, and the benchmark that measures them.

``scenarios`` names the seeded drifting streams; ``simulator`` streams one as a production app
would; ``prequential``, ``learners`` and ``adaptation`` run and measure the baselines;
``system_run`` reads the real system's stored predictions back so they are measured alike;
``report`` and ``plot`` write the results. Nothing here starts a process or a broker: the
real system's run is :mod:`driftloop.local.bench`.
"""
