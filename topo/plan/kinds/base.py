"""What a resource kind registers, and what every kind shares. Pure.

A :class:`Kind` says where its resources are (``items``), what each outcome is for a resource only in the
files (``added``), only on the broker (``removed``) or in both (``common``), how its changes are ordered in
a plan, and how a plan shows them (``details``, ``to_json``). :func:`differences` splits two collections
once, for every kind (migra's ``differences``); :mod:`topo.plan.diff` drives the kinds in their registered
order (:data:`topo.plan.kinds.KINDS`).

A kind's ``scope`` says where its resources live. ``"vhost"`` (queues, policies, ...): compared one vhost at
a time, for every vhost the files declare, through a :class:`Scope`; ``items`` takes a
:class:`~topo.model.VHost`. ``"broker"`` (users, their permissions, global parameters): compared once, over
the two whole topologies, through a :class:`BrokerScope`, and only when the files declare some
(``declared``); ``items`` takes a :class:`~topo.model.Topology`. What the broker side of such a kind needs
besides (who topo connects as, the vhosts the broker has) are the :class:`BrokerFacts`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from topo.arguments import ArgSpec
from topo.model import Address, Binding, ResourceKind, Topology, VHost
from topo.plan.model import Action, Change, Kept, Resource, Unmanaged
from topo.units import unit_form

__all__ = [
    "BrokerFacts",
    "BrokerScope",
    "Differences",
    "Kind",
    "KindScope",
    "Outcome",
    "Outcomes",
    "Scope",
    "as_json",
    "by_name",
    "differences",
    "readable",
    "show",
]

K = TypeVar("K", bound=Hashable)

Outcome = Change | Unmanaged | Kept
"""What comparing one resource can give: a change, a resource left alone as not managed, or a binding kept
by ``keep-bindings``."""

Outcomes = Sequence[Outcome]
"""What a kind's ``added``, ``removed`` and ``common`` return: ``()`` when nothing changes (the usual case:
no allocation per resource)."""


@dataclass(frozen=True)
class Differences(Generic[K]):
    """Two collections compared by key: the keys ``added`` (only desired), ``removed`` (only observed) and
    ``common`` (in both); each in its collection's order. Keys only: a no-op plan of 10,000 queues allocates
    nothing per resource here."""

    added: list[K]
    removed: list[K]
    common: list[K]


def differences(desired: Mapping[K, Any], observed: Mapping[K, Any]) -> Differences[K]:
    """What only ``desired`` has, what only ``observed`` has, and what both have (written once for every kind)."""
    added: list[K] = []
    common: list[K] = []
    for key in desired:
        (common if key in observed else added).append(key)
    removed = [key for key in observed if key not in desired]
    return Differences(added, removed, common)


@dataclass
class Scope:
    """One vhost being compared: the ``desired`` and ``observed`` vhost (an empty one when it does not exist
    on the broker: ``exists`` is then false), and what the kinds compared before have decided (``replaced``:
    kind → names replaced), for the kinds that depend on them (a binding comes back with its queue)."""

    desired: VHost
    observed: VHost
    exists: bool
    replaced: dict[str, set[str]] = field(default_factory=dict)

    def address(self, kind: ResourceKind, name: str) -> Address:
        return Address(kind, self.desired.name, name)

    def managed_destination(self, binding: Binding) -> bool:
        """Whether the files declare ``binding``'s destination (its bindings are then part of it)."""
        if binding.destination_type == "queue":
            return binding.destination in self.desired.queues
        return binding.destination in self.desired.exchanges


@dataclass(frozen=True)
class BrokerFacts:
    """What the broker-wide kinds need to know besides the two topologies: the user topo connects as
    (``None``: not known), and the vhosts the broker has (``None``: not read)."""

    connecting_user: str | None = None
    vhosts: frozenset[str] | None = None


@dataclass
class BrokerScope:
    """The broker-wide kinds being compared: the ``desired`` and ``observed`` topologies (the broker's side
    holds what was read of the kinds the files declare), and the :class:`BrokerFacts`."""

    desired: Topology
    observed: Topology
    facts: BrokerFacts = field(default_factory=BrokerFacts)
    exists: bool = True
    replaced: dict[str, set[str]] = field(default_factory=dict)

    def address(self, kind: ResourceKind, name: str) -> Address:
        return Address(kind, "", name)


KindScope = Literal["vhost", "broker"]


def _created(scope: Scope | BrokerScope, kind: ResourceKind, name: str, want: Resource) -> Outcomes:
    return (Change("create", scope.address(kind, name), after=want),)


def _not_managed(scope: Scope | BrokerScope, kind: ResourceKind, name: str, have: Resource) -> Outcomes:
    return (Unmanaged(scope.address(kind, name)),)


def _always(desired: Topology) -> bool:
    return True


def by_name(change: Change) -> Any:
    return change.address.name


@dataclass(frozen=True)
class Kind:
    """One resource kind, as the diff and the plan's renderers see it.

    ``actions``: the changes it can make (each needs its phases and executors in :mod:`topo.broker`).
    ``scope``: ``"vhost"`` or ``"broker"`` (see the module's docstring). ``items(vhost)`` (``items(topology)``
    for a broker-wide kind): its resources, by key. ``declared(topology)``: whether the files declare any of
    a broker-wide kind (only then is it read and compared; a vhost's kinds always are). ``added(scope, key,
    want)``, ``removed(scope, key, have)`` and ``common(scope, key, want, have)``: the outcomes for one
    resource (default: a create; "not managed"; nothing); ``scope`` is a :class:`Scope` or a
    :class:`BrokerScope`, as the kind's. ``order``: the sort key of its changes in a plan (default: the name).
    ``details``: the lines a plan shows under a create or an update of it (and, for a broker-wide kind, a
    delete); ``to_json``: a resource of it in the plan's JSON form (the broker's field names, never a
    secret)."""

    name: ResourceKind
    actions: tuple[Action, ...]
    items: Callable[[Any], Mapping[Any, Any]]
    common: Callable[[Any, Any, Any, Any], Outcomes]
    details: Callable[[Change], list[str]]
    to_json: Callable[[Any], Any]
    added: Callable[[Any, Any, Any], Outcomes] | None = None
    removed: Callable[[Any, Any, Any], Outcomes] | None = None
    order: Callable[[Change], Any] = by_name
    scope: KindScope = "vhost"
    declared: Callable[[Topology], bool] = _always

    def compare(self, scope: Scope | BrokerScope) -> list[Outcome]:
        """Every outcome of this kind in ``scope`` (a vhost, or the broker); its changes in the kind's order."""
        desired = self.items(scope.desired)
        observed = self.items(scope.observed) if scope.exists else {}
        found = differences(desired, observed)
        outcomes: list[Outcome] = []
        for key in found.added:
            if self.added is None:
                outcomes += _created(scope, self.name, str(key), desired[key])
            else:
                outcomes += self.added(scope, key, desired[key])
        common = self.common
        for key in found.common:
            outcome = common(scope, key, desired[key], observed[key])
            if outcome:
                outcomes += outcome
        for key in found.removed:
            if self.removed is None:
                outcomes += _not_managed(scope, self.name, str(key), observed[key])
            else:
                outcomes += self.removed(scope, key, observed[key])
        changes = sorted((o for o in outcomes if isinstance(o, Change)), key=self.order)
        return [*changes, *(o for o in outcomes if not isinstance(o, Change))]


# -- words shared by the kinds ---------------------------------------------------------------------------


def show(value: Any) -> str:
    """A value in a reason: JSON, or "not set"."""
    if value is None:
        return "not set"
    return json.dumps(value, ensure_ascii=False)


def as_json(value: Any) -> str:
    """A value in a plan's detail lines: JSON with sorted keys."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def readable(spec: ArgSpec | None, value: Any, otherwise: Callable[[Any], str] = show) -> str:
    """A value as the files write it: a duration or size number in its unit form, unquoted (``86400000`` →
    ``1d``, :func:`topo.units.unit_form`); anything else as ``otherwise`` writes it. Replace reasons and
    detail lines both show values so."""
    number = isinstance(value, int) and not isinstance(value, bool)
    if spec is not None and spec.kind in ("duration", "size") and number and value:
        return str(unit_form(spec.kind, value))
    return otherwise(value)
