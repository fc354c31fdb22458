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

from collections.abc import Callable, Collection, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from topo.broker.port import Broker
from topo.errors import PermissionDenied
from topo.model import BROKER_COLLECTIONS, HELD_PER_VHOST, Topology
from topo.plan.kinds import BROKER_KINDS, BrokerFacts, Kind
from topo.plan.kinds import kind as kind_named
from topo.plan.ownership import decode

__all__ = ["READERS", "ConcurrentRead", "Observed", "read", "read_broker_wide", "reads"]

T = TypeVar("T")

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
    by_resource: bool = False  # some vhost was read resource by resource (no administrator tag)
    broker_wide_read: bool = False  # the broker-wide kinds the files declare are read (by a ConcurrentRead)
    not_compared: tuple[tuple[str, str | None], ...] = ()  # (kind, vhost or None): declared, and not readable


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


def _read_kind(broker: Broker, kind: str) -> Topology:
    part = Topology()
    READERS[kind](broker, part)
    return part


def _merge(into: Topology, part: Topology) -> None:
    """The broker-wide collections one reader filled in ``part``, into ``into``."""
    for item in fields(Topology):
        if item.name != "vhosts" and getattr(part, item.name):
            setattr(into, item.name, getattr(part, item.name))


_EARLY_KEY = {"stack": "name"}  # a stack's inventory is read when the files name a stack
_ALWAYS = frozenset({"stack"})  # read with --vhost too: what the stack owns in the vhost planned is in it


def _top_collection(kind: str) -> str | None:
    """The top-level key of the files whose presence means the files may declare some of ``kind``."""
    if kind in _EARLY_KEY:
        return _EARLY_KEY[kind]
    holder = HELD_PER_VHOST[kind][0] if kind in HELD_PER_VHOST else kind
    return BROKER_COLLECTIONS.get(holder)


class ConcurrentRead:
    """The broker's side of a plan, read in threads while the files load: each vhost as soon as its name is
    known (:meth:`vhosts`), the broker-wide kinds as soon as the files are seen to hold their collection
    (:meth:`collections`), and any other read a plan needs beside them (:meth:`start`, by a key: e.g. a
    global parameter of its own). :meth:`observed` then waits for what the loaded files declare, reads what
    no early guess started, and leaves out what they do not declare (read for nothing, errors included).

    ``partial``: a plan that is only shown (``topo plan``): a broker-wide kind the user may not read is left
    out of the comparison and named in ``Observed.not_compared``, not an error (``topo apply`` reads them all).
    """

    def __init__(self, broker: Broker, *, only: Collection[str] = (), partial: bool = False, workers: int = 8) -> None:
        self.broker = broker
        self.only = frozenset(only)
        self.partial = partial
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="topo-read")
        self._vhosts: dict[str, Future[Any]] = {}
        self._kinds: dict[str, Future[Topology]] = {}
        self._others: dict[str, Future[Any]] = {}
        self._facts: Future[list[str]] | None = None

    def __enter__(self) -> ConcurrentRead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop what has not started; what runs finishes in its thread (nothing waits for it)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def vhosts(self, names: Iterable[str]) -> None:
        """Start reading these vhosts (each once; none outside ``only`` when it is given)."""
        for name in names:
            if name not in self._vhosts and (not self.only or name in self.only):
                self._vhosts[name] = self._pool.submit(self.broker.read_vhost, name)

    def collections(self, keys: Iterable[str]) -> None:
        """Start reading the broker-wide kinds held in these top-level collections (``users``: users, their
        permissions and topic permissions; ``global-parameters``), unless ``only`` limits the run to vhosts."""
        wanted = set(keys)
        self.kinds(
            kind.name
            for kind in BROKER_KINDS
            if _top_collection(kind.name) in wanted and (not self.only or kind.name in _ALWAYS)
        )

    def kinds(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self._kinds:
                self._kinds[name] = self._pool.submit(_read_kind, self.broker, name)
                if self._facts is None:
                    self._facts = self._pool.submit(self.broker.vhost_names)

    def start(self, key: str, function: Callable[[], T]) -> Future[T]:
        """Run one more read beside the others (once per ``key``); its future, for :meth:`result`."""
        if key not in self._others:
            self._others[key] = self._pool.submit(function)
        return self._others[key]

    def result(self, key: str) -> Any:
        """What the read started under ``key`` returned (its error raised here)."""
        return self._others[key].result()

    def observed(self, desired: Topology) -> Observed:
        """The broker's state of what ``desired`` declares (see the class docstring)."""
        self.vhosts(desired.vhosts)
        observed = Observed(Topology())
        unread: list[tuple[str, str | None]] = []
        for name in sorted(desired.vhosts):
            if name not in self._vhosts:
                continue  # outside ``only``
            vhost = self._vhosts[name].result()
            if vhost is None:
                observed.missing.add(name)
                continue
            observed.topology.vhosts[name] = vhost
            for kind_name in sorted(self.broker.unread_kinds(name)):  # compared only where the files declare some
                if kind_named(kind_name).items(desired.vhosts[name]):
                    if not self.partial:
                        raise PermissionDenied(
                            f"the files declare {kind_name}s in vhost {name!r}, and user {self.broker.user!r} may "
                            f"not read them at {self.broker.url}",
                            hint="give the user the 'policymaker' or 'administrator' tag",
                        )
                    unread.append((kind_name, name))
        observed.by_resource = self.broker.read_by_resource
        wanted = [k.name for k in BROKER_KINDS if k.declared(desired) and (not self.only or k.name in _ALWAYS)]
        self.kinds(wanted)
        denied: list[str] = []
        for name in wanted:
            try:
                _merge(observed.topology, self._kinds[name].result())
            except PermissionDenied as exc:
                if not self.partial:
                    raise _denied(self.broker, name, "the files declare", exc) from None
                denied.append(name)
        if wanted and self._facts is not None and len(denied) < len(wanted):
            observed.facts = BrokerFacts(connecting_user=self.broker.user, vhosts=frozenset(self._facts.result()))
        elif wanted:
            observed.facts = BrokerFacts(connecting_user=self.broker.user)
        observed.not_compared = tuple([(name, None) for name in denied] + unread)
        observed.broker_wide_read = True
        return observed


_WHAT = {
    "user": "users",
    "permission": "users",
    "topic-permission": "users",
    "global-parameter": "global parameters",
}


def _denied(broker: Broker, kind: str, why: str, exc: PermissionDenied) -> PermissionDenied:
    if kind == "stack":
        if why != "the files declare":  # topo state, topo destroy
            return PermissionDenied(
                f"{why} the stacks' inventories (what each stack owns, kept in global parameters topo.stack.*), "
                f"and user {broker.user!r} may not read global parameters at {broker.url} (that needs the "
                "policymaker or administrator tag)",
                hint="run it as a user with the 'administrator' tag (or 'policymaker', which may also change global "
                "parameters and policies); `topo plan` with read-only credentials shows the plan without ownership",
                status=exc.status,
            )
        return PermissionDenied(
            "the files name their stack (name:), so topo reads its inventory (what the stack owns, kept in global "
            f"parameters topo.stack.*), and user {broker.user!r} may not read global parameters at {broker.url} "
            "(that needs the policymaker or administrator tag)",
            hint="give the user the 'administrator' tag; a plan to review only (`topo plan` without -o) goes on "
            "without the inventory and says what it could not compute",
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
