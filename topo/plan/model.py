"""A plan is data: typed changes, rendered and executed by separate consumers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from topo.model import (
    Address,
    Binding,
    BindingPattern,
    Exchange,
    FederationUpstream,
    FederationUpstreamSet,
    GlobalParameter,
    Inventory,
    Permission,
    Policy,
    Queue,
    Shovel,
    TopicPermissions,
    User,
)

__all__ = [
    "Action",
    "Blocker",
    "BrokerInfo",
    "Change",
    "Kept",
    "Plan",
    "QueueUsage",
    "ReadNotes",
    "Resource",
    "Unmanaged",
]

Action = Literal["create", "update", "replace", "delete", "migrate"]
Resource = (
    Exchange
    | Queue
    | Binding
    | Policy
    | dict[str, Any]
    | User
    | Permission
    | TopicPermissions
    | GlobalParameter
    | Inventory
    | Shovel
    | FederationUpstream
    | FederationUpstreamSet
)


@dataclass(frozen=True)
class QueueUsage:
    """What a queue holds and who reads it, counted for the safety rule (see :mod:`topo.plan.safety`).

    With ``exact``, ``ready`` and ``consumers`` were counted by the broker at that instant (an AMQP passive
    declare); ``unacked`` always comes from the Management API's statistics, which lag up to ~5 s (no
    exact count of it exists). Without ``exact``, every figure is from the statistics, and ``why_inexact``
    says why, for people (no secret in it): AMQP refused the user (a wrong password, no permission on the
    vhost), did not answer, another cluster answers there, ...
    """

    ready: int
    unacked: int
    consumers: int
    exact: bool
    why_inexact: str | None = None

    @property
    def messages(self) -> int:
        return self.ready + self.unacked


@dataclass(frozen=True)
class Blocker:
    """Why apply would refuse a change: ``code`` for programs (``messages``, ``consumers``,
    ``uncountable-stream``, ``inexact-count``), ``message`` for people (the same words in the plan and in
    apply's refusal), ``hint`` what to do about it."""

    code: str
    message: str
    hint: str


@dataclass(frozen=True)
class BrokerInfo:
    """The broker a plan was made against: its Management API URL (no credentials) and cluster name
    (``None`` when the plan did not need to ask; see :func:`topo.engine.describe_broker`)."""

    cluster_name: str | None
    url: str


@dataclass(frozen=True)
class Change:
    """One change to one resource.

    ``before``/``after`` are the observed and desired resource (``None`` for create/delete); for a vhost
    they are dicts of its metadata and limits. ``reasons`` say why (for a replace: what forces it).
    ``messages`` is the number of messages a replaced or deleted queue holds (``None``: not a queue, or
    not known); ``usage`` the counts it comes from. ``blockers`` are the reasons apply would refuse the
    change (empty: nothing stops it).
    """

    action: Action
    address: Address
    before: Resource | None = None
    after: Resource | None = None
    reasons: tuple[str, ...] = ()
    messages: int | None = None
    warnings: tuple[str, ...] = ()
    blockers: tuple[Blocker, ...] = ()
    usage: QueueUsage | None = None

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


_NEEDS = {
    "user": "the administrator tag",
    "permission": "the administrator tag",
    "topic-permission": "the administrator tag",
}
_PLURAL = {"user": "users", "permission": "permissions", "topic-permission": "topic permissions"}


def _plural(kind: str) -> str:
    return _PLURAL.get(kind, kind.replace("-", " ") + "s")


@dataclass(frozen=True)
class ReadNotes:
    """How the broker was read for a plan, for its notes. ``by_resource``: the user (``user``) may not read
    the vhosts' definitions (the administrator tag), so each vhost was read from its listings into the same
    model. ``not_compared``: (kind, vhost; ``None`` for a broker-wide kind) the files declare that the user
    may not read, left out of the plan (a plan that is only shown: ``topo plan``; ``topo apply`` refuses to
    go on without them). ``stack``: the stack the files name (``name:``); when its inventory is among
    ``not_compared`` (kind ``stack``), the plan's ownership is not known (:attr:`ownership_known`)."""

    user: str | None = None
    by_resource: bool = False
    not_compared: tuple[tuple[str, str | None], ...] = ()
    stack: str | None = None

    @property
    def complete(self) -> bool:
        """Whether every kind the files declare was compared."""
        return not self.not_compared

    @property
    def ownership_known(self) -> bool:
        """False when the files name a stack whose inventory the user may not read: what the stack owns, what
        ``--prune`` deletes, what ``--adopt`` takes over and what other stacks own were not computed."""
        return ("stack", None) not in self.not_compared

    def _words(self, kind: str) -> str:
        if kind == "stack":
            return f"the inventory of stack {self.stack!r}" if self.stack else "the stack's inventory"
        return _plural(kind)

    def not_compared_words(self) -> str:
        """``users, permissions; shovels, federation upstreams in vhost 'v'``."""
        groups: dict[str | None, list[str]] = {}
        for kind, vhost in self.not_compared:
            words = groups.setdefault(vhost, [])
            if self._words(kind) not in words:
                words.append(self._words(kind))
        return "; ".join(
            ", ".join(words) + (f" in vhost {vhost!r}" if vhost is not None else "") for vhost, words in groups.items()
        )

    def ownership_note(self) -> str | None:
        """What a plan says when it could not read its stack's inventory (``None``: it could, or no stack)."""
        if self.ownership_known:
            return None
        who = f"user {self.user!r}" if self.user else "the user"
        stack = f"stack {self.stack!r}" if self.stack else "their stack"
        return (
            f"Ownership not known: the files name {stack}, and "
            f"{who} may not read its inventory (global parameters topo.stack.*: that needs the policymaker or "
            "administrator tag). This plan compares the files with the broker as if they named no stack: it does "
            "not show what --prune would delete (what the stack owns and no file declares any more), what --adopt "
            "would take over, the inventory's own change, nor which resources another stack owns: apply refuses to "
            'update or replace those, and leaves their bindings alone (such changes are marked "ownership not '
            'known"). `topo apply` reads the inventory, and may do more or refuse what this plan shows.'
        )

    def notes(self) -> list[str]:
        """The notes a plan shows (sentences for people; none for a plan read the usual way)."""
        who = f"user {self.user!r}" if self.user else "the user"
        out = []
        if self.by_resource:
            out.append(
                f"Read resource by resource: {who} may not read the vhosts' definitions (that needs the "
                "administrator tag), so each vhost was read from its listings (queues, exchanges, bindings, "
                "policies, operator policies, limits, shovels and federation links where it may): the same "
                "comparison, not one snapshot."
            )
        needs: dict[str, list[tuple[str, str | None]]] = {}
        for item in self.not_compared:
            if item != ("stack", None):  # its own note
                needs.setdefault(_NEEDS.get(item[0], "the administrator or policymaker tag"), []).append(item)
        for need, items in needs.items():
            words = ReadNotes(not_compared=tuple(items)).not_compared_words()
            out.append(
                f"Not compared: {words}. The files declare them, and {who} may not read them (that needs {need}): "
                "this plan shows no change to them, whatever the files say. `topo apply` reads and compares them."
            )
        ownership = self.ownership_note()
        if ownership is not None:
            out.append(ownership)
        return out


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    unmanaged: list[Unmanaged] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)  # bindings left alone by keep-bindings
    vhosts: tuple[str, ...] = ()  # the vhosts this plan looked at
    broker: BrokerInfo | None = None  # the broker it was made against (None: not known)
    adopted: list[Address] = field(default_factory=list)  # existing resources the stack takes over (--adopt)
    unowned: list[Unmanaged] = field(default_factory=list)  # declared, existing, not the stack's (detail: whose)
    allow_data_loss: bool = False  # --allow-data-loss: queues holding messages may be dropped (named in the plan)
    read: ReadNotes = field(default_factory=ReadNotes)  # how the broker was read (notes a plan shows)

    @property
    def empty(self) -> bool:
        return not self.changes

    def count(self, action: Action) -> int:
        return sum(1 for change in self.changes if change.action == action)

    @property
    def unsafe(self) -> list[Change]:
        """Changes that would delete messages."""
        return [change for change in self.changes if change.loses_messages]

    @property
    def blocked_changes(self) -> list[Change]:
        """Changes apply would refuse (each with its ``blockers``)."""
        return [change for change in self.changes if change.blockers]

    @property
    def blocked(self) -> bool:
        """Whether apply would refuse this plan (some change is blocked)."""
        return any(change.blockers for change in self.changes)
