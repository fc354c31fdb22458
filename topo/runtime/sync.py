"""A synchronous facade for scripts and tests that are not async.

::

    with topo.runtime.connect_sync(topology, vhost="iot", url=...) as client:
        client.publish("sensor-data", "sensor.temperature.line1", {"temp": 75.3})
        for m in client.consume("analytics", count=10, timeout=5):
            print(m.json()); m.ack()
        print(client.rpc("rpc_queue", {"n": 30}))

The async client runs on an event loop in a background thread; every call waits for its result there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, TypeVar

from topo.model import Topology
from topo.runtime.client import Client, StreamOffset, connect
from topo.runtime.consume import MessageStream, Subscription
from topo.runtime.message import Message

__all__ = ["SyncClient", "SyncMessage", "connect_sync"]

T = TypeVar("T")


class SyncMessage:
    """A received message with blocking ack/nack/reject (the body and properties as in :class:`Message`)."""

    def __init__(self, message: Message, run: Callable[[Coroutine[Any, Any, None]], None]) -> None:
        self.message = message
        self._run = run  # runs a coroutine on the client's loop and waits for it

    def __getattr__(self, name: str) -> Any:
        return getattr(self.message, name)

    def __repr__(self) -> str:
        return repr(self.message)

    def ack(self) -> None:
        self._run(self.message.ack())

    def nack(self, requeue: bool = True) -> None:
        self._run(self.message.nack(requeue))

    def reject(self, requeue: bool = False) -> None:
        self._run(self.message.reject(requeue))


class SyncClient:
    """The blocking twin of :class:`~topo.runtime.client.Client` (see the module docstring)."""

    def __init__(
        self,
        topology: Topology,
        *,
        vhost: str,
        url: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        reconnect: bool = True,
        timeout: float = 30.0,
    ) -> None:
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="topo-runtime", daemon=True)
        self._thread.start()

        async def make() -> Client:
            return await connect(topology, vhost=vhost, url=url, ssl_context=ssl_context, reconnect=reconnect)

        try:
            self.client: Client = self._call(make())
        except BaseException:
            self._stop()
            raise

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(self.timeout if timeout is None else timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError("the runtime call timed out") from None

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._call(self.client.close())
        finally:
            self._stop()

    def publish(self, exchange: str, routing_key: str, body: Any, **options: Any) -> None:
        """Publish and wait for the confirm (see :meth:`Publisher.publish` for the options)."""
        self._call(self.client.publish(exchange, routing_key, body, **options))

    def publish_many(self, exchange: str, messages: list[tuple[str, Any]], **options: Any) -> None:
        """Publish ``(routing_key, body)`` pairs pipelined, returning once all are confirmed."""

        async def go() -> None:
            publisher = await self.client.publisher(exchange).ready()
            futures = [publisher.send(key, body, **options) for key, body in messages]
            await asyncio.gather(*futures)

        self._call(go())

    def rpc(self, queue: str, body: Any, *, timeout: float = 5.0, **options: Any) -> Any:
        return self._call(self.client.rpc(queue, body, timeout=timeout, **options), timeout + 5)

    def get(self, queue: str, *, timeout: float = 5.0) -> SyncMessage | None:
        """One message from the queue within ``timeout`` seconds, or None."""
        for message in self.consume(queue, count=1, timeout=timeout, prefetch=1):
            return message
        return None

    def consume(
        self,
        queue: str,
        *,
        count: int | None = None,
        timeout: float | None = None,
        prefetch: int | None = None,
        offset: StreamOffset | None = None,
        arguments: Mapping[str, Any] | None = None,
    ) -> Iterator[SyncMessage]:
        """Messages of the queue until ``count`` were received or none came for ``timeout`` seconds.

        Unsettled messages go back to the queue when the iteration ends. ``offset`` and ``arguments``:
        see :meth:`Client.consume <topo.runtime.client.Client.consume>`.
        """
        stream: MessageStream = self.client.consume(queue, prefetch=prefetch, offset=offset, arguments=arguments)
        self._call(stream.__aenter__())
        received = 0
        try:
            while count is None or received < count:
                wait = None if timeout is None else timeout + 5
                message = self._call(stream.get(timeout), wait if wait is not None else 10**9)
                if message is None:
                    return
                received += 1
                yield SyncMessage(message, self._call)
        finally:
            if not self._loop.is_closed():
                self._call(stream.close())

    def subscribe(self, queue: str, handler: Callable[[Message], Any], **options: Any) -> Subscription:
        """Run a blocking ``handler`` (in a worker thread) for each message; see :meth:`Client.subscribe`."""

        async def run(message: Message) -> Any:
            return await asyncio.to_thread(handler, message)

        return self._call(self.client.subscribe(queue, run, **options))

    def serve(self, queue: str, handler: Callable[[Message], Any], **options: Any) -> Subscription:
        """Answer RPC requests with a blocking ``handler``; see :meth:`Client.serve`."""

        async def run(message: Message) -> Any:
            return await asyncio.to_thread(handler, message)

        return self._call(self.client.serve(queue, run, **options))


connect_sync = SyncClient
