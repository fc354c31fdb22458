"""What :func:`topo.routing.route` returns: queues reached, paths, drop reasons, dead-letter steps."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from topo.model import Binding, DestinationType
from topo.routing.links import Link

__all__ = ["DeadLetter", "Forward", "Hop", "Path", "Refusal", "RouteResult"]

Refusal = Literal["NOT_FOUND", "ACCESS_REFUSED", "PRECONDITION_FAILED"]
"""How the broker refuses a publish (the AMQP channel error: 404, 403, 406)."""


@dataclass(frozen=True, slots=True)
class Hop:
    """One step of a path: a binding taken, an alternate exchange used, or the default exchange."""

    kind: Literal["binding", "alternate-exchange", "default-exchange"]
    source: str
    destination: str
    destination_type: DestinationType
    binding: Binding | None = field(default=None, compare=False)

    def describe(self) -> str:
        src = xname(self.source)
        if self.kind == "alternate-exchange":
            return f"{src} =[alternate exchange]=> {self.destination}"
        if self.kind == "default-exchange":
            return f"{src} -[{json.dumps(self.destination, ensure_ascii=False)}]-> {self.destination}"
        binding = self.binding
        if binding is None:  # a "binding" step is always made with its binding; say so rather than fail
            return f"{src} -[a binding]-> {self.destination}"
        label = json.dumps(binding.routing_key, ensure_ascii=False)
        if binding.arguments:
            label += " " + ", ".join(
                f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(binding.arguments.items())
            )
        return f"{src} -[{label}]-> {self.destination}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "source": self.source,
            "destination": self.destination,
            "destination_type": self.destination_type,
        }
        if self.binding is not None:
            data["routing_key"] = self.binding.routing_key
            data["arguments"] = dict(self.binding.arguments)
        return data


@dataclass(frozen=True, slots=True)
class Path:
    """How the message reaches ``queue``: the hops from the exchange it was published to."""

    queue: str
    hops: tuple[Hop, ...]

    @property
    def identity(self) -> tuple[Any, ...]:
        return (self.queue, *((h.kind, h.source, h.destination, h.binding and h.binding.key) for h in self.hops))

    def describe(self) -> str:
        if not self.hops:
            return self.queue
        text = xname(self.hops[0].source)
        for hop in self.hops:
            text += hop.describe()[len(xname(hop.source)) :]
        return text

    def to_json(self) -> dict[str, Any]:
        return {"queue": self.queue, "hops": [hop.to_json() for hop in self.hops]}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Where a message goes when ``queue`` dead-letters it.

    ``exchange`` is ``None`` when the queue has no dead-letter exchange (the message is discarded);
    ``result`` is the routing of the dead letter from ``exchange`` (its own ``dead_letters`` follow the
    next step); ``cycle`` names the queues of a dead-letter cycle the message would enter.
    """

    queue: str
    exchange: str | None
    routing_keys: tuple[str, ...] = ()
    result: RouteResult | None = None
    note: str | None = None
    cycle: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "exchange": self.exchange,
            "routing_keys": list(self.routing_keys),
            "result": self.result.to_json() if self.result is not None else None,
            "note": self.note,
            "cycle": list(self.cycle),
        }


@dataclass(frozen=True, slots=True)
class Forward:
    """A message that reached ``via`` (a shovel's source queue or exchange, or a federated exchange's upstream
    exchange) goes on through ``link`` to another place of the broker: ``result`` is its routing there (its
    own ``forwarded`` follow the next links), None with a ``note`` when it is not followed."""

    link: Link
    via: str
    result: RouteResult | None = None
    note: str | None = None

    def describe(self) -> str:
        """``shovel 'x' moves it from queue 'q' (vhost legacy) to exchange 'orders' in vhost shop``."""
        link = self.link
        source = f"{link.source_type} {quoted(self.via)} (vhost {link.source_vhost})"
        if link.destination_type is None:
            target = f"the same exchange in vhost {link.destination_vhost}"
        else:
            target = f"{link.destination_type} {quoted(link.destination or '')} in vhost {link.destination_vhost}"
        if link.kind == "federation":
            return f"{link.describe()} carries it from {source} to {target}"
        return f"{link.describe()} moves it from {source} to {target}"

    def to_json(self) -> dict[str, Any]:
        return {
            "link": self.link.to_json(),
            "via": self.via,
            "result": self.result.to_json() if self.result is not None else None,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class RouteResult:
    """Where one message goes. ``queues`` are sorted and each appears once."""

    vhost: str
    exchange: str
    routing_keys: tuple[str, ...]
    headers: Mapping[str, Any]
    queues: tuple[str, ...]
    paths: tuple[Path, ...]
    reason: str | None = None
    exchanges: tuple[str, ...] = ()  # every exchange the message passed through, in visiting order
    dead_letters: tuple[DeadLetter, ...] | None = None  # None unless dead_letter=True
    notes: tuple[str, ...] = field(default=())
    refused: Refusal | None = None  # the broker refuses the publish (closes the channel) instead
    # where shovels and federation take it on from here, to other vhosts of the topology (topo.routing.links)
    forwarded: tuple[Forward, ...] = ()

    @property
    def dropped(self) -> bool:
        return not self.queues

    @property
    def lost(self) -> bool:
        """Dropped here, and carried to no queue by a shovel or federation either."""
        return self.dropped and not any(f.result is not None and not f.result.lost for f in self.forwarded)

    @property
    def routing_key(self) -> str:
        return self.routing_keys[0] if self.routing_keys else ""

    def paths_to(self, queue: str) -> tuple[Path, ...]:
        return tuple(p for p in self.paths if p.queue == queue)

    def to_json(self) -> dict[str, Any]:
        return {
            "vhost": self.vhost,
            "exchange": self.exchange,
            "routing_key": self.routing_key,
            "routing_keys": list(self.routing_keys),
            "headers": jsonable(dict(self.headers)),
            "queues": list(self.queues),
            "dropped": self.dropped,
            "reason": self.reason,
            "paths": [p.to_json() for p in self.paths],
            "exchanges": list(self.exchanges),
            "notes": list(self.notes),
            "refused": self.refused,
            "dead_letters": ([d.to_json() for d in self.dead_letters] if self.dead_letters is not None else None),
            "forwarded": [f.to_json() for f in self.forwarded],
        }


def jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def xname(name: str) -> str:
    return "(default exchange)" if name == "" else name


def quoted(name: str) -> str:
    return "'" + name + "'"
