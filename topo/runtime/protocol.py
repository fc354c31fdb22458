"""One socket session of a connection: frame parsing and dispatch (see :mod:`topo.runtime.connection`)."""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

from topo.runtime import codec
from topo.runtime.contracts import SessionOwner
from topo.runtime.errors import ConnectionFailed, ProtocolError

__all__ = ["Session"]

log = logging.getLogger("topo.runtime")
_HEAD = struct.Struct(">BHI")


class Session(asyncio.Protocol):
    """One socket session: parses frames and hands them to the connection and its channels."""

    def __init__(self, conn: SessionOwner) -> None:
        self.conn = conn
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.last_read = self.loop.time()
        self.made: asyncio.Future[None] = self.loop.create_future()
        self.lost: asyncio.Future[None] = self.loop.create_future()
        self.handshake: asyncio.Queue[Any] = asyncio.Queue()
        self.close_error: Exception | None = None
        self.open = False  # handshake done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, asyncio.Transport):  # a stream connection always gives one
            raise ConnectionFailed(f"expected a stream transport, got {type(transport).__name__}")
        self.transport = transport
        if not self.made.done():
            self.made.set_result(None)

    def write(self, data: bytes) -> None:
        """Write straight to the socket (nothing before the socket is made)."""
        if self.transport is not None:
            self.transport.write(data)

    def abort(self) -> None:
        """Drop the socket at once (nothing before the socket is made)."""
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        self.handshake.put_nowait(None)
        self.conn.session_lost(self, exc)

    def pause_writing(self) -> None:
        self.conn.pause_writing()

    def resume_writing(self) -> None:
        self.conn.resume_writing()

    def data_received(self, data: bytes) -> None:
        self.last_read = self.loop.time()
        if self.buf:
            data = self.buf + data
        n = len(data)
        pos = 0
        channels = self.conn.channels
        try:
            while n - pos >= 8:
                ftype, ch, size = _HEAD.unpack_from(data, pos)
                end = pos + 7 + size
                if end >= n:
                    if data[pos : pos + 4] == b"AMQP":
                        raise ConnectionFailed("the broker does not speak AMQP 0-9-1 on this port")
                    break
                if data[end] != 0xCE:
                    raise ProtocolError("frame without its end marker")
                payload = data[pos + 7 : end]
                pos = end + 1
                if ch == 0:
                    self._channel0(ftype, payload)
                else:
                    channel = channels.get(ch)
                    if channel is not None and self.open:
                        channel.handle_frame(ftype, payload)
        except Exception as exc:  # a protocol violation or a bug in a callback: drop the session
            log.exception("AMQP session failed while reading")
            self.close_error = exc
            self.buf = b""
            if self.transport is not None:
                self.transport.abort()
            return
        self.buf = data[pos:]

    def _channel0(self, ftype: int, payload: bytes) -> None:
        if ftype == codec.FRAME_HEARTBEAT:
            return
        if ftype != codec.FRAME_METHOD:
            raise ProtocolError(f"frame type {ftype} on channel 0")
        method = codec.unmarshal_method(payload)
        if not self.open:
            self.handshake.put_nowait(method)
            return
        self.conn.connection_method(self, method)
