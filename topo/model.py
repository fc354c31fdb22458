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
comparisons. Neither does ``keep_bindings`` (which undeclared bindings apply leaves alone), nor
:attr:`Queue.generated_by`, which marks the queues topo declares itself (the
retry delay queues of a queue with ``retry:``): the broker has them like any other, but no user wrote
them, so lint never reports them and the graph draws them as part of their queue's retries
(:func:`retry_queue_name` is how they are named, for the loader and the runtime alike).

Addresses: a resource, and any value inside a file, is shown as its path in the topology document
(``vhosts.iot.queues["orders.eu"].message-ttl``), written by :func:`document_path` alone, so that a
validation error, a plan and a lint finding name the same thing the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from topo.monitor.spec import MonitorBlock

__all__ = [
    "BROKER_COLLECTIONS",
    "BUILTIN_EXCHANGES",
    "DEFAULT_EXCHANGE",
    "HELD_PER_VHOST",
    "RESERVED_PARAMETER_PREFIX",
    "RESERVED_PREFIX",
    "SENSITIVE",
    "Address",
    "Binding",
    "BindingKey",
    "BindingPattern",
    "CircuitBreaker",
    "DestinationType",
    "Exchange",
    "FederationUpstream",
    "FederationUpstreamSet",
    "GlobalParameter",
    "Inventory",
    "Origin",
    "PasswordHash",
    "Permission",
    "Policy",
    "Queue",
    "Secret",
    "Shovel",
    "TopicPermission",
    "TopicPermissions",
    "Topology",
    "User",
    "VHost",
    "canonical_json",
    "document_path",
    "is_broker_exchange",
    "reserved_parameter",
    "retry_queue_name",
    "same_uris",
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


def document_path(path: Iterable[str | int]) -> str:
    """A path in a topology document as users read it: ``vhosts.iot.queues.orders.bindings[0]``.

    A key made of letters, digits, ``_`` and ``-`` (not starting with ``-``) follows a dot; any other
    (``orders.eu``, ``/``, a name with quotes or spaces) is written as a JSON string in brackets
    (``vhosts["/"]``); a list index in brackets. The empty path is ``""``.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not out and _PLAIN_NAME.match(part):
            out = part
        else:
            out += _segment(part)
    return out


def retry_queue_name(queue: str, attempt: int) -> str:
    """The delay queue that holds a message of ``queue`` before its ``attempt``-th retry (1-based).

    The loader declares these queues for a queue with ``retry:``; the runtime publishes to them.
    """
    return f"{queue}.retry.{attempt}"


ResourceKind = Literal[
    "vhost",
    "exchange",
    "queue",
    "binding",
    "policy",
    "operator-policy",
    # broker-wide kinds (users, global parameters) and what a user may do in a vhost
    "user",
    "permission",
    "topic-permission",
    "global-parameter",
    "stack",  # a stack's inventory: what it owns on the broker (topo.plan.ownership)
    # links between brokers and vhosts (issue 11.3): dynamic shovels, federation upstreams and their sets
    "shovel",
    "federation-upstream",
    "federation-upstream-set",
]

_COLLECTION: dict[str, str] = {
    "exchange": "exchanges",
    "queue": "queues",
    "policy": "policies",
    "operator-policy": "operator-policies",
    "shovel": "shovels",
    "federation-upstream": "federation-upstreams",
    "federation-upstream-set": "federation-upstream-sets",
}
"""The collection of a vhost that holds each kind (``vhosts.V.<collection>.NAME``)."""

BROKER_COLLECTIONS: dict[str, str] = {
    "user": "users",
    "global-parameter": "global-parameters",
    "stack": "stacks",
}
"""The broker-wide kinds (in no vhost) and the top-level collection of the document that holds each
(``<collection>.NAME``: ``users.orders``)."""

HELD_PER_VHOST: dict[str, tuple[str, str]] = {
    "permission": ("user", "permissions"),
    "topic-permission": ("user", "topic-permissions"),
}
"""Kinds that a broker-wide resource holds per vhost: (its kind, its key). The address is the holder's, then
the key and the vhost (``users.orders.permissions.shop``): the name is the holder's."""


@dataclass(frozen=True, slots=True)
class Address:
    """A resource's address, written as its path in the topology document.

    In a vhost: ``vhosts.iot.queues.orders``, ``vhosts["/"].exchanges.dlx``,
    ``vhosts.iot.queues.analytics.bindings[sensor-data "sensor.#"]``. Broker-wide (``vhost`` is ``""``):
    ``users.orders``, ``global-parameters.cluster_name``. Held by a broker-wide resource per vhost (``name``
    is the holder's): ``users.orders.permissions.shop``.
    """

    kind: ResourceKind
    vhost: str  # "" for a broker-wide kind (a user, a global parameter)
    name: str = ""  # a permission's and a topic permission's: its user's

    def __str__(self) -> str:
        if self.kind in BROKER_COLLECTIONS:
            return document_path((BROKER_COLLECTIONS[self.kind], self.name))
        if self.kind in HELD_PER_VHOST:
            holder, key = HELD_PER_VHOST[self.kind]
            return document_path((BROKER_COLLECTIONS[holder], self.name, key, self.vhost))
        if self.kind == "vhost":
            return document_path(("vhosts", self.vhost))
        if self.kind == "binding":  # name: the rest of the path, from Binding.address
            return document_path(("vhosts", self.vhost)) + self.name
        return document_path(("vhosts", self.vhost, _COLLECTION[self.kind], self.name))


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
    # Bindings to it that no file declares and apply leaves alone (None: the vhost's default).
    keep_bindings: tuple[BindingPattern, ...] | None = field(default=None, compare=False)
    protect: bool = field(default=False, compare=False)  # `protect: true`: no plan may delete or replace it

    @property
    def alternate_exchange(self) -> str | None:
        value = self.arguments.get("alternate-exchange")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """A queue's ``circuit-breaker:`` (runtime only): after ``failures`` consecutive failures of a
    subscription's handler, stop consuming for ``open_for_ms``, then try one message (half-open): a
    success resumes consuming, a failure stops it again. See :mod:`topo.runtime.breaker`."""

    failures: int
    open_for_ms: int


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
    circuit_breaker: CircuitBreaker | None = field(default=None, compare=False)
    lint_disable: frozenset[str] = field(default=frozenset(), compare=False)  # lint codes off here
    # Set on a queue topo declares itself: the name of the queue whose `retry:` asked for it (None: a
    # queue of the files, or read from a broker).
    generated_by: str | None = field(default=None, compare=False)
    # Bindings to it that no file declares and apply leaves alone (None: the vhost's default).
    keep_bindings: tuple[BindingPattern, ...] | None = field(default=None, compare=False)
    monitor: MonitorBlock | None = field(default=None, compare=False)  # `monitor:` (topo.monitor)
    protect: bool = field(default=False, compare=False)  # `protect: true`: no plan may delete or replace it

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
    protect: bool = field(default=False, compare=False)  # `protect: true`: no plan may delete it (nor re-create it)

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
        owner = document_path((collection, self.destination))
        return Address("binding", vhost, f".{owner}.bindings[{self.describe()}]")


@dataclass(frozen=True, slots=True)
class BindingPattern:
    """Which undeclared bindings to a queue or exchange apply leaves alone (``keep-bindings:``).

    ``exchange`` is the binding's source, exactly; ``routing_key`` a glob in which ``*`` stands for any
    run of characters (dots included) and every other character for itself. ``None`` matches anything:
    ``BindingPattern()`` is ``keep-bindings: all``.
    """

    exchange: str | None = None
    routing_key: str | None = None

    def matches(self, binding: Binding) -> bool:
        if self.exchange is not None and binding.source != self.exchange:
            return False
        return self.routing_key is None or _glob(self.routing_key).fullmatch(binding.routing_key) is not None

    def describe(self) -> str:
        """``{exchange: tenants, routing-key: "tenant.*"}``, or ``all``."""
        parts = []
        if self.exchange is not None:
            plain = _PLAIN_NAME.match(self.exchange)
            parts.append(f"exchange: {self.exchange if plain else json.dumps(self.exchange, ensure_ascii=False)}")
        if self.routing_key is not None:
            parts.append(f"routing-key: {json.dumps(self.routing_key, ensure_ascii=False)}")
        return "{" + ", ".join(parts) + "}" if parts else "all"

    def to_json(self) -> dict[str, str]:
        out = {}
        if self.exchange is not None:
            out["exchange"] = self.exchange
        if self.routing_key is not None:
            out["routing-key"] = self.routing_key
        return out


_GLOBS: dict[str, re.Pattern[str]] = {}


def _glob(pattern: str) -> re.Pattern[str]:
    compiled = _GLOBS.get(pattern)
    if compiled is None:
        compiled = _GLOBS[pattern] = re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)
    return compiled


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    pattern: str
    apply_to: str = "all"  # all | queues | exchanges | classic_queues | quorum_queues | streams
    priority: int = 0
    definition: Mapping[str, Any] = field(default_factory=dict)
    origin: Origin | None = field(default=None, compare=False)
    protect: bool = field(default=False, compare=False)  # `protect: true`: no plan may delete it


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
    # The default of its queues' and exchanges' keep_bindings (``keep-bindings:`` on the vhost).
    keep_bindings: tuple[BindingPattern, ...] = ()
    monitor: MonitorBlock | None = field(default=None, compare=False)  # defaults for its queues
    # -- vhost settings (issue 11.4); None: not managed
    default_queue_type: str | None = None  # classic | quorum | stream (set when the vhost is created)
    tracing: bool | None = None
    protect: bool = field(default=False, compare=False)  # `protect: true`: no plan may delete it
    # -- links (issue 11.3): dynamic shovels, federation upstreams and upstream sets (runtime parameters)
    shovels: dict[str, Shovel] = field(default_factory=dict)
    federation_upstreams: dict[str, FederationUpstream] = field(default_factory=dict)
    federation_upstream_sets: dict[str, FederationUpstreamSet] = field(default_factory=dict)

    def kept_by(self, binding: Binding) -> BindingPattern | None:
        """The ``keep-bindings`` pattern of ``binding``'s destination (or of this vhost) that matches it."""
        owner: Queue | Exchange | None = (
            self.queues.get(binding.destination)
            if binding.destination_type == "queue"
            else self.exchanges.get(binding.destination)
        )
        if owner is None:
            return None
        patterns = owner.keep_bindings if owner.keep_bindings is not None else self.keep_bindings
        return next((p for p in patterns if p.matches(binding)), None)

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
    """Every vhost a set of files declares (or a broker has), by name; and the broker-wide kinds.

    ``users``, ``permissions``, ``topic_permissions`` and ``global_parameters`` are what the files declare
    (a declared user's permissions are all of its permissions), or what the broker has when it was asked
    (read only when the files declare some: see :mod:`topo.broker.reader`).
    """

    vhosts: dict[str, VHost] = field(default_factory=dict)
    name: str | None = None
    version: int = 1
    lint_disable: frozenset[str] = frozenset()  # lint codes disabled for the whole topology
    monitor: MonitorBlock | None = None  # `monitor:` defaults for every queue (topo.monitor)
    # -- broker-wide kinds (issue 11): users, their permissions, global parameters
    users: dict[str, User] = field(default_factory=dict)
    permissions: dict[tuple[str, str], Permission] = field(default_factory=dict)  # by (user, vhost)
    topic_permissions: dict[tuple[str, str], TopicPermissions] = field(default_factory=dict)  # by (user, vhost)
    global_parameters: dict[str, GlobalParameter] = field(default_factory=dict)
    # -- what each stack owns, by stack name: read from the broker (never declared; topo.plan.ownership)
    stacks: dict[str, Inventory] = field(default_factory=dict)

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
        """The same topology limited to the named vhosts (all of them when ``vhosts`` is empty).

        Limited, it holds no broker-wide kinds (users, their permissions, global parameters)."""
        if not vhosts:
            return self
        return Topology(
            {name: self.vhost(name) for name in vhosts},
            name=self.name,
            version=self.version,
            lint_disable=self.lint_disable,
            monitor=self.monitor,
        )


# -- broker-wide kinds: users, permissions, topic permissions, global parameters (issue 11) -------------

SENSITIVE = "(sensitive)"
"""What every output shows in place of a password or a password hash."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A declared password: ``value`` is never shown (not in ``repr()``, ``str()``, messages or plans);
    ``source`` says where it comes from, for people (``${env:ORDERS_PASSWORD}``, ``password-file
    secrets/orders``): no secret in it. ``value`` is None when the files were loaded without their secrets
    (``topo.load(..., secrets=False)``) and this one was not at hand: such a user cannot be planned."""

    value: str | None
    source: str

    def __repr__(self) -> str:
        return f"Secret(source={self.source!r}, value={SENSITIVE!r})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """A password in the broker's form (base64 of salt and digest; ``""``: no password), with the broker's
    name of its hashing algorithm. Never shown either."""

    value: str
    algorithm: str

    def __repr__(self) -> str:
        return f"PasswordHash(algorithm={self.algorithm!r}, value={SENSITIVE!r})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class User:
    """A user. In the files: ``password`` (a secret source) or ``password_hash`` (the broker's form), or
    neither (the password is not managed); ``hashing_algorithm`` is the one topo hashes a declared
    ``password`` with (None: the broker's default). From the broker: ``password_hash`` is what it stores.
    ``limits`` None: not managed. The password fields never take part in ``==`` (whether a password
    changed is decided by :func:`topo.passwords.matches`) nor in ``repr()``."""

    name: str
    tags: tuple[str, ...] = ()  # sorted, without duplicates
    limits: Mapping[str, int] | None = None
    password: Secret | None = field(default=None, compare=False, repr=False)
    password_hash: PasswordHash | None = field(default=None, compare=False, repr=False)
    hashing_algorithm: str | None = field(default=None, compare=False)
    origin: Origin | None = field(default=None, compare=False)

    @property
    def manages_password(self) -> bool:
        return self.password is not None or self.password_hash is not None


@dataclass(frozen=True, slots=True)
class Permission:
    """What ``user`` may do in ``vhost``: regular expressions over resource names (PCRE, searched)."""

    user: str
    vhost: str
    configure: str
    write: str
    read: str
    origin: Origin | None = field(default=None, compare=False)
    protect: bool = field(default=False, compare=False)  # `protect: true`: no plan may revoke it

    def address(self) -> Address:
        return Address("permission", self.vhost, self.user)


@dataclass(frozen=True, slots=True)
class TopicPermission:
    """The routing keys a user may publish with (``write``) and bind or consume with (``read``) on a topic
    exchange."""

    exchange: str
    write: str
    read: str
    origin: Origin | None = field(default=None, compare=False)
    protect: bool = field(default=False, compare=False)  # `protect: true`: protects its user's on the vhost


@dataclass(frozen=True, slots=True)
class TopicPermissions:
    """A user's topic permissions in one vhost, by exchange: one resource, since RabbitMQ 3.10 deletes them
    all at once."""

    user: str
    vhost: str
    exchanges: Mapping[str, TopicPermission] = field(default_factory=dict)
    origin: Origin | None = field(default=None, compare=False)

    @property
    def protect(self) -> bool:
        """``protect: true`` on any exchange's entry: no plan may delete them, nor delete and set them again."""
        return any(entry.protect for entry in self.exchanges.values())

    def address(self) -> Address:
        return Address("topic-permission", self.vhost, self.user)


@dataclass(frozen=True, slots=True)
class GlobalParameter:
    """A broker-wide parameter (``cluster_name``, ...): any JSON value."""

    name: str
    value: Any
    origin: Origin | None = field(default=None, compare=False)


RESERVED_PARAMETER_PREFIX = "topo."
"""Global parameters named so are topo's own records on the broker (its inventory): never declared in files."""
_BROKER_PARAMETERS = frozenset({"internal_cluster_id"})


def reserved_parameter(name: str) -> str | None:
    """Why a global parameter called ``name`` may not be declared (None: it may)."""
    if name.startswith(RESERVED_PARAMETER_PREFIX):
        return f"global parameters named {RESERVED_PARAMETER_PREFIX}* are topo's own records on the broker"
    if name in _BROKER_PARAMETERS:
        return f"{name} is the broker's own (it sets it itself)"
    return None


@dataclass(frozen=True, slots=True)
class Inventory:
    """What stack ``stack`` owns on a broker: the addresses of the resources it created or adopted
    (``owned``), and those of them its files mark ``protect: true`` (``protected``; it also holds the users'
    permissions and topic permissions the files protect, which no stack owns). Kept on the broker
    itself, in global parameters named ``topo.stack.*`` (:mod:`topo.plan.ownership`)."""

    stack: str
    owned: frozenset[Address] = frozenset()
    protected: frozenset[Address] = frozenset()


# -- links: dynamic shovels, federation upstreams and upstream sets (issue 11.3) ----------------------------
#
# Each is a runtime parameter of its vhost (components ``shovel``, ``federation-upstream``,
# ``federation-upstream-set``). ``settings`` holds the broker's own keys and values but the URIs, normalised
# (legacy key names renamed, the defaults the broker applies left out: see :mod:`topo.definitions`), so that
# ``==`` compares what matters; the URIs carry credentials: each is a :class:`Secret` (never shown), compared
# by :func:`same_uris`.


def same_uris(a: Sequence[Secret], b: Sequence[Secret]) -> bool:
    """Whether two lists of URIs are the same (their values; neither is ever shown)."""
    return [u.value for u in a] == [u.value for u in b]


@dataclass(frozen=True, slots=True)
class Shovel:
    """A dynamic shovel: moves messages from a source (a queue, or an exchange with a routing key) to a
    destination (a queue or an exchange), each reached by its URIs (``amqp://`` alone: this broker, vhost ``/``;
    ``amqp:///shop``: vhost ``shop`` of this broker)."""

    name: str
    source_uris: tuple[Secret, ...] = field(default=(), compare=False, repr=False)
    destination_uris: tuple[Secret, ...] = field(default=(), compare=False, repr=False)
    settings: Mapping[str, Any] = field(default_factory=dict)
    origin: Origin | None = field(default=None, compare=False)
    lint_disable: frozenset[str] = field(default=frozenset(), compare=False)
    protect: bool = field(default=False, compare=False)  # `protect: true`: no plan may delete it

    def setting(self, key: str) -> Any:
        return self.settings.get(key)


@dataclass(frozen=True, slots=True)
class FederationUpstream:
    """A federation upstream: where a federated exchange or queue of this vhost takes its messages from."""

    name: str
    uris: tuple[Secret, ...] = field(default=(), compare=False, repr=False)
    settings: Mapping[str, Any] = field(default_factory=dict)
    origin: Origin | None = field(default=None, compare=False)
    protect: bool = field(default=False, compare=False)  # `protect: true`: no plan may delete it


@dataclass(frozen=True, slots=True)
class FederationUpstreamSet:
    """A named list of upstreams (each ``{"upstream": NAME, ...}``, with settings that override the upstream's),
    which a policy's ``federation-upstream-set`` names."""

    name: str
    members: tuple[Mapping[str, Any], ...] = ()
    origin: Origin | None = field(default=None, compare=False)
    protect: bool = field(default=False, compare=False)  # `protect: true`: no plan may delete it

    @property
    def upstreams(self) -> tuple[str, ...]:
        return tuple(str(m.get("upstream", "")) for m in self.members)


# -- the exchanges every vhost has ------------------------------------------------------------------------

DEFAULT_EXCHANGE = ""
"""The default exchange: it routes to the queue named by the routing key, and takes no binding of its own."""

RESERVED_PREFIX = "amq."
"""Exchange (and queue) names the broker keeps for itself: a client may not declare one."""

BUILTIN_EXCHANGES: Mapping[str, Exchange] = {
    x.name: x
    for x in (
        Exchange("amq.direct", "direct"),
        Exchange("amq.fanout", "fanout"),
        Exchange("amq.topic", "topic"),
        Exchange("amq.headers", "headers"),
        Exchange("amq.match", "headers"),
        Exchange("amq.rabbitmq.trace", "topic", internal=True),
    )
}
"""The exchanges every vhost has without declaring them (besides the default exchange ``""``), as RabbitMQ
3.10 declares them (tests/test_routing_broker.py checks them against a node)."""


def is_broker_exchange(name: str) -> bool:
    """Whether ``name`` is the broker's own exchange (the default one, or any ``amq.*``): no file declares
    it, a plan never touches it."""
    return name == DEFAULT_EXCHANGE or name.startswith(RESERVED_PREFIX)
