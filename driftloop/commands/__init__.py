"""The subcommands of ``driftloop``, one module per command group, each with ``register(app)``."""
