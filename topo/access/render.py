"""How a plan shows users, permissions, topic permissions and global parameters. Pure.

:func:`details` gives the lines under a change (text and Markdown), :func:`resource_json` a resource's
form in the JSON plan. Neither ever holds a password or a password hash: ``(sensitive)`` stands in their
place, with where the declared password comes from (``${env:ORDERS_PASSWORD}``), which is no secret.
"""

from __future__ import annotations

import json
from typing import Any

from topo.access.compare import password_verdict, topic_entries_removed
from topo.model import SENSITIVE, GlobalParameter, Permission, TopicPermission, TopicPermissions, User
from topo.plan.model import Change, Resource

__all__ = ["ACCESS_KINDS", "details", "resource_json"]

ACCESS_KINDS = frozenset({"user", "permission", "topic-permission", "global-parameter"})


def _v(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _tags(user: User) -> str:
    return ", ".join(user.tags) if user.tags else "(none)"


def _limits(limits: Any) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(dict(limits or {}).items())) or "(none)"


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


def _user(change: Change) -> list[str]:
    before, after = change.before, change.after
    if change.action == "create" and isinstance(after, User):
        lines = [f"tags: {_tags(after)}", _password_line(after, new=True)]
        if after.limits is not None:
            lines.append(f"limits: {_limits(after.limits)}")
        return lines
    if change.action == "update" and isinstance(before, User) and isinstance(after, User):
        lines = []
        if before.tags != after.tags:
            lines.append(f"tags: {_tags(before)} → {_tags(after)}")
        if after.limits is not None and dict(after.limits) != dict(before.limits or {}):
            lines.append(f"limits: {_limits(before.limits)} → {_limits(after.limits)}")
        verdict = password_verdict(after, before)
        if verdict in ("changes", "rehash"):
            lines.append(f"password: {SENSITIVE} → {SENSITIVE}, from {password_source(after)}")
            lines += [f"# {reason}" for reason in change.reasons if reason.startswith("the password")]
        return lines
    return [f"# {reason}" for reason in change.reasons]


def _patterns(p: Permission) -> str:
    return f"configure: {_v(p.configure)}, write: {_v(p.write)}, read: {_v(p.read)}"


def _permission(change: Change) -> list[str]:
    before, after = change.before, change.after
    if change.action == "create" and isinstance(after, Permission):
        return [_patterns(after)]
    if change.action == "update" and isinstance(before, Permission) and isinstance(after, Permission):
        return [
            f"{key}: {_v(getattr(before, key))} → {_v(getattr(after, key))}"
            for key in ("configure", "write", "read")
            if getattr(before, key) != getattr(after, key)
        ]
    if isinstance(before, Permission):
        return [_patterns(before), *(f"# {reason}" for reason in change.reasons)]
    return []


def _entry(entry: TopicPermission) -> str:
    return f"write: {_v(entry.write)}, read: {_v(entry.read)}"


def _topic(change: Change) -> list[str]:
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
            lines += [f"# {reason}" for reason in change.reasons if reason.startswith("RabbitMQ")]
        return lines
    if isinstance(before, TopicPermissions):
        lines = [f"{name}: {_entry(before.exchanges[name])}" for name in sorted(before.exchanges)]
        return lines + [f"# {reason}" for reason in change.reasons]
    return []


def _parameter(change: Change) -> list[str]:
    before, after = change.before, change.after
    if change.action == "create" and isinstance(after, GlobalParameter):
        return [f"value: {_v(after.value)}"]
    if isinstance(before, GlobalParameter) and isinstance(after, GlobalParameter):
        return [f"value: {_v(before.value)} → {_v(after.value)}"]
    return [f"# {reason}" for reason in change.reasons]


def details(change: Change) -> list[str] | None:
    """The lines under ``change`` when it is of one of these kinds (None: another kind's)."""
    render = {"user": _user, "permission": _permission, "topic-permission": _topic, "global-parameter": _parameter}
    kind = render.get(change.kind)
    return kind(change) if kind is not None else None


def resource_json(resource: Resource | None) -> Any:
    """A resource of one of these kinds as JSON (the broker's field names); None for another kind's."""
    if isinstance(resource, User):
        has_password = resource.password is not None or (
            resource.password_hash is not None and bool(resource.password_hash.value)
        )
        return {
            "name": resource.name,
            "tags": list(resource.tags),
            "limits": dict(resource.limits) if resource.limits is not None else None,
            "password": SENSITIVE if has_password else None,
            # where a declared password comes from (``${env:NAME}``, ``password-file PATH``): no secret in it
            "password_source": resource.password.source if resource.password is not None else None,
        }
    if isinstance(resource, Permission):
        return {
            "user": resource.user,
            "vhost": resource.vhost,
            "configure": resource.configure,
            "write": resource.write,
            "read": resource.read,
        }
    if isinstance(resource, TopicPermissions):
        return {
            "user": resource.user,
            "vhost": resource.vhost,
            "exchanges": {
                name: {"write": entry.write, "read": entry.read} for name, entry in sorted(resource.exchanges.items())
            },
        }
    if isinstance(resource, GlobalParameter):
        return {"name": resource.name, "value": resource.value}
    return None
