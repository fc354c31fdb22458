"""The AMQP connection: socket, handshake, heartbeats, coalesced writes, flow control, reconnection.

One :class:`Connection` object lives as long as the user holds it. Under it, a *session* is one socket
(a :class:`Session`); when a session is lost (socket error, missed heartbeats, the broker's
``Connection.Close 320`` on shutdown) and ``reconnect`` is on, the connection opens a new session with
backoff and jitter and each :class:`~topo.runtime.channel.Channel` restores itself on it (channel,
confirm mode, QoS, consumers, and the publishes that were not confirmed).

Writes are coalesced: frames are appended to a buffer that is flushed once per event-loop iteration, so
a burst of publishes costs few system calls; a buffer that grows past ``WRITE_CHUNK`` bytes in one
iteration is written at once, so the broker works on the start of a long burst while the rest is built.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from typing import Any

from pamqp import commands

from topo.runtime import codec
from topo.runtime.channel import Channel
from topo.runtime.contracts import AckWriter, ChannelPort
from topo.runtime.errors import (
    AuthenticationError,
    ClientClosed,
    ConnectionClosed,
    ConnectionFailed,
    ConnectionLost,
    ProtocolError,
    VhostAccessRefused,
)
from topo.runtime.protocol import Session
from topo.runtime.url import ConnectionParams

__all__ = ["Connection"]

log = logging.getLogger("topo.runtime")

_PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
# Connection.Close codes after which reconnecting makes sense (forced close on shutdown, internal error).
_RECOVERABLE = {320, 501, 504, 505, 506, 541}
_CAPABILITIES = {
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "basic.nack": True,
    "consumer_cancel_notify": True,
    "connection.blocked": True,
    "authentication_failure_close": True,
    "per_consumer_qos": True,
}


class Connection:
    """An AMQP 0-9-1 connection (see the module docstring). Use :meth:`open`, :meth:`channel`, :meth:`close`."""

    def __init__(
        self,
        params: ConnectionParams,
        *,
        reconnect: bool = True,
        reconnect_max_delay: float = 5.0,
    ) -> None:
        self.params = params
        self.reconnect = reconnect
        self.reconnect_max_delay = reconnect_max_delay
        self.frame_max = params.frame_max
        self.channel_max = params.channel_max
        self.heartbeat = params.heartbeat
        self.server_properties: dict[str, Any] = {}
        self.blocked: str | None = None  # the broker's reason while it blocks publishers
        self.reconnects = 0  # sessions opened after the first one
        self._session: Session | None = None
        self._channels: dict[int, Channel] = {}
        self._wbuf: list[bytes] = []
        self._wsize = 0  # bytes in _wbuf
        self.retired: dict[str, int] = {}  # counters of closed channels
        self._ack_channels: list[AckWriter] = []  # channels with acks to write at the next flush
        self._flush_scheduled = False
        self._last_write = 0.0
        self._writable = asyncio.Event()
        self._writable.set()
        self._unblocked = asyncio.Event()
        self._unblocked.set()
        self._ready = asyncio.Event()
        self._closing = False
        self._closed: asyncio.Future[None] | None = None
        self._close_ok: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.error: Exception | None = None  # why the connection ended, when it did not end by close()

    # -- public ---------------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """A session is open and the connection is not closing."""
        return self._session is not None and self._session.open and not self._closing

    @property
    def opened(self) -> bool:
        """:meth:`open` was called (the connection may have closed since)."""
        return self._closed is not None

    @property
    def closed(self) -> bool:
        """Closed for good: by :meth:`close`, or lost without reconnecting."""
        return self._closing or (self._closed is not None and self._closed.done())

    @property
    def writes_paused(self) -> bool:
        """The broker blocks publishers (Connection.Blocked) or the socket's buffer is full."""
        return not (self._unblocked.is_set() and self._writable.is_set())

    @property
    def channels(self) -> Mapping[int, Channel]:
        """The open channels, by number (read only)."""
        return self._channels

    async def open(self) -> Connection:
        """Connect and handshake; raises :class:`ConnectionFailed` (or :class:`AuthenticationError`)."""
        self._closed = asyncio.get_running_loop().create_future()
        await self._open_session()
        return self

    async def channel(self, *, confirms: bool = False, prefetch: int | None = None) -> Channel:
        """A new channel (publisher confirms and QoS set up when asked)."""
        if self._closing or self._closed is None or self._closed.done():
            raise ClientClosed("the connection is closed")
        await self.wait_ready()
        number = self._free_channel_number()
        channel = Channel(self, number, confirms=confirms, prefetch=prefetch)
        self._channels[number] = channel
        try:
            await channel.open()
        except BaseException:
            self._channels.pop(number, None)
            raise
        return channel

    async def wait_ready(self) -> None:
        """Wait until a session is open (immediately, unless reconnecting)."""
        if self._ready.is_set():
            return
        if self._closed is None or self._closed.done() or self._closing:
            raise self.error or ClientClosed("the connection is closed")
        waiter: asyncio.Future[Any] = asyncio.ensure_future(self._ready.wait())
        closed: asyncio.Future[Any] = self._closed
        done, _ = await asyncio.wait({waiter, closed}, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            raise self.error or ClientClosed("the connection is closed")

    async def wait_publishable(self) -> None:
        """Wait while the broker blocks publishers (Connection.Blocked) or the socket buffer is full."""
        while not (self._unblocked.is_set() and self._writable.is_set() and self._ready.is_set()):
            await self.wait_ready()
            await self._unblocked.wait()
            await self._writable.wait()

    async def close(self, timeout: float = 5.0) -> None:
        """Close cleanly: Connection.Close(200), then wait for CloseOk (up to ``timeout``)."""
        if self._closing:
            if self._closed is not None:
                await asyncio.shield(self._closed)
            return
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        session = self._session
        if session is not None and session.open and session.transport is not None:
            for channel in list(self._channels.values()):
                channel.fail(ClientClosed("the connection was closed"), final=True)
            self._flush()
            self._close_ok = asyncio.get_running_loop().create_future()
            session.transport.write(codec.method_frame(0, commands.Connection.Close(200, "Goodbye", 0, 0)))
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(self._close_ok), timeout)
            if session.transport is not None:
                session.transport.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(session.lost), timeout)
        self._finish(None)

    async def __aenter__(self) -> Connection:
        if self._closed is None:
            await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- writing --------------------------------------------------------------------------------------

    # Bytes buffered in one loop iteration before they are written without waiting for the flush: a
    # burst of thousands of publishes otherwise reaches the broker as one late write of megabytes.
    WRITE_CHUNK = 64 * 1024

    def send(self, data: bytes) -> None:
        """Queue frames for the current session; they go out with the next flush (same loop iteration)."""
        self._wbuf.append(data)
        self._wsize += len(data)
        if self._wsize >= self.WRITE_CHUNK:
            self._write_buffer()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    COUNTERS = ("published", "confirmed", "nacked", "returned", "delivered", "acked", "rejected", "requeued")

    def retire(self, channel: ChannelPort) -> None:
        """Forget a closed channel (its number is free again), keeping its counters for metrics()."""
        if self._channels.get(channel.number) is channel:
            del self._channels[channel.number]
            for name in self.COUNTERS:
                self.retired[name] = self.retired.get(name, 0) + getattr(channel, name)

    def counters(self) -> dict[str, int]:
        """Totals of the counters of every channel, open or closed."""
        totals = dict.fromkeys(self.COUNTERS, 0)
        totals.update(self.retired)
        for channel in self._channels.values():
            for name in self.COUNTERS:
                totals[name] += getattr(channel, name)
        return totals

    def schedule_acks(self, channel: AckWriter) -> None:
        """Have ``channel.write_acks()`` run at the next flush (this loop iteration's write)."""
        self._ack_channels.append(channel)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        if self._ack_channels:  # their acks join this write (_flush_scheduled is still set: no new call)
            channels, self._ack_channels = self._ack_channels, []
            for channel in channels:
                channel.write_acks()
        self._flush_scheduled = False
        if self._wbuf:
            self._write_buffer()

    def _write_buffer(self) -> None:
        session = self._session
        wbuf = self._wbuf
        self._wsize = 0
        if session is None or session.transport is None or session.transport.is_closing():
            wbuf.clear()
            return
        data = b"".join(wbuf) if len(wbuf) > 1 else wbuf[0]
        wbuf.clear()
        session.transport.write(data)
        self._last_write = session.loop.time()

    # -- sessions -------------------------------------------------------------------------------------

    def _free_channel_number(self) -> int:
        for number in range(1, self.channel_max + 1):
            if number not in self._channels:
                return number
        raise ConnectionFailed(f"no free channel: all {self.channel_max} are in use")

    async def _open_session(self) -> None:
        loop = asyncio.get_running_loop()
        p = self.params
        session = Session(self)
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: session,
                    p.host,
                    p.port,
                    ssl=p.ssl,
                    server_hostname=(p.server_hostname or p.host) if p.ssl else None,
                ),
                p.connection_timeout,
            )
        except (TimeoutError, OSError) as exc:
            raise ConnectionFailed(
                f"cannot connect to {p.display()}: {exc or 'timed out'}",
                hint="is the broker running, and is this its AMQP port?",
            ) from exc
        if session.transport is None:  # asyncio makes the socket before create_connection returns
            raise ConnectionFailed(f"cannot connect to {p.display()}: no socket was made")
        self._session = session
        try:
            await asyncio.wait_for(self._handshake(session), p.connection_timeout)
        except TimeoutError:
            session.abort()
            self._session = None
            raise ConnectionFailed(f"handshake with {p.display()} timed out") from None
        except BaseException:
            session.abort()
            self._session = None
            raise
        session.open = True
        self._ready.set()
        if self.heartbeat:
            self._spawn(self._heartbeats(session))

    async def _next_handshake_method(self, session: Session, *expected: type) -> Any:
        method = await session.handshake.get()
        if method is None:
            error = session.close_error
            if isinstance(error, ConnectionFailed):
                raise error
            raise ConnectionFailed(
                f"{self.params.display()} closed the connection during the handshake" + (f": {error}" if error else ""),
                hint="check the credentials and the vhost permissions",
            )
        if isinstance(method, commands.Connection.Close):
            session.write(codec.method_frame(0, commands.Connection.CloseOk()))
            text = f"{method.reply_code} {method.reply_text}"
            if method.reply_code == 403:
                raise AuthenticationError(
                    f"the broker refused the login of {self.params.username!r}: {text}",
                    hint="check the user name and password (or the client certificate)",
                )
            if method.reply_code == 530:  # NOT_ALLOWED, in answer to Connection.Open
                raise VhostAccessRefused(self.params.username, self.params.vhost, 530, method.reply_text or "")
            raise ConnectionFailed(f"the broker refused the connection: {text}")
        if not isinstance(method, expected):
            raise ProtocolError(f"unexpected {method.name} during the handshake")
        return method

    async def _handshake(self, session: Session) -> None:
        p = self.params
        session.write(_PROTOCOL_HEADER)
        start = await self._next_handshake_method(session, commands.Connection.Start)
        self.server_properties = dict(start.server_properties or {})
        mechanisms = (start.mechanisms or "").split()
        if p.mechanism not in mechanisms:
            raise AuthenticationError(
                f"the broker does not offer the {p.mechanism} mechanism (it offers {', '.join(mechanisms)})",
                hint="for EXTERNAL, enable rabbitmq_auth_mechanism_ssl and connect with amqps://"
                if p.mechanism == "EXTERNAL"
                else None,
            )
        response = f"\0{p.username}\0{p.password}" if p.mechanism == "PLAIN" else ""
        from topo import __version__

        client_properties = {
            "product": "topo",
            "version": __version__,
            "platform": "Python",
            "connection_name": p.client_name,
            "capabilities": _CAPABILITIES,
        }
        start_ok = codec.make_method(
            commands.Connection.StartOk,
            client_properties=client_properties,
            mechanism=p.mechanism,
            response=response,
            locale="en_US",
        )
        session.write(codec.method_frame(0, start_ok))
        tune = await self._next_handshake_method(session, commands.Connection.Tune)

        def pick(ours: int, theirs: int) -> int:
            return max(ours, theirs) if not ours or not theirs else min(ours, theirs)

        self.channel_max = pick(p.channel_max, tune.channel_max) or 65535
        self.frame_max = pick(p.frame_max, tune.frame_max) or 131072
        self.heartbeat = pick(p.heartbeat, tune.heartbeat)
        session.write(
            codec.method_frame(0, commands.Connection.TuneOk(self.channel_max, self.frame_max, self.heartbeat))
            + codec.method_frame(0, codec.make_method(commands.Connection.Open, virtual_host=p.vhost))
        )
        await self._next_handshake_method(session, commands.Connection.OpenOk)

    # -- what the session calls (contracts.SessionOwner) --------------------------------------------------

    def pause_writing(self) -> None:
        """The socket's write buffer is full: publishers wait (:meth:`wait_publishable`)."""
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_method(self, session: Session, method: Any) -> None:
        """A method on channel 0 after the handshake."""
        if isinstance(method, commands.Connection.Close):
            session.write(codec.method_frame(0, commands.Connection.CloseOk()))
            session.close_error = ConnectionClosed(
                method.reply_code or 0, method.reply_text or "", method.class_id or 0, method.method_id or 0
            )
            log.warning("broker closed the connection: %s", session.close_error)
            if session.transport is not None:
                session.transport.close()
        elif isinstance(method, commands.Connection.CloseOk):
            if self._close_ok is not None and not self._close_ok.done():
                self._close_ok.set_result(None)
        elif isinstance(method, commands.Connection.Blocked):
            self.blocked = method.reason or "blocked"
            self._unblocked.clear()
            log.warning("broker blocks publishers: %s", self.blocked)
        elif isinstance(method, commands.Connection.Unblocked):
            self.blocked = None
            self._unblocked.set()
            log.info("broker unblocked publishers")
        else:
            raise ProtocolError(f"unexpected {method.name} on channel 0")

    def session_lost(self, session: Session, exc: Exception | None) -> None:
        """The session's socket closed: reconnect (when it may) or finish."""
        if session is not self._session:
            return
        self._session = None
        self._ready.clear()
        self._wbuf.clear()
        self._wsize = 0
        self._writable.set()
        self.blocked = None
        self._unblocked.set()
        if not session.open or self._closing:
            if self._closing and self._close_ok is not None and not self._close_ok.done():
                self._close_ok.set_result(None)
            return
        error = session.close_error
        recoverable = (
            not isinstance(error, ConnectionClosed)
            or isinstance(error, ConnectionLost)
            or error.reply_code in _RECOVERABLE
        )
        if self.reconnect and recoverable:
            log.warning("AMQP connection lost (%s); reconnecting", error or exc or "socket closed")
            for channel in list(self._channels.values()):
                channel.session_lost(ConnectionLost(f"connection lost: {error or exc or 'socket closed'}"))
            self._spawn(self._reconnect())
            return
        final = error if isinstance(error, ConnectionClosed) else ConnectionClosed(0, str(exc or "lost"))
        self._finish(final)

    def _finish(self, error: Exception | None) -> None:
        if error is not None and self.error is None:
            self.error = error
        for channel in list(self._channels.values()):
            channel.fail(error or ClientClosed("the connection was closed"), final=True)
        for channel in list(self._channels.values()):
            self.retire(channel)
        for task in list(self._tasks):
            task.cancel()
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    async def _reconnect(self) -> None:
        delay = 0.05
        while not self._closing:
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self.reconnect_max_delay)
            try:
                await self._open_session()
            except (AuthenticationError, VhostAccessRefused) as exc:  # trying again would not change it
                log.error("reconnection refused: %s", exc)
                self._finish(exc)
                return
            except (ConnectionFailed, ProtocolError) as exc:
                log.info("reconnect failed (%s); retrying", exc)
                continue
            self.reconnects += 1
            log.warning("AMQP connection restored")
            for number in sorted(self._channels):
                channel = self._channels.get(number)
                if channel is None:
                    continue
                try:
                    await channel.restore()
                except ConnectionClosed:
                    break  # lost again: the next session restores everything
                except Exception as exc:
                    log.error("could not restore channel %d: %s", number, exc)
                    channel.fail(exc, final=True)
                    self.retire(channel)
            return

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _heartbeats(self, session: Session) -> None:
        interval = self.heartbeat
        loop = session.loop
        while self._session is session:
            await asyncio.sleep(interval / 2)
            if self._session is not session or session.transport is None:
                return
            now = loop.time()
            if now - session.last_read > interval * 2:
                log.warning("no frame from the broker for %.0f s: connection dead", now - session.last_read)
                session.close_error = ConnectionLost("missed heartbeats")
                session.transport.abort()
                return
            if now - self._last_write >= interval / 2:
                session.transport.write(codec.HEARTBEAT_FRAME)  # straight out, never behind publishes
                self._last_write = now
