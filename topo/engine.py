"""The I/O edge that ties the pure core to a broker: read → diff → (apply → re-read to confirm).

Every function takes the broker as the port (:class:`topo.broker.port.Broker`), or a
:class:`~topo.broker.client.ManagementClient`, which is taken as the live broker it reaches (Management API,
and AMQP for exact counts). Library use::

    from topo.broker.client import ManagementClient
    from topo import engine
    with ManagementClient(url) as client:
        plan = engine.plan(client, topo.load("topologies/"))
        engine.apply(client, desired, plan)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from topo.arguments import EXCHANGE_TYPES
from topo.broker.client import ManagementClient
from topo.broker.executors import Progress, count_dropped
from topo.broker.live import as_broker
from topo.broker.port import Broker, Overview
from topo.broker.reader import ConcurrentRead, Observed, read, read_broker_wide
from topo.broker.writer import execute
from topo.errors import MissingExchangeType, NotConverged, UsageError
from topo.loader import load
from topo.loader.prescan import prescan
from topo.model import Exchange, Inventory, Topology
from topo.plan.diff import broker_kinds, diff
from topo.plan.kinds import kind
from topo.plan.kinds.links import needed_plugins, plugin_blockers
from topo.plan.migrate import as_migrations
from topo.plan.model import BrokerInfo, Plan, ReadNotes
from topo.plan.ownership import Ownership, destroy_plan, prune_undeclared_vhosts
from topo.plan.safety import annotate, dropped_queues

__all__ = [
    "apply",
    "describe_broker",
    "destroy",
    "load_and_plan",
    "load_plan_observed",
    "plan",
    "plan_destroy",
    "plan_observed",
    "stacks",
]

PathLike = str | os.PathLike[str]


def load_and_plan(
    target: Broker | ManagementClient,
    paths: PathLike | Iterable[PathLike],
    variables: Mapping[str, str] | None = None,
    only: Sequence[str] = (),
    *,
    ownership: Ownership | None = None,
    allow_data_loss: bool = False,
    partial: bool = False,
    migrate: bool = False,
) -> tuple[Topology, Plan]:
    """Load the files and plan against the broker (:func:`load_plan_observed`, without what was read)."""
    desired, planned, _ = load_plan_observed(
        target,
        paths,
        variables,
        only,
        ownership=ownership,
        allow_data_loss=allow_data_loss,
        partial=partial,
        migrate=migrate,
    )
    return desired, planned


def load_plan_observed(
    target: Broker | ManagementClient,
    paths: PathLike | Iterable[PathLike],
    variables: Mapping[str, str] | None = None,
    only: Sequence[str] = (),
    *,
    ownership: Ownership | None = None,
    allow_data_loss: bool = False,
    partial: bool = False,
    migrate: bool = False,
) -> tuple[Topology, Plan, Observed]:
    """Load the files and plan against the broker, reading the broker *while* the files are loaded; and what
    was read of the broker (a saved plan's fingerprint is made of it).

    The read starts before the files are parsed: the vhosts and top-level collections a quick scan of their
    text finds (:func:`topo.loader.prescan.prescan`) are read in threads (:class:`ConcurrentRead`) beside the
    parsing, schema validation and build (CPU), and what the scan missed as soon as the loader announces it;
    so a plan costs about max(load, read) rather than their sum, also when everything is in one large file.

    ``partial``: a plan that is only shown (``topo plan``): the broker-wide kinds the user may not read are
    left out and named in the plan (``Plan.read.not_compared``), not an error. ``topo apply`` does not pass it.
    """
    broker = as_broker(target)
    with ConcurrentRead(broker, only=only, partial=partial) as reads:
        early = prescan(paths)
        reads.vhosts(early.vhosts)
        reads.collections(early.keys)  # users, global parameters; a stack's inventory (name:)
        desired = load(paths, variables, on_vhosts=reads.vhosts).only(only)
        observed = reads.observed(desired)
    planned = _plan_from(broker, desired, observed, ownership, allow_data_loss, whole=not only, migrate=migrate)
    return desired, planned, observed


def plan(
    target: Broker | ManagementClient,
    desired: Topology,
    *,
    ownership: Ownership | None = None,
    allow_data_loss: bool = False,
    partial: bool = False,
    migrate: bool = False,
) -> Plan:
    """Read the declared vhosts (and the broker-wide kinds ``desired`` declares) from the broker and diff
    them against ``desired`` (``partial``: as :func:`load_and_plan`).

    Queues that would be dropped are counted: each such change carries the count, and the reasons apply
    would refuse it (``Change.blockers``; ``Plan.blocked``), decided by :mod:`topo.plan.safety`.
    """
    broker = as_broker(target)
    with ConcurrentRead(broker, partial=partial) as reads:
        observed = reads.observed(desired)
    return _plan_from(broker, desired, observed, ownership, allow_data_loss, migrate=migrate)


def plan_observed(
    target: Broker | ManagementClient,
    desired: Topology,
    *,
    ownership: Ownership | None = None,
    allow_data_loss: bool = False,
    migrate: bool = False,
    whole: bool = True,
) -> tuple[Plan, Observed]:
    """:func:`plan`, and what was read of the broker (it gets the broker-wide kinds ``desired`` declares).
    ``whole``: ``desired`` is all of the files (not limited by ``--vhost``)."""
    broker = as_broker(target)
    with ConcurrentRead(broker) as reads:
        observed = reads.observed(desired)
    return _plan_from(broker, desired, observed, ownership, allow_data_loss, whole=whole, migrate=migrate), observed


def _stacks(broker: Broker) -> dict[str, Inventory]:
    into = Topology()
    read_broker_wide(broker, [kind("stack")], into)
    return into.stacks


def _observe(broker: Broker, desired: Topology, observed: Observed) -> Observed:
    """``observed`` with what the broker has of the broker-wide kinds ``desired`` declares (none: as it is;
    the stacks' inventories are not read again when ``observed`` has them)."""
    kinds = tuple(k for k in broker_kinds(desired) if k.name != "stack" or not observed.topology.stacks)
    if kinds:
        _, observed.facts = read_broker_wide(broker, kinds, observed.topology)
    return observed


def _plan_from(
    broker: Broker,
    desired: Topology,
    observed: Observed,
    ownership: Ownership | None = None,
    allow_data_loss: bool = False,
    *,
    whole: bool = True,
    migrate: bool = False,
) -> Plan:
    if not observed.broker_wide_read:  # a ConcurrentRead has read them already
        observed = _observe(broker, desired, observed)
    left = _left_behind(desired, observed.topology) if whole else []
    if left:  # vhosts a stack owns and its files no longer declare: read them too, for --prune
        observed.topology.vhosts.update(read(broker, left).topology.vhosts)
    skip = [name for name, vhost in observed.not_compared if vhost is None]
    skip_in: dict[str, list[str]] = {}
    for name, vhost in observed.not_compared:
        if vhost is not None:
            skip_in.setdefault(vhost, []).append(name)
    result = diff(desired, observed.topology, observed.facts, ownership, skip=skip, skip_in=skip_in)
    result.read = ReadNotes(
        user=broker.user, by_resource=observed.by_resource, not_compared=observed.not_compared, stack=desired.name
    )
    if left:
        result = prune_undeclared_vhosts(result, desired, observed.topology, ownership or Ownership())
    result.allow_data_loss = allow_data_loss
    cluster: str | None = None
    plugins, drops = _plugin_types(result), dropped_queues(result)
    if plugins or drops:  # one request for what both need (a plan without either reads no more)
        overview = broker.overview(exchange_types=bool(plugins))
        _check_exchange_types(result, overview)
        cluster = overview.cluster_name
    result.broker = BrokerInfo(cluster_name=cluster, url=broker.url)
    if needed_plugins(result):  # shovels, federation: blocked before any write when the broker lacks the plugin
        result = plugin_blockers(result, broker.enabled_plugins())
    if drops:
        result = annotate(result, count_dropped(broker, result, cluster=cluster))
    return as_migrations(result, desired, observed.topology, migrate=migrate)


def stacks(target: Broker | ManagementClient) -> dict[str, Inventory]:
    """Every stack's inventory on the broker, by stack name (``topo state``)."""
    broker = as_broker(target)
    into = Topology()
    read_broker_wide(broker, [kind("stack")], into, why="topo state reads")
    return into.stacks


def plan_destroy(target: Broker | ManagementClient, stack: str, *, allow_data_loss: bool = False) -> Plan:
    """The plan of ``topo destroy STACK``: delete everything the stack's inventory owns (its vhosts with all
    in them), counted and guarded as any plan (``protect``, queues holding messages), then the inventory.
    Raises UsageError when the broker has no such stack."""
    broker = as_broker(target)
    into = Topology()
    read_broker_wide(broker, [kind("stack")], into, why="topo destroy reads")
    if stack not in into.stacks:
        known = ", ".join(sorted(into.stacks)) or "none"
        raise UsageError(
            f"the broker at {broker.url} has no stack {stack!r}",
            hint=f"stacks on this broker: {known} (`topo state` lists them)",
        )
    observed = read(broker, {a.vhost for a in into.stacks[stack].owned if a.vhost})
    observed.topology.stacks = into.stacks
    result = destroy_plan(stack, observed.topology)
    result.allow_data_loss = allow_data_loss
    result.broker = BrokerInfo(cluster_name=None, url=broker.url)
    if dropped_queues(result):
        cluster = broker.overview().cluster_name
        result = annotate(result, count_dropped(broker, result, cluster=cluster))
    return result


def destroy(target: Broker | ManagementClient, planned: Plan, *, progress: Progress | None = None) -> Plan:
    """Make ``planned`` (from :func:`plan_destroy`): counted again before any write, as apply does."""
    broker = as_broker(target)
    if not planned.empty:
        execute(broker, planned, progress, recount=True)
    return planned


def _left_behind(desired: Topology, observed: Topology) -> list[str]:
    """The vhosts stack ``desired.name`` owns something in that its files no longer declare."""
    mine = observed.stacks.get(desired.name) if desired.name is not None else None
    if mine is None:
        return []
    return sorted({a.vhost for a in mine.owned if a.vhost} - set(desired.vhosts))


def describe_broker(target: Broker | ManagementClient, planned: Plan) -> Plan:
    """``planned`` with the broker's cluster name filled in (``GET /api/overview``), for the plan forms that
    show it (Markdown, JSON)."""
    if planned.broker is not None and planned.broker.cluster_name is not None:
        return planned
    broker = as_broker(target)
    return replace(planned, broker=BrokerInfo(cluster_name=broker.overview().cluster_name, url=broker.url))


def apply(
    target: Broker | ManagementClient,
    desired: Topology,
    planned: Plan | None = None,
    *,
    progress: Progress | None = None,
    confirm: bool = True,
    recount: bool = True,
    ownership: Ownership | None = None,
    allow_data_loss: bool = False,
    migrate: bool = False,
    notes: list[str] | None = None,
    migrate_wait: float = 60.0,
    stats_interval: float | None = None,
) -> Plan:
    """Apply ``planned`` (or a fresh plan) and re-read the broker to confirm it now matches ``desired``.

    With ``migrate``, a fresh plan migrates each queue it would replace (its messages moved into the new queue:
    :mod:`topo.broker.migrate`) rather than drop it; a migration waits up to ``migrate_wait`` seconds for the old
    queue's consumers to settle what they hold before it deletes it (``stats_interval``: the broker's
    ``collect_statistics_interval``, when not RabbitMQ's 5 s). Apply counts the queues it would drop again
    before it writes anything (the plan may be old), unless ``recount`` is false (a plan made an instant ago: its
    counts are used). The broker is read again afterwards, the broker-wide kinds ``desired`` declares too (a user's
    password compared offline with the hash it now stores). Returns the plan that was applied; ``notes`` gets what
    the user should hear about it (each migration's figures). Raises UnsafeChange, ApplyFailed or NotConverged.
    """
    broker = as_broker(target)
    if planned is None:
        planned = plan(broker, desired, ownership=ownership, allow_data_loss=allow_data_loss, migrate=migrate)
        recount = False  # counted just now
    if planned.empty:
        return planned
    execute(
        broker,
        planned,
        progress,
        recount=recount,
        notes=notes,
        migrate_wait=migrate_wait,
        stats_interval=stats_interval,
    )
    if confirm:
        now = _observe(broker, desired, read(broker, desired.vhosts))
        after = diff(desired, now.topology, now.facts, ownership)
        if not after.empty:
            listed = "; ".join(f"{c.action} {c.address}" for c in after.changes[:10])
            more = f" and {len(after.changes) - 10} more" if len(after.changes) > 10 else ""
            raise NotConverged(
                f"after the apply, the broker still differs from the files: {listed}{more}",
                hint="another client may be changing the same resources; run `topo plan` to see the state",
            )
    return planned


def _plugin_types(result: Plan) -> dict[str, list[str]]:
    """The exchange types of plugins the plan would declare, each with the exchanges of that type."""
    wanted: dict[str, list[str]] = {}
    for change in result.changes:
        after = change.after
        if change.action in ("create", "replace") and isinstance(after, Exchange) and after.type not in EXCHANGE_TYPES:
            wanted.setdefault(after.type, []).append(f"exchange {after.name!r} in vhost {change.vhost!r}")
    return wanted


def _check_exchange_types(result: Plan, overview: Overview) -> None:
    """Refuse a plan that would declare an exchange of a plugin's type the broker does not have (RabbitMQ
    would refuse it half-way through the apply)."""
    wanted = _plugin_types(result)
    if not wanted:
        return
    have = overview.exchange_types or frozenset()
    missing = sorted(kind for kind in wanted if kind not in have)
    if missing:
        listed = "; ".join(f"{kind} (for {', '.join(wanted[kind])})" for kind in missing)
        plugins = ", ".join(_PLUGINS.get(kind, "the plugin that provides " + kind) for kind in missing)
        raise MissingExchangeType(
            f"the broker has no exchange type {listed}",
            hint=f"enable {plugins} on the broker (rabbitmq-plugins enable ...), or change the type",
        )


_PLUGINS = {
    "x-consistent-hash": "rabbitmq_consistent_hash_exchange",
    "x-delayed-message": "rabbitmq_delayed_message_exchange (a community plugin)",
    "x-random": "rabbitmq_random_exchange",
    "x-recent-history": "rabbitmq_recent_history_exchange",
    "x-jms-topic": "rabbitmq_jms_topic_exchange",
    "x-modulus-hash": "rabbitmq_sharding",
}
