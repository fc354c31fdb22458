"""Reconnection without loss: publish 50,000 persistent messages while the broker node is stopped and
started; every confirmed message must be in the queue afterwards (at-least-once: duplicates allowed)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from rt_helpers import declare, force_close, make_topology, run, wait_until

from topo.model import Queue
from topo.runtime import Message, connect

N = 50_000


def test_50000_publishes_survive_a_node_restart(broker: Any, vhost: str, amqp_url: str) -> None:
    if broker.node is None:
        pytest.skip("needs a private test node to stop and start (TOPO_TEST_URL names an external broker)")
    node = broker.node
    topology = make_topology(vhost, queues=[Queue("ledger"), Queue("events", prefetch=3)])
    run(declare(topology, vhost, amqp_url))
    logging.getLogger("topo.runtime").setLevel(logging.ERROR)

    async def main() -> None:
        confirmed: set[int] = set()
        failed: list[BaseException] = []
        restarted = asyncio.Event()
        stopped = asyncio.Event()

        async def restart() -> None:
            while len(confirmed) < N // 5:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(node.stop_app)
            stopped.set()
            await asyncio.sleep(1)  # deliberate: the node stays down a while, publishes pile up unconfirmed
            await asyncio.to_thread(node.start_app)
            restarted.set()

        async with connect(topology, vhost=vhost, url=amqp_url) as client, client.consume("events") as events:
            restarter = asyncio.ensure_future(restart())
            pub = await client.publisher("").ready()
            body = b"x" * 256
            started = time.monotonic()

            def done(i: int) -> Any:
                def callback(f: asyncio.Future[None]) -> None:
                    if f.exception() is None:
                        confirmed.add(i)
                    else:
                        failed.append(f.exception())  # type: ignore[arg-type]

                return callback

            for i in range(N):
                if i == N // 2:
                    # the second half is published while the node is down and coming back, however fast
                    # the first half went: without this a fast machine could confirm all 50,000 before
                    # stop_app took effect, and the test would prove nothing about reconnecting
                    await asyncio.wait_for(stopped.wait(), 120)
                pub.send("ledger", body, message_id=str(i)).add_done_callback(done(i))
                if i % 500 == 0:
                    await pub.wait_outstanding(5000)
            await asyncio.wait_for(pub.flush(), 120)
            await asyncio.wait_for(restarter, 120)
            assert restarted.is_set()
            assert client.connection.reconnects >= 1  # publishes after the stop were confirmed: it reconnected
            assert failed == []
            assert len(confirmed) == N  # nothing raised, so every publish was (re)sent and confirmed
            elapsed = time.monotonic() - started

            ids: set[str] = set()
            total = 0
            async with client.consume("ledger", prefetch=1000) as messages:
                while True:
                    m: Message | None = await messages.get(timeout=3)
                    if m is None:
                        break
                    total += 1
                    ids.add(m.message_id or "")
                    m.ack_nowait()
            missing = {str(i) for i in confirmed} - ids
            assert not missing, f"{len(missing)} confirmed messages are not in the queue"
            # the consumer opened before the restart was restored, with its prefetch
            for i in range(10):
                await client.publish("", "events", {"i": i})
            seen = []
            while len(seen) < 10:
                e = await events.get(timeout=10)
                assert e is not None, f"the restored consumer got only {seen}"
                seen.append(e.json()["i"])
                await e.ack()
            assert seen == list(range(10))
            assert events.channel is not None and events.channel.prefetch == 3
            print(f"\n{N} publishes across a restart in {elapsed:.1f}s; {total - len(ids)} duplicates")

    run(main(), timeout=300)


def test_forced_close_reconnects_and_rpc_recovers(vhost: str, amqp_url: str, mgmt: Any) -> None:
    """The broker's Connection.Close 320 (an operator closing the connection): pending RPC calls fail
    with ConnectionLost, then the client reconnects and both sides (reply consumer, server) work again."""
    from topo.runtime import ConnectionLost

    topology = make_topology(vhost, queues=[Queue("rpc"), Queue("slow")])
    run(declare(topology, vhost, amqp_url))

    async def main() -> None:
        serving = asyncio.Event()

        async def slow(m: Message) -> str:
            serving.set()
            await asyncio.sleep(30)  # deliberate: a reply that comes too late, after the client's connection is lost
            return "late"

        async with (
            connect(topology, vhost=vhost, url=amqp_url, name="rpc-client") as client,
            connect(topology, vhost=vhost, url=amqp_url, name="rpc-server") as server,
        ):
            await server.serve("rpc", lambda m: {"echo": m.json()})
            await server.serve("slow", slow)
            assert await client.rpc("rpc", 1) == {"echo": 1}
            waiting = asyncio.ensure_future(client.rpc("slow", "x", timeout=20))
            await asyncio.wait_for(serving.wait(), 10)  # the call is pending: its request is being served
            await force_close(mgmt, vhost, "rpc-client")
            try:
                await waiting
            except ConnectionLost:
                pass
            else:
                raise AssertionError("the pending RPC call should fail with ConnectionLost")
            await wait_until(lambda: client.connection.is_open and client.connection.reconnects, what="a reconnect")
            assert client.connection.reconnects == 1
            assert await client.rpc("rpc", 2, timeout=10) == {"echo": 2}

    run(main())
