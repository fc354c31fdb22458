"""Is this client's side of the broker healthy? ``client.health()`` and ``topo health``.

Healthy means: the connection is up, and every queue checked exists and has the consumers the files
expect. Read over AMQP with a passive ``Queue.Declare`` per queue (exact figures, no statistics lag,
and only the runtime's own credentials: no Management API needed).

**Which queues, and how many consumers.** By default every queue the files declare in the client's
vhost, except the retry queues topo declares for ``retry:`` (never consumed, by design). A queue needs
at least as many consumers as its ``consumers`` check's *critical* level (``topo status``'s CRITICAL
line; the built-in one is 1), so the same queues are left alone: a dead-letter queue, a queue whose
``monitor:`` says ``consumers: off``. ``queues=`` limits the check to the queues it names.

The subscriptions of this client are listed too, with their circuit breakers: an **open** breaker does
not make the client unhealthy (restarting the process would not mend what the handler depends on; the
breaker tries again by itself), but it is reported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

from topo.model import Topology, VHost
from topo.monitor.resolve import resolve_vhost
from topo.runtime.breaker import BreakerSnapshot
from topo.runtime.channel import Channel
from topo.runtime.connection import Connection
from topo.runtime.errors import NotFound, RuntimeClientError

__all__ = ["Health", "QueueHealth", "check_health", "required_consumers"]


@dataclass(frozen=True, slots=True)
class QueueHealth:
    """One queue: whether it exists, its ready messages and consumers (None when missing), the consumers
    it needs (None: not checked), and the problem, if any."""

    queue: str
    exists: bool
    messages: int | None
    consumers: int | None
    required_consumers: int | None
    problem: str | None = None

    @property
    def healthy(self) -> bool:
        return self.problem is None


@dataclass(frozen=True, slots=True)
class Health:
    """The answer of :func:`check_health` (see the module docstring)."""

    vhost: str
    connected: bool
    blocked: str | None  # the broker's reason while it blocks publishers
    queues: tuple[QueueHealth, ...]
    breakers: tuple[tuple[str, BreakerSnapshot], ...] = ()  # (queue, breaker) of this client's subscriptions
    error: str | None = None  # why the check could not run to the end (the connection failed...)

    @property
    def healthy(self) -> bool:
        return self.connected and self.error is None and all(q.healthy for q in self.queues)

    @property
    def problems(self) -> list[str]:
        """What makes it unhealthy, one line each (empty when healthy)."""
        out = []
        if not self.connected:
            out.append("the connection is down")
        if self.error is not None:
            out.append(self.error)
        out.extend(f"queue {q.queue!r}: {q.problem}" for q in self.queues if q.problem is not None)
        return out


def required_consumers(topology: Topology, vhost: VHost) -> dict[str, int | None]:
    """Every declared queue of ``vhost`` but the generated retry queues, with the consumers it needs: its
    ``consumers`` check's critical level (as ``topo status`` reads it), None when it has no such check."""
    out: dict[str, int | None] = {}
    for expectation in resolve_vhost(vhost, topology.monitor).queues:
        if expectation.role == "retry":
            continue
        needed: int | None = None
        for check in expectation.checks:
            if check.name == "consumers" and check.critical is not None and check.problem is None:
                needed = int(check.critical.value)
        out[expectation.queue] = needed
    return out


async def check_health(
    connection: Connection,
    topology: Topology,
    vhost: VHost,
    queues: Iterable[str] | None = None,
    breakers: tuple[tuple[str, BreakerSnapshot], ...] = (),
) -> Health:
    """Check the connection and the queues (see the module docstring); never raises for what it finds."""
    required = required_consumers(topology, vhost)
    names = list(required) if queues is None else list(queues)
    if not connection.is_open:
        return Health(vhost.name, False, connection.blocked, (), breakers)
    results: list[QueueHealth] = []
    channel: Channel | None = None
    try:
        for name in names:
            if channel is None or channel.is_closed:
                channel = await connection.channel()
            needed = required.get(name)
            try:
                _, messages, consumers = await channel.queue_declare(name, passive=True)
            except NotFound:  # the broker closed the channel: the next queue gets a new one
                results.append(QueueHealth(name, False, None, None, needed, "missing on the broker"))
                continue
            problem = None
            if needed is not None and consumers < needed:
                problem = f"{consumers} consumer{'' if consumers == 1 else 's'}, needs at least {needed}"
            results.append(QueueHealth(name, True, messages, consumers, needed, problem))
    except RuntimeClientError as exc:
        return Health(vhost.name, connection.is_open, connection.blocked, tuple(results), breakers, str(exc))
    finally:
        if channel is not None and not channel.is_closed:
            with contextlib.suppress(RuntimeClientError):
                await channel.close()
    return Health(vhost.name, connection.is_open, connection.blocked, tuple(results), breakers)
