"""Observed state: what the broker has in the given vhosts, as the same :class:`Topology` type.

Each vhost is read through the port (:meth:`~topo.broker.port.Broker.read_vhost`: on a live broker two
requests, whatever its size), in parallel across vhosts, and normalised as the files are
(:func:`topo.definitions.vhost_from_definitions`), so an untouched broker never shows false drift.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from topo.broker.port import Broker
from topo.model import Topology

__all__ = ["Observed", "read"]


@dataclass
class Observed:
    """The broker's state of the vhosts asked for; ``missing`` lists those that do not exist."""

    topology: Topology
    missing: set[str] = field(default_factory=set)


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
