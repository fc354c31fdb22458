"""Heartbeats (both directions), Connection.Blocked/Unblocked, channel_max."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from pamqp import commands, frame
from rt_helpers import run

from topo.runtime import Connection, ConnectionClosed, ConnectionFailed, Properties, parse_url


async def silent_broker(heartbeat: int) -> tuple[asyncio.Server, int]:
    """A fake broker that completes the handshake, then never sends another byte."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(8)
        writer.write(frame.marshal(commands.Connection.Start(mechanisms="PLAIN", locales="en_US"), 0))
        await reader.read(4096)  # StartOk
        writer.write(frame.marshal(commands.Connection.Tune(2047, 131072, heartbeat), 0))
        await reader.read(4096)  # TuneOk + Open
        writer.write(frame.marshal(commands.Connection.OpenOk(), 0))
        await writer.drain()
        while await reader.read(4096):  # heartbeats arrive; never answer
            pass

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_a_silent_peer_is_detected_by_missed_heartbeats() -> None:
    async def main() -> None:
        server, port = await silent_broker(heartbeat=1)
        conn = await Connection(parse_url(f"amqp://u:p@127.0.0.1:{port}/?heartbeat=1"), reconnect=False).open()
        assert conn.heartbeat == 1
        started = time.monotonic()
        while conn.error is None and time.monotonic() - started < 10:
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
        assert isinstance(conn.error, ConnectionClosed) and "missed heartbeats" in str(conn.error)
        assert elapsed >= 1.5  # not before about two missed intervals (detected at all: the loop's 10 s)
        server.close()

    run(main())


def test_heartbeats_keep_an_idle_connection_alive(amqp_url: str) -> None:
    async def main() -> None:
        conn = await Connection(parse_url(amqp_url + "?heartbeat=1"), reconnect=False).open()
        assert conn.heartbeat == 1
        await asyncio.sleep(4.5)  # the broker closes a connection after ~2 silent intervals
        assert conn.is_open and conn.error is None
        ch = await conn.channel()
        await ch.queue_declare("still-alive")
        await conn.close()

    run(main())


def test_heartbeat_zero_on_both_sides_disables_them(amqp_url: str) -> None:
    async def main() -> None:
        server, port = await silent_broker(heartbeat=0)
        conn = await Connection(parse_url(f"amqp://u:p@127.0.0.1:{port}/?heartbeat=0"), reconnect=False).open()
        assert conn.heartbeat == 0
        await asyncio.sleep(1.5)  # deliberate: longer than a 1 s heartbeat's timeout, which must not apply
        assert conn.is_open
        conn._session.transport.abort()  # type: ignore[union-attr]
        server.close()

    run(main())


def test_publishers_wait_while_the_broker_blocks_them(broker: Any, amqp_url: str) -> None:
    if broker.node is None:
        pytest.skip("needs a private test node to raise a memory alarm on")
    node = broker.node

    async def main() -> None:
        conn = await Connection(parse_url(amqp_url + "?heartbeat=1"), reconnect=False).open()
        ch = await conn.channel(confirms=True)
        await ch.queue_declare("blocked")
        await ch.publish("", "blocked", b"before")
        await asyncio.to_thread(node.ctl, "set_vm_memory_high_watermark", "0.0000001")
        try:
            first = asyncio.ensure_future(ch.publish("", "blocked", b"during", Properties(delivery_mode=2)))
            deadline = time.monotonic() + 15
            while conn.blocked is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert conn.blocked is not None and "memory" in conn.blocked
            second = asyncio.ensure_future(ch.publish("", "blocked", b"waiting"))
            await asyncio.sleep(3)  # several heartbeat intervals: heartbeats still flow both ways
            assert not first.done() and not second.done()  # waiting, not failing
            assert conn.is_open and conn.error is None
        finally:
            await asyncio.to_thread(node.ctl, "set_vm_memory_high_watermark", "0.4")
        await asyncio.wait_for(asyncio.gather(first, second), 15)
        assert conn.blocked is None
        _, count, _ = await ch.queue_declare("blocked", passive=True)
        assert count == 3
        await conn.close()

    run(main(), timeout=60)


def test_channel_max_is_negotiated_and_enforced(amqp_url: str) -> None:
    async def main() -> None:
        conn = await Connection(parse_url(amqp_url + "?channel_max=3"), reconnect=False).open()
        assert conn.channel_max == 3
        channels = [await conn.channel() for _ in range(3)]
        assert [c.number for c in channels] == [1, 2, 3]
        with pytest.raises(ConnectionFailed, match="no free channel"):
            await conn.channel()
        await channels[1].close()
        assert (await conn.channel()).number == 2
        await conn.close()

    run(main())
