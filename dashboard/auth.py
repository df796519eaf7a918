"""Who may look and who may act: password hashes, sign-in and the access policy.

Users come from ``settings.dashboard.users`` as ``name -> 'pbkdf2_sha256$iterations$salt$hash'``
(salt and hash in unpadded URL-safe base64). ``driftloop dashboard hash-password`` prints such a
hash. When ``settings.dashboard.oidc_provider`` is set, Streamlit's OpenID Connect login is
offered too (see :mod:`dashboard.session`). Viewing may be open to anyone
(``settings.dashboard.open_viewing``); correcting labels, promoting and rolling back always need
a signed-in user.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

from streams.errors import DriftloopError

log = logging.getLogger(__name__)

SCHEME = "pbkdf2_sha256"
#: OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256.
DEFAULT_ITERATIONS = 600_000
_SALT_BYTES = 16
_MIN_ITERATIONS = 1_000


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(
    password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> str:
    """The ``pbkdf2_sha256$iterations$salt$hash`` string to put in ``dashboard.users``."""
    if not password:
        raise ValueError("the password is empty")
    if iterations < _MIN_ITERATIONS:
        raise ValueError(f"use at least {_MIN_ITERATIONS} iterations")
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded``; a malformed hash matches nothing."""
    try:
        scheme, rounds, salt_text, digest_text = encoded.split("$")
        iterations = int(rounds)
        salt, expected = _unb64(salt_text), _unb64(digest_text)
    except (ValueError, binascii.Error):
        log.warning("malformed password hash in dashboard.users")
        return False
    if scheme != SCHEME or iterations < _MIN_ITERATIONS or not expected:
        log.warning("unsupported password hash in dashboard.users", extra={"scheme": scheme})
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(digest, expected)


def _iterations(encoded: str) -> int | None:
    """The PBKDF2 iteration count of a well-formed hash, else None."""
    parts = encoded.split("$")
    if len(parts) != 4 or parts[0] != SCHEME or not parts[1].isdigit():
        return None
    iterations = int(parts[1])
    return iterations if iterations >= _MIN_ITERATIONS else None


class AccessDeniedError(DriftloopError):
    """An action was attempted by someone who may not take it (not signed in)."""


@dataclass(frozen=True)
class User:
    """A signed-in person; ``name`` is what the audit log and feedback events record."""

    name: str
    method: Literal["password", "oidc"] = "password"


class PasswordBook:
    """Checks user names and passwords against the configured hashes."""

    def __init__(self, users: Mapping[str, SecretStr]) -> None:
        self._users = {name: hashed.get_secret_value() for name, hashed in users.items()}
        # An unknown name is checked against a throwaway hash of the same cost as the real
        # ones (the dearest, when they differ), so its answer takes as long as a known name's
        # and gives away nothing about which names exist.
        costs = [_iterations(encoded) for encoded in self._users.values()]
        self.decoy_iterations = max((c for c in costs if c is not None),
                                    default=DEFAULT_ITERATIONS)
        self._decoy = hash_password(secrets.token_urlsafe(12), iterations=self.decoy_iterations)

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    def sign_in(self, name: str, password: str) -> User | None:
        name = name.strip()
        encoded = self._users.get(name)
        if encoded is None:
            verify_password(password, self._decoy)
            log.info("sign-in refused: unknown user")
            return None
        if not verify_password(password, encoded):
            log.info("sign-in refused: wrong password", extra={"user": name})
            return None
        log.info("signed in", extra={"user": name})
        return User(name)


@dataclass(frozen=True)
class Access:
    """The policy: who sees the pages and who may change anything."""

    open_viewing: bool

    def can_view(self, user: User | None) -> bool:
        return self.open_viewing or user is not None

    def can_act(self, user: User | None) -> bool:
        return user is not None

    def require_actor(self, user: User | None, action: str) -> User:
        """The user, or :class:`AccessDeniedError` when nobody is signed in."""
        if user is None or not self.can_act(user):
            raise AccessDeniedError(f"sign in to {action}")
        return user
