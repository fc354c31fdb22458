"""Queues: created, or replaced when the type, durability, auto-delete or any argument differs (all fixed
at declaration; RabbitMQ compares argument types too). Not updated in place, never deleted (listed as not
managed). A replaced queue is dropped by the drop protocol (:mod:`topo.broker.drop`) under the safety rule
(:mod:`topo.plan.safety`); its bindings come back (:mod:`~topo.plan.kinds.binding`)."""

from __future__ import annotations

from typing import Any

from topo.arguments import queue_argument
from topo.model import Queue
from topo.plan.kinds.base import Kind, Outcomes, Scope, as_json, readable, show
from topo.plan.kinds.exchange import argument_reasons
from topo.plan.model import Change

__all__ = ["QUEUE", "queue_replace_reasons"]


def queue_replace_reasons(before: Queue, after: Queue) -> list[str]:
    """Why ``before`` cannot become ``after`` in place (empty when they are equivalent)."""
    reasons = []
    if before.type != after.type:
        reasons.append(f"the queue type cannot change ({before.type} → {after.type})")
    if before.durable != after.durable:
        reasons.append(f"durable cannot change on an existing queue ({show(before.durable)} → {show(after.durable)})")
    if before.auto_delete != after.auto_delete:
        reasons.append(
            f"auto-delete cannot change on an existing queue ({show(before.auto_delete)} → {show(after.auto_delete)})"
        )
    reasons.extend(argument_reasons("queue", before.arguments, after.arguments))
    return reasons


def _common(scope: Scope, name: str, want: Queue, have: Queue) -> Outcomes:
    reasons = queue_replace_reasons(have, want)
    if not reasons:
        return ()
    return (Change("replace", scope.address("queue", name), have, want, tuple(reasons)),)


def _details(change: Change) -> list[str]:
    after = change.after
    if change.action == "migrate":
        return [_migration(change)]
    if change.action != "create" or not isinstance(after, Queue):
        return []
    flags = [f"type: {after.type}"]
    if after.auto_delete:
        flags.append("auto-delete")
    if not after.durable:
        flags.append("transient")
    lines = [", ".join(flags)]
    lines += [f"{k}: {readable(queue_argument(k), v, as_json)}" for k, v in sorted(after.arguments.items())]
    return lines


def _migration(change: Change) -> str:
    """What a migration moves (``topo apply --migrate``: :mod:`topo.plan.migrate`)."""
    name = change.address.name
    through = f"through topo.migrate.old.{name} and topo.migrate.new.{name}"
    usage = change.usage
    if usage is None or change.messages is None:
        return f"moves the messages left in its holding queues into it, {through}"
    count = f"{change.messages} message{'s' if change.messages != 1 else ''}"
    exact = "exact" if usage.exact else "from the statistics"
    figures = f"{usage.ready} ready, {usage.unacked} unacknowledged; {exact}"
    return f"holds {count} ({figures}): moved into the new queue {through}"


def _json(queue: Queue) -> dict[str, Any]:
    """The type as a field of its own, as the plan compares it."""
    return {
        "name": queue.name,
        "type": queue.type,
        "durable": queue.durable,
        "auto_delete": queue.auto_delete,
        "arguments": dict(queue.arguments),
    }


QUEUE = Kind(
    name="queue",
    actions=("create", "replace", "delete", "migrate"),  # delete: a prune, topo destroy; migrate: --migrate
    items=lambda vhost: vhost.queues,
    common=_common,
    details=_details,
    to_json=_json,
)
