"""What RabbitMQ knows about queue arguments and policy keys: their kinds and where they apply.

One table serves the loader (units, types, "classic-only on a quorum queue"), the exporter (broker
arguments back to readable keys) and lint (arguments RabbitMQ silently ignores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CONSISTENT_HASH",
    "DELAYED_MESSAGE",
    "EXCHANGE_TYPES",
    "OPERATOR_POLICY_KEYS",
    "PLUGIN_EXCHANGE_TYPE",
    "POLICY_APPLY_TO",
    "POLICY_KEYS",
    "QUEUE_ARGUMENTS",
    "QUEUE_TYPES",
    "ArgSpec",
    "queue_argument",
]

ValueKind = Literal["duration", "size", "int", "bool", "string", "enum", "string-list"]
QUEUE_TYPES = ("classic", "quorum", "stream")
EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")
PLUGIN_EXCHANGE_TYPE = r"^x-[A-Za-z0-9][A-Za-z0-9._-]*$"
"""A plugin's exchange type (x-consistent-hash, x-delayed-message, x-random, ...): RabbitMQ's own names."""
DELAYED_MESSAGE = "x-delayed-message"  # routes as its argument x-delayed-type says, after the delay
CONSISTENT_HASH = "x-consistent-hash"  # its bindings' routing keys are weights: whole numbers from 1
POLICY_APPLY_TO = ("all", "queues", "exchanges", "classic_queues", "quorum_queues", "streams")

ALL: frozenset[str] = frozenset(QUEUE_TYPES)
CLASSIC = frozenset({"classic"})
QUORUM = frozenset({"quorum"})
STREAM = frozenset({"stream"})
CLASSIC_QUORUM = frozenset({"classic", "quorum"})
QUORUM_STREAM = frozenset({"quorum", "stream"})


@dataclass(frozen=True, slots=True)
class ArgSpec:
    """A queue argument or policy key: ``key`` is the readable kebab-case name used in files."""

    key: str
    kind: ValueKind
    queue_types: frozenset[str] = ALL
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    doc: str = ""

    @property
    def argument(self) -> str:
        """The broker's argument name (``x-message-ttl``)."""
        return "x-" + self.key


def _specs(*specs: ArgSpec) -> dict[str, ArgSpec]:
    return {spec.key: spec for spec in specs}


QUEUE_ARGUMENTS: dict[str, ArgSpec] = _specs(
    ArgSpec("message-ttl", "duration", CLASSIC_QUORUM, minimum=0, doc="how long a message may stay"),
    ArgSpec("expires", "duration", CLASSIC_QUORUM, minimum=1, doc="delete the queue after unused"),
    ArgSpec("max-length", "int", CLASSIC_QUORUM, minimum=0, doc="most messages the queue holds"),
    ArgSpec("max-length-bytes", "size", ALL, minimum=0, doc="most bytes of bodies the queue holds"),
    ArgSpec(
        "overflow",
        "enum",
        CLASSIC_QUORUM,
        choices=("drop-head", "reject-publish", "reject-publish-dlx"),
        doc="what happens when a length limit is reached",
    ),
    ArgSpec("dead-letter-exchange", "string", CLASSIC_QUORUM, doc="where rejected/expired messages go"),
    ArgSpec("dead-letter-routing-key", "string", CLASSIC_QUORUM, doc="routing key for dead letters"),
    ArgSpec("dead-letter-strategy", "enum", QUORUM, choices=("at-most-once", "at-least-once"), doc="quorum DLX"),
    ArgSpec("max-priority", "int", CLASSIC, minimum=1, maximum=255, doc="priorities 0..N (classic only)"),
    ArgSpec("single-active-consumer", "bool", CLASSIC_QUORUM, doc="deliver to one consumer at a time"),
    ArgSpec("delivery-limit", "int", QUORUM, minimum=0, doc="redeliveries before dead-lettering"),
    ArgSpec("queue-mode", "enum", CLASSIC, choices=("default", "lazy"), doc="classic queue mode"),
    ArgSpec("queue-version", "int", CLASSIC, minimum=1, maximum=2, doc="classic queue storage version"),
    ArgSpec(
        "queue-master-locator",
        "enum",
        CLASSIC,
        choices=("client-local", "min-masters", "random", "balanced"),
        doc="node of a classic queue",
    ),
    ArgSpec(
        "queue-leader-locator",
        "enum",
        QUORUM_STREAM,
        choices=("client-local", "balanced", "random", "least-leaders"),
        doc="node of the leader",
    ),
    ArgSpec("quorum-initial-group-size", "int", QUORUM, minimum=1, doc="initial replicas"),
    ArgSpec("max-in-memory-length", "int", QUORUM, minimum=0, doc="messages kept in memory"),
    ArgSpec("max-in-memory-bytes", "size", QUORUM, minimum=0, doc="bytes kept in memory"),
    ArgSpec("max-age", "string", STREAM, doc="stream retention, RabbitMQ's form: 7D, 12h, 30m"),
    ArgSpec("initial-cluster-size", "int", STREAM, minimum=1, doc="initial stream replicas"),
    ArgSpec("stream-max-segment-size-bytes", "size", STREAM, minimum=1, doc="stream segment size"),
)
"""Queue arguments by readable key; each becomes ``x-<key>`` on the broker."""

_BY_ARGUMENT = {spec.argument: spec for spec in QUEUE_ARGUMENTS.values()}


def queue_argument(argument: str) -> ArgSpec | None:
    """The spec of a broker argument name (``x-message-ttl``), or ``None`` when RabbitMQ does not know it."""
    return _BY_ARGUMENT.get(argument)


POLICY_KEYS: dict[str, ArgSpec] = _specs(
    *(
        spec
        for spec in QUEUE_ARGUMENTS.values()
        if spec.key not in {"max-priority", "single-active-consumer", "quorum-initial-group-size"}
    ),
    ArgSpec("alternate-exchange", "string", doc="exchanges: where unroutable messages go"),
    ArgSpec("ha-mode", "enum", CLASSIC, choices=("all", "exactly", "nodes"), doc="classic mirroring"),
    ArgSpec("ha-params", "int", CLASSIC, doc="classic mirroring parameter (int or list of nodes)"),
    ArgSpec("ha-sync-mode", "enum", CLASSIC, choices=("manual", "automatic")),
    ArgSpec("ha-sync-batch-size", "int", CLASSIC, minimum=1),
    ArgSpec("ha-promote-on-shutdown", "enum", CLASSIC, choices=("when-synced", "always")),
    ArgSpec("ha-promote-on-failure", "enum", CLASSIC, choices=("when-synced", "always")),
    ArgSpec("federation-upstream-set", "string"),
    ArgSpec("federation-upstream", "string"),
    ArgSpec("federation-upstream-pattern", "string"),
    ArgSpec("target-group-size", "int", QUORUM, minimum=1),
    ArgSpec("consumer-timeout", "duration", minimum=1),
)
"""Policy definition keys (the broker uses these same names, without ``x-``)."""

OPERATOR_POLICY_KEYS: frozenset[str] = frozenset(
    {
        "expires",
        "message-ttl",
        "max-length",
        "max-length-bytes",
        "max-in-memory-length",
        "max-in-memory-bytes",
        "delivery-limit",
    }
)
"""The keys RabbitMQ accepts in an operator policy."""
