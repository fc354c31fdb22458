"""The resource kinds a plan knows, in the order they are compared and a plan lists them.

Each kind is one module: where its resources are, how one of them compares (create, update, replace,
delete, not managed, kept), and how a plan shows it (see :class:`~topo.plan.kinds.base.Kind`). The order
matters: a kind may depend on the decisions of the kinds before it (bindings come back with a replaced
queue or exchange). The broker-wide kinds (``scope="broker"``: users, their permissions, global parameters)
are compared once, before the vhosts; the others in every vhost the files declare. The writer's executors
for each kind are in :mod:`topo.broker.executors`, the reads of a broker-wide kind in
:mod:`topo.broker.reader`; adding a kind is described in docs/architecture.md.
"""

from __future__ import annotations

from topo.plan.kinds.base import BrokerFacts, BrokerScope, Kind, Outcome, Scope, differences
from topo.plan.kinds.binding import BINDING
from topo.plan.kinds.exchange import EXCHANGE
from topo.plan.kinds.global_parameter import GLOBAL_PARAMETER
from topo.plan.kinds.links import FEDERATION_UPSTREAM, FEDERATION_UPSTREAM_SET, SHOVEL
from topo.plan.kinds.permission import PERMISSION, TOPIC_PERMISSION
from topo.plan.kinds.policy import OPERATOR_POLICY, POLICY
from topo.plan.kinds.queue import QUEUE
from topo.plan.kinds.stack import STACK
from topo.plan.kinds.user import USER
from topo.plan.kinds.vhost import VHOST

__all__ = [
    "BROKER_KINDS",
    "BY_NAME",
    "KINDS",
    "VHOST_KINDS",
    "BrokerFacts",
    "BrokerScope",
    "Kind",
    "Outcome",
    "Scope",
    "differences",
    "kind",
]

KINDS: tuple[Kind, ...] = (
    USER,
    PERMISSION,
    TOPIC_PERMISSION,
    GLOBAL_PARAMETER,
    STACK,
    VHOST,
    EXCHANGE,
    QUEUE,
    BINDING,
    POLICY,
    OPERATOR_POLICY,
    FEDERATION_UPSTREAM,
    FEDERATION_UPSTREAM_SET,
    SHOVEL,
)
"""Every kind, in the order it is compared (and its changes listed): the broker-wide ones, then those of a vhost."""

BROKER_KINDS: tuple[Kind, ...] = tuple(k for k in KINDS if k.scope == "broker")
VHOST_KINDS: tuple[Kind, ...] = tuple(k for k in KINDS if k.scope == "vhost")

BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}


def kind(name: str) -> Kind:
    """The registered kind called ``name`` (``queue``, ``operator-policy``, ``user``, ...)."""
    return BY_NAME[name]
