"""Desired vs observed → a :class:`Plan`. Pure: no I/O, tested on values.

A thin driver: for every vhost the files declare, each registered kind (:data:`topo.plan.kinds.KINDS`, in
order) compares its resources and says what changes (create, update in place, replace with the reason,
delete), what is left alone as not managed, and which bindings ``keep-bindings`` keeps. What each kind
decides is in its own module (:mod:`topo.plan.kinds`); what a later kind needs of an earlier one (the
queues and exchanges replaced, whose bindings come back) travels in the :class:`~topo.plan.kinds.Scope`.
"""

from __future__ import annotations

from topo.model import Topology, VHost
from topo.plan.kinds import KINDS, Scope
from topo.plan.model import Change, Kept, Plan, Unmanaged

__all__ = ["diff"]


def _compare_vhost(desired: VHost, observed: VHost | None, plan: Plan) -> None:
    scope = Scope(desired, observed or VHost(desired.name), exists=observed is not None)
    unmanaged: list[Unmanaged] = []
    kept: list[Kept] = []
    for kind in KINDS:
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


def diff(desired: Topology, observed: Topology) -> Plan:
    """The changes that make ``observed`` match ``desired`` in every vhost ``desired`` declares."""
    plan = Plan(vhosts=tuple(sorted(desired.vhosts)))
    for name in plan.vhosts:
        _compare_vhost(desired.vhosts[name], observed.vhosts.get(name), plan)
    return plan
