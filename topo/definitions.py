"""Resources as the broker's JSON (the shapes of ``/api/definitions``), in one place. Pure.

The writer sends them, the plan's JSON form shows them, tests build broker state from them.
"""

from __future__ import annotations

from typing import Any

from topo.model import Binding, Exchange, Policy, Queue

__all__ = ["binding_definition", "exchange_definition", "policy_definition", "queue_definition"]


def exchange_definition(exchange: Exchange) -> dict[str, Any]:
    return {
        "name": exchange.name,
        "type": exchange.type,
        "durable": exchange.durable,
        "auto_delete": exchange.auto_delete,
        "internal": exchange.internal,
        "arguments": dict(exchange.arguments),
    }


def queue_definition(queue: Queue) -> dict[str, Any]:
    """As declared: the type always explicit (classic too), so a vhost's default queue type cannot decide it."""
    arguments = {**queue.arguments, "x-queue-type": queue.type}
    return {"name": queue.name, "durable": queue.durable, "auto_delete": queue.auto_delete, "arguments": arguments}


def binding_definition(binding: Binding) -> dict[str, Any]:
    return {
        "source": binding.source,
        "destination": binding.destination,
        "destination_type": binding.destination_type,
        "routing_key": binding.routing_key,
        "arguments": dict(binding.arguments),
    }


def policy_definition(policy: Policy) -> dict[str, Any]:
    """The body of ``PUT /api/policies/{vhost}/{name}`` (and of an operator policy), with its name."""
    return {
        "name": policy.name,
        "pattern": policy.pattern,
        "apply-to": policy.apply_to,
        "priority": policy.priority,
        "definition": dict(policy.definition),
    }
