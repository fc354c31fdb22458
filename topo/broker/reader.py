"""Observed state: what the broker has in the given vhosts, as the same :class:`Topology` type.

Two requests per vhost, whatever its size (``GET /api/vhosts/{v}`` for metadata and
``GET /api/definitions/{v}`` for everything inside), sent in parallel across vhosts. Normalised like the
files are, so an untouched broker never shows false drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from topo.broker.amqp_probe import NoExactCount, count_exactly
from topo.broker.client import ManagementClient, enc
from topo.model import Binding, Exchange, Policy, Queue, Topology, VHost
from topo.plan.model import QueueUsage

__all__ = ["Observed", "cluster_name", "count_queues", "read", "vhost_from_definitions"]


@dataclass
class Observed:
    """The broker's state of the vhosts asked for; ``missing`` lists those that do not exist."""

    topology: Topology
    missing: set[str] = field(default_factory=set)


def _is_broker_exchange(name: str) -> bool:
    return name == "" or name.startswith("amq.")


def _policy(item: Mapping[str, Any]) -> Policy:
    return Policy(
        name=item["name"],
        pattern=item.get("pattern", ""),
        apply_to=item.get("apply-to", "all"),
        priority=int(item.get("priority", 0)),
        definition=dict(item.get("definition") or {}),
    )


def vhost_from_definitions(name: str, info: Mapping[str, Any], definitions: Mapping[str, Any]) -> VHost:
    """Normalise ``GET /api/vhosts/{name}`` and ``GET /api/definitions/{name}`` into a VHost (pure)."""
    tags = info.get("tags") or []
    if isinstance(tags, str):
        tags = [t for t in tags.split(",") if t]
    queue_type = info.get("default_queue_type")
    vhost = VHost(
        name=name,
        description=info.get("description") or "",
        tags=tuple(sorted(set(tags))),
        limits={},
        # RabbitMQ 3.10 says "undefined" for a vhost created without one: its queues are then classic
        default_queue_type=queue_type if queue_type in ("classic", "quorum", "stream") else "classic",
        tracing=bool(info.get("tracing", False)),
    )
    for item in definitions.get("exchanges") or []:
        if _is_broker_exchange(item["name"]):
            continue
        vhost.exchanges[item["name"]] = Exchange(
            name=item["name"],
            type=item.get("type", "direct"),
            durable=bool(item.get("durable", True)),
            auto_delete=bool(item.get("auto_delete", False)),
            internal=bool(item.get("internal", False)),
            arguments=dict(item.get("arguments") or {}),
        )
    for item in definitions.get("queues") or []:
        arguments = dict(item.get("arguments") or {})
        qtype = arguments.pop("x-queue-type", None) or "classic"
        vhost.queues[item["name"]] = Queue(
            name=item["name"],
            type=qtype,
            durable=bool(item.get("durable", True)),
            auto_delete=bool(item.get("auto_delete", False)),
            arguments=arguments,
        )
    for item in definitions.get("bindings") or []:
        if item.get("source", "") == "":
            continue  # the default exchange's implicit bindings
        vhost.add_binding(
            Binding(
                source=item["source"],
                destination=item["destination"],
                destination_type="exchange" if item.get("destination_type") == "exchange" else "queue",
                routing_key=item.get("routing_key", ""),
                arguments=dict(item.get("arguments") or {}),
            )
        )
    for item in definitions.get("policies") or []:
        policy = _policy(item)
        vhost.policies[policy.name] = policy
    limits: dict[str, int] = {}
    for param in definitions.get("parameters") or []:
        component = param.get("component")
        if component == "operator_policy":
            policy = _policy({"name": param["name"], **(param.get("value") or {})})
            vhost.operator_policies[policy.name] = policy
        elif component == "vhost-limits":
            limits.update({k: int(v) for k, v in (param.get("value") or {}).items()})
    vhost.limits = limits
    return vhost


def _read_vhost(client: ManagementClient, name: str) -> VHost | None:
    info = client.get(f"/vhosts/{enc(name)}", vhost=name, ok_missing=True)
    if info is None:
        return None
    definitions = client.get(f"/definitions/{enc(name)}", vhost=name)
    return vhost_from_definitions(name, info, definitions or {})


def read(client: ManagementClient, vhosts: Iterable[str]) -> Observed:
    """Read the named vhosts from the broker (in parallel)."""
    names = sorted(set(vhosts))
    observed = Observed(Topology())
    if not names:
        return observed
    with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
        results = list(pool.map(lambda n: _read_vhost(client, n), names))
    for name, vhost in zip(names, results, strict=True):
        if vhost is None:
            observed.missing.add(name)
        else:
            observed.topology.vhosts[name] = vhost
    return observed


def cluster_name(client: ManagementClient) -> str:
    """The broker's cluster name (``GET /api/overview``), which the AMQP side must answer with too."""
    overview = client.get("/overview", params={"columns": "cluster_name"}) or {}
    return str(overview.get("cluster_name") or "")


NO_AMQP_URL = "exact counts are off (no AMQP URL)"
GONE_WHEN_COUNTED = "AMQP found no such queue when it counted"
STREAM_UNCOUNTABLE = "RabbitMQ answers 0 for a stream's messages over AMQP"


def count_queues(
    client: ManagementClient, vhost: str, queues: Iterable[str], *, cluster: str | None = None
) -> dict[str, QueueUsage]:
    """What each named queue holds, counted now; queues that do not exist are left out.

    Ready messages and consumers come from an AMQP passive declare (``client.amqp_url``), which the broker
    answers with the queue's counts at that instant: the count is then ``exact``. Unacknowledged messages
    have no such count: they come from the Management API's statistics, which lag up to ~5 s. Where AMQP
    does not answer (or another cluster answers there), every figure comes from the statistics and the
    count is not exact, and ``QueueUsage.why_inexact`` says why (AMQP refused the user, did not answer, ...).
    A stream's count is never exact (RabbitMQ answers 0 for a stream over AMQP). ``cluster`` is the broker's
    cluster name when the caller has it already."""
    stats: dict[str, Mapping[str, Any]] = {}
    for name in queues:
        info = client.get(f"/queues/{enc(vhost)}/{enc(name)}", vhost=vhost, ok_missing=True)
        if info is not None:
            stats[name] = info
    exact: dict[str, tuple[int, int]] = {}
    why_not = NO_AMQP_URL
    if client.amqp_url and stats:
        if cluster is None:
            cluster = cluster_name(client)
        counted = count_exactly(client.amqp_url, vhost, list(stats), cluster=cluster)
        if isinstance(counted, NoExactCount):
            why_not = counted.reason
        else:
            exact, why_not = counted, GONE_WHEN_COUNTED
    usage: dict[str, QueueUsage] = {}
    for name, info in stats.items():
        unacked = int(info.get("messages_unacknowledged") or 0)
        ready_consumers = exact.get(name)
        if info.get("type") == "stream":
            ready_consumers, why = None, STREAM_UNCOUNTABLE
        else:
            why = why_not
        if ready_consumers is not None:
            usage[name] = QueueUsage(ready_consumers[0], unacked, ready_consumers[1], exact=True)
        else:
            ready = int(info.get("messages_ready") or 0)
            if not ready and not unacked:  # a queue's first statistics may carry only the total
                ready = int(info.get("messages") or 0)
            usage[name] = QueueUsage(ready, unacked, int(info.get("consumers") or 0), exact=False, why_inexact=why)
    return usage
