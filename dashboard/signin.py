"""Password sign-in as the dashboard runs it: the password book behind a throttle, audited.

* A :class:`~dashboard.throttle.Throttle` locks, exponentially, both the user name and the
  client address after repeated failures; while locked, even the right password is refused.
* Known and unknown names cost the same: the book checks unknown ones against a decoy hash of
  the real hashes' cost, and a locked attempt is refused before any hash is computed.
* Failed attempts go to the audit log under the name as it was typed, cut to
  :data:`MAX_AUDITED_NAME` characters (``detail.name_length`` then keeps the full length),
  and at most ``audit_failures_per_minute`` of them per minute in all; the ones beyond are
  counted, and the count goes into the ``detail.suppressed`` of the next row written.

One :class:`SignInDesk` lives in each dashboard process (it is part of the cached
:class:`~dashboard.context.Dashboard`), so its throttle state is shared by every browser
session of that process and kept in memory: a restart forgets it, and two dashboard
processes behind one address each keep their own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from dashboard.audit import AuditLog
from dashboard.auth import PasswordBook, User
from dashboard.throttle import Throttle

log = logging.getLogger(__name__)

MAX_AUDITED_NAME = 100
WRONG = "Wrong user name or password."


@dataclass(frozen=True)
class Attempt:
    """The answer to one sign-in: the user, or what to tell the person and how long to wait."""

    user: User | None
    message: str = ""
    retry_after_s: float = 0.0


def _wait_text(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"


class SignInDesk:
    def __init__(
        self,
        book: PasswordBook,
        audit: AuditLog,
        *,
        throttle: Throttle | None = None,
        clock: Callable[[], float] = time.monotonic,
        audit_failures_per_minute: int = 20,
    ) -> None:
        self._book = book
        self._audit = audit
        self.throttle = throttle or Throttle()
        self._clock = clock
        self._budget = audit_failures_per_minute
        self._written: deque[float] = deque()
        self._suppressed = 0
        self._lock = threading.Lock()

    def attempt(self, name: str, password: str, client: str | None) -> Attempt:
        """Check one sign-in from ``client`` (its address; None when unknown)."""
        wanted = name.strip()
        if not wanted or not password:
            return Attempt(None, "Enter a user name and a password.")
        keys = (f"user:{wanted.casefold()[:MAX_AUDITED_NAME]}", f"client:{client or 'unknown'}")
        with self._lock:
            wait = self.throttle.wait_s(keys, self._clock())
        if wait > 0:
            self._failure(name, client, "locked", wait)
            return Attempt(None, f"Too many failed sign-ins: try again in {_wait_text(wait)}.",
                           wait)
        user = self._book.sign_in(wanted, password)
        with self._lock:
            if user is not None:
                self.throttle.succeeded(keys)
            else:
                wait = self.throttle.failed(keys, self._clock())
        if user is None:
            self._failure(name, client, "wrong user name or password", wait)
            later = f" Wait {_wait_text(wait)} before trying again." if wait > 0 else ""
            return Attempt(None, WRONG + later, wait)
        self._audit.record(user.name, "sign_in", detail={"client": client})
        return Attempt(user)

    def _failure(self, name: str, client: str | None, reason: str, wait: float) -> None:
        now = self._clock()
        with self._lock:
            while self._written and now - self._written[0] >= 60.0:
                self._written.popleft()
            if len(self._written) >= self._budget:
                self._suppressed += 1
                return
            self._written.append(now)
            suppressed, self._suppressed = self._suppressed, 0
        detail: dict[str, object] = {"client": client}
        if wait > 0:
            detail["locked_s"] = round(wait, 1)
        if len(name) > MAX_AUDITED_NAME:
            detail["name_length"] = len(name)
        if suppressed:
            detail["suppressed"] = suppressed
        self._audit.record(name[:MAX_AUDITED_NAME], "sign_in_failed", reason=reason,
                           detail=detail)
        if suppressed:
            log.warning("sign-in failures beyond the audit budget were counted, not written",
                        extra={"suppressed": suppressed})
