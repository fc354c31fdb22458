"""The resource kinds a plan knows, in the order a vhost is compared and a plan lists them.

Each kind is one module: where its resources are, how one of them compares (create, update, replace,
delete, not managed, kept), and how a plan shows it (see :class:`~topo.plan.kinds.base.Kind`). The order
matters: a kind may depend on the decisions of the kinds before it (bindings come back with a replaced
queue or exchange). The writer's executors for each kind are in :mod:`topo.broker.executors`; adding a
kind is described in docs/architecture.md.
"""

from __future__ import annotations

from topo.plan.kinds.base import Kind, Outcome, Scope, differences
from topo.plan.kinds.binding import BINDING
from topo.plan.kinds.exchange import EXCHANGE
from topo.plan.kinds.policy import OPERATOR_POLICY, POLICY
from topo.plan.kinds.queue import QUEUE
from topo.plan.kinds.vhost import VHOST

__all__ = ["BY_NAME", "KINDS", "Kind", "Outcome", "Scope", "differences", "kind"]

KINDS: tuple[Kind, ...] = (VHOST, EXCHANGE, QUEUE, BINDING, POLICY, OPERATOR_POLICY)
"""Every kind, in the order a vhost is compared (and its changes listed)."""

BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}


def kind(name: str) -> Kind:
    """The registered kind called ``name`` (``queue``, ``operator-policy``, ...)."""
    return BY_NAME[name]
