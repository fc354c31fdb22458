"""Desired vs observed → a :class:`Plan`. Pure: no I/O, tested on values.

A thin driver over the registered kinds (:data:`topo.plan.kinds.KINDS`, in order). First the broker-wide
kinds (users, their permissions, global parameters), once, over the two whole topologies, each only when the
files declare some of it (``Kind.declared``: the broker's side of it is only read then); then, for every
vhost the files declare, each kind of a vhost. Each kind says what changes (create, update in place,
replace with the reason, delete), what is left alone as not managed, and which bindings ``keep-bindings``
keeps. What each kind decides is in its own module (:mod:`topo.plan.kinds`); what a later kind needs of an
earlier one (the queues and exchanges replaced, whose bindings come back) travels in the scope
(:class:`~topo.plan.kinds.Scope`, :class:`~topo.plan.kinds.BrokerScope`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from topo.model import Topology, VHost
from topo.plan.kinds import BROKER_KINDS, VHOST_KINDS, BrokerFacts, BrokerScope, Kind, Scope
from topo.plan.model import Change, Kept, Plan, Unmanaged
from topo.plan.ownership import Ownership, guard, own, ownership_unknown

__all__ = ["broker_kinds", "diff"]


def _compare(scope: Scope | BrokerScope, kinds: Iterable[Kind], plan: Plan) -> None:
    unmanaged: list[Unmanaged] = []
    kept: list[Kept] = []
    for kind in kinds:
        changes = []
        for outcome in kind.compare(scope):
            if isinstance(outcome, Change):
                changes.append(outcome)
            elif isinstance(outcome, Unmanaged):
                unmanaged.append(outcome)
            else:
                kept.append(outcome)
        scope.replaced[kind.name] = {c.address.name for c in changes if c.action == "replace"}
        plan.changes.extend(changes)
    plan.unmanaged.extend(sorted(unmanaged, key=lambda u: str(u.address)))
    plan.kept.extend(sorted(kept, key=lambda k: str(k.address)))


def broker_kinds(desired: Topology) -> tuple[Kind, ...]:
    """The broker-wide kinds ``desired`` declares some of: those a plan compares (and reads)."""
    return tuple(kind for kind in BROKER_KINDS if kind.declared(desired))


def diff(
    desired: Topology,
    observed: Topology,
    facts: BrokerFacts | None = None,
    ownership: Ownership | None = None,
    *,
    skip: Collection[str] = (),
    skip_in: Mapping[str, Collection[str]] | None = None,
) -> Plan:
    """The changes that make ``observed`` match ``desired``: the broker-wide kinds ``desired`` declares, then
    every vhost it declares. ``facts``: what the broker-wide kinds need besides (who topo connects as, the
    broker's vhosts; not known when ``None``). A stack's plan (``desired.name``) is then made as its inventory
    and ``ownership`` say (:func:`topo.plan.ownership.own`), and every plan guarded (``protect: true``).
    ``skip``: broker-wide kinds not compared (not read; ``stack``: the stack's inventory, so the plan is made
    without ownership, its changes marked by :func:`~topo.plan.ownership.ownership_unknown`); ``skip_in``: per
    vhost, kinds of a vhost not compared."""
    plan = Plan(vhosts=tuple(sorted(desired.vhosts)))
    kinds = tuple(kind for kind in broker_kinds(desired) if kind.name not in skip)
    if kinds:
        _compare(BrokerScope(desired, observed, facts or BrokerFacts()), kinds, plan)
    for name in plan.vhosts:
        desired_vhost, observed_vhost = desired.vhosts[name], observed.vhosts.get(name)
        scope = Scope(desired_vhost, observed_vhost or VHost(name), exists=observed_vhost is not None)
        skipped = skip_in.get(name, ()) if skip_in else ()
        _compare(scope, [k for k in VHOST_KINDS if k.name not in skipped] if skipped else VHOST_KINDS, plan)
    if "stack" in skip:  # the files name a stack whose inventory could not be read: ownership not known
        return guard(ownership_unknown(plan), desired)
    plan = own(plan, desired, observed, ownership or Ownership())
    return guard(plan, desired, observed.stacks)
