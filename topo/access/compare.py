"""Desired vs observed for users, permissions, topic permissions and global parameters. Pure.

One function per kind; each returns the changes and what is not managed (see docs/topology-format.md,
"Users, permissions and global parameters"):

- a declared user is created, or updated in place when its tags, its (declared) limits or its password
  differ; whether the password differs is decided offline, by hashing the declared password with the salt
  of the broker's stored hash (:func:`password_verdict`): neither is ever part of a change's text;
- a declared user's permissions and topic permissions are those the files give it: others are revoked,
  except those of the user topo connects as (RabbitMQ grants them when topo creates a vhost, and topo
  needs them), which are not managed;
- users no file declares are not managed (never changed or deleted), nor are their permissions on the
  vhosts the files declare; global parameters no file declares neither (the broker's own
  ``internal_cluster_id`` and topo's own ``topo.*`` are not even listed).

The user topo connects as is protected: a change that deletes it, takes its ``administrator`` tag away or
changes its password is blocked (:func:`connecting_user_blockers`), since topo would lock itself out half-way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

from topo.access.definitions import declared_password
from topo.model import (
    Address,
    GlobalParameter,
    Permission,
    TopicPermissions,
    Topology,
    User,
    canonical_json,
    reserved_parameter,
)
from topo.passwords import matches
from topo.plan.model import Blocker, Change, Unmanaged

__all__ = [
    "AccessContext",
    "PasswordVerdict",
    "compare_global_parameters",
    "compare_permissions",
    "compare_topic_permissions",
    "compare_users",
    "connecting_user_blockers",
    "diff_access",
    "password_verdict",
    "topic_entries_removed",
]

K = TypeVar("K")
V = TypeVar("V")
P = TypeVar("P", Permission, TopicPermissions)

PasswordVerdict = Literal["same", "changes", "rehash", "not-managed"]

PASSWORD_CHANGES = (
    "the password differs from the one the broker has (checked against its salted hash: neither is shown)"
)
HASH_CHANGES = "the password hash differs from the one the broker has"
TOPIC_DELETE_ALL = (
    "RabbitMQ 3.10 deletes a user's topic permissions on a vhost all at once: apply deletes them and sets "
    "the ones the files declare again"
)
CONNECTING_USER = "connecting-user"
MISSING_VHOST = "missing-vhost"


@dataclass(frozen=True)
class AccessContext:
    """What the comparison needs to know besides the two states: the user topo connects as (None: not
    known), and the vhosts the broker has (None: not read)."""

    connecting_user: str | None = None
    broker_vhosts: frozenset[str] | None = None


def _differences(desired: Mapping[K, V], observed: Mapping[K, V]) -> tuple[list[K], list[K], list[K]]:
    """(only desired, only observed, both), each sorted."""
    added = sorted((k for k in desired if k not in observed), key=str)
    removed = sorted((k for k in observed if k not in desired), key=str)
    common = sorted((k for k in desired if k in observed), key=str)
    return added, removed, common


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


def compare_users(
    desired: Mapping[str, User], observed: Mapping[str, User], context: AccessContext
) -> tuple[list[Change], list[Unmanaged]]:
    changes: list[Change] = []
    added, removed, common = _differences(desired, observed)
    for name in added:
        changes.append(Change("create", Address("user", "", name), after=desired[name]))
    for name in common:
        want, have = desired[name], observed[name]
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
        if reasons:
            changes.append(Change("update", Address("user", "", name), have, want, tuple(reasons)))
    unmanaged = [Unmanaged(Address("user", "", name)) for name in removed]
    return _protected(changes, context), unmanaged


def _protected(changes: list[Change], context: AccessContext) -> list[Change]:
    out = []
    for change in changes:
        blockers = connecting_user_blockers(change, context.connecting_user)
        if blockers:
            change = replace(change, blockers=change.blockers + blockers)
        out.append(change)
    return out


def _missing_vhost(vhost: str, desired: Topology, context: AccessContext) -> tuple[Blocker, ...]:
    if context.broker_vhosts is None or vhost in context.broker_vhosts or vhost in desired.vhosts:
        return ()
    return (
        Blocker(
            MISSING_VHOST,
            f"vhost {vhost!r} is not on the broker and no file declares it",
            "declare the vhost, or correct its name",
        ),
    )


def _per_user_vhost(
    kind: Literal["permission", "topic-permission"],
    desired_table: Mapping[tuple[str, str], P],
    observed_table: Mapping[tuple[str, str], P],
    desired: Topology,
    context: AccessContext,
    differ: Callable[[P, P], tuple[str, ...]],
) -> tuple[list[Change], list[Unmanaged]]:
    """Permissions and topic permissions alike: keyed (user, vhost), owned by a declared user."""
    changes: list[Change] = []
    unmanaged: list[Unmanaged] = []
    added, removed, common = _differences(desired_table, observed_table)
    for key in added:
        user, vhost = key
        changes.append(
            Change(
                "create",
                Address(kind, vhost, user),
                after=desired_table[key],
                blockers=_missing_vhost(vhost, desired, context),
            )
        )
    for key in common:
        user, vhost = key
        reasons = differ(observed_table[key], desired_table[key])
        if reasons:
            changes.append(
                Change("update", Address(kind, vhost, user), observed_table[key], desired_table[key], reasons)
            )
    what = "permissions" if kind == "permission" else "topic permissions"
    for key in removed:
        user, vhost = key
        address = Address(kind, vhost, user)
        if user in desired.users and user != context.connecting_user:
            reason = f"no file gives user {user!r} {what} on vhost {vhost!r}: revoked"
            changes.append(Change("delete", address, before=observed_table[key], reasons=(reason,)))
        elif vhost in desired.vhosts or user in desired.users:
            unmanaged.append(Unmanaged(address))
    return changes, unmanaged


def _permission_differ(before: Permission, after: Permission) -> tuple[str, ...]:
    same = (before.configure, before.write, before.read) == (after.configure, after.write, after.read)
    return () if same else ("permissions change in place",)


def topic_entries_removed(before: TopicPermissions, after: TopicPermissions) -> list[str]:
    """The exchanges whose entry ``after`` no longer has (RabbitMQ 3.10 can only delete them all together)."""
    return sorted(set(before.exchanges) - set(after.exchanges))


def _topic_differ(before: TopicPermissions, after: TopicPermissions) -> tuple[str, ...]:
    if {k: (v.write, v.read) for k, v in before.exchanges.items()} == {
        k: (v.write, v.read) for k, v in after.exchanges.items()
    }:
        return ()
    reasons = ["topic permissions change in place"]
    if topic_entries_removed(before, after):
        reasons.append(TOPIC_DELETE_ALL)
    return tuple(reasons)


def compare_permissions(
    desired: Topology, observed: Topology, context: AccessContext
) -> tuple[list[Change], list[Unmanaged]]:
    return _per_user_vhost(
        "permission", desired.permissions, observed.permissions, desired, context, _permission_differ
    )


def compare_topic_permissions(
    desired: Topology, observed: Topology, context: AccessContext
) -> tuple[list[Change], list[Unmanaged]]:
    return _per_user_vhost(
        "topic-permission", desired.topic_permissions, observed.topic_permissions, desired, context, _topic_differ
    )


def compare_global_parameters(
    desired: Mapping[str, GlobalParameter], observed: Mapping[str, GlobalParameter]
) -> tuple[list[Change], list[Unmanaged]]:
    changes: list[Change] = []
    added, removed, common = _differences(desired, observed)
    for name in added:
        changes.append(Change("create", Address("global-parameter", "", name), after=desired[name]))
    for name in common:
        want, have = desired[name], observed[name]
        if canonical_json(want.value) != canonical_json(have.value):
            address = Address("global-parameter", "", name)
            changes.append(Change("update", address, have, want, ("global parameters change in place",)))
    unmanaged = [
        Unmanaged(Address("global-parameter", "", name)) for name in removed if reserved_parameter(name) is None
    ]
    return changes, unmanaged


@dataclass
class AccessDiff:
    """The access changes of a plan: broker-wide ones (users, global parameters), and per vhost
    (permissions and topic permissions), each list in the order a plan shows them."""

    broker_wide: list[Change]
    per_vhost: dict[str, list[Change]]
    unmanaged: list[Unmanaged]


def diff_access(desired: Topology, observed: Topology, context: AccessContext | None = None) -> AccessDiff:
    """Every access change that makes ``observed`` match ``desired``; kinds the files do not declare are
    not compared (their part of ``observed`` is not read then)."""
    context = context or AccessContext()
    broker_wide: list[Change] = []
    per_vhost: dict[str, list[Change]] = {}
    unmanaged: list[Unmanaged] = []
    if desired.users:
        changes, left = compare_users(desired.users, observed.users, context)
        broker_wide += changes
        unmanaged += left
        for compare in (compare_permissions, compare_topic_permissions):
            changes, left = compare(desired, observed, context)
            unmanaged += left
            for change in changes:
                per_vhost.setdefault(change.vhost, []).append(change)
    if desired.global_parameters:
        changes, left = compare_global_parameters(desired.global_parameters, observed.global_parameters)
        broker_wide += changes
        unmanaged += left
    broker_wide.sort(key=lambda c: (c.kind != "user", c.address.name))
    for changes in per_vhost.values():
        changes.sort(key=lambda c: (c.address.name, c.kind))
    unmanaged.sort(key=lambda u: (u.address.vhost, str(u.address)))
    return AccessDiff(broker_wide, per_vhost, unmanaged)
