"""What a subscription does with a message its handler failed on (see :meth:`Client.subscribe`).

In this order:

1. A stream's message is acked: a stream keeps every message, and RabbitMQ refuses a reject.
2. The queue declares ``retry:`` delays and the message has retries left (header ``x-retry-count``):
   it is published (confirmed, same properties, no ``expiration``) to the default exchange with routing
   key ``<queue>.retry.<n>`` and ``x-retry-count: n``, then acked; when the delay queue's TTL expires
   it comes back to the queue.
3. The queue dead-letters (its ``x-dead-letter-exchange``, or a policy's ``dead-letter-exchange``):

   - an argument checked on the broker before consuming (:mod:`topo.runtime.verify`): the message is
     rejected without requeue and the broker dead-letters it (adding ``x-death``);
   - a policy (AMQP cannot read policies), or ``verify=False``: the runtime cannot know the broker would
     dead-letter it, so it does it itself: it publishes the message to the dead-letter exchange with the
     dead-letter routing key (else the message's own), ``mandatory`` and confirmed, then acks it.

4. Otherwise, and whenever the publish of 2 or 3 fails (unroutable, refused, connection lost), the
   message is **requeued after a back-off**: held (unacked, so it counts against the prefetch) for a
   delay, then nacked with requeue. The delays are the queue's ``retry:`` delays (the last one
   repeating), else :class:`Backoff` (1 s, doubling, at most 60 s), counted per message (its
   ``message_id``, else its exchange, routing key and body) in memory. Never a tight loop, never a drop.

The route a message came by is recorded when the runtime first republishes it (a retry, or a dead
letter of case 3b), in ``x-topo-original-exchange``, ``x-topo-original-routing-key`` and
``x-topo-original-queue``, and kept after, so that a dead letter can be sent back where it came from
(``topo dlq replay``; after a retry, ``x-death`` names only the default exchange and the retry queue).

Each failed attempt logs one line (WARNING, logger ``topo.runtime``) saying what became of the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from topo.model import Queue, retry_queue_name
from topo.runtime.codec import Properties
from topo.runtime.contracts import ClientPort
from topo.runtime.errors import RuntimeClientError
from topo.runtime.message import Message
from topo.runtime.metrics import QueueRecorder

__all__ = [
    "DEFAULT_BACKOFF",
    "ORIGINAL_EXCHANGE",
    "ORIGINAL_QUEUE",
    "ORIGINAL_ROUTING_KEY",
    "RETRY_HEADER",
    "Backoff",
    "Failures",
    "message_key",
    "retry_count",
    "retry_queue_name",
    "with_original_route",
]

log = logging.getLogger("topo.runtime")

RETRY_HEADER = "x-retry-count"
ORIGINAL_EXCHANGE = "x-topo-original-exchange"
ORIGINAL_ROUTING_KEY = "x-topo-original-routing-key"
ORIGINAL_QUEUE = "x-topo-original-queue"
_TRACKED = 10_000  # messages whose failed attempts are remembered (the oldest are forgotten first)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays (seconds) before a failed message is requeued in place: ``first``, then multiplied by
    ``factor`` on each further failure of the same message, at most ``cap``."""

    first: float = 1.0
    factor: float = 2.0
    cap: float = 60.0

    def __post_init__(self) -> None:
        if not (self.first > 0 and self.factor >= 1 and self.cap >= self.first):
            raise ValueError(f"a back-off needs first > 0, factor >= 1 and cap >= first, got {self}")

    def delay(self, attempt: int, declared: Sequence[int] = ()) -> float:
        """The delay before the ``attempt``-th requeue (1-based); ``declared`` (milliseconds, a queue's
        ``retry:`` delays) wins when given, its last delay repeating."""
        if declared:
            return declared[min(max(attempt, 1), len(declared)) - 1] / 1000
        return float(min(self.cap, self.first * self.factor ** min(max(attempt, 1) - 1, 64)))


DEFAULT_BACKOFF = Backoff()


def retry_count(message: Message) -> int:
    """How many retries the message went through (its ``x-retry-count`` header; 0 without)."""
    count = message.headers.get(RETRY_HEADER, 0)
    return count if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 0


def with_original_route(message: Message, queue: str) -> dict[str, Any]:
    """The message's headers, with the route it reached ``queue`` by recorded unless already recorded
    for that queue (a message dead-lettered into ``queue`` from another queue gets the new route)."""
    headers = dict(message.headers)
    if headers.get(ORIGINAL_QUEUE) != queue:
        headers[ORIGINAL_EXCHANGE] = message.exchange
        headers[ORIGINAL_ROUTING_KEY] = message.routing_key
        headers[ORIGINAL_QUEUE] = queue
    return headers


def message_key(message: Message) -> Hashable:
    """What identifies a message across deliveries: its ``message_id``, else exchange, routing key and body."""
    if message.message_id:
        return message.message_id
    return (message.exchange, message.routing_key, hashlib.blake2b(message.body, digest_size=12).digest())


class Failures:
    """Carries out the module docstring's rules for one subscription's queue."""

    def __init__(
        self,
        client: ClientPort,
        queue: Queue,
        *,
        backoff: Backoff,
        dead_letter: tuple[str, str | None] | None,
        by_broker: bool,
        metrics: QueueRecorder | None = None,
    ) -> None:
        self.client = client
        self.queue = queue
        self.backoff = backoff
        self.dead_letter = dead_letter  # (exchange, routing key or None), or None: no dead-lettering
        self.by_broker = by_broker  # the broker's queue was checked: a reject dead-letters it
        self.metrics = metrics if metrics is not None else QueueRecorder(queue.name)
        self._attempts: OrderedDict[Hashable, int] = OrderedDict()
        self._held: set[asyncio.TimerHandle] = set()

    def succeeded(self, message: Message) -> None:
        if self._attempts:
            self._attempts.pop(message_key(message), None)

    async def failed(self, message: Message, error: BaseException) -> None:
        """Settle a message whose handler raised ``error``, and log one line saying how."""
        outcome = await self._settle(message)
        log.warning(
            "handler failed on a message of %r (%s): %r; %s",
            self.queue.name,
            f"message id {message.message_id}" if message.message_id else "no message id",
            error,
            outcome,
        )

    def close(self) -> None:
        """Forget the held messages' timers: closing the channel gives them back to the queue."""
        for handle in self._held:
            handle.cancel()
        self._held.clear()

    async def _settle(self, message: Message) -> str:
        if message.from_stream:
            await message.ack()
            return "acked (a stream keeps every message)"
        delays = self.queue.retry_delays
        attempt = retry_count(message) + 1
        if delays and attempt <= len(delays):
            target = retry_queue_name(self.queue.name, attempt)
            headers = with_original_route(message, self.queue.name)
            headers[RETRY_HEADER] = attempt
            try:
                await self._republish(message, "", target, headers)
            except RuntimeClientError as exc:
                return f"could not schedule retry {attempt} ({exc}); {self._hold(message)}"
            await message.ack()
            self.metrics.retried += 1
            return f"retry {attempt} in {delays[attempt - 1] / 1000:g} s (through {target!r})"
        if self.dead_letter is not None:
            exchange, key = self.dead_letter
            shown = repr(exchange) if exchange else "the default exchange"
            if self.by_broker:
                await message.reject(requeue=False)
                self.metrics.dead_lettered += 1
                return f"rejected: the broker dead-letters it to {shown}"
            routing_key = key if key is not None else message.routing_key
            try:
                await self._republish(message, exchange, routing_key, with_original_route(message, self.queue.name))
            except RuntimeClientError as exc:
                return f"could not dead-letter it to {shown} ({exc}); {self._hold(message)}"
            await message.ack()
            self.metrics.dead_lettered += 1
            return f"dead-lettered by the runtime to {shown} with routing key {routing_key!r} (confirmed)"
        used = f"{len(delays)} retries used and " if delays else ""
        return f"{used}no dead-letter exchange: {self._hold(message)}"

    async def _republish(self, message: Message, exchange: str, routing_key: str, headers: dict[str, Any]) -> None:
        props = Properties(**{f: getattr(message.properties, f) for f in Properties.__slots__})
        props.headers = headers
        props.expiration = None  # a delay or a dead-letter queue decides how long it stays
        channel = await self.client.publishing_channel()
        await channel.publish(exchange, routing_key, message.body, props, mandatory=True)

    def _hold(self, message: Message) -> str:
        key = message_key(message)
        n = self._attempts.pop(key, 0) + 1
        self._attempts[key] = n
        if len(self._attempts) > _TRACKED:
            self._attempts.popitem(last=False)
        delay = self.backoff.delay(retry_count(message) + n, self.queue.retry_delays)

        def requeue() -> None:
            self._held.discard(handle)
            with contextlib.suppress(RuntimeClientError):
                message.nack_nowait(requeue=True)

        handle = asyncio.get_running_loop().call_later(delay, requeue)
        self._held.add(handle)
        self.metrics.requeued += 1
        return f"requeued in {delay:g} s (failure {n})"
