"""Observed state → the topology file format (``topo export``). Pure.

Only values that differ from the format's defaults are written; durations and sizes get their readable
form when exact (``86400000`` → ``1d``); bindings move onto their destination, as the format declares
them; ``x-match`` bindings become ``match:`` + ``headers:``. Loading the result gives back the same
Topology, so exporting a broker and planning the export shows "No changes".
"""

from __future__ import annotations

from typing import Any

import yaml

from topo.arguments import POLICY_KEYS, queue_argument
from topo.model import Binding, Policy, Topology, VHost
from topo.units import unit_form

__all__ = ["export_data", "export_yaml"]


def _binding(binding: Binding) -> dict[str, Any]:
    item: dict[str, Any] = {"exchange": binding.source}
    if binding.routing_key:
        item["routing-key"] = binding.routing_key
    arguments = dict(binding.arguments)
    match = arguments.get("x-match")
    if isinstance(match, str) and match in ("all", "any", "all-with-x", "any-with-x"):
        headers = {k: v for k, v in arguments.items() if k != "x-match"}
        if not any(k.startswith("x-") for k in headers):
            item["match"] = match
            if headers:
                item["headers"] = headers
            return item
    if arguments:
        item["arguments"] = arguments
    return item


def _policy(policy: Policy) -> dict[str, Any]:
    body: dict[str, Any] = {"pattern": policy.pattern}
    if policy.apply_to != "all":
        body["apply-to"] = policy.apply_to
    if policy.priority:
        body["priority"] = policy.priority
    definition = {}
    for key, value in policy.definition.items():
        spec = POLICY_KEYS.get(key)
        definition[key] = unit_form(spec.kind, value) if spec else value
    body["definition"] = definition
    return body


def _vhost(vhost: VHost) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if vhost.description:
        out["description"] = vhost.description
    if vhost.tags:
        out["tags"] = list(vhost.tags)
    if vhost.limits:
        out["limits"] = dict(vhost.limits)
    exchanges: dict[str, Any] = {}
    for name in sorted(vhost.exchanges):
        ex = vhost.exchanges[name]
        body: dict[str, Any] = {"type": ex.type}
        if not ex.durable:
            body["durable"] = False
        if ex.auto_delete:
            body["auto-delete"] = True
        if ex.internal:
            body["internal"] = True
        arguments = dict(ex.arguments)
        if isinstance(arguments.get("alternate-exchange"), str):
            body["alternate-exchange"] = arguments.pop("alternate-exchange")
        if arguments:
            body["arguments"] = arguments
        bindings = [_binding(b) for b in sorted(vhost.bindings_to(name, "exchange"), key=lambda b: b.key)]
        if bindings:
            body["bindings"] = bindings
        exchanges[name] = body
    queues: dict[str, Any] = {}
    for name in sorted(vhost.queues):
        queue = vhost.queues[name]
        qbody: dict[str, Any] = {}
        if queue.type != "classic":
            qbody["type"] = queue.type
        if not queue.durable:
            qbody["durable"] = False
        if queue.auto_delete:
            qbody["auto-delete"] = True
        others: dict[str, Any] = {}
        for arg, value in queue.arguments.items():
            spec = queue_argument(arg)
            if spec is None:
                others[arg] = value
            else:
                qbody[spec.key] = unit_form(spec.kind, value)
        if others:
            qbody["arguments"] = others
        bindings = [_binding(b) for b in sorted(vhost.bindings_to(name, "queue"), key=lambda b: b.key)]
        if bindings:
            qbody["bindings"] = bindings
        queues[name] = qbody
    if exchanges:
        out["exchanges"] = exchanges
    if queues:
        out["queues"] = queues
    if vhost.policies:
        out["policies"] = {n: _policy(vhost.policies[n]) for n in sorted(vhost.policies)}
    if vhost.operator_policies:
        out["operator-policies"] = {n: _policy(vhost.operator_policies[n]) for n in sorted(vhost.operator_policies)}
    return out


def _escaped(value: Any) -> Any:
    """Every string (keys too) with ``${`` written ``$${``, so loading does not interpolate it."""
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, dict):
        return {_escaped(k): _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def export_data(topology: Topology) -> dict[str, Any]:
    data: dict[str, Any] = {"version": 1}
    if topology.name:
        data["name"] = topology.name
    data["vhosts"] = {name: _vhost(topology.vhosts[name]) for name in sorted(topology.vhosts)}
    return dict(_escaped(data))


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


def export_yaml(topology: Topology, *, header: str | None = None) -> str:
    """The topology as a YAML document in the file format, after an optional comment line."""
    _Dumper.add_representer(str, _str)
    text = yaml.dump(export_data(topology), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return (f"# {header}\n" if header else "") + text
