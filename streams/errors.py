"""The project's error tree.

Every error driftloop raises on purpose derives from :class:`DriftloopError`::

    DriftloopError
    ├── ConfigError            settings that cannot work (bad URL, unknown trainer path)
    ├── EventError             an event that cannot be accepted
    │   ├── DecodeError        bytes that are not JSON, or JSON that is not an object
    │   ├── SchemaError        valid JSON that does not match the event contract
    │   ├── PayloadTooLargeError  a message over the configured size limit
    │   ├── UnknownModelError  an event for a model this deployment does not serve
    │   ├── ConflictError      an id already used by different content
    │   └── HandlingError      any other failure that one message caused while handled
    ├── BrokerError            Kafka could not be reached or refused a request
    │   ├── ProduceError       a message was not acknowledged
    │   ├── CommitError        offsets could not be committed (e.g. after a rebalance)
    │   └── BrokerAccessError  authentication or authorization refused: fatal, never retried
    ├── StoreError             the database refused or could not be reached
    │   └── StoreAccessError   the database refused our role, password or database: fatal
    ├── ArtifactError          a model artifact is missing, corrupt or tampered with
    ├── RegistryError          the model registry refused an operation
    └── TrainingError          a training run failed (exception, NaN loss, no data)

Third-party errors are re-raised as one of these with ``raise ... from exc`` at the edge
that talks to the library, so callers only ever catch this tree.

``transient`` says whether the same call may succeed later without anything else changing:
an outage of the broker or the database. Consumers retry a transient error with backoff and
report themselves degraded meanwhile; any other error raised while handling a batch is
narrowed down to the message that causes it, which is dead-lettered.
"""

from __future__ import annotations


class DriftloopError(Exception):
    """Root of every error driftloop raises on purpose."""

    transient = False

    def __init__(self, *args: object, transient: bool | None = None) -> None:
        super().__init__(*args)
        if transient is not None:
            self.transient = transient


class ConfigError(DriftloopError):
    """Settings that cannot work."""


class EventError(DriftloopError):
    """An event that cannot be accepted; the consumer dead-letters it and goes on.

    ``reason`` is a short machine-readable tag (``decode``, ``schema``, ``too_large``,
    ``unknown_model``, ...) used for dead-letter headers and metrics labels.
    """

    reason = "invalid"


class DecodeError(EventError):
    reason = "decode"


class SchemaError(EventError):
    reason = "schema"


class PayloadTooLargeError(EventError):
    reason = "too_large"


class UnknownModelError(EventError):
    reason = "unknown_model"


class ConflictError(EventError):
    """An event id (or a request's prediction) already stored with different content."""

    reason = "conflict"


class HandlingError(EventError):
    """An unexpected exception that one message caused; the text names its class."""

    reason = "handling"

    @classmethod
    def of(cls, exc: BaseException) -> HandlingError:
        error = cls(f"{type(exc).__name__}: {exc}"[:2000])
        error.__cause__ = exc
        return error


class BrokerError(DriftloopError):
    """Kafka could not be reached or refused a request (transient unless said otherwise)."""

    transient = True


class ProduceError(BrokerError):
    """A produced message was not acknowledged."""


class CommitError(BrokerError):
    """Offsets could not be committed."""


class BrokerAccessError(BrokerError):
    """The cluster refused who we are or what we asked for; a retry cannot help."""

    transient = False


class StoreError(DriftloopError):
    """The database refused a write or could not be reached.

    Transient when the database could not be reached or was busy; not transient when it
    refused the data itself (out of range, constraint), which no retry changes.
    """

    transient = True


class StoreAccessError(StoreError):
    """The database runs but refuses these settings (password, role, database); no retry helps."""

    transient = False


class ArtifactError(DriftloopError):
    """A model artifact is missing, corrupt or does not match its manifest."""


class RegistryError(DriftloopError):
    """The model registry refused an operation."""


class TrainingError(DriftloopError):
    """A training run failed."""
