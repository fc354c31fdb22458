"""The links of a topology that stay inside it: shovels and federation between its own vhosts.

A shovel or a federation upstream reaches its ends by URIs. A URI without a host (``amqp://``,
``amqp:///legacy``) is *this* broker (the plugin connects to its own node directly): ``amqp://`` alone is
vhost ``/``, ``amqp:///legacy`` vhost ``legacy`` (percent-decoded; ``amqp:///`` is the empty vhost, as
RabbitMQ's URI spec says). A URI that names a host may be any broker: topo cannot tell it is this one,
so such an end is left out. An end with several URIs (the plugin picks one) is followed only when every
one of them names the same vhost of this broker. A URI not read (``${env:NAME}`` unset where lint or route
runs) is judged by what the files write: a whole ``${env:NAME}`` cannot be told.

:func:`topology_links` lists them as :class:`Link` values, for routing (a message that reaches a shovel's
source goes on to its destination; one that reaches a federated exchange's upstream exchange goes on to
the federated exchange), for ``topo graph`` (edges between vhosts) and for lint.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from topo.model import Exchange, Origin, Secret, Shovel, Topology, VHost
from topo.routing.policies import applied_policy

__all__ = [
    "FEDERATION_KEYS",
    "Link",
    "federation_upstreams_of",
    "local_vhost",
    "shovel_links",
    "topology_links",
]

FEDERATION_KEYS = ("federation-upstream-set", "federation-upstream")
"""The policy keys that make an exchange (or queue) federated, naming an upstream set or one upstream."""

ALL_UPSTREAMS = "all"
"""The upstream set every vhost has implicitly: every upstream declared in it."""

_SCHEMES = ("amqp://", "amqps://")


def local_vhost(uri: Secret) -> str | None:
    """The vhost of this broker that ``uri`` names, or None when it names a host (or cannot be read)."""
    text = uri.value if uri.value is not None else uri.source
    lower = text.lower()
    scheme = next((s for s in _SCHEMES if lower.startswith(s)), None)
    if scheme is None:
        return None
    rest = text[len(scheme) :]
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    if rest[:end]:
        return None  # a host (or credentials): perhaps another broker
    path = rest[end:].split("?", 1)[0].split("#", 1)[0]
    if not path:
        return "/"
    return unquote(path[1:])


def end_vhost(uris: Sequence[Secret]) -> str | None:
    """The one vhost of this broker every URI of a link's end names; None when any names something else."""
    found = {local_vhost(uri) for uri in uris}
    if len(found) != 1:
        return None
    return found.pop()


@dataclass(frozen=True, slots=True)
class Link:
    """Messages move from ``source`` (a queue or an exchange of ``source_vhost``) to ``destination`` (of
    ``destination_vhost``), both vhosts of this broker.

    A shovel: ``source_key`` is the binding key of its queue on a source exchange; ``destination_type``
    None means the message keeps its own exchange (and routing key); ``destination_key`` replaces the
    message's routing key. A federation: ``source`` is the upstream exchange, ``destination`` the federated
    exchange, ``policy`` the policy that federates it, ``max_hops`` the upstream's."""

    kind: Literal["shovel", "federation"]
    name: str  # the shovel's, or the upstream's
    vhost: str  # where the shovel, or the federated exchange and its upstream, are declared
    source_vhost: str
    source_type: Literal["queue", "exchange"]
    source: str
    destination_vhost: str
    destination_type: Literal["queue", "exchange"] | None
    destination: str | None
    source_key: str | None = None
    destination_key: str | None = None
    policy: str | None = None
    max_hops: int = 1
    origin: Origin | None = field(default=None, compare=False)

    def describe(self) -> str:
        """``shovel 'legacy-orders'``, ``federation from upstream 'eu' (policy 'federate')``."""
        if self.kind == "shovel":
            return f"shovel '{self.name}'"
        return f"federation from upstream '{self.name}' (policy '{self.policy}')"

    def label(self) -> str:
        """What a graph writes on the edge: ``shovel NAME``, ``federation: NAME``."""
        return f"shovel {self.name}" if self.kind == "shovel" else f"federation: {self.name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "vhost": self.vhost,
            "source": {"vhost": self.source_vhost, "type": self.source_type, "name": self.source},
            "destination": {
                "vhost": self.destination_vhost,
                "type": self.destination_type,
                "name": self.destination,
                "routing_key": self.destination_key,
            },
            "policy": self.policy,
        }


def shovel_links(vhost: VHost) -> Iterator[tuple[Shovel, str | None, str | None]]:
    """Every shovel of ``vhost`` with the vhosts of this broker its source and destination name (None: a host,
    or URIs that cannot be told)."""
    for name in sorted(vhost.shovels):
        shovel = vhost.shovels[name]
        yield shovel, end_vhost(shovel.source_uris), end_vhost(shovel.destination_uris)


def _shovel_link(vhost: VHost, shovel: Shovel, source: str, destination: str) -> Link | None:
    settings = shovel.settings
    if "src-queue" in settings:
        source_type: Literal["queue", "exchange"] = "queue"
        source_name = str(settings["src-queue"])
    elif "src-exchange" in settings:
        source_type, source_name = "exchange", str(settings["src-exchange"])
    else:
        return None
    dest_type: Literal["queue", "exchange"] | None = None
    dest_name: str | None = None
    if "dest-queue" in settings:
        dest_type, dest_name = "queue", str(settings["dest-queue"])
    elif "dest-exchange" in settings:
        dest_type, dest_name = "exchange", str(settings["dest-exchange"])
    key = settings.get("src-exchange-key")
    dest_key = settings.get("dest-exchange-key")
    return Link(
        "shovel",
        shovel.name,
        vhost.name,
        source,
        source_type,
        source_name,
        destination,
        dest_type,
        dest_name,
        source_key=None if key is None else str(key),
        destination_key=None if dest_key is None else str(dest_key),
        origin=shovel.origin,
    )


def federation_upstreams_of(vhost: VHost, definition: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """The upstreams a policy's definition names, each with the settings its set gives it (``{}`` for one
    named by ``federation-upstream``); names not declared in ``vhost`` are kept (lint reports them)."""
    if "federation-upstream" in definition:
        return [(str(definition["federation-upstream"]), {})]
    name = definition.get("federation-upstream-set")
    if name is None:
        return []
    if name == ALL_UPSTREAMS and ALL_UPSTREAMS not in vhost.federation_upstream_sets:
        return [(upstream, {}) for upstream in sorted(vhost.federation_upstreams)]
    upstream_set = vhost.federation_upstream_sets.get(str(name))
    if upstream_set is None:
        return []
    return [(str(m.get("upstream", "")), m) for m in upstream_set.members]


def _federation_links(vhost: VHost) -> Iterator[Link]:
    if not vhost.federation_upstreams or not any(
        key in policy.definition for policy in vhost.policies.values() for key in FEDERATION_KEYS
    ):
        return
    for xname in sorted(vhost.exchanges):
        exchange: Exchange = vhost.exchanges[xname]
        policy = applied_policy(vhost, "exchange", exchange.name)
        if policy is None:
            continue
        for upstream_name, member in federation_upstreams_of(vhost, policy.definition):
            upstream = vhost.federation_upstreams.get(upstream_name)
            if upstream is None:
                continue
            source = end_vhost(upstream.uris)
            if source is None:
                continue
            upstream_exchange = member.get("exchange", upstream.settings.get("exchange", exchange.name))
            hops = member.get("max-hops", upstream.settings.get("max-hops", 1))
            yield Link(
                "federation",
                upstream_name,
                vhost.name,
                source,
                "exchange",
                str(upstream_exchange),
                vhost.name,
                "exchange",
                exchange.name,
                policy=policy.name,
                max_hops=hops if isinstance(hops, int) and not isinstance(hops, bool) else 1,
                origin=upstream.origin,
            )


def topology_links(topology: Topology) -> tuple[Link, ...]:
    """Every shovel and federation whose both ends are vhosts of this broker (declared in the files or not),
    in the order of their vhosts and names."""
    out: list[Link] = []
    for vname in sorted(topology.vhosts):
        vhost = topology.vhosts[vname]
        for shovel, source, destination in shovel_links(vhost):
            if source is not None and destination is not None:
                link = _shovel_link(vhost, shovel, source, destination)
                if link is not None:
                    out.append(link)
        out.extend(_federation_links(vhost))
    return tuple(out)
