"""Observed state → the topology file format (``topo export``). Pure.

Only values that differ from the format's defaults are written; durations and sizes get their readable
form when exact (``86400000`` → ``1d``); bindings move onto their destination, as the format declares
them; ``x-match`` bindings become ``match:`` + ``headers:``. Loading the result gives back the same
Topology, so exporting a broker and planning the export shows "No changes". Users come without their
password hashes unless asked: a placeholder names the environment variable to set instead.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from topo.arguments import POLICY_KEYS, queue_argument
from topo.model import Binding, Policy, Topology, VHost, reserved_parameter
from topo.units import unit_form

__all__ = ["export_data", "export_yaml", "password_variable", "uri_variable"]


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
    if vhost.default_queue_type and vhost.default_queue_type != "classic":
        out["default-queue-type"] = vhost.default_queue_type
    if vhost.tracing:
        out["tracing"] = True
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


# -- shovels and federation (issue 11.3) -----------------------------------------------------------------

_SHOVEL_SOURCE = {
    "src-queue": "queue",
    "src-exchange": "exchange",
    "src-exchange-key": "routing-key",
    "src-prefetch-count": "prefetch-count",
    "src-delete-after": "delete-after",
}
_SHOVEL_DESTINATION = {
    "dest-queue": "queue",
    "dest-exchange": "exchange",
    "dest-exchange-key": "routing-key",
    "dest-add-forward-headers": "add-forward-headers",
    "dest-add-timestamp-header": "add-timestamp-header",
    "dest-publish-properties": "publish-properties",
}


def uri_variable(what: str, taken: set[str]) -> str:
    """The environment variable an exported URI with credentials is replaced by (``SHOVEL_TO_ARCHIVE_SRC_URI``),
    unique among ``taken`` (then added to it)."""
    return _variable(what, taken)


def _variable(what: str, taken: set[str]) -> str:
    """``what`` as an environment variable's name (letters and digits upper-cased, anything else ``_``), made
    unique among ``taken`` with a number (then added to it)."""
    stem = re.sub(r"[^A-Z0-9]", "_", what.upper().encode("ascii", "replace").decode())
    name, number = stem, 1
    while name in taken:
        number += 1
        name = f"{stem}_{number}"
    taken.add(name)
    return name


def _uris(uris: Any, what: str, taken: set[str]) -> Any:
    """A URI without credentials as it is (escaped); one with credentials: ``${env:...}`` to set instead."""
    out = []
    for uri in uris:
        text = str(uri.value or "")
        credentials = "@" in text.split("://", 1)[-1].split("/", 1)[0]
        out.append("${env:" + uri_variable(what, taken) + "}" if credentials else _escaped(text))
    return out[0] if len(out) == 1 else out


def _seconds(value: Any) -> Any:
    return f"{int(value * 1000)}ms" if isinstance(value, float) else f"{value}s"


def _links(vhost: VHost, taken: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    shovels = {}
    for name in sorted(vhost.shovels):
        shovel = vhost.shovels[name]
        settings = dict(shovel.settings)
        source = {"uri": _uris(shovel.source_uris, f"shovel {name} src uri", taken)}
        source |= {k: _escaped(settings.pop(b)) for b, k in _SHOVEL_SOURCE.items() if b in settings}
        dest = {"uri": _uris(shovel.destination_uris, f"shovel {name} dest uri", taken)}
        dest |= {k: _escaped(settings.pop(b)) for b, k in _SHOVEL_DESTINATION.items() if b in settings}
        body: dict[str, Any] = {"source": source, "destination": dest}
        if "ack-mode" in settings:
            body["ack-mode"] = settings.pop("ack-mode")
        if "reconnect-delay" in settings:
            body["reconnect-delay"] = _seconds(settings.pop("reconnect-delay"))
        shovels[_escaped(name)] = body
    if shovels:
        out["shovels"] = shovels
    upstreams = {}
    for name in sorted(vhost.federation_upstreams):
        upstream = vhost.federation_upstreams[name]
        ubody: dict[str, Any] = {"uri": _uris(upstream.uris, f"upstream {name} uri", taken)}
        ubody |= _upstream_settings(upstream.settings)
        upstreams[_escaped(name)] = ubody
    if upstreams:
        out["federation-upstreams"] = upstreams
    sets = {}
    for name in sorted(vhost.federation_upstream_sets):
        members = []
        for member in vhost.federation_upstream_sets[name].members:
            rest = _upstream_settings({k: v for k, v in member.items() if k not in ("upstream", "uri")})
            upstream_name = _escaped(member.get("upstream", ""))
            members.append({"upstream": upstream_name, **rest} if rest else upstream_name)
        sets[_escaped(name)] = members
    if sets:
        out["federation-upstream-sets"] = sets
    return out


def _upstream_settings(settings: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if key == "reconnect-delay":
            out[key] = _seconds(value)
        elif key in ("expires", "message-ttl"):
            out[key] = unit_form("duration", value)
        else:
            out[key] = _escaped(value)
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


def export_data(topology: Topology, *, password_hashes: bool = False) -> dict[str, Any]:
    """The topology in the file format. Users get a placeholder for their password, which names the
    environment variable to set (``password: ${env:USER_ORDERS_PASSWORD}``), or with ``password_hashes``
    the broker's hash (sensitive: whoever reads the file can try to crack it)."""
    data: dict[str, Any] = {"version": 1}
    if topology.name:
        data["name"] = topology.name
    data["vhosts"] = {name: _vhost(topology.vhosts[name]) for name in sorted(topology.vhosts)}
    data = dict(_escaped(data))
    taken: set[str] = set()
    for name in sorted(topology.vhosts):
        data["vhosts"][name].update(_links(topology.vhosts[name], taken))
    if topology.users:
        data["users"] = _users(topology, password_hashes=password_hashes)
    parameters = {
        name: parameter.value
        for name, parameter in sorted(topology.global_parameters.items())
        if reserved_parameter(name) is None
    }
    if parameters:
        data["global-parameters"] = _escaped(parameters)
    return data


# -- users, permissions, global parameters (issue 11) ------------------------------------------------------


def password_variable(user: str, taken: set[str]) -> str:
    """The environment variable an exported user's password placeholder names: ``USER_<NAME>_PASSWORD``
    (letters and digits upper-cased, anything else ``_``), made unique among ``taken`` (then added to it)."""
    return _variable(f"user_{user}_password", taken)


def _users(topology: Topology, *, password_hashes: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    taken: set[str] = set()
    for name in sorted(topology.users):
        user = topology.users[name]
        body: dict[str, Any] = {}
        stored = user.password_hash
        if stored is not None and stored.value:
            if password_hashes:
                body["password-hash"] = stored.value
                body["hashing-algorithm"] = stored.algorithm
            else:  # a placeholder to fill in: never the hash, unless asked
                body["password"] = "${env:" + password_variable(name, taken) + "}"
        elif stored is not None:
            body["password-hash"] = ""  # the broker's user has no password
        rest: dict[str, Any] = {}
        if user.tags:
            rest["tags"] = list(user.tags)
        if user.limits:
            rest["limits"] = dict(user.limits)
        permissions = {
            vhost: {"configure": p.configure, "write": p.write, "read": p.read}
            for (who, vhost), p in sorted(topology.permissions.items())
            if who == name
        }
        if permissions:
            rest["permissions"] = permissions
        topics = {
            vhost: {e: {"write": entry.write, "read": entry.read} for e, entry in sorted(t.exchanges.items())}
            for (who, vhost), t in sorted(topology.topic_permissions.items())
            if who == name
        }
        if topics:
            rest["topic-permissions"] = topics
        body.update(_escaped(rest))
        out[_escaped(name)] = body
    return out


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


def export_yaml(topology: Topology, *, header: str | None = None, password_hashes: bool = False) -> str:
    """The topology as a YAML document in the file format, after an optional comment line."""
    _Dumper.add_representer(str, _str)
    data = export_data(topology, password_hashes=password_hashes)
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return (f"# {header}\n" if header else "") + text
