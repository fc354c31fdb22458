"""RabbitMQ's password hashes, computed and checked offline. Pure.

RabbitMQ's internal users store ``base64(salt + H(salt + UTF-8 password))`` with a 4-byte random salt and
``H`` the user's hashing algorithm: ``rabbit_password_hashing_sha256`` (the default since 3.6),
``rabbit_password_hashing_sha512`` or ``rabbit_password_hashing_md5``. An empty stored hash is a user
without a password: nothing matches it. So whether a declared password is the one the broker has can be
told without writing anything: hash it with the stored salt and compare (:func:`matches`); and a hash topo
computes itself (:func:`hash_password`) can be sent as ``password_hash``, which the broker stores as it is,
so that the password never travels and a re-apply never rotates a salt for nothing.

Nothing here puts a password or a hash into a message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "MD5",
    "SALT_SIZE",
    "SHA256",
    "SHA512",
    "HashProblem",
    "algorithm_name",
    "check_hash",
    "hash_password",
    "matches",
]

SHA256 = "rabbit_password_hashing_sha256"
SHA512 = "rabbit_password_hashing_sha512"
MD5 = "rabbit_password_hashing_md5"
ALGORITHMS: tuple[str, ...] = (SHA256, SHA512, MD5)
DEFAULT_ALGORITHM = SHA256
"""What RabbitMQ uses unless configured otherwise, and what topo hashes with unless told."""
SALT_SIZE = 4

_DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    SHA256: lambda data: hashlib.sha256(data).digest(),
    SHA512: lambda data: hashlib.sha512(data).digest(),
    MD5: lambda data: hashlib.md5(data, usedforsecurity=False).digest(),
}
_SIZES = {SHA256: SALT_SIZE + 32, SHA512: SALT_SIZE + 64, MD5: SALT_SIZE + 16}
_SHORT = {"sha256": SHA256, "sha512": SHA512, "md5": MD5}


class HashProblem(ValueError):
    """A declared password hash the broker could not use (the message never holds the hash)."""


def algorithm_name(name: str) -> str | None:
    """The broker's name of a hashing algorithm written in its own form or short (``sha256``); None if unknown."""
    if name in _DIGESTS:
        return name
    return _SHORT.get(name)


def _decode(stored: str) -> bytes | None:
    try:
        return base64.b64decode(stored.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


def hash_password(password: str, algorithm: str = DEFAULT_ALGORITHM, *, salt: bytes | None = None) -> str:
    """The broker's stored form of ``password``: a fresh random salt unless ``salt`` is given."""
    digest = _DIGESTS[algorithm]
    salt = os.urandom(SALT_SIZE) if salt is None else salt
    return base64.b64encode(salt + digest(salt + password.encode("utf-8"))).decode("ascii")


def matches(password: str, stored: str, algorithm: str) -> bool:
    """Whether ``password`` is the one ``stored`` (the broker's ``password_hash``) was made from.

    False for a user without a password (``stored`` empty), an unknown algorithm, or a hash that is not the
    broker's form: topo then cannot tell, and treats the password as one to set."""
    digest = _DIGESTS.get(algorithm)
    raw = _decode(stored) if stored else None
    if digest is None or raw is None or len(raw) != _SIZES[algorithm]:
        return False
    salt = raw[:SALT_SIZE]
    return hmac.compare_digest(raw, salt + digest(salt + password.encode("utf-8")))


def check_hash(stored: str, algorithm: str | None) -> str:
    """The broker's name of the algorithm of a declared ``password-hash``, checked: the hash must be base64
    of a salt and a digest of that algorithm (inferred from the length when ``algorithm`` is None).
    ``""`` (no password) fits every algorithm. Raises :class:`HashProblem`, whose message never shows the hash.
    """
    name: str | None = None
    if algorithm is not None:
        name = algorithm_name(algorithm)
        if name is None:
            known = ", ".join(f"{full} ({short})" for short, full in _SHORT.items())
            raise HashProblem(f"unknown hashing algorithm {algorithm!r}: RabbitMQ ships {known}")
    if stored == "":
        return name or DEFAULT_ALGORITHM
    raw = _decode(stored)
    if raw is None:
        raise HashProblem("the password hash is not base64 (the broker's form: base64 of salt and digest)")
    if name is None:
        found = [alg for alg, size in _SIZES.items() if size == len(raw)]
        if not found:
            raise HashProblem(
                f"the password hash is {len(raw)} bytes once decoded: not a hash RabbitMQ makes (4 bytes of salt "
                "and the digest: 36 bytes for SHA-256, 68 for SHA-512, 20 for MD5)"
            )
        return found[0]
    if len(raw) != _SIZES[name]:
        raise HashProblem(
            f"the password hash is {len(raw)} bytes once decoded, but a {name} hash is {_SIZES[name]} "
            "(4 bytes of salt and the digest): the hash or the hashing algorithm is wrong"
        )
    return name
