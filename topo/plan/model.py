"""A plan is data: typed changes, rendered and executed by separate consumers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from topo.model import Address, Binding, BindingPattern, Exchange, Policy, Queue

__all__ = ["Action", "Change", "Kept", "Plan", "Resource", "Unmanaged"]

Action = Literal["create", "update", "replace", "delete"]
Resource = Exchange | Queue | Binding | Policy | dict[str, Any]


@dataclass(frozen=True)
class Change:
    """One change to one resource.

    ``before``/``after`` are the observed and desired resource (``None`` for create/delete); for a vhost
    they are dicts of its metadata and limits. ``reasons`` say why (for a replace: what forces it).
    ``messages`` is the number of messages a replaced or deleted queue holds (``None``: not a queue, or
    not known).
    """

    action: Action
    address: Address
    before: Resource | None = None
    after: Resource | None = None
    reasons: tuple[str, ...] = ()
    messages: int | None = None
    warnings: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return self.address.kind

    @property
    def vhost(self) -> str:
        return self.address.vhost

    @property
    def loses_messages(self) -> bool:
        return self.action in ("replace", "delete") and self.kind == "queue" and bool(self.messages)


@dataclass(frozen=True)
class Unmanaged:
    """A resource inside a managed vhost that no file declares: listed, left alone."""

    address: Address
    detail: str = ""


@dataclass(frozen=True)
class Kept:
    """A binding of a declared queue or exchange that no file declares, left alone because ``pattern``
    (its destination's or its vhost's ``keep-bindings``) matches it."""

    address: Address
    pattern: BindingPattern


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    unmanaged: list[Unmanaged] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)  # bindings left alone by keep-bindings
    vhosts: tuple[str, ...] = ()  # the vhosts this plan looked at

    @property
    def empty(self) -> bool:
        return not self.changes

    def count(self, action: Action) -> int:
        return sum(1 for change in self.changes if change.action == action)

    @property
    def unsafe(self) -> list[Change]:
        """Changes that would delete messages."""
        return [change for change in self.changes if change.loses_messages]
