"""The typed, normalised topology: what the files declare and what the broker has, as one type.

Both the loader (files) and the reader (broker) produce a :class:`Topology`, so the diff compares like
with like. Normalisation happens on the way in:

* queue and exchange arguments are a plain ``dict`` keyed by the broker's own argument names
  (``x-message-ttl``, ``alternate-exchange``), with the JSON type RabbitMQ expects (durations in
  milliseconds and sizes in bytes as ``int``);
* a queue's type is :attr:`Queue.type` (``classic``, ``quorum``, ``stream``), never an
  ``x-queue-type`` argument;
* policy definitions use the broker's keys with the broker's types;
* bindings are identified by :attr:`Binding.key` (source, destination type, destination, routing key,
  arguments), which is what RabbitMQ itself uses.

``origin`` fields record where a declaration came from (``file:line:col``); they never take part in
comparisons.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from topo.monitor.spec import MonitorBlock

__all__ = [
    "Address",
    "Binding",
    "BindingKey",
    "DestinationType",
    "Exchange",
    "Origin",
    "Policy",
    "Queue",
    "Topology",
    "VHost",
    "canonical_json",
]

DestinationType = Literal["queue", "exchange"]
BindingKey = tuple[str, str, str, str, str]
"""(source, destination_type, destination, routing_key, canonical JSON of arguments)"""


def canonical_json(value: Any) -> str:
    """A stable text form of a JSON value, used to compare and identify argument tables."""
    if not value and isinstance(value, dict):
        return "{}"  # most bindings: skip json.dumps
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a declaration stands in the files (1-based line and column)."""

    file: str
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")


def _segment(name: str) -> str:
    return f".{name}" if _PLAIN_NAME.match(name) else f"[{json.dumps(name, ensure_ascii=False)}]"


ResourceKind = Literal["vhost", "exchange", "queue", "binding", "policy", "operator-policy"]

_COLLECTION: dict[str, str] = {
    "exchange": "exchanges",
    "queue": "queues",
    "policy": "policies",
    "operator-policy": "operator-policies",
}


@dataclass(frozen=True, slots=True)
class Address:
    """A resource's address, written as its path in the topology document.

    ``vhosts.iot.queues.orders``, ``vhosts["/"].exchanges.dlx``,
    ``vhosts.iot.queues.analytics.bindings[sensor-data "sensor.#"]``.
    """

    kind: ResourceKind
    vhost: str
    name: str = ""

    def __str__(self) -> str:
        base = "vhosts" + _segment(self.vhost)
        if self.kind == "vhost":
            return base
        if self.kind == "binding":
            return base + self.name
        return base + "." + _COLLECTION[self.kind] + _segment(self.name)


@dataclass(frozen=True, slots=True)
class Exchange:
    name: str
    type: str = "direct"
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False
    arguments: Mapping[str, Any] = field(default_factory=dict)
    origin: Origin | None = field(default=None, compare=False)
    lint_disable: frozenset[str] = field(default=frozenset(), compare=False)  # lint codes off here

    @property
    def alternate_exchange(self) -> str | None:
        value = self.arguments.get("alternate-exchange")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Queue:
    name: str
    type: str = "classic"  # classic | quorum | stream
    durable: bool = True
    auto_delete: bool = False
    arguments: Mapping[str, Any] = field(default_factory=dict)
    origin: Origin | None = field(default=None, compare=False)
    # Client-side settings used by the runtime; they never reach the broker and never differ in a diff.
    prefetch: int | None = field(default=None, compare=False)
    retry_delays: tuple[int, ...] = field(default=(), compare=False)  # milliseconds
    lint_disable: frozenset[str] = field(default=frozenset(), compare=False)  # lint codes off here
    monitor: MonitorBlock | None = field(default=None, compare=False)  # `monitor:` (topo.monitor)

    @property
    def dead_letter_exchange(self) -> str | None:
        value = self.arguments.get("x-dead-letter-exchange")
        return value if isinstance(value, str) else None

    @property
    def dead_letter_routing_key(self) -> str | None:
        value = self.arguments.get("x-dead-letter-routing-key")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Binding:
    """``source`` exchange routes to ``destination`` (a queue or an exchange)."""

    source: str
    destination: str
    destination_type: DestinationType = "queue"
    routing_key: str = ""
    arguments: Mapping[str, Any] = field(default_factory=dict)
    origin: Origin | None = field(default=None, compare=False)

    @property
    def key(self) -> BindingKey:
        return (
            self.source,
            self.destination_type,
            self.destination,
            self.routing_key,
            canonical_json(dict(self.arguments)),
        )

    def describe(self) -> str:
        """``sensor-data "sensor.#"`` plus arguments, as shown inside a binding address."""
        text = f"{self.source or '(default)'} {json.dumps(self.routing_key, ensure_ascii=False)}"
        if self.arguments:
            args = ", ".join(f"{k}={canonical_json(v)}" for k, v in sorted(self.arguments.items()))
            text += " {" + args + "}"
        return text

    def address(self, vhost: str) -> Address:
        collection = "queues" if self.destination_type == "queue" else "exchanges"
        return Address("binding", vhost, f".{collection}{_segment(self.destination)}.bindings[{self.describe()}]")


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    pattern: str
    apply_to: str = "all"  # all | queues | exchanges | classic_queues | quorum_queues | streams
    priority: int = 0
    definition: Mapping[str, Any] = field(default_factory=dict)
    origin: Origin | None = field(default=None, compare=False)


@dataclass(slots=True)
class VHost:
    """A vhost and everything declared inside it.

    ``description``, ``tags`` and ``limits`` are ``None`` when the files do not manage them: topo then
    leaves whatever the broker has.
    """

    name: str
    description: str | None = None
    tags: tuple[str, ...] | None = None
    limits: Mapping[str, int] | None = None
    exchanges: dict[str, Exchange] = field(default_factory=dict)
    queues: dict[str, Queue] = field(default_factory=dict)
    bindings: dict[BindingKey, Binding] = field(default_factory=dict)
    policies: dict[str, Policy] = field(default_factory=dict)
    operator_policies: dict[str, Policy] = field(default_factory=dict)
    origin: Origin | None = field(default=None, compare=False)
    monitor: MonitorBlock | None = field(default=None, compare=False)  # defaults for its queues

    def bindings_to(self, destination: str, destination_type: DestinationType) -> Iterator[Binding]:
        for binding in self.bindings.values():
            if binding.destination == destination and binding.destination_type == destination_type:
                yield binding

    def bindings_from(self, source: str) -> Iterator[Binding]:
        for binding in self.bindings.values():
            if binding.source == source:
                yield binding

    def add_binding(self, binding: Binding) -> None:
        self.bindings[binding.key] = binding


@dataclass(slots=True)
class Topology:
    """Every vhost a set of files declares (or a broker has), by name."""

    vhosts: dict[str, VHost] = field(default_factory=dict)
    name: str | None = None
    version: int = 1
    lint_disable: frozenset[str] = frozenset()  # lint codes disabled for the whole topology
    monitor: MonitorBlock | None = None  # `monitor:` defaults for every queue (topo.monitor)

    def vhost(self, name: str) -> VHost:
        """The vhost called ``name``; a :class:`~topo.errors.UsageError` naming the known ones if absent."""
        try:
            return self.vhosts[name]
        except KeyError:
            from topo.errors import UsageError

            known = ", ".join(sorted(self.vhosts)) or "none"
            raise UsageError(
                f"vhost {name!r} is not declared in the topology",
                hint=f"declared vhosts: {known}",
            ) from None

    def only(self, vhosts: Sequence[str] | None) -> Topology:
        """The same topology limited to the named vhosts (all of them when ``vhosts`` is empty)."""
        if not vhosts:
            return self
        return Topology(
            {name: self.vhost(name) for name in vhosts},
            name=self.name,
            version=self.version,
            lint_disable=self.lint_disable,
            monitor=self.monitor,
        )
