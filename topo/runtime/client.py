"""The topology-aware client: ``topo.connect(topology, vhost=..., url=...)``.

Every call names exchanges and queues of the declared topology, and the client uses what the topology
says about them: a publish is checked against the declared bindings before any I/O (and published
``mandatory``), persistent when it reaches a durable queue; a consumer takes the queue's declared
prefetch; a failing handler's message goes where the queue's dead-letter settings or retry policy send
it. See :mod:`topo.runtime.consume` for consumers and RPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import os
import re
import secrets
import ssl
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from dataclasses import replace
from typing import Any

from topo.arguments import DELAYED_MESSAGE
from topo.errors import UsageError
from topo.model import BUILTIN_EXCHANGES, CircuitBreaker, Queue, Topology, VHost
from topo.routing import route, routing_type
from topo.runtime import codec
from topo.runtime.channel import Channel
from topo.runtime.codec import Properties
from topo.runtime.connection import Connection
from topo.runtime.consume import MessageStream, RpcClient, Subscription
from topo.runtime.dlq import DeadLetter, ReplayReport, replay_dead_letters
from topo.runtime.errors import ClientClosed, InvalidRoutingKey, NotDeclared, UnroutableError
from topo.runtime.failures import Backoff
from topo.runtime.health import Health, check_health
from topo.runtime.message import Message, encode_body
from topo.runtime.metrics import QueueRecorder, RuntimeMetrics
from topo.runtime.url import parse_url
from topo.shortstr import SHORTSTR_MAX, shortstr_excess, too_long_message
from topo.urls import DEFAULT_AMQP_URL

__all__ = ["DEFAULT_AMQP_URL", "DEFAULT_PREFETCH", "Client", "Publisher", "connect", "encode_body"]

DEFAULT_PREFETCH = 100
_ROUTING_HINT = "fix the routing key or the bindings, or pass check_routing=False"
_MESSAGE_ID_FLAG = 1 << 7
_BUILTIN = frozenset(name for name, exchange in BUILTIN_EXCHANGES.items() if not exchange.internal)  # publishable


def _no_confirms() -> UsageError:
    """What send() raises should the publishing channel lack confirms (never: it is opened with them)."""
    return UsageError("the publishing channel has no publisher confirms")


def _check_routing_key(routing_key: str) -> None:
    """:class:`InvalidRoutingKey` unless ``routing_key`` fits an AMQP short string as UTF-8."""
    try:
        routing_key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRoutingKey(
            f"the routing key {routing_key!r} is not UTF-8 text", hint="AMQP carries routing keys as UTF-8"
        ) from None
    size = shortstr_excess(routing_key)
    if size is not None:
        raise InvalidRoutingKey(too_long_message("routing key", size), hint="shorten it")


def connect(
    topology: Topology,
    *,
    vhost: str,
    url: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    reconnect: bool = True,
    name: str = "topo",
) -> Client:
    """A client for ``vhost`` of ``topology``; use ``async with connect(...) as client`` or ``await``.

    ``url`` defaults to ``$TOPO_AMQP_URL``, then ``amqp://guest:guest@localhost:5672/``; the vhost comes
    from ``vhost`` (not the URL's path). Raises :class:`~topo.errors.UsageError` at once when the vhost
    is not declared.
    """
    declared = topology.vhost(vhost)
    params = parse_url(url or os.environ.get("TOPO_AMQP_URL") or DEFAULT_AMQP_URL, ssl_context=ssl_context)
    params = replace(params, vhost=vhost, client_name=name)
    return Client(topology, declared, Connection(params, reconnect=reconnect))


class Client:
    """A connection used through the declared topology of one vhost (see :func:`connect`)."""

    def __init__(self, topology: Topology, vhost: VHost, connection: Connection) -> None:
        self.topology = topology
        self.vhost = vhost
        self.connection = connection
        # The shared publishing channel once publishing_channel() opened it (it may have closed since),
        # else None. Read it; publishing_channel() sets it. (A plain attribute: send() reads it per message.)
        self.publishing: Channel | None = None
        self._publishing_lock = asyncio.Lock()
        self._publishers: dict[str, Publisher] = {}
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(6)
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._rpc: RpcClient | None = None  # made on first use
        self._recorders: dict[str, QueueRecorder] = {}  # per queue with a subscription (see metrics())

    # -- lifecycle --------------------------------------------------------------------------------------

    async def open(self) -> Client:
        """Open the connection, unless it was opened already."""
        if not self.connection.opened:
            await self.connection.open()
        return self

    def __await__(self) -> Generator[Any, None, Client]:
        return self.open().__await__()

    async def __aenter__(self) -> Client:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop consumers and servers, wait for outstanding confirms (briefly), close the connection."""
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):  # closing anyway
                await closer()
        self._closers.clear()
        if self.publishing is not None and self.publishing.is_open and self.publishing.outstanding:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.publishing.wait_outstanding(0), 5)
        await self.connection.close()

    def metrics(self) -> RuntimeMetrics:
        """The counters since the client opened, read now: the connection's (published, confirmed,
        nacked, returned, unconfirmed, delivered, acked, rejected, requeued, reconnections, blocked) and,
        per queue with a subscription, the handler's (handled, failed, retried, dead-lettered, requeued,
        processing time, circuit breaker). See :mod:`topo.runtime.metrics`."""
        connection = self.connection
        channels = list(connection.channels.values())
        totals = connection.counters()
        return RuntimeMetrics(
            published=totals["published"],
            confirmed=totals["confirmed"],
            nacked=totals["nacked"],
            returned=totals["returned"],
            unconfirmed=sum(c.outstanding for c in channels),
            delivered=totals["delivered"],
            acked=totals["acked"],
            rejected=totals["rejected"],
            requeued=totals["requeued"],
            reconnections=connection.reconnects,
            blocked=connection.blocked,
            channels=len(channels),
            connected=connection.is_open,
            queues={name: recorder.snapshot() for name, recorder in sorted(self._recorders.items())},
        )

    def queue_recorder(self, queue: str) -> QueueRecorder:
        """Where the subscriptions of ``queue`` count (made on first use; see :meth:`metrics`)."""
        recorder = self._recorders.get(queue)
        if recorder is None:
            recorder = self._recorders[queue] = QueueRecorder(queue)
        return recorder

    async def health(self, queues: Iterable[str] | None = None) -> Health:
        """Whether the connection is up and the declared queues (or ``queues``) exist and have the
        consumers the files expect; see :mod:`topo.runtime.health`. Never raises for what it finds:
        ``health.healthy`` and ``health.problems`` say it."""
        names = None if queues is None else [self.queue(name).name for name in queues]
        if not self.connection.opened:
            await self.open()
        breakers = tuple(
            (name, recorder.breaker.snapshot())
            for name, recorder in sorted(self._recorders.items())
            if recorder.breaker is not None
        )
        return await check_health(self.connection, self.topology, self.vhost, names, breakers)

    # -- topology lookups -----------------------------------------------------------------------------------

    def queue(self, name: str) -> Queue:
        """The declared queue ``name``; :class:`NotDeclared` (naming the declared ones) if absent."""
        queue = self.vhost.queues.get(name)
        if queue is None:
            known = ", ".join(sorted(self.vhost.queues)) or "none"
            raise NotDeclared(
                f"queue {name!r} is not declared in vhost {self.vhost.name!r}", hint=f"declared queues: {known}"
            )
        return queue

    def _check_exchange(self, name: str) -> None:
        if name == "" or name in _BUILTIN:
            return
        exchange = self.vhost.exchanges.get(name)
        if exchange is None:
            known = ", ".join(sorted(self.vhost.exchanges)) or "none"
            raise NotDeclared(
                f"exchange {name!r} is not declared in vhost {self.vhost.name!r}",
                hint=f"declared exchanges: {known}",
            )
        if exchange.internal:
            raise NotDeclared(f"exchange {name!r} is internal: clients cannot publish to it")

    def new_message_id(self) -> str:
        return f"{self._id_prefix}.{next(self._ids)}"

    async def publishing_channel(self) -> Channel:
        """The shared channel (with publisher confirms) every publisher of this client uses."""
        channel = self.publishing
        if channel is not None and not channel.is_closed:
            return channel
        async with self._publishing_lock:
            if self.publishing is None or self.publishing.is_closed:
                self.publishing = await self.connection.channel(confirms=True)
            return self.publishing

    # -- publishing -------------------------------------------------------------------------------------------

    def publisher(self, exchange: str, *, check_routing: bool = True) -> Publisher:
        """A publisher to ``exchange`` (declared in the topology, or ``""`` for the default exchange)."""
        self._check_exchange(exchange)
        publisher = self._publishers.get(exchange) if check_routing else None
        if publisher is None:
            publisher = Publisher(self, exchange, check_routing=check_routing)
            if check_routing:
                self._publishers[exchange] = publisher
        return publisher

    async def publish(self, exchange: str, routing_key: str, body: Any, **options: Any) -> None:
        """``client.publisher(exchange).publish(routing_key, body, **options)``."""
        await self.publisher(exchange).publish(routing_key, body, **options)

    # -- consuming and RPC (see topo.runtime.consume) ------------------------------------------------------------

    def consume(
        self,
        queue: str,
        *,
        prefetch: int | None = None,
        no_ack: bool = False,
        offset: StreamOffset | None = None,
        arguments: Mapping[str, Any] | None = None,
    ) -> MessageStream:
        """An async context manager and iterator of the queue's messages (manual acks, declared prefetch).

        ``offset``, for a stream only: where to start reading: ``"first"``, ``"last"``, ``"next"`` (the
        broker's default: only messages published from now on), an offset (``int``, from 0), a
        ``datetime``, or an interval such as ``"1h"`` (``x-stream-offset``). ``arguments`` are other
        consumer arguments (``x-priority``...).
        """
        declared = self.queue(queue)
        consumer_arguments = _consumer_arguments(declared, offset, arguments, no_ack)
        return MessageStream(
            self,
            declared.name,
            self._prefetch(declared, prefetch),
            no_ack=no_ack,
            arguments=consumer_arguments,
            stream=declared.type == "stream",
        )

    async def subscribe(
        self,
        queue: str,
        handler: Callable[[Message], Awaitable[Any] | Any],
        *,
        prefetch: int | None = None,
        concurrency: int = 1,
        offset: StreamOffset | None = None,
        arguments: Mapping[str, Any] | None = None,
        verify: bool = True,
        backoff: Backoff | None = None,
        circuit_breaker: CircuitBreaker | None = None,
    ) -> Subscription:
        """Run ``handler`` for each message: ack on success; on an exception, retry per the queue's retry
        policy, else dead-letter it, else requeue it after a back-off (never in a tight loop, never
        dropped): see :mod:`topo.runtime.failures`. Returns a :class:`Subscription`.

        First it checks that the broker's queue (its arguments, its retry queues, its dead-letter
        exchange) is what the files declare, and raises :class:`TopologyMismatch` naming the difference
        otherwise (:mod:`topo.runtime.verify`; needs the configure permission on the queue).
        ``verify=False`` skips that; the runtime then dead-letters failed messages itself (confirmed)
        rather than rely on the broker's queue. ``backoff``: the requeue delays when the queue declares
        no ``retry:`` (default: 1 s, doubling, at most 60 s). ``circuit_breaker``: stop consuming after
        that many failures in a row, for a while (default: the queue's ``circuit-breaker:``, else none;
        see :mod:`topo.runtime.breaker`).

        ``offset`` and ``arguments``: as for :meth:`consume`. A stream keeps every message: one whose
        handler failed is not delivered again (read the stream again from its offset)."""
        declared = self.queue(queue)
        consumer_arguments = _consumer_arguments(declared, offset, arguments, False)
        subscription = Subscription(
            self,
            declared,
            handler,
            self._prefetch(declared, prefetch),
            concurrency,
            arguments=consumer_arguments,
            verify=verify,
            backoff=backoff,
            circuit_breaker=circuit_breaker,
        )
        await subscription.start()
        self._closers.append(subscription.cancel)
        return subscription

    async def serve(
        self,
        queue: str,
        handler: Callable[[Message], Awaitable[Any] | Any],
        *,
        prefetch: int | None = None,
        concurrency: int = 1,
        verify: bool = True,
        backoff: Backoff | None = None,
        circuit_breaker: CircuitBreaker | None = None,
    ) -> Subscription:
        """Answer RPC requests on ``queue``: the handler's return value is the reply (JSON unless bytes/str);
        when it raises, the reply says so (:class:`RemoteError` for the caller). ``verify``, ``backoff``,
        ``circuit_breaker``: as for :meth:`subscribe` (a request without ``reply_to`` is treated as a
        subscription's message; a handler's failure counts for the breaker, replied or not)."""
        declared = self.queue(queue)
        subscription = Subscription(
            self,
            declared,
            handler,
            self._prefetch(declared, prefetch),
            concurrency,
            reply=True,
            verify=verify,
            backoff=backoff,
            circuit_breaker=circuit_breaker,
        )
        await subscription.start()
        self._closers.append(subscription.cancel)
        return subscription

    async def rpc(
        self,
        queue: str,
        body: Any,
        *,
        timeout: float = 5.0,
        headers: Mapping[str, Any] | None = None,
        content_type: str | None = None,
    ) -> Any:
        """Send a request to ``queue`` (through the default exchange) and return the decoded reply.

        :class:`RpcTimeout` when no reply came within ``timeout`` seconds (the request expires then);
        :class:`RemoteError` when the server's handler raised. The reply as :meth:`Message.decoded` gives it:
        JSON as Python values, text as ``str``, else ``bytes``."""
        self.queue(queue)
        if self._rpc is None:
            self._rpc = RpcClient(self)
            self._closers.append(self._rpc.close)
        return await self._rpc.call(queue, body, timeout=timeout, headers=headers, content_type=content_type)

    async def replay_dead_letters(
        self,
        queue: str,
        *,
        count: int | None = None,
        dry_run: bool = False,
        on_item: Callable[[DeadLetter], None] | None = None,
    ) -> ReplayReport:
        """Republish (at most ``count``) dead letters of ``queue`` to the route each came by, acking each
        only once its copy is confirmed; ``dry_run`` moves nothing. Returns a
        :class:`~topo.runtime.dlq.ReplayReport`; see :mod:`topo.runtime.dlq`."""
        return await replay_dead_letters(self, queue, count=count, dry_run=dry_run, on_item=on_item)

    def _prefetch(self, queue: Queue, prefetch: int | None) -> int:
        if prefetch is not None:
            return prefetch
        return queue.prefetch if queue.prefetch is not None else DEFAULT_PREFETCH


class Publisher:
    """Publishes to one exchange; see :meth:`publish` and :meth:`send`."""

    def __init__(self, client: Client, exchange: str, *, check_routing: bool) -> None:
        self.client = client
        self.exchange = exchange
        self.check_routing = check_routing
        self._routes: dict[str, tuple[str | None, bool]] = {}  # routing key -> (drop reason, persistent)
        declared = client.vhost.exchanges.get(exchange)
        self._by_headers = declared is not None and routing_type(declared) == "headers"
        # The delayed-message plugin routes after the delay, so the broker returns every mandatory message
        # to such an exchange at once (rabbitmq-delayed-message-exchange#7), routed or not: the offline
        # check is all there is for those.
        self.mandatory = declared is None or declared.type != DELAYED_MESSAGE
        self._prefixes: dict[tuple[str | None, int], tuple[int, bytes]] = {}

    def route(self, routing_key: str, headers: Mapping[str, Any] | None = None) -> tuple[str | None, bool]:
        """Offline: (the reason the declared layout drops the message or None, whether it is persistent).

        Raises :class:`InvalidRoutingKey` for a key AMQP 0-9-1 cannot carry."""
        if len(routing_key) > SHORTSTR_MAX // 4 or not routing_key.isascii():
            _check_routing_key(routing_key)
        cacheable = not self._by_headers and not (headers and ("CC" in headers or "BCC" in headers))
        if cacheable:
            known = self._routes.get(routing_key)
            if known is not None:
                return known
        result = route(self.client.topology, self.client.vhost.name, self.exchange, routing_key, headers)
        queues = self.client.vhost.queues
        durable = any(queues[name].durable for name in result.queues if name in queues)
        if self.exchange == "" and not result.queues:
            durable = True  # a queue outside the topology (e.g. a reply queue): the broker decides
        answer = (result.reason or "no binding matches" if result.dropped else None, durable or result.dropped)
        if cacheable:
            if len(self._routes) > 4096:
                self._routes.clear()
            self._routes[routing_key] = answer
        return answer

    def _checked_delivery_mode(
        self, routing_key: str, headers: Mapping[str, Any] | None, check_routing: bool | None, persistent: bool | None
    ) -> int:
        """Raise :class:`UnroutableError` (before any I/O) when the declared layout drops the message and
        the check is on; else its delivery mode: persistent (2) when it reaches a durable queue."""
        reason, durable = self.route(routing_key, headers)
        if reason is not None and (self.check_routing if check_routing is None else check_routing):
            raise UnroutableError(self.exchange, routing_key, reason, hint=_ROUTING_HINT)
        return 2 if (durable if persistent is None else persistent) else 1

    def _properties(
        self,
        routing_key: str,
        body: Any,
        headers: Mapping[str, Any] | None,
        check_routing: bool | None,
        persistent: bool | None,
        message_id: str | None,
        content_type: str | None,
        properties: Properties | None,
        fields: Mapping[str, Any],
    ) -> tuple[bytes, Properties]:
        mode = self._checked_delivery_mode(routing_key, headers, check_routing, persistent)
        data, ctype = encode_body(body, content_type)
        props = properties if properties is not None else Properties(**fields)
        if props.content_type is None:
            props.content_type = ctype
        if headers is not None:
            props.headers = dict(headers)
        if props.delivery_mode is None:
            props.delivery_mode = mode
        if props.message_id is None:
            props.message_id = message_id or self.client.new_message_id()
        return data, props

    def send(
        self,
        routing_key: str,
        body: Any,
        *,
        headers: Mapping[str, Any] | None = None,
        check_routing: bool | None = None,
        persistent: bool | None = None,
        message_id: str | None = None,
        content_type: str | None = None,
        properties: Properties | None = None,
        **fields: Any,
    ) -> asyncio.Future[None]:
        """Publish without waiting: the future settles when the broker confirms (or refuses) it.

        Many sends in a row are written together and confirmed together (pipelined); ``await
        publisher.flush()`` waits for all of them. Needs :meth:`Client.publishing_channel` opened first:
        use :meth:`publish` once, or ``await publisher.ready()``.
        """
        channel = self.client.publishing
        if channel is None:
            raise ClientClosed("call `await publisher.ready()` (or publish once) before send()")
        if properties is None and headers is None and not fields:
            # the common case, without building a Properties: content type, delivery mode, message id
            mode = self._checked_delivery_mode(routing_key, None, check_routing, persistent)
            data, ctype = encode_body(body, content_type)
            prefix = self._prefixes.get((ctype, mode))
            if prefix is None:
                flags, encoded = codec.encode_properties(Properties(content_type=ctype, delivery_mode=mode))
                prefix = self._prefixes[(ctype, mode)] = (flags | _MESSAGE_ID_FLAG, encoded)
            mid = message_id or self.client.new_message_id()
            try:
                raw = mid.encode()
                encoded_props = prefix[1] + bytes((len(raw),)) + raw  # ValueError past 255 bytes
            except (AttributeError, ValueError):
                raise codec.shortstr_error("message_id property", mid) from None
            future = channel.publish_encoded(
                self.exchange, routing_key, data, prefix[0], encoded_props, mid, mandatory=self.mandatory
            )
            if future is None:
                raise _no_confirms()
            return future
        data, props = self._properties(
            routing_key, body, headers, check_routing, persistent, message_id, content_type, properties, fields
        )
        future = channel.publish_nowait(self.exchange, routing_key, data, props, mandatory=self.mandatory)
        if future is None:
            raise _no_confirms()
        return future

    async def ready(self) -> Publisher:
        await self.client.publishing_channel()
        return self

    async def publish(
        self,
        routing_key: str,
        body: Any,
        *,
        headers: Mapping[str, Any] | None = None,
        check_routing: bool | None = None,
        persistent: bool | None = None,
        message_id: str | None = None,
        content_type: str | None = None,
        properties: Properties | None = None,
        **fields: Any,
    ) -> None:
        """Publish and return once the broker has confirmed the message.

        Raises :class:`UnroutableError` before any I/O when the declared bindings drop it (unless
        ``check_routing=False``), or when the broker returns it. ``fields`` are other message properties
        (``correlation_id``, ``reply_to``, ``expiration``, ``priority``, ``type``, ``app_id``, ...).
        """
        data, props = self._properties(
            routing_key, body, headers, check_routing, persistent, message_id, content_type, properties, fields
        )
        flags, encoded = codec.encode_properties(props)  # EncodingError before any I/O
        channel = await self.client.publishing_channel()
        await channel.wait_writable()
        future = channel.publish_encoded(
            self.exchange, routing_key, data, flags, encoded, props.message_id, mandatory=self.mandatory
        )
        if future is not None:
            await future

    async def flush(self) -> None:
        """Wait until everything sent through this client's publishing channel is confirmed."""
        await self.wait_outstanding(0)

    async def wait_outstanding(self, at_most: int) -> None:
        """Wait until at most ``at_most`` sends are unconfirmed (a pipelining window for :meth:`send`)."""
        channel = self.client.publishing
        if channel is not None:
            await channel.wait_writable()
            await channel.wait_outstanding(at_most)


StreamOffset = str | int | datetime.datetime
_NAMED_OFFSETS = ("first", "last", "next")
_INTERVAL = re.compile(r"[0-9]+[YMDhms]")  # RabbitMQ's x-stream-offset intervals: 7D, 1h, 30s...


def _consumer_arguments(
    queue: Queue, offset: StreamOffset | None, arguments: Mapping[str, Any] | None, no_ack: bool
) -> dict[str, Any] | None:
    """The consumer arguments for ``queue``: ``arguments`` plus ``x-stream-offset``; misuse fails before I/O."""
    result = dict(arguments or {})
    if queue.type == "stream" and no_ack:
        raise UsageError(f"stream {queue.name!r} cannot be consumed with no_ack", hint="RabbitMQ needs acks on streams")
    if offset is None:
        return result or None
    if queue.type != "stream":
        raise UsageError(
            f"offset applies to streams, and queue {queue.name!r} is a {queue.type} queue",
            hint="leave offset out: a queue hands each message to one consumer and forgets it",
        )
    if isinstance(offset, bool) or (isinstance(offset, int) and offset < 0):
        raise UsageError(f"stream offset {offset!r} is not an offset", hint="offsets count from 0")
    if isinstance(offset, str) and not (offset in _NAMED_OFFSETS or _INTERVAL.fullmatch(offset)):
        raise UsageError(
            f"stream offset {offset!r} is not one RabbitMQ reads",
            hint="first, last, next, an offset (0, 1, ...), a datetime, or an interval such as 30s, 10m, 1h, 7D",
        )
    result["x-stream-offset"] = offset
    return result
