"""Exact queue counts over AMQP, for the safety check before a queue is replaced or deleted.

The Management API's ``messages`` and ``consumers`` come from statistics that lag up to ~5 s behind
the queue, so a message published just before an apply may not show. A passive ``queue.declare``
answers with the queue's exact ready-message and consumer counts at that instant; unacknowledged
messages belong to a consumer (or a channel that got them), which the Management count catches.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from topo.errors import TopoError

__all__ = ["exact_usage"]


async def _usage(
    amqp_url: str, vhost: str, queues: list[str], timeout: float, cluster: str | None
) -> dict[str, tuple[int, int]] | None:
    from topo.runtime.connection import Connection
    from topo.runtime.errors import NotFound
    from topo.runtime.url import parse_url

    params = replace(parse_url(amqp_url).with_vhost(vhost), connection_timeout=timeout, client_name="topo")
    connection = Connection(params, reconnect=False)
    import asyncio

    await asyncio.wait_for(connection.open(), timeout)
    usage: dict[str, tuple[int, int]] = {}
    try:
        name_of = connection.server_properties.get("cluster_name")
        if isinstance(name_of, bytes | bytearray):
            name_of = name_of.decode()
        if cluster is not None and name_of != cluster:
            return None  # another broker answers on that port: its counts say nothing about ours
        channel = await connection.channel()
        for name in queues:
            try:
                _, messages, consumers = await asyncio.wait_for(channel.queue_declare(name, passive=True), timeout)
            except NotFound:
                channel = await connection.channel()  # a 404 closes the channel
                continue
            usage[name] = (int(messages), int(consumers))
    finally:
        await connection.close()
    return usage


def exact_usage(
    amqp_url: str, vhost: str, queues: Iterable[str], *, cluster: str | None = None, timeout: float = 10.0
) -> dict[str, tuple[int, int]] | None:
    """(ready messages, consumers) of each named queue that exists, counted by the broker now; ``None``
    when AMQP cannot be reached, or when ``cluster`` is given and the broker answering there is another
    cluster (the caller then has only the Management API's statistics)."""
    import asyncio  # here, not at import: most commands never probe

    names = list(queues)
    if not names:
        return {}
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop running here: the usual, synchronous case
        return _run(amqp_url, vhost, names, timeout, cluster)
    with ThreadPoolExecutor(max_workers=1) as pool:  # called from async code: use a loop of our own
        return pool.submit(_run, amqp_url, vhost, names, timeout, cluster).result()


def _run(
    amqp_url: str, vhost: str, names: list[str], timeout: float, cluster: str | None
) -> dict[str, tuple[int, int]] | None:
    import asyncio

    try:
        return asyncio.run(_usage(amqp_url, vhost, names, timeout, cluster))
    except (OSError, TimeoutError, TopoError):
        return None
