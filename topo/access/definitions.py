"""Users, permissions, topic permissions and global parameters as the broker's JSON, both ways. Pure.

Reading: the items of ``GET /api/users``, ``/api/permissions``, ``/api/topic-permissions`` and
``/api/global-parameters``. Writing: the bodies of the ``PUT`` requests.

A user's ``PUT`` always carries a password hash (:func:`user_body`): RabbitMQ clears the password of a user
updated without one, and gives a plaintext password sent again a new salt. So the body holds the broker's
own stored hash when the password does not change (byte-stable: nothing rotates), and a hash topo computed
with a fresh salt when it does (the plaintext never travels).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from topo.errors import UsageError
from topo.model import GlobalParameter, PasswordHash, Permission, TopicPermission, TopicPermissions, User
from topo.passwords import DEFAULT_ALGORITHM, hash_password, matches

__all__ = [
    "declared_password",
    "global_parameter_from_definition",
    "password_to_send",
    "permission_body",
    "permission_from_definition",
    "tags_of",
    "topic_permission_body",
    "topic_permissions_from_definitions",
    "user_body",
    "user_from_definition",
]


def tags_of(value: Any) -> tuple[str, ...]:
    """A user's tags as the broker gives them (a list, or a comma-separated string), sorted."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    return tuple(sorted({str(tag).strip() for tag in items if str(tag).strip()}))


def user_from_definition(item: Mapping[str, Any]) -> User:
    """One item of ``GET /api/users``: its stored hash (``""``: no password) and limits come along."""
    limits = item.get("limits")
    return User(
        name=str(item["name"]),
        tags=tags_of(item.get("tags")),
        limits={str(k): int(v) for k, v in limits.items()} if isinstance(limits, dict) else {},
        password_hash=PasswordHash(
            str(item.get("password_hash") or ""), str(item.get("hashing_algorithm") or DEFAULT_ALGORITHM)
        ),
    )


def declared_password(user: User) -> str:
    """The password ``user`` declares (it has a ``password``); a :class:`~topo.errors.UsageError` when the
    files were loaded without their secrets and this one was not at hand."""
    secret = user.password
    if secret is None or secret.value is None:
        raise UsageError(
            f"the password of user {user.name!r} ({secret.source if secret else 'none'}) was not read",
            hint="load the files with their secrets (topo.load(..., secrets=True), as plan and apply do)",
        )
    return secret.value


def password_to_send(desired: User, observed: User | None, *, salt: bytes | None = None) -> PasswordHash:
    """The hash a ``PUT`` of ``desired`` carries, when the broker has ``observed`` (None: a new user).

    - a declared hash: that hash;
    - a declared password that the stored hash was made from (and the algorithm the files ask for, if they
      ask): the stored hash, as it is; otherwise a fresh hash of the password (``salt`` for tests);
    - no password source: the stored hash as it is, or none (``""``) for a new user.
    """
    stored = observed.password_hash if observed is not None else None
    if desired.password_hash is not None:
        return desired.password_hash
    if desired.password is not None:
        wanted = desired.hashing_algorithm
        if (
            stored is not None
            and matches(declared_password(desired), stored.value, stored.algorithm)
            and (wanted is None or wanted == stored.algorithm)
        ):
            return stored
        algorithm = wanted or DEFAULT_ALGORITHM
        return PasswordHash(hash_password(declared_password(desired), algorithm, salt=salt), algorithm)
    if stored is not None:
        return stored
    return PasswordHash("", DEFAULT_ALGORITHM)


def user_body(desired: User, observed: User | None, *, salt: bytes | None = None) -> dict[str, Any]:
    """The body of ``PUT /api/users/{name}``: tags and a password hash, never a plaintext password."""
    password = password_to_send(desired, observed, salt=salt)
    return {
        "tags": ",".join(desired.tags),
        "password_hash": password.value,
        "hashing_algorithm": password.algorithm,
    }


def permission_from_definition(item: Mapping[str, Any]) -> Permission:
    return Permission(
        user=str(item["user"]),
        vhost=str(item["vhost"]),
        configure=str(item.get("configure", "")),
        write=str(item.get("write", "")),
        read=str(item.get("read", "")),
    )


def permission_body(permission: Permission) -> dict[str, str]:
    """The body of ``PUT /api/permissions/{vhost}/{user}`` (all three patterns: the broker requires them)."""
    return {"configure": permission.configure, "write": permission.write, "read": permission.read}


def topic_permissions_from_definitions(items: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], TopicPermissions]:
    """``GET /api/topic-permissions`` (one item per user, vhost and exchange), grouped by (user, vhost)."""
    grouped: dict[tuple[str, str], dict[str, TopicPermission]] = {}
    for item in items:
        key = (str(item["user"]), str(item["vhost"]))
        exchange = str(item["exchange"])
        grouped.setdefault(key, {})[exchange] = TopicPermission(
            exchange, str(item.get("write", "")), str(item.get("read", ""))
        )
    return {key: TopicPermissions(key[0], key[1], entries) for key, entries in grouped.items()}


def topic_permission_body(entry: TopicPermission) -> dict[str, str]:
    """The body of ``PUT /api/topic-permissions/{vhost}/{user}``: one exchange's entry."""
    return {"exchange": entry.exchange, "write": entry.write, "read": entry.read}


def global_parameter_from_definition(item: Mapping[str, Any]) -> GlobalParameter:
    return GlobalParameter(str(item["name"]), item.get("value"))
