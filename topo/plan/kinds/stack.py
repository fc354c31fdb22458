"""A stack's inventory (``name:`` in the files): what the stack owns on the broker, kept in global parameters
``topo.stack.*``. Broker-wide; read when the files name their stack. The kinds do not compare it: the ownership
pass (:func:`topo.plan.ownership.own`) decides it from the whole plan, once every vhost is compared, and adds
its change (create, update; ``topo destroy``: delete)."""

from __future__ import annotations

from typing import Any

from topo.model import Address, Inventory
from topo.plan.kinds.base import Kind
from topo.plan.model import Change

__all__ = ["STACK"]

_SHOWN = 10


def _listed(addresses: frozenset[Address] | set[Address]) -> str:
    names = sorted(str(a) for a in addresses)
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def _details(change: Change) -> list[str]:
    before = change.before if isinstance(change.before, Inventory) else None
    after = change.after if isinstance(change.after, Inventory) else None
    lines: list[str] = []
    if after is not None:
        had = before.owned if before is not None else frozenset()
        gained, lost = after.owned - had, had - after.owned
        lines.append(f"owns {len(after.owned)} resource{'s' if len(after.owned) != 1 else ''}")
        if gained:
            lines.append(f"+ owns {len(gained)} more: {_listed(gained)}")
        if lost:
            lines.append(f"- forgets {len(lost)}: {_listed(lost)}")
        newly = after.protected - (before.protected if before is not None else frozenset())
        if newly:
            lines.append(f"protected: {_listed(newly)}")
    elif before is not None:
        lines.append(f"owned {len(before.owned)} resource{'s' if len(before.owned) != 1 else ''}")
    return lines


def _json(inventory: Inventory) -> dict[str, Any]:
    return {
        "stack": inventory.stack,
        "owned": sorted(str(a) for a in inventory.owned),
        "protected": sorted(str(a) for a in inventory.protected),
    }


STACK = Kind(
    name="stack",
    scope="broker",
    declared=lambda topology: topology.name is not None,
    actions=("create", "update", "delete"),
    items=lambda topology: {},  # compared by topo.plan.ownership, over the whole plan
    common=lambda scope, name, want, have: (),
    details=_details,
    to_json=_json,
)
