"""Resources as the broker's JSON (the shapes of ``/api/definitions``), both ways, in one place. Pure.

Model → broker: ``*_definition`` (what the writer sends, the plan's JSON form shows, and tests build
broker state from). Broker → model: ``*_from_definition`` and :func:`vhost_from_definitions` (what the
reader makes of ``GET /api/vhosts/{v}`` and ``GET /api/definitions/{v}``), normalised as the loader
normalises the files, so that an untouched broker never shows false drift. The two directions stand side
by side so that a field added to one is seen missing from the other (tests/test_definitions.py round-trips
every kind).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from topo.model import Binding, Exchange, Policy, Queue, VHost, is_broker_exchange

__all__ = [
    "IMPORT_SECTIONS",
    "binding_definition",
    "binding_from_definition",
    "exchange_definition",
    "exchange_from_definition",
    "policy_body",
    "policy_definition",
    "policy_from_definition",
    "queue_definition",
    "queue_from_definition",
    "vhost_definitions",
    "vhost_from_definitions",
]

# -- exchanges -------------------------------------------------------------------------------------------


def exchange_definition(exchange: Exchange) -> dict[str, Any]:
    return {
        "name": exchange.name,
        "type": exchange.type,
        "durable": exchange.durable,
        "auto_delete": exchange.auto_delete,
        "internal": exchange.internal,
        "arguments": dict(exchange.arguments),
    }


def exchange_from_definition(item: Mapping[str, Any]) -> Exchange:
    return Exchange(
        name=item["name"],
        type=item.get("type", "direct"),
        durable=bool(item.get("durable", True)),
        auto_delete=bool(item.get("auto_delete", False)),
        internal=bool(item.get("internal", False)),
        arguments=dict(item.get("arguments") or {}),
    )


# -- queues ----------------------------------------------------------------------------------------------


def queue_definition(queue: Queue) -> dict[str, Any]:
    """As declared: the type always explicit (classic too), so a vhost's default queue type cannot decide it."""
    arguments = {**queue.arguments, "x-queue-type": queue.type}
    return {"name": queue.name, "durable": queue.durable, "auto_delete": queue.auto_delete, "arguments": arguments}


def queue_from_definition(item: Mapping[str, Any]) -> Queue:
    """The type comes out of the arguments (the broker may write the resolved ``x-queue-type`` there)."""
    arguments = dict(item.get("arguments") or {})
    qtype = arguments.pop("x-queue-type", None) or "classic"
    return Queue(
        name=item["name"],
        type=qtype,
        durable=bool(item.get("durable", True)),
        auto_delete=bool(item.get("auto_delete", False)),
        arguments=arguments,
    )


# -- bindings --------------------------------------------------------------------------------------------


def binding_definition(binding: Binding) -> dict[str, Any]:
    return {
        "source": binding.source,
        "destination": binding.destination,
        "destination_type": binding.destination_type,
        "routing_key": binding.routing_key,
        "arguments": dict(binding.arguments),
    }


def binding_from_definition(item: Mapping[str, Any]) -> Binding:
    """A binding as ``/api/definitions`` or ``/api/bindings`` lists it (the latter's extra fields ignored)."""
    return Binding(
        source=item.get("source", ""),
        destination=item["destination"],
        destination_type="exchange" if item.get("destination_type") == "exchange" else "queue",
        routing_key=item.get("routing_key", ""),
        arguments=dict(item.get("arguments") or {}),
    )


# -- policies and operator policies ----------------------------------------------------------------------


def policy_definition(policy: Policy) -> dict[str, Any]:
    """The body of ``PUT /api/policies/{vhost}/{name}`` (and of an operator policy), with its name."""
    return {
        "name": policy.name,
        "pattern": policy.pattern,
        "apply-to": policy.apply_to,
        "priority": policy.priority,
        "definition": dict(policy.definition),
    }


def policy_body(policy: Policy) -> dict[str, Any]:
    """:func:`policy_definition` without the name (which the PUT's path carries)."""
    body = policy_definition(policy)
    del body["name"]
    return body


def policy_from_definition(item: Mapping[str, Any]) -> Policy:
    """A policy as ``/api/policies`` lists it, or an operator policy's parameter value with its name."""
    return Policy(
        name=item["name"],
        pattern=item.get("pattern", ""),
        apply_to=item.get("apply-to", "all"),
        priority=int(item.get("priority", 0)),
        definition=dict(item.get("definition") or {}),
    )


# -- a whole vhost ---------------------------------------------------------------------------------------

IMPORT_SECTIONS = ("exchanges", "queues", "bindings")
"""The parts of a ``POST /api/definitions/{vhost}`` document the writer sends (creates only: an import
silently keeps what exists)."""


def vhost_from_definitions(name: str, info: Mapping[str, Any], definitions: Mapping[str, Any]) -> VHost:
    """Normalise ``GET /api/vhosts/{name}`` and ``GET /api/definitions/{name}`` into a VHost (pure).

    The broker's own exchanges (``""``, ``amq.*``) and the default exchange's implicit bindings are left
    out: no file declares them."""
    tags = info.get("tags") or []
    if isinstance(tags, str):
        tags = [t for t in tags.split(",") if t]
    vhost = VHost(
        name=name,
        description=info.get("description") or "",
        tags=tuple(sorted(set(tags))),
        limits={},
    )
    for item in definitions.get("exchanges") or []:
        if not is_broker_exchange(item["name"]):
            vhost.exchanges[item["name"]] = exchange_from_definition(item)
    for item in definitions.get("queues") or []:
        vhost.queues[item["name"]] = queue_from_definition(item)
    for item in definitions.get("bindings") or []:
        if item.get("source", "") != "":  # the default exchange's implicit bindings
            vhost.add_binding(binding_from_definition(item))
    for item in definitions.get("policies") or []:
        policy = policy_from_definition(item)
        vhost.policies[policy.name] = policy
    limits: dict[str, int] = {}
    for param in definitions.get("parameters") or []:
        component = param.get("component")
        if component == "operator_policy":
            policy = policy_from_definition({"name": param["name"], **(param.get("value") or {})})
            vhost.operator_policies[policy.name] = policy
        elif component == "vhost-limits":
            limits.update({k: int(v) for k, v in (param.get("value") or {}).items()})
    vhost.limits = limits
    return vhost


def _parameters(vhost: VHost) -> Iterable[dict[str, Any]]:
    for policy in vhost.operator_policies.values():
        value = policy_body(policy)
        yield {"vhost": vhost.name, "component": "operator_policy", "name": policy.name, "value": value}
    if vhost.limits:
        yield {"vhost": vhost.name, "component": "vhost-limits", "name": "limits", "value": dict(vhost.limits)}


def vhost_definitions(vhost: VHost) -> tuple[dict[str, Any], dict[str, Any]]:
    """``vhost`` as the broker shows it: the bodies of ``GET /api/vhosts/{name}`` and ``GET
    /api/definitions/{name}`` (the reverse of :func:`vhost_from_definitions`)."""
    info = {"name": vhost.name, "description": vhost.description or "", "tags": list(vhost.tags or ())}
    document = {
        "exchanges": [exchange_definition(x) for x in vhost.exchanges.values()],
        "queues": [queue_definition(q) for q in vhost.queues.values()],
        "bindings": [binding_definition(b) for b in vhost.bindings.values()],
        "policies": [policy_definition(p) for p in vhost.policies.values()],
        "parameters": list(_parameters(vhost)),
    }
    return info, document
