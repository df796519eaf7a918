"""Sign-in throttling: an exponential lockout per user name and per client.

Each key (a user name, a client address) may fail ``free_failures`` times; every failure after
that locks the key for ``base_delay_s``, then twice as long, up to ``max_delay_s``. While any
key of an attempt is locked the attempt is refused before the password is looked at (so the
right password is refused too) and it is not counted: waiting out a lock is the only way on,
and an attacker cannot keep a lock growing without end. A success clears the attempt's keys;
a key with no failure for ``forget_after_s`` starts afresh.

Unknown user names are keyed exactly like known ones, so a lock says nothing about which
names exist. Locking per user name means someone who guesses a real name can keep that user
waiting up to ``max_delay_s`` at a time; locking per client alone would let a botnet guess one
password on many clients. Behind a reverse proxy that hides client addresses every visitor is
one client: then the per-client lock applies to all of them at once.

Pure: the caller passes the moment (seconds on a monotonic clock). State lives in memory,
bounded to ``max_keys`` (the least recently failed keys are forgotten first); the dashboard
keeps one :class:`Throttle` per Streamlit server process, shared by all its browser sessions.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class _Failures:
    count: int
    last: float
    locked_until: float


class Throttle:
    def __init__(
        self,
        *,
        free_failures: int = 5,
        base_delay_s: float = 1.0,
        max_delay_s: float = 900.0,
        forget_after_s: float = 3600.0,
        max_keys: int = 10_000,
    ) -> None:
        if free_failures < 0 or base_delay_s <= 0 or max_delay_s < base_delay_s:
            raise ValueError("free_failures >= 0 and 0 < base_delay_s <= max_delay_s")
        self.free_failures = free_failures
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.forget_after_s = forget_after_s
        self.max_keys = max_keys
        self._keys: OrderedDict[str, _Failures] = OrderedDict()

    def wait_s(self, keys: Iterable[str], now: float) -> float:
        """Seconds until an attempt with these keys may be checked; 0 when it may now."""
        return max([0.0, *(self._current(key, now).locked_until - now for key in keys)])

    def delay_after(self, failures: int) -> float:
        """How long the ``failures``-th failure in a row locks its key."""
        over = failures - self.free_failures
        if over <= 0:
            return 0.0
        return float(min(self.max_delay_s, self.base_delay_s * 2 ** min(over - 1, 64)))

    def failed(self, keys: Iterable[str], now: float) -> float:
        """Count a failure for each key; returns how long the attempt's keys are now locked."""
        wait = 0.0
        for key in keys:
            count = self._current(key, now).count + 1
            delay = self.delay_after(count)
            self._keys[key] = _Failures(count, now, now + delay)
            self._keys.move_to_end(key)
            wait = max(wait, delay)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)
        return wait

    def succeeded(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._keys.pop(key, None)

    def failures(self, key: str, now: float) -> int:
        return self._current(key, now).count

    def _current(self, key: str, now: float) -> _Failures:
        found = self._keys.get(key)
        if found is None or now - found.last > self.forget_after_s:
            return _Failures(0, now, now)
        return found
