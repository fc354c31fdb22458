"""RabbitMQ's password hashes, computed and checked offline (topo.passwords). Pure; the broker's side of the
same facts (it accepts what topo computes, and topo reads what it stores) is tested in test_access_broker.py."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from topo.passwords import (
    ALGORITHMS,
    MD5,
    SHA256,
    SHA512,
    HashProblem,
    algorithm_name,
    check_hash,
    hash_password,
    matches,
)

# Hashes the broker computed (RabbitMQ 3.10.8): `PUT /api/users/u {"password": ...}` then GET.
BROKER_SHA256 = ("secret", "NTWE6nmlF1EGPbK169pQX/itGGZfptEW1BEWg35TO1HQxg5+")
BROKER_GUEST = ("guest", "wDGe2Bwg+KfFcY5p9yUUWo2G6tZJR79n4J4UB+vFc0V0Ktsd")


@pytest.mark.parametrize(("password", "stored"), [BROKER_SHA256, BROKER_GUEST])
def test_a_hash_the_broker_made_is_recognised(password: str, stored: str) -> None:
    assert matches(password, stored, SHA256)
    assert not matches(password + "x", stored, SHA256)
    assert not matches(password, stored, SHA512)  # the wrong algorithm never matches


@pytest.mark.parametrize(
    ("algorithm", "digest", "size"),
    [(SHA256, hashlib.sha256, 36), (SHA512, hashlib.sha512, 68), (MD5, hashlib.md5, 20)],
)
def test_the_broker_form_is_base64_of_salt_and_digest(algorithm: str, digest: object, size: int) -> None:
    salt = bytes([1, 2, 3, 4])
    stored = hash_password("pässwörd", algorithm, salt=salt)
    raw = base64.b64decode(stored)
    assert len(raw) == size and raw[:4] == salt
    assert raw[4:] == digest(salt + "pässwörd".encode()).digest()  # type: ignore[operator]
    assert matches("pässwörd", stored, algorithm)


def test_a_fresh_salt_each_time() -> None:
    first, second = hash_password("p", SHA256), hash_password("p", SHA256)
    assert first != second
    assert matches("p", first, SHA256) and matches("p", second, SHA256)


@given(st.text(), st.sampled_from(ALGORITHMS))
def test_any_password_round_trips(password: str, algorithm: str) -> None:
    assert matches(password, hash_password(password, algorithm), algorithm)


def test_no_stored_password_matches_nothing() -> None:
    assert not matches("", "", SHA256)
    assert not matches("x", "", SHA256)


def test_an_unknown_algorithm_or_a_broken_hash_never_matches() -> None:
    assert not matches("secret", BROKER_SHA256[1], "rabbit_password_hashing_bogus")
    assert not matches("secret", "not base64!!", SHA256)
    assert not matches("secret", base64.b64encode(b"abc").decode(), SHA256)


def test_short_algorithm_names() -> None:
    assert algorithm_name("sha256") == SHA256
    assert algorithm_name("rabbit_password_hashing_md5") == MD5
    assert algorithm_name("SHA512") is None  # the names as RabbitMQ writes them, or their short form
    assert algorithm_name("bcrypt") is None


def test_check_hash_infers_the_algorithm_from_the_length() -> None:
    assert check_hash(BROKER_SHA256[1], None) == SHA256
    assert check_hash(hash_password("x", MD5), None) == MD5
    assert check_hash(hash_password("x", SHA512), "sha512") == SHA512
    assert check_hash("", None) == SHA256  # no password: any algorithm; the broker's default


@pytest.mark.parametrize(
    ("stored", "algorithm", "words"),
    [
        ("not base64!!", None, "not base64"),
        (base64.b64encode(b"0123456789").decode(), None, "10 bytes"),
        (BROKER_SHA256[1], "md5", "36 bytes"),
        (BROKER_SHA256[1], "bcrypt", "unknown hashing algorithm"),
    ],
)
def test_check_hash_says_what_is_wrong_without_the_hash(stored: str, algorithm: str | None, words: str) -> None:
    with pytest.raises(HashProblem) as info:
        check_hash(stored, algorithm)
    assert words in str(info.value)
    assert stored not in str(info.value) or stored == ""
