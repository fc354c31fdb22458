"""Users, permissions, topic permissions and global parameters on a live broker: the reads and one
executor per (kind, action). The only I/O of :mod:`topo.access`.

Reading costs three requests for users, whatever their number (``GET /api/users``, ``/api/permissions``,
``/api/topic-permissions``) plus ``GET /api/vhosts?columns=name`` (so that a permission on a vhost that
exists nowhere is blocked at plan time), and one for global parameters; each only when the files declare
some. Reading users needs the ``administrator`` tag: without it, one clear error.

Writes: a user's ``PUT`` carries a password hash, never a plaintext password (see
:mod:`topo.access.definitions`); a failure of it is reported without the hash, even when the broker
echoes it. Apply runs the executors in two phases: :data:`FIRST` (users, then their permissions, after
the vhosts exist) and :data:`LAST` (revoked permissions, deleted users, then global parameters: a new
``cluster_name`` must not change the name apply's own AMQP counts check before they are done).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from topo.access.compare import AccessContext, topic_entries_removed
from topo.access.definitions import (
    global_parameter_from_definition,
    permission_body,
    permission_from_definition,
    topic_permission_body,
    topic_permissions_from_definitions,
    user_body,
    user_from_definition,
)
from topo.broker.client import ManagementClient, enc
from topo.errors import BrokerError, PermissionDenied
from topo.model import SENSITIVE, GlobalParameter, Permission, TopicPermissions, Topology, User
from topo.plan.model import Change, Plan

__all__ = ["EXECUTORS", "FIRST", "LAST", "Executor", "read_access", "read_all_access", "run_phase"]

Executor = Callable[[ManagementClient, Change], None]
Phase = tuple[tuple[str, str], ...]


def _denied(client: ManagementClient, what: str, why: str, exc: PermissionDenied) -> PermissionDenied:
    return PermissionDenied(
        f"{why} {what}, and reading the broker's needs the administrator tag: user {client.user!r} may not "
        f"read them at {client.display_url}",
        hint="give the user the 'administrator' tag (RabbitMQ shows users, their password hashes and permissions "
        "to administrators only), or leave users, permissions and global parameters out of this run with "
        "--vhost NAME",
        status=exc.status,
    )


def read_access(client: ManagementClient, desired: Topology, into: Topology) -> AccessContext:
    """Read what the broker has of the kinds ``desired`` declares into ``into`` (users with their stored
    hashes, every permission and topic permission, global parameters); returns what the comparison needs
    besides (who topo connects as, the broker's vhosts)."""
    vhosts = _read(
        client, into, users=bool(desired.users), parameters=bool(desired.global_parameters), why="the files declare"
    )
    return AccessContext(connecting_user=client.user, broker_vhosts=vhosts)


def read_all_access(client: ManagementClient, into: Topology) -> None:
    """Everything the broker has of these kinds, into ``into`` (for ``topo export``)."""
    _read(client, into, users=True, parameters=True, why="an export of the whole broker includes")


def _read(
    client: ManagementClient, into: Topology, *, users: bool, parameters: bool, why: str
) -> frozenset[str] | None:
    vhosts: frozenset[str] | None = None
    if users:
        try:
            items = client.get("/users") or []
        except PermissionDenied as exc:
            raise _denied(client, "users", why, exc) from None
        into.users = {user.name: user for user in map(user_from_definition, items)}
        into.permissions = {
            (p.user, p.vhost): p for p in map(permission_from_definition, client.get("/permissions") or [])
        }
        into.topic_permissions = topic_permissions_from_definitions(client.get("/topic-permissions") or [])
        vhosts = frozenset(str(v["name"]) for v in client.get("/vhosts", params={"columns": "name"}) or [])
    if parameters:
        try:
            found = client.get("/global-parameters") or []
        except PermissionDenied as exc:
            raise _denied(client, "global parameters", why, exc) from None
        into.global_parameters = {p.name: p for p in map(global_parameter_from_definition, found)}
    return vhosts


# -- executors ------------------------------------------------------------------------------------------


def _scrubbed(exc: BrokerError, secrets: Iterable[str]) -> BrokerError:
    """``exc`` with every secret in its message and hint replaced by ``(sensitive)`` (the broker may echo a
    hash it refused)."""
    for value in secrets:
        if value:
            exc.message = exc.message.replace(value, SENSITIVE)
            exc.hint = exc.hint.replace(value, SENSITIVE) if exc.hint else exc.hint
    exc.args = (exc.message,)
    return exc


def put_user(client: ManagementClient, change: Change) -> None:
    after, before = change.after, change.before
    if not isinstance(after, User):
        return
    observed = before if isinstance(before, User) else None
    body = user_body(after, observed)
    secrets = [body["password_hash"], (after.password.value or "") if after.password is not None else ""]
    try:
        client.put(f"/users/{enc(after.name)}", body)
    except BrokerError as exc:
        raise _scrubbed(exc, secrets) from None
    if after.limits is not None:
        old = dict(observed.limits or {}) if observed is not None else {}
        for key, value in sorted(after.limits.items()):
            if old.get(key) != value:
                client.put(f"/user-limits/{enc(after.name)}/{enc(key)}", {"value": value})
        for key in sorted(set(old) - set(after.limits)):
            client.delete(f"/user-limits/{enc(after.name)}/{enc(key)}", ok_missing=True)


def delete_user(client: ManagementClient, change: Change) -> None:
    client.delete(f"/users/{enc(change.address.name)}", ok_missing=True)


def put_permission(client: ManagementClient, change: Change) -> None:
    if isinstance(change.after, Permission):
        permission = change.after
        path = f"/permissions/{enc(permission.vhost)}/{enc(permission.user)}"
        client.put(path, permission_body(permission), vhost=permission.vhost)


def delete_permission(client: ManagementClient, change: Change) -> None:
    path = f"/permissions/{enc(change.vhost)}/{enc(change.address.name)}"
    client.delete(path, vhost=change.vhost, ok_missing=True)


def put_topic_permissions(client: ManagementClient, change: Change) -> None:
    """Set a user's topic permissions on a vhost. RabbitMQ 3.10 deletes them all at once only: removing one
    exchange's entry deletes them all, then sets the declared ones again."""
    after, before = change.after, change.before
    if not isinstance(after, TopicPermissions):
        return
    path = f"/topic-permissions/{enc(after.vhost)}/{enc(after.user)}"
    entries = list(after.exchanges.values())
    if isinstance(before, TopicPermissions):
        if topic_entries_removed(before, after):
            client.delete(path, vhost=after.vhost, ok_missing=True)
        else:
            entries = [e for e in entries if e != before.exchanges.get(e.exchange)]
    for entry in sorted(entries, key=lambda e: e.exchange):
        client.put(path, topic_permission_body(entry), vhost=after.vhost)


def delete_topic_permissions(client: ManagementClient, change: Change) -> None:
    path = f"/topic-permissions/{enc(change.vhost)}/{enc(change.address.name)}"
    client.delete(path, vhost=change.vhost, ok_missing=True)


def put_global_parameter(client: ManagementClient, change: Change) -> None:
    if isinstance(change.after, GlobalParameter):
        parameter = change.after
        body: dict[str, Any] = {"name": parameter.name, "value": parameter.value}
        client.put(f"/global-parameters/{enc(parameter.name)}", body)


def delete_global_parameter(client: ManagementClient, change: Change) -> None:
    client.delete(f"/global-parameters/{enc(change.address.name)}", ok_missing=True)


EXECUTORS: dict[tuple[str, str], Executor] = {
    ("user", "create"): put_user,
    ("user", "update"): put_user,
    ("user", "delete"): delete_user,
    ("permission", "create"): put_permission,
    ("permission", "update"): put_permission,
    ("permission", "delete"): delete_permission,
    ("topic-permission", "create"): put_topic_permissions,
    ("topic-permission", "update"): put_topic_permissions,
    ("topic-permission", "delete"): delete_topic_permissions,
    ("global-parameter", "create"): put_global_parameter,
    ("global-parameter", "update"): put_global_parameter,
    ("global-parameter", "delete"): delete_global_parameter,
}
"""One executor per (kind, action)."""

FIRST: Phase = (
    ("user", "create"),
    ("user", "update"),
    ("permission", "create"),
    ("permission", "update"),
    ("topic-permission", "create"),
    ("topic-permission", "update"),
)
"""After the vhosts exist: users, then what they may do."""

LAST: Phase = (
    ("topic-permission", "delete"),
    ("permission", "delete"),
    ("user", "delete"),
    ("global-parameter", "create"),
    ("global-parameter", "update"),
    ("global-parameter", "delete"),
)
"""At the end: what is revoked, then global parameters (a new cluster_name must not change the name the
drop protocol's AMQP counts check while they run)."""


def run_phase(client: ManagementClient, plan: Plan, phase: Phase, step: Callable[[str], None]) -> None:
    """Execute ``plan``'s changes of the (kind, action) pairs of ``phase``, in that order; ``step`` is told
    each one done (``"create users.orders"``: no secret in it)."""
    for kind, action in phase:
        executor = EXECUTORS[(kind, action)]
        for change in plan.changes:
            if change.kind == kind and change.action == action:
                executor(client, change)
                step(f"{change.action} {change.address}")
