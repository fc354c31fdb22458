"""Observed state: what the broker has, as the same :class:`Topology` type.

The vhosts: each read through the port (:meth:`~topo.broker.port.Broker.read_vhost`: on a live broker two
requests, whatever its size), in parallel across vhosts, and normalised as the files are
(:func:`topo.definitions.vhost_from_definitions`), so an untouched broker never shows false drift.

The broker-wide kinds (users, their permissions, global parameters): each read by the reader registered
for it in :data:`READERS` (``@reads("user")``), only when the files declare some of that kind (a plan asks
:func:`topo.plan.diff.broker_kinds`), with the :class:`~topo.plan.kinds.BrokerFacts` they are compared with
(the user topo connects as, the broker's vhosts). Reading users needs the administrator tag: without it, one
clear error saying why they are read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from topo.broker.port import Broker
from topo.errors import PermissionDenied
from topo.model import Topology
from topo.plan.kinds import BROKER_KINDS, BrokerFacts, Kind
from topo.plan.ownership import decode

__all__ = ["READERS", "Observed", "read", "read_broker_wide", "reads"]

Reader = Callable[[Broker, Topology], None]
READERS: dict[str, Reader] = {}
"""Kind → what reads it from the broker into a topology (the broker-wide kinds)."""


def reads(kind: str) -> Callable[[Reader], Reader]:
    """Register the decorated function as the reader of the broker-wide ``kind``."""

    def register(function: Reader) -> Reader:
        if kind in READERS:
            raise ValueError(f"two readers for {kind}")
        READERS[kind] = function
        return function

    return register


@reads("user")
def _users(broker: Broker, into: Topology) -> None:
    into.users = {user.name: user for user in broker.users()}


@reads("permission")
def _permissions(broker: Broker, into: Topology) -> None:
    into.permissions = {(p.user, p.vhost): p for p in broker.permissions()}


@reads("topic-permission")
def _topic_permissions(broker: Broker, into: Topology) -> None:
    into.topic_permissions = {(t.user, t.vhost): t for t in broker.topic_permissions()}


@reads("global-parameter")
def _global_parameters(broker: Broker, into: Topology) -> None:
    into.global_parameters = {p.name: p for p in broker.global_parameters()}


@reads("stack")
def _stacks(broker: Broker, into: Topology) -> None:
    """Every stack's inventory (global parameters ``topo.stack.*``): one request, whatever their size."""
    into.stacks = decode(broker.global_parameters())


@dataclass
class Observed:
    """The broker's state of the vhosts asked for; ``missing`` lists those that do not exist. ``facts``: what
    the broker-wide kinds are compared with (empty when none was read)."""

    topology: Topology
    missing: set[str] = field(default_factory=set)
    facts: BrokerFacts = field(default_factory=BrokerFacts)


def read(broker: Broker, vhosts: Iterable[str]) -> Observed:
    """Read the named vhosts from the broker (in parallel)."""
    names = sorted(set(vhosts))
    observed = Observed(Topology())
    if not names:
        return observed
    with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
        results = list(pool.map(broker.read_vhost, names))
    for name, vhost in zip(names, results, strict=True):
        if vhost is None:
            observed.missing.add(name)
        else:
            observed.topology.vhosts[name] = vhost
    return observed


def read_broker_wide(
    broker: Broker,
    kinds: Iterable[Kind] = BROKER_KINDS,
    into: Topology | None = None,
    *,
    why: str = "the files declare",
) -> tuple[Topology, BrokerFacts]:
    """Read the broker-wide ``kinds`` (all of them by default) into ``into`` (a new topology by default); and
    the facts they are compared with. ``why`` ends the words of the error a user gets who may not read them
    ("..., because the files declare users")."""
    into = into if into is not None else Topology()
    wanted = list(kinds)
    for kind in wanted:
        try:
            READERS[kind.name](broker, into)
        except PermissionDenied as exc:
            raise _denied(broker, kind.name, why, exc) from None
    vhosts = frozenset(broker.vhost_names()) if any(k.name != "stack" for k in wanted) else None
    return into, BrokerFacts(connecting_user=broker.user, vhosts=vhosts)


_WHAT = {
    "user": "users",
    "permission": "users",
    "topic-permission": "users",
    "global-parameter": "global parameters",
}


def _denied(broker: Broker, kind: str, why: str, exc: PermissionDenied) -> PermissionDenied:
    if kind == "stack":
        lead = "the files name their stack (name:), so topo reads" if why == "the files declare" else why
        return PermissionDenied(
            f"{lead} its inventory (what the stack owns, kept in global parameters), and reading them needs the "
            f"administrator tag: user {broker.user!r} may not read them at {broker.url}",
            hint="give the user the 'administrator' tag, or leave `name:` out of the files (no inventory: no "
            "--prune, --adopt, topo destroy or topo state)",
            status=exc.status,
        )
    what = _WHAT.get(kind, kind.replace("-", " ") + "s")
    return PermissionDenied(
        f"{why} {what}, and reading the broker's needs the administrator tag: user {broker.user!r} may not "
        f"read them at {broker.url}",
        hint="give the user the 'administrator' tag (RabbitMQ shows users, their password hashes and permissions "
        "to administrators only), or leave users, permissions and global parameters out of this run with "
        "--vhost NAME",
        status=exc.status,
    )
