"""Exchanges: created, or replaced when a property the broker fixes at declaration differs (RabbitMQ checks
only ``alternate-exchange`` of the arguments on a redeclare, and silently keeps the old value of the rest,
so a change of any of them is a replace too). Not updated in place, never deleted (listed as not managed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from topo.arguments import queue_argument
from topo.definitions import exchange_definition
from topo.model import Exchange
from topo.plan.kinds.base import Kind, Outcomes, Scope, as_json, readable, show
from topo.plan.model import Change

__all__ = ["EXCHANGE", "argument_reasons", "exchange_replace_reasons"]


def argument_reasons(kind: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Why the arguments ``before`` cannot become ``after`` on an existing ``kind`` (queue or exchange): each
    argument that differs in value, or in JSON type alone (RabbitMQ compares types too)."""
    reasons = []
    for arg in sorted(set(before) | set(after)):
        old, new = before.get(arg), after.get(arg)
        if old == new and type(old) is type(new):
            continue
        if old is not None and new is not None and str(old) == str(new):
            reasons.append(
                f"{arg} has the wrong type on the broker ({type(old).__name__} {show(old)}, "
                f"declared as {type(new).__name__} {show(new)}) and cannot change on an existing {kind}"
            )
        else:
            spec = queue_argument(arg)
            reasons.append(f"{arg} cannot change on an existing {kind} ({readable(spec, old)} → {readable(spec, new)})")
    return reasons


def exchange_replace_reasons(before: Exchange, after: Exchange) -> list[str]:
    """Why ``before`` cannot become ``after`` in place (empty when they are equivalent)."""
    reasons = []
    if before.type != after.type:
        reasons.append(f"the exchange type cannot change ({before.type} → {after.type})")
    for attr, word in (("durable", "durable"), ("auto_delete", "auto-delete"), ("internal", "internal")):
        old, new = getattr(before, attr), getattr(after, attr)
        if old != new:
            reasons.append(f"{word} cannot change on an existing exchange ({show(old)} → {show(new)})")
    for reason in argument_reasons("exchange", before.arguments, after.arguments):
        if not reason.startswith("alternate-exchange"):
            reason += " (RabbitMQ would silently keep the old value)"
        reasons.append(reason)
    return reasons


def _common(scope: Scope, name: str, want: Exchange, have: Exchange) -> Outcomes:
    reasons = exchange_replace_reasons(have, want)
    if not reasons:
        return ()
    lost = [b for b in scope.observed.bindings.values() if b.source == name and not scope.managed_destination(b)]
    warnings = tuple(
        f"binding to unmanaged {b.destination_type} {b.destination!r} (key {show(b.routing_key)}) "
        "is lost with the exchange and not re-created"
        for b in lost
    )
    return (Change("replace", scope.address("exchange", name), have, want, tuple(reasons), warnings=warnings),)


def _details(change: Change) -> list[str]:
    after = change.after
    if change.action != "create" or not isinstance(after, Exchange):
        return []
    flags = [f"type: {after.type}"]
    flags += [w for w, on in (("internal", after.internal), ("auto-delete", after.auto_delete)) if on]
    if not after.durable:
        flags.append("transient")
    lines = [", ".join(flags)]
    lines += [f"{k}: {readable(queue_argument(k), v, as_json)}" for k, v in sorted(after.arguments.items())]
    return lines


EXCHANGE = Kind(
    name="exchange",
    actions=("create", "replace", "delete"),  # delete: a prune, topo destroy
    items=lambda vhost: vhost.exchanges,
    common=_common,
    details=_details,
    to_json=exchange_definition,
)
