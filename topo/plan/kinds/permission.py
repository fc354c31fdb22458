"""Permissions and topic permissions: what a user may do in a vhost. Broker-wide kinds held by the user
(``users.orders.permissions.shop``), keyed (user, vhost), compared when the files declare users.

A declared user's permissions and topic permissions are those the files give it: others are revoked
(deleted), except those of the user topo connects as (RabbitMQ grants them when topo creates a vhost, and
topo needs them), which are not managed. The permissions of users no file declares are not managed either
(listed when they are on a vhost the files declare). A permission on a vhost that neither the broker has
nor a file declares is blocked (:data:`MISSING_VHOST`): the broker would refuse it half-way through the apply.

A user's topic permissions on a vhost are one resource (every exchange's entry): RabbitMQ 3.10 deletes them
only all at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from topo.definitions import permission_definition
from topo.model import Address, Permission, TopicPermission, TopicPermissions
from topo.plan.kinds.base import BrokerScope, Kind, Outcomes, as_json
from topo.plan.model import Blocker, Change, Unmanaged

__all__ = ["MISSING_VHOST", "PERMISSION", "TOPIC_DELETE_ALL", "TOPIC_PERMISSION", "topic_entries_removed"]

MISSING_VHOST = "missing-vhost"
TOPIC_DELETE_ALL = (
    "RabbitMQ 3.10 deletes a user's topic permissions on a vhost all at once: apply deletes them and sets "
    "the ones the files declare again"
)

P = TypeVar("P", Permission, TopicPermissions)
PermissionKind = Literal["permission", "topic-permission"]


def _address(kind: PermissionKind, key: tuple[str, str]) -> Address:
    user, vhost = key
    return Address(kind, vhost, user)


def _missing_vhost(scope: BrokerScope, vhost: str) -> tuple[Blocker, ...]:
    known = scope.facts.vhosts
    if known is None or vhost in known or vhost in scope.desired.vhosts:
        return ()
    return (
        Blocker(
            MISSING_VHOST,
            f"vhost {vhost!r} is not on the broker and no file declares it",
            "declare the vhost, or correct its name",
        ),
    )


def _added(kind: PermissionKind) -> Callable[[BrokerScope, tuple[str, str], Any], Outcomes]:
    def added(scope: BrokerScope, key: tuple[str, str], want: Any) -> Outcomes:
        return (Change("create", _address(kind, key), after=want, blockers=_missing_vhost(scope, key[1])),)

    return added


def _common(
    kind: PermissionKind, differ: Callable[[P, P], tuple[str, ...]]
) -> Callable[[BrokerScope, tuple[str, str], P, P], Outcomes]:
    def common(scope: BrokerScope, key: tuple[str, str], want: P, have: P) -> Outcomes:
        reasons = differ(have, want)
        return (Change("update", _address(kind, key), have, want, reasons),) if reasons else ()

    return common


def _removed(kind: PermissionKind, what: str) -> Callable[[BrokerScope, tuple[str, str], Any], Outcomes]:
    def removed(scope: BrokerScope, key: tuple[str, str], have: Any) -> Outcomes:
        user, vhost = key
        desired = scope.desired
        if user in desired.users and user != scope.facts.connecting_user:
            reason = f"no file gives user {user!r} {what} on vhost {vhost!r}: revoked"
            return (Change("delete", _address(kind, key), before=have, reasons=(reason,)),)
        if vhost in desired.vhosts or user in desired.users:
            return (Unmanaged(_address(kind, key)),)
        return ()

    return removed


def _order(change: Change) -> tuple[str, str]:
    return (change.address.name, change.address.vhost)


# -- permissions -----------------------------------------------------------------------------------------


def _permission_differ(before: Permission, after: Permission) -> tuple[str, ...]:
    same = (before.configure, before.write, before.read) == (after.configure, after.write, after.read)
    return () if same else ("permissions change in place",)


def _patterns(p: Permission) -> str:
    return f"configure: {as_json(p.configure)}, write: {as_json(p.write)}, read: {as_json(p.read)}"


def _permission_details(change: Change) -> list[str]:
    before, after = change.before, change.after
    if change.action == "create" and isinstance(after, Permission):
        return [_patterns(after)]
    if change.action == "update" and isinstance(before, Permission) and isinstance(after, Permission):
        return [
            f"{key}: {as_json(getattr(before, key))} → {as_json(getattr(after, key))}"
            for key in ("configure", "write", "read")
            if getattr(before, key) != getattr(after, key)
        ]
    if change.action == "delete" and isinstance(before, Permission):
        return [_patterns(before)]
    return []


PERMISSION = Kind(
    name="permission",
    scope="broker",
    declared=lambda topology: bool(topology.users),
    actions=("create", "update", "delete"),
    items=lambda topology: topology.permissions,
    added=_added("permission"),
    common=_common("permission", _permission_differ),
    removed=_removed("permission", "permissions"),
    order=_order,
    details=_permission_details,
    to_json=permission_definition,
)


# -- topic permissions -----------------------------------------------------------------------------------


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


def _entry(entry: TopicPermission) -> str:
    return f"write: {as_json(entry.write)}, read: {as_json(entry.read)}"


def _topic_details(change: Change) -> list[str]:
    before, after = change.before, change.after
    if change.action == "create" and isinstance(after, TopicPermissions):
        return [f"{name}: {_entry(after.exchanges[name])}" for name in sorted(after.exchanges)]
    if change.action == "update" and isinstance(before, TopicPermissions) and isinstance(after, TopicPermissions):
        lines = []
        for name in sorted(set(before.exchanges) | set(after.exchanges)):
            old, new = before.exchanges.get(name), after.exchanges.get(name)
            if old is None and new is not None:
                lines.append(f"+ {name}: {_entry(new)}")
            elif new is None and old is not None:
                lines.append(f"- {name}: {_entry(old)}")
            elif old is not None and new is not None and (old.write, old.read) != (new.write, new.read):
                lines.append(f"~ {name}: {_entry(old)} → {_entry(new)}")
        if topic_entries_removed(before, after):
            lines.append(f"# {TOPIC_DELETE_ALL}")
        return lines
    if change.action == "delete" and isinstance(before, TopicPermissions):
        return [f"{name}: {_entry(before.exchanges[name])}" for name in sorted(before.exchanges)]
    return []


def _topic_json(permissions: TopicPermissions) -> dict[str, Any]:
    return {
        "user": permissions.user,
        "vhost": permissions.vhost,
        "exchanges": {
            name: {"write": entry.write, "read": entry.read} for name, entry in sorted(permissions.exchanges.items())
        },
    }


TOPIC_PERMISSION = Kind(
    name="topic-permission",
    scope="broker",
    declared=lambda topology: bool(topology.users),
    actions=("create", "update", "delete"),
    items=lambda topology: topology.topic_permissions,
    added=_added("topic-permission"),
    common=_common("topic-permission", _topic_differ),
    removed=_removed("topic-permission", "topic permissions"),
    order=_order,
    details=_topic_details,
    to_json=_topic_json,
)
