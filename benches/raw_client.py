"""The broker's ceiling: a bare publisher that writes pre-marshalled frames and counts confirms.

It shares no code with ``topo.runtime`` (only pamqp's codec, for the handshake and for marshalling the
one message once), so it measures what the broker accepts, not what a client spends. It sends what
aiormq sends in the benchmark (``delivery_mode`` 2, no ``mandatory``, no ``message_id``): the cheapest
message for the broker, so the most generous ceiling. No error handling beyond "fail loudly": a bench
tool, not a client.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import unquote, urlsplit

from pamqp import commands, frame, header
from pamqp.body import ContentBody

PER_WRITE = 100  # messages per transport.write


class _Reader:
    """Frames from a StreamReader, one at a time."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream = stream
        self.buffer = b""

    async def next(self) -> tuple[int, object]:
        while True:
            if len(self.buffer) >= 7:
                size = int.from_bytes(self.buffer[3:7], "big") + 8
                if len(self.buffer) >= size:
                    _, channel, value = frame.unmarshal(self.buffer[:size])
                    self.buffer = self.buffer[size:]
                    return channel, value
            chunk = await self.stream.read(65536)
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            self.buffer += chunk


async def _expect(reader: _Reader, kind: type) -> object:
    while True:
        _, value = await reader.next()
        if isinstance(value, kind):
            return value
        if isinstance(value, commands.Connection.Close | commands.Channel.Close):
            raise ConnectionError(f"{value.reply_code} {value.reply_text}")


def _properties(like_topo: bool) -> commands.Basic.Properties:
    if like_topo:
        return commands.Basic.Properties(delivery_mode=2, message_id="0123456789ab.12345")
    return commands.Basic.Properties(delivery_mode=2)


async def raw_publish(
    url: str, queue: str, n: int, body: bytes, window: int = 4000, *, like_topo: bool = False
) -> float:
    """Publish ``n`` persistent messages with confirms, at most ``window`` unconfirmed; messages/s.

    ``like_topo``: send what ``Publisher.send`` sends for a bytes body (``mandatory`` and an 18-character
    ``message_id``; one id for all, which costs the broker the same as distinct ones), to tell the
    broker's price of those guarantees from topo's own overhead.
    """
    parts = urlsplit(url)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    stream_in, out = await asyncio.open_connection(parts.hostname, parts.port or 5672)
    reader = _Reader(stream_in)
    out.write(frame.marshal(header.ProtocolHeader(), 0))
    await _expect(reader, commands.Connection.Start)
    response = f"\0{unquote(parts.username or 'guest')}\0{unquote(parts.password or 'guest')}"
    out.write(frame.marshal(commands.Connection.StartOk(mechanism="PLAIN", response=response), 0))
    tune = await _expect(reader, commands.Connection.Tune)
    assert isinstance(tune, commands.Connection.Tune)
    out.write(frame.marshal(commands.Connection.TuneOk(tune.channel_max, tune.frame_max, 0), 0))
    out.write(frame.marshal(commands.Connection.Open(vhost), 0))
    await _expect(reader, commands.Connection.OpenOk)
    out.write(frame.marshal(commands.Channel.Open(), 1))
    await _expect(reader, commands.Channel.OpenOk)
    out.write(frame.marshal(commands.Confirm.Select(), 1))
    await _expect(reader, commands.Confirm.SelectOk)

    message = (
        frame.marshal(commands.Basic.Publish(exchange="", routing_key=queue, mandatory=like_topo), 1)
        + frame.marshal(header.ContentHeader(0, len(body), _properties(like_topo)), 1)
        + frame.marshal(ContentBody(body), 1)
    )
    batch = message * PER_WRITE
    confirmed = 0  # every tag up to this one is acked
    acked_above: set[int] = set()  # single acks that arrived ahead of a gap
    progress = asyncio.Event()

    async def read_acks() -> None:
        nonlocal confirmed
        while confirmed < n:
            _, value = await reader.next()
            if isinstance(value, commands.Basic.Ack):
                if value.multiple:
                    confirmed = max(confirmed, value.delivery_tag)
                else:
                    acked_above.add(value.delivery_tag)
                while confirmed + 1 in acked_above:
                    confirmed += 1
                    acked_above.discard(confirmed)
                progress.set()
            elif isinstance(value, commands.Basic.Nack | commands.Channel.Close | commands.Connection.Close):
                raise ConnectionError(f"unexpected {value!r}")

    start = time.perf_counter()
    acks = asyncio.ensure_future(read_acks())
    sent = 0
    while sent < n:
        while sent - confirmed > window - PER_WRITE:
            progress.clear()
            await progress.wait()
        count = min(PER_WRITE, n - sent)
        out.write(batch if count == PER_WRITE else message * count)
        sent += count
        await asyncio.sleep(0)  # let the ack reader run between writes
    await acks
    rate = n / (time.perf_counter() - start)
    out.write(frame.marshal(commands.Connection.Close(200, "bye", 0, 0), 0))
    await _expect(reader, commands.Connection.CloseOk)
    out.close()
    return rate
