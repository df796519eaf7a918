"""kafka-python's errors, sorted into what a driftloop process does about them.

Three kinds matter to a consumer or a producer:

* **access**: the cluster refused our credentials or our rights (SASL failure, an ACL). No
  retry helps; the process stops with a clear message (:class:`BrokerAccessError`).
* **record**: the cluster or the client refused one message (too large, corrupt, a codec it
  cannot read). Only that message is at fault; it is dead-lettered, and the rest goes on.
* **transient**: anything else — a broker down, a leader moving, a coordinator not ready, a
  timeout. The same request may pass later, so it is retried with backoff.
"""

from __future__ import annotations

from kafka import errors as kafka_errors

from streams.errors import BrokerAccessError, BrokerError, ProduceError

_ACCESS: tuple[type[Exception], ...] = tuple(
    cls for cls in (
        getattr(kafka_errors, name, None)
        for name in (
            "AuthorizationError",
            "AuthenticationFailedError",
            "AuthenticationMethodNotSupported",
            "SaslAuthenticationFailedError",
            "IllegalSaslStateError",
            "UnsupportedSaslMechanismError",
        )
    )
    if isinstance(cls, type)
)

_RECORD: tuple[type[Exception], ...] = (
    kafka_errors.MessageSizeTooLargeError,
    kafka_errors.RecordListTooLargeError,
    kafka_errors.InvalidRecordError,
    kafka_errors.CorruptRecordError,
    kafka_errors.UnsupportedCodecError,
)


def is_access_error(exc: BaseException) -> bool:
    return isinstance(exc, _ACCESS)


def is_record_error(exc: BaseException) -> bool:
    return isinstance(exc, _RECORD)


def broker_error(exc: Exception, what: str, *, produce: bool = False) -> BrokerError:
    """``exc`` from kafka-python as the BrokerError that says what to do about it."""
    message = f"{what}: {type(exc).__name__}: {exc}"
    if is_access_error(exc):
        return BrokerAccessError(message)
    kind = ProduceError if produce else BrokerError
    return kind(message, transient=not is_record_error(exc))
