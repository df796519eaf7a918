"""The composition root: the ``driftloop`` command line and the wiring of a local stack."""
