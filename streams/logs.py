"""Structured logging: one JSON object per line on stderr, quiet (WARNING) by default.

Every driftloop process logs this way: the commands through :mod:`driftloop.logs`, the
dashboard's Streamlit process through :mod:`dashboard.session`.

Secrets never reach a log line. :class:`Redactor`, a filter on every handler of the root
logger, replaces each configured secret (see :meth:`streams.settings.Settings.secret_values`)
wherever it shows: in the message and its arguments, in ``extra`` fields, in a traceback, and
in the escaped forms a library prints when it logs raw bytes or a ``repr`` (kafka-python logs
its SASL exchange and its send buffers at DEBUG, and its admin client's configuration dict).
A handler filter sees records of third-party loggers too, since they propagate to the root.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
REDACTED = "[redacted]"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info or record.exc_text:
            # exc_text is the traceback as a Redactor already cleaned it.
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str)


def _escaped_forms(secret: str) -> set[str]:
    """How ``secret`` may read inside a log line: as is, inside the repr of a str or of the
    bytes that carry it (either quote), JSON-escaped, percent-encoded, in hex."""
    raw = secret.encode("utf-8")
    forms = {secret, repr(secret)[1:-1], repr(raw)[2:-1], json.dumps(secret)[1:-1],
             json.dumps(secret, ensure_ascii=False)[1:-1], quote(secret, safe=""),
             quote_plus(secret), raw.hex()}
    forms |= {form.replace("\\'", "'") for form in forms}
    forms |= {form.replace("'", "\\'") for form in forms if "\\'" not in form}
    return {form for form in forms if form}


class Redactor(logging.Filter):
    """Replaces secret values with ``[redacted]`` in every record a handler emits.

    The message is rendered with its arguments first (so a secret inside an argument's repr
    is found) and the record then carries the clean text with no arguments. Values of
    ``extra`` fields are cleaned the same way (bytes and other objects as the JSON formatter
    would print them), and a traceback is rendered once, cleaned, into ``exc_text``.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        forms = {form for secret in secrets if secret for form in _escaped_forms(secret)}
        # Longest first, so that a form containing another is replaced whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        return text if self._pattern is None else self._pattern.sub(REDACTED, text)

    def _clean(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {self.redact(str(k)): self._clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._clean(v) for v in value]
        return self.redact(str(value))  # bytes and objects print as the formatter prints them

    def filter(self, record: logging.LogRecord) -> bool:
        if self._pattern is None:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging would print msg and args raw
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = self.redact(message), None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and not key.startswith("_"):
                setattr(record, key, self._clean(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def configure(level: str = "WARNING", *, secrets: Iterable[str] = ()) -> None:
    """JSON lines on stderr at ``level``, with ``secrets`` redacted from every line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(Redactor(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kafka-python is chatty at INFO; keep it at WARNING unless debugging.
    if root.level > logging.DEBUG:
        logging.getLogger("kafka").setLevel(logging.WARNING)
