"""Helpers of the runtime tests (importable from test modules: ``from rt_helpers import ...``)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import quote

from support import build_vhost

from topo.model import Binding, Exchange, Queue, Topology
from topo.runtime import Connection, parse_url
from topo.urls import parse_amqp


def run(coro: Any, timeout: float = 60) -> Any:
    """Run a coroutine in a fresh event loop, failing after ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def wait_until(
    condition: Callable[[], Any], *, timeout: float = 10, interval: float = 0.02, what: str = ""
) -> Any:
    """Poll ``condition`` (a function, or one returning an awaitable) until its value is true (returned),
    failing after ``timeout`` seconds with ``what`` never happened. The asynchronous twin of
    ``support.wait_until``: for a test that waits for something, rather than sleeping a fixed time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what or getattr(condition, '__name__', condition)}")
        await asyncio.sleep(interval)


def vhost_url(amqp_url: str, vhost: str, **query: Any) -> str:
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return replace(parse_amqp(amqp_url), path="/" + quote(vhost, safe=""), query=q, fragment="").unparse()


def make_topology(
    vhost: str,
    exchanges: list[Exchange] | None = None,
    queues: list[Queue] | None = None,
    bindings: list[Binding] | None = None,
) -> Topology:
    return Topology({vhost: build_vhost(vhost, *(exchanges or []), *(queues or []), *(bindings or []))})


async def declare(topology: Topology, vhost: str, url: str) -> None:
    """Declare the vhost's exchanges, queues and bindings with the runtime's own channel methods."""
    v = topology.vhost(vhost)
    conn = await Connection(parse_url(url).with_vhost(vhost), reconnect=False).open()
    try:
        ch = await conn.channel()
        for x in v.exchanges.values():
            await ch.exchange_declare(
                x.name,
                x.type,
                durable=x.durable,
                auto_delete=x.auto_delete,
                internal=x.internal,
                arguments=x.arguments,
            )
        for q in v.queues.values():
            args = dict(q.arguments)
            if q.type != "classic":
                args["x-queue-type"] = q.type
            await ch.queue_declare(q.name, durable=q.durable, auto_delete=q.auto_delete, arguments=args)
        for b in v.bindings.values():
            if b.destination_type == "queue":
                await ch.queue_bind(b.destination, b.source, b.routing_key, b.arguments)
            else:
                await ch.exchange_bind(b.destination, b.source, b.routing_key, b.arguments)
    finally:
        await conn.close()


async def depth(url: str, vhost: str, queue: str) -> int:
    """The exact number of ready messages in ``queue`` (a passive declare: no statistics lag)."""
    conn = await Connection(parse_url(url).with_vhost(vhost), reconnect=False).open()
    try:
        ch = await conn.channel()
        _, count, _ = await ch.queue_declare(queue, passive=True)
        return count
    finally:
        await conn.close()


async def settled_depth(url: str, vhost: str, queue: str, expected: int, timeout: float = 10) -> int:
    """:func:`depth`, polled until it is ``expected`` (returned) or ``timeout`` passed (the last value).
    A quorum queue's count lags: a passive declare right after a requeue or an ack (from another
    connection) was seen saying 0 of 3 requeued messages; it catches up within milliseconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        count = await depth(url, vhost, queue)
        if count == expected or asyncio.get_running_loop().time() > deadline:
            return count
        await asyncio.sleep(0.05)


async def exists(url: str, vhost: str, queue: str) -> bool:
    """Whether ``queue`` exists on the broker (a passive declare)."""
    from topo.runtime import NotFound

    try:
        await depth(url, vhost, queue)
    except NotFound:
        return False
    return True


async def force_close(mgmt: Any, vhost: str, connection_name: str) -> None:
    """Close the client connection named ``connection_name`` as an operator would (Connection.Close 320),
    through the Management API, which lists a connection only after a statistics interval."""
    names: list[str] = []
    for _ in range(100):
        names = [
            c["name"]
            for c in mgmt.get(f"/api/vhosts/{quote(vhost, safe='')}/connections").json()
            if c.get("client_properties", {}).get("connection_name") == connection_name
        ]
        if names:
            break
        await asyncio.sleep(0.1)
    assert len(names) == 1, names
    mgmt.delete(f"/api/connections/{quote(names[0], safe='')}", headers={"X-Reason": "ops"})
