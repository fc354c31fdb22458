"""An AMQP channel: synchronous methods, pipelined publisher confirms, consumers, content reassembly.

A :class:`Channel` survives reconnections: when its connection opens a new session it reopens on the
same number and restores confirm mode, QoS and consumers, then sends again every publish that was not
confirmed (new delivery tags, same bytes), so a publish is confirmed or raised, never silently lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pamqp import commands

from topo.runtime import codec
from topo.runtime.codec import Properties
from topo.runtime.contracts import ChannelHost
from topo.runtime.declare import ChannelMethods
from topo.runtime.errors import (
    ChannelClosed,
    ClientClosed,
    ConsumerCancelled,
    ProtocolError,
    PublishNacked,
    UnroutableError,
    channel_error,
)
from topo.runtime.message import Message
from topo.runtime.settle import Settling

__all__ = ["Channel"]

_U32 = struct.Struct(">I")
_ACK_PAYLOAD = struct.Struct(">QB")
_DELIVER = (60 << 16) | 60
_ACK = (60 << 16) | 80
_NACK = (60 << 16) | 120
_RETURN = (60 << 16) | 50
_GET_OK = (60 << 16) | 71


@dataclass(slots=True)
class _Pending:
    """A publish waiting for its confirm; ``data`` is kept to send it again after a reconnection."""

    data: bytes
    message_id: str | None
    future: asyncio.Future[None] | None
    returned: tuple[int, str, str, str] | None = None


@dataclass(slots=True)
class _Consumer:
    tag: str
    queue: str
    on_message: Callable[[Message], None]
    on_cancel: Callable[[Exception], None] | None
    no_ack: bool
    exclusive: bool
    arguments: dict[str, Any]  # restored with these after a reconnection


class Channel(ChannelMethods, Settling):
    """See the module docstring. Created by :meth:`Connection.channel`."""

    def __init__(self, conn: ChannelHost, number: int, *, confirms: bool, prefetch: int | None) -> None:
        self.connection = conn
        self.number = number
        self.confirms = confirms
        self.prefetch = prefetch
        if prefetch is not None:  # EncodingError now, not once the broker has opened the channel
            codec.method_frame(number, commands.Basic.Qos(prefetch_count=prefetch))
        self.error: Exception | None = None  # why the channel closed, when the broker closed it
        self.on_return: Callable[[Message], None] | None = None  # every Basic.Return, as a Message
        self.on_session_lost: Callable[[Exception], None] | None = None  # the connection dropped
        self._loop = asyncio.get_running_loop()
        self.generation = 0  # sessions this channel was opened on: a delivery tag of another one is void
        self._ready = False
        self._closed = False
        self._rpc: deque[tuple[tuple[type, ...], asyncio.Future[Any]]] = deque()
        self._next_tag = 1
        self._inflight: dict[int, _Pending] = {}
        self._order: deque[int] = deque()
        self._backlog: list[_Pending] = []
        self._drain: list[tuple[int, asyncio.Future[None]]] = []
        self._consumers: dict[str, _Consumer] = {}
        self._publish_cache: dict[tuple[str, str, bool], bytes] = {}
        # content being received: (kind, meta), then header, then body chunks
        self._content: tuple[int, Any] | None = None
        self._body_size = -1
        self._props: Properties | None = None
        self._chunks: list[bytes] = []
        self._received = 0
        # delivered and not settled (in delivery order), and acks waiting for the next write: consecutive
        # acks from the oldest become one Basic.Ack(multiple) (less work for the broker)
        self._unacked: deque[int] = deque()
        self._ack_pending: set[int] = set()
        self._get_no_ack: deque[bool] = deque()
        # counters (see Client.metrics): messages sent, confirmed, nacked, returned, delivered; deliveries
        # acked, rejected (not requeued) and requeued (see Settling)
        self.published = 0
        self.confirmed = 0
        self.nacked = 0
        self.returned = 0
        self.delivered = 0
        self.acked = 0
        self.rejected = 0
        self.requeued = 0

    # -- state ------------------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Open on a live session (false while a reconnection restores it, and once closed)."""
        return self._ready and not self._closed

    @property
    def is_closed(self) -> bool:
        """Closed for good (by :meth:`close`, the broker, or the connection's end)."""
        return self._closed

    @property
    def outstanding(self) -> int:
        """Publishes sent or queued and not yet confirmed."""
        return len(self._inflight) + len(self._backlog)

    def _check(self) -> None:
        if self._closed:
            raise self.error or ClientClosed(f"channel {self.number} is closed")

    # -- what the connection calls (contracts.ChannelPort) ---------------------------------------------------

    async def open(self) -> None:
        """Channel.Open on the connection's current session, then QoS and confirm mode as configured
        (:meth:`Connection.channel` calls it; so does :meth:`restore`)."""
        self.generation += 1
        await self._call(commands.Channel.Open(), commands.Channel.OpenOk, ready=False)
        if self.prefetch is not None:
            await self._call(commands.Basic.Qos(prefetch_count=self.prefetch), commands.Basic.QosOk, ready=False)
        if self.confirms:
            await self._call(commands.Confirm.Select(), commands.Confirm.SelectOk, ready=False)
        self._ready = True

    async def restore(self) -> None:
        """Reopen on a new session: channel, QoS, confirms, consumers, then unconfirmed publishes."""
        self._content = None
        await self.open()
        self._ready = False
        for consumer in list(self._consumers.values()):
            await self._send_consume(consumer, ready=False)
        again = list(self._inflight.values()) + self._backlog
        self._inflight.clear()
        self._order.clear()
        self._backlog = []
        self._next_tag = 1
        self._ready = True
        for pending in again:
            pending.returned = None  # a return without its ack was for the lost session's copy
            self._write_publish(pending)

    def session_lost(self, error: Exception) -> None:
        """The connection lost its session and reconnects: fail pending calls, forget delivery tags."""
        self._ready = False
        self._content = None
        self._unacked.clear()  # the broker requeued them; their tags are gone with the session
        self._ack_pending.clear()
        self._get_no_ack.clear()
        while self._rpc:
            _, fut = self._rpc.popleft()
            if not fut.done():
                fut.set_exception(error)
        if not self.confirms:
            self._backlog.clear()
        if self.on_session_lost is not None:
            self.on_session_lost(error)

    def fail(self, error: Exception, *, final: bool) -> None:
        """Fail pending calls, publishes and consumers with ``error``; ``final``: the channel is closed."""
        if final:
            self._closed = True
            self._ready = False
            if self.error is None and not isinstance(error, ClientClosed):
                self.error = error
        while self._rpc:
            _, fut = self._rpc.popleft()
            if not fut.done():
                fut.set_exception(error)
        for pending in [*self._inflight.values(), *self._backlog]:
            if pending.future is not None and not pending.future.done():
                pending.future.set_exception(error)
        self._inflight.clear()
        self._order.clear()
        self._backlog.clear()
        self._wake_drain()
        consumers = list(self._consumers.values())
        self._consumers.clear()
        for consumer in consumers:
            if consumer.on_cancel is not None:
                consumer.on_cancel(error)

    # -- synchronous methods ------------------------------------------------------------------------------

    async def _call(self, method: Any, *replies: type, ready: bool = True) -> Any:
        self._check()
        if ready and not self._ready:
            await self.connection.wait_ready()
            while not self._ready:  # the channel is being restored
                self._check()
                await asyncio.sleep(0.01)
        data = codec.method_frame(self.number, method)  # EncodingError before anything waits for a reply
        fut: asyncio.Future[Any] = self._loop.create_future()
        self._rpc.append((replies, fut))
        self.write_acks()  # acks first: e.g. before Channel.Close
        self.connection.send(data)
        return await fut

    async def qos(self, prefetch_count: int) -> None:
        """Set the prefetch of consumers started after this call; it is restored after reconnection."""
        await self._call(commands.Basic.Qos(prefetch_count=prefetch_count), commands.Basic.QosOk)
        self.prefetch = prefetch_count

    async def get(self, queue: str, *, no_ack: bool = False) -> Message | None:
        """One message from ``queue`` (Basic.Get), or None when it is empty."""
        method = codec.make_method(commands.Basic.Get, queue=queue, no_ack=no_ack)
        self._get_no_ack.append(no_ack)
        result = await self._call(method, commands.Basic.GetOk, commands.Basic.GetEmpty)
        return result if isinstance(result, Message) else None

    async def close(self) -> None:
        """Close the channel (Channel.Close, wait for CloseOk)."""
        if self._closed:
            return
        if self._ready and self.connection.is_open:
            with contextlib.suppress(ChannelClosed):
                await self._call(commands.Channel.Close(200, "Goodbye", 0, 0), commands.Channel.CloseOk)
        self.fail(ClientClosed(f"channel {self.number} was closed"), final=True)
        self.connection.retire(self)

    # -- publishing -----------------------------------------------------------------------------------------

    def publish_nowait(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties | None = None,
        *,
        mandatory: bool = False,
    ) -> asyncio.Future[None] | None:
        """Send a message without waiting; with confirms, a future that settles on the broker's ack.

        The future fails with :class:`UnroutableError` (mandatory and returned), :class:`PublishNacked`,
        or the channel's error. After a lost connection it is sent again on the next one.
        """
        if properties is None:
            return self.publish_encoded(exchange, routing_key, body, 0, b"", None, mandatory=mandatory)
        flags, props = codec.encode_properties(properties)
        return self.publish_encoded(
            exchange, routing_key, body, flags, props, properties.message_id, mandatory=mandatory
        )

    def publish_encoded(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        flags: int,
        props: bytes,
        message_id: str | None,
        *,
        mandatory: bool = False,
    ) -> asyncio.Future[None] | None:
        """:meth:`publish_nowait` with the properties already encoded (see :func:`codec.encode_properties`)."""
        if self._closed:
            raise self.error or ClientClosed(f"channel {self.number} is closed")
        key = (exchange, routing_key, mandatory)
        head = self._publish_cache.get(key)
        if head is None:
            if len(self._publish_cache) > 512:
                self._publish_cache.clear()
            head = self._publish_cache[key] = codec.publish_frame(self.number, exchange, routing_key, mandatory)
        data = head + codec.content_frames(self.number, body, flags, props, self.connection.frame_max)
        future = self._loop.create_future() if self.confirms else None
        pending = _Pending(data, message_id, future)
        if self._ready:
            self._write_publish(pending)
        else:
            self._backlog.append(pending)
        return future

    def _write_publish(self, pending: _Pending) -> None:
        if self.confirms:
            tag = self._next_tag
            self._next_tag = tag + 1
            self._inflight[tag] = pending
            self._order.append(tag)
        self.published += 1
        self.connection.send(pending.data)

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Properties | None = None,
        *,
        mandatory: bool = False,
    ) -> None:
        """Send a message; with confirms, return once the broker has confirmed it (see publish_nowait)."""
        if self.connection.writes_paused:
            await self.connection.wait_publishable()
        future = self.publish_nowait(exchange, routing_key, body, properties, mandatory=mandatory)
        if future is not None:
            await future

    async def wait_writable(self) -> None:
        """Wait while the broker blocks publishers (Connection.Blocked) or the socket buffer is full."""
        if self.connection.writes_paused:
            await self.connection.wait_publishable()

    async def wait_outstanding(self, at_most: int = 0) -> None:
        """Wait until at most ``at_most`` publishes are unconfirmed (a pipelining window)."""
        if self.outstanding <= at_most:
            return
        fut: asyncio.Future[None] = self._loop.create_future()
        self._drain.append((at_most, fut))
        await fut

    def _wake_drain(self) -> None:
        if not self._drain:
            return
        left = self.outstanding
        keep = []
        for at_most, fut in self._drain:
            if left <= at_most or self._closed:
                if not fut.done():
                    if self._closed and self.error is not None and left:
                        fut.set_exception(self.error)
                    else:
                        fut.set_result(None)
            else:
                keep.append((at_most, fut))
        self._drain = keep

    def _settle(self, pending: _Pending, nacked: bool) -> None:
        if nacked:
            self.nacked += 1
        elif pending.returned is not None:
            self.returned += 1
        else:
            self.confirmed += 1
        fut = pending.future
        if fut is None or fut.done():
            return
        if pending.returned is not None:
            code, text, exchange, routing_key = pending.returned
            fut.set_exception(UnroutableError(exchange, routing_key, f"{code} {text}", returned=True))
        elif nacked:
            fut.set_exception(PublishNacked("the broker nacked the message (Basic.Nack)"))
        else:
            fut.set_result(None)

    def _on_confirm(self, payload: bytes, nacked: bool) -> None:
        tag, bits = _ACK_PAYLOAD.unpack_from(payload, 4)
        inflight = self._inflight
        order = self._order
        if bits & 1:
            while order and order[0] <= tag:
                pending = inflight.pop(order.popleft(), None)
                if pending is not None:
                    self._settle(pending, nacked)
        else:
            pending = inflight.pop(tag, None)
            if pending is not None:
                self._settle(pending, nacked)
            while order and order[0] not in inflight:
                order.popleft()
        if self._drain:
            self._wake_drain()

    # -- consuming --------------------------------------------------------------------------------------------

    async def consume(
        self,
        queue: str,
        on_message: Callable[[Message], None],
        *,
        no_ack: bool = False,
        exclusive: bool = False,
        arguments: Mapping[str, Any] | None = None,
        consumer_tag: str = "",
        on_cancel: Callable[[Exception], None] | None = None,
    ) -> str:
        """Start a consumer; ``on_message`` is called (synchronously) for each delivery. Returns its tag."""
        tag = consumer_tag or f"topo.{id(self):x}.{self.number}.{len(self._consumers)}.{self._received}"
        consumer = _Consumer(tag, queue, on_message, on_cancel, no_ack, exclusive, dict(arguments or {}))
        await self._send_consume(consumer)
        return consumer.tag

    async def _send_consume(self, consumer: _Consumer, ready: bool = True) -> None:
        method = codec.make_method(
            commands.Basic.Consume,
            queue=consumer.queue,
            consumer_tag=consumer.tag,
            no_ack=consumer.no_ack,
            exclusive=consumer.exclusive,
            arguments=dict(consumer.arguments),
        )
        self._consumers[consumer.tag] = consumer  # before the call: deliveries may follow ConsumeOk at once
        try:
            await self._call(method, commands.Basic.ConsumeOk, ready=ready)
        except BaseException:
            self._consumers.pop(consumer.tag, None)
            raise

    def restore_consumer_with(self, consumer_tag: str, name: str, value: Any) -> None:
        """Set a consumer argument for its restoration after a reconnection (a stream's next offset)."""
        consumer = self._consumers.get(consumer_tag)
        if consumer is not None:
            consumer.arguments[name] = value

    async def cancel(self, consumer_tag: str) -> None:
        """Stop a consumer (Basic.Cancel); messages already delivered stay to be settled."""
        if consumer_tag not in self._consumers:
            return
        if self.is_open:
            method = codec.make_method(commands.Basic.Cancel, consumer_tag=consumer_tag)
            await self._call(method, commands.Basic.CancelOk)
        self._consumers.pop(consumer_tag, None)

    # -- incoming frames --------------------------------------------------------------------------------------

    def handle_frame(self, ftype: int, payload: bytes) -> None:
        """One frame the broker sent on this channel (the session calls it)."""
        if ftype == codec.FRAME_METHOD:
            if self._content is not None:
                raise ProtocolError(f"method frame inside a message's content on channel {self.number}")
            (index,) = _U32.unpack_from(payload, 0)
            if index == _DELIVER:
                self._content = (_DELIVER, codec.parse_deliver(payload))
            elif index == _ACK:
                self._on_confirm(payload, False)
            elif index == _NACK:
                self._on_confirm(payload, True)
            elif index == _RETURN:
                self._content = (_RETURN, codec.parse_return(payload))
            else:
                self._on_method(codec.unmarshal_method(payload))
            return
        if self._content is None:
            raise ProtocolError(f"content frame without a method on channel {self.number}")
        if ftype == codec.FRAME_HEADER:
            self._body_size, self._props = codec.decode_header(payload)
            self._chunks = []
            self._received = 0
            if self._body_size == 0:
                self._content_done(b"")
        elif ftype == codec.FRAME_BODY:
            self._chunks.append(payload)
            self._received += len(payload)
            if self._received >= self._body_size:
                chunks = self._chunks
                self._content_done(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        else:
            raise ProtocolError(f"frame type {ftype} on channel {self.number}")

    def _content_done(self, body: bytes) -> None:
        content, props = self._content, self._props
        if content is None or props is None:  # cannot happen: called after a header, inside a content
            raise ProtocolError(f"content body without its method and header on channel {self.number}")
        kind, meta = content
        self._content = None
        self._chunks = []
        if kind == _DELIVER:
            consumer_tag, tag, redelivered, exchange, routing_key = meta
            consumer = self._consumers.get(consumer_tag)
            message = Message(body, props, exchange, routing_key, tag, redelivered, consumer_tag, self, self.generation)
            if consumer is None:  # cancelled meanwhile: give it back
                if tag:
                    self.connection.send(codec.nack_frame(self.number, tag, False, True))
                return
            self.delivered += 1
            if consumer.no_ack:
                message.settled = True
            else:
                self._unacked.append(tag)
            consumer.on_message(message)
        elif kind == _RETURN:
            code, text, exchange, routing_key = meta
            if self.confirms:
                for pending in self._inflight.values():
                    if pending.returned is None and pending.message_id == props.message_id:
                        pending.returned = (code, text, exchange, routing_key)
                        break
            if self.on_return is not None:
                self.on_return(Message(body, props, exchange, routing_key))
        else:  # Basic.GetOk
            tag, redelivered, exchange, routing_key = meta
            message = Message(body, props, exchange, routing_key, tag, redelivered, "", self, self.generation)
            if self._get_no_ack.popleft() if self._get_no_ack else False:
                message.settled = True
            else:
                self._unacked.append(tag)
            self._reply(message)

    def _reply(self, value: Any) -> None:
        if not self._rpc:
            raise ProtocolError(f"unexpected {type(value).__name__} on channel {self.number}")
        _, fut = self._rpc.popleft()
        if not fut.done():
            fut.set_result(value)

    def _on_method(self, method: Any) -> None:
        if isinstance(method, commands.Channel.Close):
            self.connection.send(codec.method_frame(self.number, commands.Channel.CloseOk()))
            error = channel_error(
                method.reply_code or 0, method.reply_text or "", method.class_id or 0, method.method_id or 0
            )
            self.fail(error, final=True)
            self.connection.retire(self)
        elif isinstance(method, commands.Basic.Cancel):  # the broker cancels a consumer: no CancelOk
            consumer = self._consumers.pop(method.consumer_tag or "", None)
            if consumer is not None and consumer.on_cancel is not None:
                consumer.on_cancel(ConsumerCancelled(f"the broker cancelled the consumer of {consumer.queue!r}"))
        elif isinstance(method, commands.Basic.GetOk):
            self._content = (_GET_OK, (method.delivery_tag, method.redelivered, method.exchange, method.routing_key))
        elif isinstance(method, commands.Basic.GetEmpty):
            if self._get_no_ack:
                self._get_no_ack.popleft()
            self._reply(method)
        elif isinstance(method, commands.Channel.Flow):
            self.connection.send(codec.method_frame(self.number, commands.Channel.FlowOk(method.active)))
        else:
            if not self._rpc or not isinstance(method, self._rpc[0][0]):
                raise ProtocolError(f"unexpected {method.name} on channel {self.number}")
            self._reply(method)
