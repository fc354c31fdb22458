"""TL8xx: shovels and federation (``shovels:``, ``federation-upstreams:``, ``federation-upstream-sets:``):
what a link names that the files do not declare, a shovel that shares its source queue, federation that
never applies.

A link's end is checked only when its URIs name this broker (no host: ``amqp://``, ``amqp:///VHOST``; see
:mod:`topo.routing.links`) and a vhost the files declare: for any other, lint cannot tell what is there.
"""

from __future__ import annotations

from collections.abc import Iterator

from topo.lint.core import Context, Draft, rule
from topo.model import BUILTIN_EXCHANGES, Policy, Shovel, Topology, VHost
from topo.routing import applied_policy
from topo.routing.links import ALL_UPSTREAMS, FEDERATION_KEYS, shovel_links, topology_links

__all__: list[str] = []


def _declared(topology: Topology | None, vhost: str | None) -> VHost | None:
    if topology is None or vhost is None:
        return None
    return topology.vhosts.get(vhost)


def _where(vhost: str, own: str) -> str:
    return "this vhost" if vhost == own else f"vhost '{vhost}'"


@rule("TL801", "link-end-not-declared", "error")
def link_end_not_declared(ctx: Context) -> Iterator[Draft]:
    """A shovel's source or destination, or a federated exchange's upstream exchange, is not declared.

    Checked when the link's URI names this broker (`amqp://`, `amqp:///VHOST`) and a vhost the files
    declare: a source queue or exchange, a destination queue or exchange, an upstream exchange of that
    vhost that no file declares.

    **Risk.** A shovel from a queue nobody declared declares it itself (a plain classic queue that nothing
    routes to): it moves nothing, silently. A shovel whose source or destination exchange does not exist
    fails and restarts forever, and the messages wait (or, from an exchange, are never taken). A federation
    link whose upstream exchange does not exist brings nothing over.

    **Fix.** Correct the name (or the vhost in the URI), or declare the queue or exchange in the vhost the
    URI names. A name declared by applications at run time: disable the rule on the shovel.
    """
    vhost = ctx.vhost
    for shovel, source, destination in shovel_links(vhost):
        settings = shovel.settings
        where = _declared(ctx.topology, source)
        if where is not None and source is not None:
            if "src-queue" in settings and settings["src-queue"] not in where.queues:
                yield ctx.finding(
                    shovel,
                    f"shovel '{shovel.name}' takes messages from queue '{settings['src-queue']}' of "
                    f"{_where(source, vhost.name)}, which is not declared there: the shovel declares an empty "
                    "queue nothing routes to",
                )
            exchange = settings.get("src-exchange")
            if exchange is not None and exchange not in where.exchanges and exchange not in BUILTIN_EXCHANGES:
                yield ctx.finding(
                    shovel,
                    f"shovel '{shovel.name}' takes messages from exchange '{exchange}' of "
                    f"{_where(source, vhost.name)}, which is not declared there: the shovel cannot start",
                )
        where = _declared(ctx.topology, destination)
        if where is not None and destination is not None:
            exchange = settings.get("dest-exchange")
            if exchange not in (None, "") and exchange not in where.exchanges and exchange not in BUILTIN_EXCHANGES:
                yield ctx.finding(
                    shovel,
                    f"shovel '{shovel.name}' publishes to exchange '{exchange}' of {_where(destination, vhost.name)}, "
                    "which is not declared there: every publish fails and the shovel restarts",
                )
            queue = settings.get("dest-queue")
            if queue is not None and queue not in where.queues:
                yield ctx.finding(
                    shovel,
                    f"shovel '{shovel.name}' moves messages to queue '{queue}' of {_where(destination, vhost.name)}, "
                    "which is not declared there: the shovel declares it, outside the files",
                )
    if ctx.topology is None:
        return
    for link in topology_links(ctx.topology):
        if link.kind != "federation" or link.vhost != vhost.name:
            continue
        upstream_vhost = _declared(ctx.topology, link.source_vhost)
        if upstream_vhost is None:
            continue
        if link.source not in upstream_vhost.exchanges and link.source not in BUILTIN_EXCHANGES:
            yield ctx.finding(
                vhost.federation_upstreams[link.name],
                f"exchange '{link.destination}' is federated from exchange '{link.source}' of "
                f"{_where(link.source_vhost, vhost.name)} (upstream '{link.name}', policy '{link.policy}'), which "
                "is not declared there: the link brings nothing over",
            )


def _consumed(ctx: Context, source: str, queue: str) -> str | None:
    """Why an application consumes ``queue`` of vhost ``source`` too (its consumer settings), or None."""
    where = _declared(ctx.topology, source)
    declared = where.queues.get(queue) if where is not None else None
    if declared is None:
        return None
    keys = [
        key
        for key, value in (
            ("prefetch", declared.prefetch),
            ("retry", declared.retry_delays or None),
            ("circuit-breaker", declared.circuit_breaker),
        )
        if value is not None
    ]
    return ", ".join(f"`{k}:`" for k in keys) if keys else None


@rule("TL802", "shovel-source-shared", "warning")
def shovel_source_shared(ctx: Context) -> Iterator[Draft]:
    """A shovel's source queue has other consumers: another shovel, or an application.

    Another shovel of the topology takes messages from the same queue, or the queue declares what its
    consumers use (`prefetch:`, `retry:`, `circuit-breaker:`): an application consumes it.

    **Risk.** Consumers of one queue compete: RabbitMQ gives each message to one of them. The shovel moves
    only some of the messages, the application sees only some, and which ones is chance.

    **Fix.** Give each consumer its own queue (bind a second queue to the same exchange, and shovel from
    that one), or shovel from the exchange (`source: {exchange: ..., routing-key: ...}`: the shovel gets
    a queue of its own). Competing on purpose (a shovel that drains a backlog beside a slow consumer):
    disable the rule on the shovel.
    """
    if ctx.topology is None:
        return
    sources: dict[tuple[str, str], list[tuple[str, Shovel]]] = {}
    for vname in sorted(ctx.topology.vhosts):
        for shovel, source, _destination in shovel_links(ctx.topology.vhosts[vname]):
            queue = shovel.settings.get("src-queue")
            if source is not None and queue is not None:
                sources.setdefault((source, str(queue)), []).append((vname, shovel))
    for shovel, source, _destination in shovel_links(ctx.vhost):
        queue = shovel.settings.get("src-queue")
        if source is None or queue is None:
            continue
        others = [
            f"'{s.name}'" + ("" if v == ctx.vhost.name else f" (vhost '{v}')")
            for v, s in sources[(source, str(queue))]
            if (v, s.name) != (ctx.vhost.name, shovel.name)
        ]
        if others:
            yield ctx.finding(
                shovel,
                f"shovel '{shovel.name}' and shovel{'s' if len(others) > 1 else ''} {', '.join(others)} take "
                f"messages from the same queue '{queue}' of {_where(source, ctx.vhost.name)}: each gets only some "
                "of them",
            )
        why = _consumed(ctx, source, str(queue))
        if why is not None:
            yield ctx.finding(
                shovel,
                f"shovel '{shovel.name}' takes messages from queue '{queue}' of {_where(source, ctx.vhost.name)}, "
                f"which an application consumes too ({why}): each gets only some of them",
            )


def _federation_policies(vhost: VHost) -> Iterator[Policy]:
    for name in sorted(vhost.policies):
        policy = vhost.policies[name]
        if any(key in policy.definition for key in FEDERATION_KEYS):
            yield policy


@rule("TL803", "federation-upstream-not-declared", "error")
def federation_upstream_not_declared(ctx: Context) -> Iterator[Draft]:
    """A policy federates from an upstream, or an upstream set, that its vhost does not declare.

    **Risk.** A policy's `federation-upstream` or `federation-upstream-set` names an upstream (or a set) of
    its own vhost. The broker accepts the name, and nothing federates: the exchanges the policy matches
    receive nothing from the upstream, and nothing says so but the federation status page.

    **Fix.** Correct the name, or declare the upstream under `federation-upstreams:` (the set under
    `federation-upstream-sets:`) in the policy's vhost. `all` is the set of every upstream of the vhost.
    """
    vhost = ctx.vhost
    for policy in _federation_policies(vhost):
        definition = policy.definition
        if "federation-upstream" in definition:
            name = str(definition["federation-upstream"])
            if name not in vhost.federation_upstreams:
                yield ctx.finding(
                    policy,
                    f"policy '{policy.name}' federates from upstream '{name}', which this vhost does not declare: "
                    "nothing federates",
                )
        if "federation-upstream-set" in definition:
            name = str(definition["federation-upstream-set"])
            if name not in vhost.federation_upstream_sets and name != ALL_UPSTREAMS:
                yield ctx.finding(
                    policy,
                    f"policy '{policy.name}' federates from upstream set '{name}', which this vhost does not "
                    "declare: nothing federates",
                )


@rule("TL804", "upstream-set-member-not-declared", "error")
def upstream_set_member_not_declared(ctx: Context) -> Iterator[Draft]:
    """An upstream set names an upstream its vhost does not declare.

    **Risk.** The set's other upstreams federate; this one is skipped without a word (the federation
    status lists no link for it): the messages of the broker it was meant for never arrive.

    **Fix.** Correct the name, or declare the upstream under `federation-upstreams:` in the set's vhost.
    """
    vhost = ctx.vhost
    for name in sorted(vhost.federation_upstream_sets):
        upstream_set = vhost.federation_upstream_sets[name]
        for upstream in upstream_set.upstreams:
            if upstream not in vhost.federation_upstreams:
                yield ctx.finding(
                    upstream_set,
                    f"upstream set '{name}' names upstream '{upstream}', which this vhost does not declare: it is "
                    "skipped",
                )


@rule("TL805", "federation-never-applies", "warning")
def federation_never_applies(ctx: Context) -> Iterator[Draft]:
    """A federation policy is the policy of no declared exchange or queue, or an upstream is used by none.

    A policy with `federation-upstream` or `federation-upstream-set` whose pattern matches no declared
    exchange or queue, or whose matches all have a policy of higher priority; an upstream that no policy
    names (directly, through a set, or through `all`); a set that no policy names.

    **Risk.** Federation does nothing until a policy that names the upstream applies to an exchange (or a
    queue), and only one policy applies to each: the upstream is declared, its password set, and no message
    ever comes over.

    **Fix.** Write the policy (`definition: {federation-upstream-set: NAME}`) with a pattern that matches
    the exchange, and a priority above the other policies that match it (merge their keys into it: RabbitMQ
    applies one policy, not several). For exchanges that applications declare at run time, disable the rule
    for the topology.
    """
    vhost = ctx.vhost
    used: set[str] = set()
    sets_used: set[str] = set()
    subjects = [("exchange", x.name, "") for x in vhost.exchanges.values()]
    subjects += [("queue", q.name, q.type) for q in vhost.queues.values() if q.generated_by is None]
    applied: set[str] = set()
    for kind, name, queue_type in subjects:
        policy = applied_policy(vhost, kind, name, queue_type)  # type: ignore[arg-type]
        if policy is not None:
            applied.add(policy.name)
    for policy in _federation_policies(vhost):
        definition = policy.definition
        if "federation-upstream" in definition:
            used.add(str(definition["federation-upstream"]))
        if "federation-upstream-set" in definition:
            sets_used.add(str(definition["federation-upstream-set"]))
        if policy.name not in applied:
            yield ctx.finding(
                policy,
                f"federation policy '{policy.name}' (pattern '{policy.pattern}', apply-to {policy.apply_to}) is the "
                "policy of no declared exchange or queue: nothing federates through it",
            )
    for name in sorted(vhost.federation_upstream_sets):
        if name not in sets_used:
            yield ctx.finding(
                vhost.federation_upstream_sets[name],
                f"no policy names upstream set '{name}': nothing federates from it",
            )
        else:
            used.update(vhost.federation_upstream_sets[name].upstreams)
    if ALL_UPSTREAMS in sets_used and ALL_UPSTREAMS not in vhost.federation_upstream_sets:
        used.update(vhost.federation_upstreams)
    for name in sorted(vhost.federation_upstreams):
        if name not in used:
            yield ctx.finding(
                vhost.federation_upstreams[name],
                f"no policy federates from upstream '{name}' (neither by name nor through a set a policy names): "
                "nothing federates from it",
            )
