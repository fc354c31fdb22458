"""Users: broker-wide. A declared user is created, or updated in place when its tags, its (declared) limits
or its password differ; users no file declares are not managed (never changed; only a prune would delete one).

Whether the password differs is decided offline, by hashing the declared password with the salt of the
broker's stored hash (:func:`password_verdict`): neither is ever part of a change's text, its JSON form or
its reasons (``(sensitive)`` stands in their place).

The user topo connects as is protected: a change that deletes it, takes its ``administrator`` tag away or
changes its password is blocked (:func:`connecting_user_blockers`), since topo would lock itself out
half-way through the apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Literal

from topo.definitions import declared_password
from topo.model import SENSITIVE, User
from topo.passwords import matches
from topo.plan.kinds.base import BrokerScope, Kind, Outcomes
from topo.plan.model import Blocker, Change, Unmanaged

__all__ = [
    "CONNECTING_USER",
    "HASH_CHANGES",
    "PASSWORD_CHANGES",
    "USER",
    "PasswordVerdict",
    "connecting_user_blockers",
    "password_source",
    "password_verdict",
]

PasswordVerdict = Literal["same", "changes", "rehash", "not-managed"]

PASSWORD_CHANGES = (
    "the password differs from the one the broker has (checked against its salted hash: neither is shown)"
)
HASH_CHANGES = "the password hash differs from the one the broker has"
CONNECTING_USER = "connecting-user"


def password_verdict(desired: User, observed: User) -> PasswordVerdict:
    """Whether applying ``desired`` changes the password the broker stores for ``observed``.

    ``rehash``: the password is the same, but the files ask for another hashing algorithm."""
    stored = observed.password_hash
    if desired.password_hash is not None:
        if stored is None or (stored.value, stored.algorithm) != (
            desired.password_hash.value,
            desired.password_hash.algorithm,
        ):
            return "changes"
        return "same"
    if desired.password is None:
        return "not-managed"
    if stored is None or not matches(declared_password(desired), stored.value, stored.algorithm):
        return "changes"
    if desired.hashing_algorithm is not None and desired.hashing_algorithm != stored.algorithm:
        return "rehash"
    return "same"


def connecting_user_blockers(change: Change, connecting_user: str | None) -> tuple[Blocker, ...]:
    """Why apply refuses ``change`` (a user's) when topo connects as that user: it would lock itself out."""
    if change.kind != "user" or connecting_user is None or change.address.name != connecting_user:
        return ()
    hint = "change this user with another administrator (or rabbitmqctl), then apply; topo connects as it"
    found: list[Blocker] = []
    if change.action == "delete":
        found.append(Blocker(CONNECTING_USER, "topo connects as this user: deleting it would lock topo out", hint))
    before, after = change.before, change.after
    if change.action == "update" and isinstance(before, User) and isinstance(after, User):
        if "administrator" in before.tags and "administrator" not in after.tags:
            found.append(
                Blocker(
                    CONNECTING_USER,
                    "topo connects as this user: without the administrator tag it could no longer read or "
                    "change the broker, half-way through the apply",
                    hint,
                )
            )
        if password_verdict(after, before) == "changes":
            found.append(
                Blocker(
                    CONNECTING_USER,
                    "topo connects as this user: changing its password would make the rest of the apply fail",
                    hint + " with the new password",
                )
            )
    return tuple(found)


def _tags(tags: Iterable[str]) -> str:
    return ", ".join(tags) or "none"


def _common(scope: BrokerScope, name: str, want: User, have: User) -> Outcomes:
    reasons = []
    if want.tags != have.tags:
        reasons.append(f"tags change in place ({_tags(have.tags)} → {_tags(want.tags)})")
    if want.limits is not None and dict(want.limits) != dict(have.limits or {}):
        reasons.append("limits change in place")
    verdict = password_verdict(want, have)
    if verdict == "changes":
        reasons.append(HASH_CHANGES if want.password_hash is not None else PASSWORD_CHANGES)
    elif verdict == "rehash" and have.password_hash is not None:
        reasons.append(
            f"the password is hashed with {have.password_hash.algorithm} on the broker, the files ask for "
            f"{want.hashing_algorithm}: it is hashed again"
        )
    if not reasons:
        return ()
    change = Change("update", scope.address("user", name), have, want, tuple(reasons))
    blockers = connecting_user_blockers(change, scope.facts.connecting_user)
    return (replace(change, blockers=blockers) if blockers else change,)


def _removed(scope: BrokerScope, name: str, have: User) -> Outcomes:
    return (Unmanaged(scope.address("user", name)),)


# -- how a plan shows it ----------------------------------------------------------------------------------


def password_source(user: User) -> str | None:
    """Where a declared user's password comes from, for people (no secret in it); None: not managed."""
    if user.password is not None:
        return user.password.source
    if user.password_hash is not None:
        return "password-hash" if user.password_hash.value else 'password-hash "" (no password)'
    return None


def _password_line(user: User, *, new: bool) -> str:
    source = password_source(user)
    if source is None:
        return "password: not managed" + (" (a new user gets none)" if new else "")
    if user.password_hash is not None and not user.password_hash.value:
        return "password: none (the broker refuses every password)"
    return f"password: {SENSITIVE}, from {source}"


def _shown_tags(user: User) -> str:
    return ", ".join(user.tags) if user.tags else "(none)"


def _limits(limits: Any) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(dict(limits or {}).items())) or "(none)"


def _details(change: Change) -> list[str]:
    before, after = change.before, change.after
    if change.action == "create" and isinstance(after, User):
        lines = [f"tags: {_shown_tags(after)}", _password_line(after, new=True)]
        if after.limits is not None:
            lines.append(f"limits: {_limits(after.limits)}")
        return lines
    if change.action == "update" and isinstance(before, User) and isinstance(after, User):
        lines = []
        if before.tags != after.tags:
            lines.append(f"tags: {_shown_tags(before)} → {_shown_tags(after)}")
        if after.limits is not None and dict(after.limits) != dict(before.limits or {}):
            lines.append(f"limits: {_limits(before.limits)} → {_limits(after.limits)}")
        if password_verdict(after, before) in ("changes", "rehash"):
            lines.append(f"password: {SENSITIVE} → {SENSITIVE}, from {password_source(after)}")
            lines += [f"# {reason}" for reason in change.reasons if reason.startswith("the password")]
        return lines
    return []


def _json(user: User) -> dict[str, Any]:
    """Never the password nor its hash: ``(sensitive)`` when the user has or gets one, and where the files
    take it from (``${env:NAME}``, ``password-file PATH``: no secret in it)."""
    has_password = user.password is not None or (user.password_hash is not None and bool(user.password_hash.value))
    return {
        "name": user.name,
        "tags": list(user.tags),
        "limits": dict(user.limits) if user.limits is not None else None,
        "password": SENSITIVE if has_password else None,
        "password_source": user.password.source if user.password is not None else None,
    }


USER = Kind(
    name="user",
    scope="broker",
    declared=lambda topology: bool(topology.users),
    actions=("create", "update", "delete"),  # delete: no plan makes one (users are never pruned); guarded anyway
    items=lambda topology: topology.users,
    common=_common,
    removed=_removed,
    details=_details,
    to_json=_json,
)
