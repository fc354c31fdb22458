"""Consumers of the topology-aware client: message streams, handler subscriptions (with dead-lettering
and retries as the topology declares them), and RPC over direct reply-to."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from topo.model import CircuitBreaker, Queue
from topo.routing import dead_letter_target
from topo.runtime.breaker import Breaker
from topo.runtime.channel import Channel
from topo.runtime.codec import Properties
from topo.runtime.contracts import ClientPort
from topo.runtime.errors import (
    ClientClosed,
    ConnectionLost,
    ConsumerCancelled,
    NotFound,
    RemoteError,
    RpcTimeout,
    RuntimeClientError,
    UnroutableError,
)
from topo.runtime.failures import DEFAULT_BACKOFF, RETRY_HEADER, Backoff, Failures, retry_queue_name
from topo.runtime.message import Message, encode_body
from topo.runtime.verify import check_queue

__all__ = ["RETRY_HEADER", "MessageStream", "RpcClient", "Subscription", "retry_queue_name"]

log = logging.getLogger("topo.runtime")

REPLY_TO = "amq.rabbitmq.reply-to"


class _End:
    def __init__(self, error: Exception | None) -> None:
        self.error = error


class MessageStream:
    """``async with client.consume(queue) as messages: async for m in messages: ...; await m.ack()``.

    A channel of its own with the prefetch; leaving the block cancels the consumer and closes the
    channel, so unsettled messages go back to the queue.

    When the broker cancels the consumer (``Basic.Cancel``: the queue was deleted, e.g. by ``topo apply
    --migrate``, which deletes the old queue and declares the new one under the same name), the stream
    subscribes again to the queue by name as soon as it exists again (checked by a passive declare, every
    50 ms at first, then at most every 2 s), on the same channel (messages delivered before stay to be
    settled); with ``resubscribe=False`` the stream ends with :class:`ConsumerCancelled` instead.
    """

    def __init__(
        self,
        client: ClientPort,
        queue: str,
        prefetch: int,
        *,
        no_ack: bool = False,
        arguments: Mapping[str, Any] | None = None,
        stream: bool = False,
        resubscribe: bool = True,
    ) -> None:
        self.client = client
        self.queue = queue
        self.resubscribe = resubscribe
        self.resumed = 0  # how often the consumer was subscribed again after the broker cancelled it
        self._resuming: asyncio.Task[None] | None = None
        self.prefetch = prefetch
        self.no_ack = no_ack
        self.arguments = arguments
        self.stream = stream
        self.channel: Channel | None = None
        self._items: asyncio.Queue[Message | _End] = asyncio.Queue()
        self._tag = ""

    async def __aenter__(self) -> MessageStream:
        await self.client.open()
        self.channel = await self.client.connection.channel(prefetch=self.prefetch)
        await self._consume(self.channel)
        return self

    async def _consume(self, channel: Channel) -> None:
        self._tag = await channel.consume(
            self.queue,
            self._from_stream if self.stream else self._items.put_nowait,
            no_ack=self.no_ack,
            on_cancel=self._cancelled,
            arguments=self.arguments,
        )

    async def pause(self) -> None:
        """Stop the consumer (``Basic.Cancel``): the broker delivers nothing more. The channel stays open:
        messages delivered and not settled stay to be settled (or requeued when the channel closes)."""
        channel, tag = self.channel, self._tag
        self._tag = ""
        if channel is not None and tag:
            await channel.cancel(tag)

    async def resume(self, prefetch: int | None = None) -> None:
        """Start the consumer again after :meth:`pause`, with ``prefetch`` (else the stream's own)."""
        channel = self.channel
        if channel is None or self._tag:
            return
        wanted = self.prefetch if prefetch is None else prefetch
        if channel.prefetch != wanted:
            await channel.qos(wanted)
        await self._consume(channel)

    @property
    def consuming(self) -> bool:
        """The consumer runs (entered, not paused, not closed)."""
        return self.channel is not None and bool(self._tag)

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _from_stream(self, message: Message) -> None:
        message.from_stream = True
        self._items.put_nowait(message)
        # After a reconnection, go on after the last message delivered (those still buffered here are
        # handed out all the same), not from the offset first given: no gap with "next", no repeats.
        offset = message.headers.get("x-stream-offset")
        if isinstance(offset, int) and not isinstance(offset, bool) and self.channel is not None:
            self.channel.restore_consumer_with(message.consumer_tag, "x-stream-offset", offset + 1)

    def _cancelled(self, error: Exception) -> None:
        if self.resubscribe and isinstance(error, ConsumerCancelled) and self.channel is not None:
            self._tag = ""
            log.warning("the broker cancelled the consumer of %r: consuming it again once it exists", self.queue)
            self._resuming = asyncio.ensure_future(self._subscribe_again())
            return
        self._items.put_nowait(_End(error if not isinstance(error, ClientClosed) else None))

    async def _exists(self) -> bool:
        """Whether the queue exists now (a passive declare on a channel of its own: a 404 closes it)."""
        probe = await self.client.connection.channel()
        try:
            await probe.queue_declare(self.queue, passive=True)
            return True
        except NotFound:
            return False
        finally:
            if probe.is_open:
                await probe.close()

    async def _subscribe_again(self) -> None:
        delay = 0.05
        while self.channel is not None and not self._tag:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            try:
                if not await self._exists():
                    continue
                channel = self.channel
                if channel is None:
                    return
                if not channel.is_open:  # deleted again between the check and the consume: a new channel
                    channel = self.channel = await self.client.connection.channel(prefetch=self.prefetch)
                await self._consume(channel)
                self.resumed += 1
                log.warning("consuming %r again", self.queue)
            except RuntimeClientError as exc:
                log.debug("cannot consume %r yet: %s", self.queue, exc)

    async def close(self) -> None:
        resuming, self._resuming = self._resuming, None
        if resuming is not None:
            resuming.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeClientError):
                await resuming
        channel, self.channel = self.channel, None
        if channel is not None:
            with contextlib.suppress(RuntimeClientError):
                await channel.close()
            self._items.put_nowait(_End(None))

    def __aiter__(self) -> MessageStream:
        return self

    async def __anext__(self) -> Message:
        item = await self._items.get()
        if isinstance(item, _End):
            self._items.put_nowait(item)  # stays ended
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item

    async def get(self, timeout: float | None = None) -> Message | None:
        """The next message, or None after ``timeout`` seconds or when the stream ended."""
        try:
            return await asyncio.wait_for(self.__anext__(), timeout)
        except (TimeoutError, StopAsyncIteration):
            return None


class Subscription:
    """A running handler on a queue (see :meth:`Client.subscribe` and :meth:`Client.serve`).

    Before consuming, it checks the broker's queue against the files (:mod:`topo.runtime.verify`) unless
    ``verify`` is false; a failed message is then settled as :mod:`topo.runtime.failures` says. With a
    circuit breaker (the queue's ``circuit-breaker:``, or ``circuit_breaker=``), consecutive failures
    stop the consumer for a while (:mod:`topo.runtime.breaker`).
    """

    def __init__(
        self,
        client: ClientPort,
        queue: Queue,
        handler: Callable[[Message], Awaitable[Any] | Any],
        prefetch: int,
        concurrency: int,
        *,
        reply: bool = False,
        arguments: Mapping[str, Any] | None = None,
        verify: bool = True,
        backoff: Backoff | None = None,
        circuit_breaker: CircuitBreaker | None = None,
    ) -> None:
        self.client = client
        self.queue = queue
        self.handler = handler
        self.reply = reply
        self.verify = verify
        self.prefetch = prefetch
        self.handled = 0
        self.failed = 0
        self.metrics = client.queue_recorder(queue.name)
        policy = circuit_breaker or queue.circuit_breaker
        if policy is not None and queue.type == "stream":
            from topo.errors import UsageError

            raise UsageError(
                f"a circuit breaker does not apply to stream {queue.name!r}",
                hint="a stream's failed message is not delivered again; read it again from its offset",
            )
        self.breaker = Breaker(policy) if policy is not None else None
        if self.breaker is not None:
            self.metrics.breaker = self.breaker
        exchange, key = dead_letter_target(client.vhost, queue)
        self.dead_letter_exchange = exchange
        self.failures = Failures(
            client,
            queue,
            backoff=backoff or DEFAULT_BACKOFF,
            dead_letter=(exchange, key) if exchange is not None else None,
            # only an argument can be checked over AMQP (policies cannot be read)
            by_broker=verify and "x-dead-letter-exchange" in queue.arguments,
            metrics=self.metrics,
        )
        self._stream = MessageStream(client, queue.name, prefetch, arguments=arguments, stream=queue.type == "stream")
        self._workers: list[asyncio.Task[None]] = []
        self._concurrency = max(1, concurrency)
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._switching = asyncio.Lock()  # the breaker's consumer stops and restarts, one at a time
        self._reopen: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def consuming(self) -> bool:
        """The consumer runs (false while the circuit breaker is open, and once cancelled)."""
        return self._stream.consuming

    @property
    def resumed(self) -> int:
        """How often the consumer subscribed again after the broker cancelled it (its queue was deleted and
        declared again: ``topo apply --migrate``)."""
        return self._stream.resumed

    async def start(self) -> None:
        if self.verify:
            await self.client.open()
            await check_queue(self.client, self.queue, self.dead_letter_exchange)
        await self._stream.__aenter__()
        self._workers = [asyncio.ensure_future(self._work()) for _ in range(self._concurrency)]

    async def wait(self) -> None:
        """Wait until the subscription ends (cancelled by the broker, or :meth:`cancel`)."""
        await asyncio.shield(self._done)

    async def cancel(self) -> None:
        if self._reopen is not None:
            self._reopen.cancel()
        for task in [*self._workers, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._workers, *self._tasks, return_exceptions=True)
        self.failures.close()
        await self._stream.close()
        if not self._done.done():
            self._done.set_result(None)

    async def _work(self) -> None:
        try:
            async for message in self._stream:
                breaker = self.breaker
                if breaker is not None and breaker.is_open:  # prefetched before the consumer stopped
                    message.nack_nowait(requeue=True)  # back to the queue, unhandled
                    continue
                try:
                    await self._handle(message)
                except RuntimeClientError as exc:  # settling failed (connection lost...): the broker
                    log.warning("could not settle a message of %r: %s", self.queue.name, exc)  # redelivers
        except ConsumerCancelled as exc:
            if not self._done.done():
                self._done.set_exception(exc)
        else:
            if not self._done.done():
                self._done.set_result(None)

    async def _handle(self, message: Message) -> None:
        started = time.perf_counter()
        try:
            result = self.handler(message)
            if inspect.isawaitable(result):
                result = await result
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.metrics.processing.observe(time.perf_counter() - started)
            self.failed += 1
            self.metrics.failed += 1
            if self.reply and message.reply_to:
                log.warning("RPC handler failed on a request to %r: %r; the error is the reply", self.queue.name, exc)
                await self._send_reply(message, {"error": f"{type(exc).__name__}: {exc}"}, error=True)
                await message.ack()
            else:
                await self.failures.failed(message, exc)
            if self.breaker is not None and self.breaker.failure():
                await self._trip()
            return
        self.metrics.processing.observe(time.perf_counter() - started)
        self.handled += 1
        self.metrics.handled += 1
        self.failures.succeeded(message)
        if self.reply and message.reply_to:
            await self._send_reply(message, result)
        if not message.settled:
            await message.ack()
        if self.breaker is not None and self.breaker.success():
            await self._close_breaker()

    # -- the circuit breaker's I/O (topo.runtime.breaker) --------------------------------------------------

    async def _trip(self) -> None:
        """The breaker opened: stop the consumer; try again (half-open) after ``open_for``."""
        breaker = self.breaker
        if breaker is None:
            return
        log.warning(
            "circuit breaker of %r opened after %d failures in a row (trip %d): consuming stops for %g s",
            self.queue.name,
            breaker.consecutive_failures,
            breaker.trips,
            breaker.open_for,
        )
        async with self._switching:
            try:
                await self._stream.pause()
            except RuntimeClientError as exc:  # the channel is gone: its unacked messages went back anyway
                log.warning("could not stop the consumer of %r: %s", self.queue.name, exc)
        self._schedule_half_open(breaker.open_for)

    def _schedule_half_open(self, delay: float) -> None:
        def due() -> None:
            self._reopen = None
            task = asyncio.ensure_future(self._half_open())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self._reopen = asyncio.get_running_loop().call_later(delay, due)

    async def _half_open(self) -> None:
        """``open_for`` passed: consume again with a prefetch of 1, so that one message is tried."""
        breaker = self.breaker
        if breaker is None or not breaker.is_open:
            return
        breaker.half_open()
        log.warning("circuit breaker of %r half-open: trying one message", self.queue.name)
        async with self._switching:
            try:
                await self._stream.resume(prefetch=1)
            except RuntimeClientError as exc:
                breaker.stay_open()
                log.warning(
                    "circuit breaker of %r: cannot consume again (%s); next try in %g s",
                    self.queue.name,
                    exc,
                    breaker.open_for,
                )
                self._schedule_half_open(breaker.open_for)

    async def _close_breaker(self) -> None:
        """The trial message was handled: consume with the queue's prefetch again."""
        log.warning("circuit breaker of %r closed: the handler works again; consuming", self.queue.name)
        async with self._switching:
            try:
                await self._stream.pause()
                await self._stream.resume(prefetch=self.prefetch)
            except RuntimeClientError as exc:
                log.warning("could not restart the consumer of %r: %s", self.queue.name, exc)

    async def _send_reply(self, request: Message, result: Any, *, error: bool = False) -> None:
        body, ctype = encode_body(result)
        props = Properties(
            content_type=ctype,
            correlation_id=request.correlation_id,
            delivery_mode=1,
            headers={"x-error": True} if error else None,
        )
        channel = self._stream.channel
        if channel is not None and request.reply_to:
            channel.publish_nowait("", request.reply_to, body, props)


class RpcClient:
    """Requests over direct reply-to: one channel consuming ``amq.rabbitmq.reply-to`` (no-ack)."""

    def __init__(self, client: ClientPort) -> None:
        self.client = client
        self.channel: Channel | None = None
        self._waiting: dict[str, asyncio.Future[Message]] = {}
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(6)
        self._lock = asyncio.Lock()

    async def _ensure(self) -> Channel:
        async with self._lock:
            if self.channel is None or self.channel.is_closed:
                channel = await self.client.connection.channel()
                channel.on_return = self._returned
                channel.on_session_lost = self._lost
                await channel.consume(REPLY_TO, self._reply, no_ack=True)
                self.channel = channel
            return self.channel

    def _reply(self, message: Message) -> None:
        future = self._waiting.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(message)

    def _returned(self, message: Message) -> None:
        future = self._waiting.pop(message.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_exception(
                UnroutableError(message.exchange, message.routing_key, "no queue took the request", returned=True)
            )

    def _lost(self, error: Exception) -> None:
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(ConnectionLost("connection lost while waiting for an RPC reply"))

    async def call(
        self,
        queue: str,
        body: Any,
        *,
        timeout: float,
        headers: Mapping[str, Any] | None = None,
        content_type: str | None = None,
    ) -> Any:
        await self.client.open()
        channel = await self._ensure()
        data, ctype = encode_body(body, content_type)
        correlation_id = f"{self._prefix}.{next(self._ids)}"
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[correlation_id] = future
        props = Properties(
            content_type=ctype,
            correlation_id=correlation_id,
            reply_to=REPLY_TO,
            delivery_mode=1,
            headers=dict(headers) if headers else None,
            message_id=self.client.new_message_id(),
            expiration=str(max(1, int(timeout * 1000))),  # a request nobody took in time is dropped
        )
        try:
            await channel.publish("", queue, data, props, mandatory=True)
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise RpcTimeout(
                f"no reply from {queue!r} within {timeout:g} s",
                hint="is a server consuming the queue? The request expires unanswered; a longer timeout may help",
            ) from None
        finally:
            self._waiting.pop(correlation_id, None)
        if reply.headers.get("x-error"):
            detail = reply.decoded()
            raise RemoteError(
                f"the RPC handler on {queue!r} failed: {detail.get('error') if isinstance(detail, dict) else detail}"
            )
        return reply.decoded()

    async def close(self) -> None:
        self._lost(ClientClosed("client closed"))
        channel, self.channel = self.channel, None
        if channel is not None:
            with contextlib.suppress(RuntimeClientError):
                await channel.close()
