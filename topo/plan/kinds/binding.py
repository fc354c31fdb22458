"""Bindings: no update exists (a different binding is a delete plus a create), identified by what RabbitMQ
identifies them by (:attr:`topo.model.Binding.key`).

A binding of a declared queue or exchange that no file declares is deleted (the destination's bindings
are part of its declaration), unless the destination's (or the vhost's) ``keep-bindings`` matches it: then
it is kept, listed, and left alone. A binding whose source or destination is replaced (compared before, by
the exchange and queue kinds) goes with it and is created again, kept ones too. Any other binding no file
declares is not managed (but one from a replaced exchange is lost with it: the exchange's warnings say so).
"""

from __future__ import annotations

from typing import Any

from topo.definitions import binding_definition
from topo.model import Binding, BindingKey
from topo.plan.kinds.base import Kind, Outcomes, Scope
from topo.plan.model import Change, Kept, Unmanaged

__all__ = ["BINDING"]


def _replaced_endpoint(scope: Scope, binding: Binding) -> str | None:
    """Why ``binding`` is created again: its source or destination is replaced (``None``: it is not)."""
    exchanges, queues = scope.replaced.get("exchange", set()), scope.replaced.get("queue", set())
    if binding.source in exchanges:
        return f"re-created: exchange {binding.source!r} is replaced"
    if binding.destination_type == "queue" and binding.destination in queues:
        return f"re-created: queue {binding.destination!r} is replaced"
    if binding.destination_type == "exchange" and binding.destination in exchanges:
        return f"re-created: exchange {binding.destination!r} is replaced"
    return None


def _added(scope: Scope, key: BindingKey, want: Binding) -> Outcomes:
    return (Change("create", want.address(scope.desired.name), after=want),)


def _common(scope: Scope, key: BindingKey, want: Binding, have: Binding) -> Outcomes:
    if not (scope.replaced.get("exchange") or scope.replaced.get("queue")):
        return ()  # the usual case, quickly: nothing replaced, nothing to create again
    replaced = _replaced_endpoint(scope, want)  # only what existed is re-created
    if not replaced:
        return ()
    return (Change("create", want.address(scope.desired.name), after=want, reasons=(replaced,)),)


def _removed(scope: Scope, key: BindingKey, have: Binding) -> Outcomes:
    address = have.address(scope.desired.name)
    if not scope.managed_destination(have):
        replaced_source = have.source in scope.replaced.get("exchange", set())  # lost with it: a warning says so
        return () if replaced_source else (Unmanaged(address),)
    pattern = scope.desired.kept_by(have)
    if pattern is None:
        reason = "no file declares this binding of a managed " + have.destination_type
        return (Change("delete", address, before=have, reasons=(reason,)),)
    replaced = _replaced_endpoint(scope, have)  # dropped with it: bring it back
    if not replaced:
        return (Kept(address, pattern),)
    return Kept(address, pattern), Change(
        "create", address, after=have, reasons=(f"{replaced} (kept by keep-bindings)",)
    )


def _order(change: Change) -> Any:
    return (str(change.address), change.action)


BINDING = Kind(
    name="binding",
    actions=("create", "delete"),
    items=lambda vhost: vhost.bindings,
    added=_added,
    common=_common,
    removed=_removed,
    order=_order,
    details=lambda change: [],
    to_json=binding_definition,
)
