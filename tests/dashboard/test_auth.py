from __future__ import annotations

import pytest
import typer
from pydantic import SecretStr
from typer.testing import CliRunner

from dashboard.auth import (
    Access,
    AccessDeniedError,
    PasswordBook,
    User,
    hash_password,
    verify_password,
)

FAST = 1_000


def test_hash_round_trip_and_format():
    encoded = hash_password("s3cret", iterations=FAST, salt=b"0123456789abcdef")
    scheme, rounds, salt, digest = encoded.split("$")
    assert (scheme, rounds) == ("pbkdf2_sha256", "1000")
    assert salt == "MDEyMzQ1Njc4OWFiY2RlZg"
    assert verify_password("s3cret", encoded)
    assert not verify_password("s3cret ", encoded)
    assert not verify_password("", encoded)


def test_each_hash_has_its_own_salt():
    assert hash_password("pw", iterations=FAST) != hash_password("pw", iterations=FAST)


@pytest.mark.parametrize(
    "encoded",
    ["", "plain", "md5$1000$abc$def", "pbkdf2_sha256$x$abc$def", "pbkdf2_sha256$10$abc$def",
     "pbkdf2_sha256$1000$abc$", "pbkdf2_sha256$1000$!!$??"],
)
def test_malformed_hashes_match_nothing(encoded):
    assert not verify_password("pw", encoded)


def test_refuses_empty_password_and_weak_iterations():
    with pytest.raises(ValueError, match="empty"):
        hash_password("")
    with pytest.raises(ValueError, match="iterations"):
        hash_password("pw", iterations=10)


def test_password_book_signs_in_only_known_users_with_their_password():
    book = PasswordBook({"alice": SecretStr(hash_password("wonder", iterations=FAST))})
    assert book.enabled
    assert book.sign_in("alice", "wonder") == User("alice")
    assert book.sign_in(" alice ", "wonder") == User("alice")
    assert book.sign_in("alice", "Wonder") is None
    assert book.sign_in("mallory", "wonder") is None
    assert not PasswordBook({}).enabled


def test_access_policy():
    alice = User("alice")
    closed, opened = Access(open_viewing=False), Access(open_viewing=True)
    assert opened.can_view(None)
    assert opened.can_view(alice)
    assert not closed.can_view(None)
    assert closed.can_view(alice)
    assert not opened.can_act(None)
    assert opened.can_act(alice)
    assert opened.require_actor(alice, "promote") is alice
    with pytest.raises(AccessDeniedError, match="sign in to promote"):
        opened.require_actor(None, "promote")


def test_hash_password_command_prints_a_usable_hash():
    from driftloop.commands.dashboard import register

    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(
        app, ["dashboard", "hash-password", "--iterations", "1000"], input="pa55\npa55\n"
    )
    assert result.exit_code == 0, result.output
    encoded = result.output.strip().splitlines()[-1]
    assert encoded.startswith("pbkdf2_sha256$1000$")
    assert verify_password("pa55", encoded)
